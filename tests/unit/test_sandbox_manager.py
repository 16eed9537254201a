"""The sandbox's lifecycle edge cases that need no Ray cluster: stale state, ports in use,
`down` when nothing runs, deleting from a sandbox that is not up."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from chaosraysvc.runtime import sessions as procs
from chaosraysvc.sandbox.manager import Sandbox, SandboxError
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.sandbox.state import PodRecord, SandboxState


def test_down_when_nothing_was_started_is_a_no_op(tmp_path: Path) -> None:
    result = Sandbox(tmp_path).down()
    assert (result.was_up, result.pods_ended, result.leftovers) == (False, 0, [])
    assert Sandbox(tmp_path).status().state == "absent"


def test_down_ends_the_pods_a_crashed_supervisor_left_behind(tmp_path: Path) -> None:
    SandboxSpec(state_dir=tmp_path).save()
    orphan = procs.spawn(["sleep", "60"], {}, tmp_path / "orphan.log", tmp_path)
    try:
        pod = PodRecord(
            name="rayservice-ha-raycluster-x-head-abcde",
            role="head",
            uid="u",
            sid=orphan.pid,
            start_ticks=procs.start_time_of(orphan.pid) or 0,
            created_at=time.time(),
            started_at=time.time(),
            phase="Running",
        )
        state = SandboxState("up", 999_999, 1, "deadbeef", "c", pods=[pod])
        state.save(tmp_path)
        box = Sandbox(tmp_path)
        assert box.status(check_serve=False).state == "stale"
        with pytest.raises(SandboxError, match="sandbox down"):
            box.require_up()
        result = box.down()
        orphan.wait(5)
        assert result.pods_ended == 1 and result.leftovers == []
        assert box.state() is not None and box.state().status == "down"  # type: ignore[union-attr]
    finally:
        procs.kill_session(orphan.pid)


def test_up_refuses_a_serve_port_in_use_and_names_the_option(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        spec = SandboxSpec(state_dir=tmp_path, serve_port=port, dashboard_port=port + 1)
        with pytest.raises(SandboxError, match=rf"port {port} is already in use.*--serve-port"):
            Sandbox(tmp_path).up(spec)
    assert not (tmp_path / "state.json").exists()


def test_deleting_from_a_sandbox_that_is_not_up_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="chaosraysvc sandbox up"):
        Sandbox(tmp_path).delete_pod("x")


def test_logs_of_an_unknown_pod_list_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "redis-1.log").write_text("ready\n")
    assert "ready" in Sandbox(tmp_path).logs("redis-1")
    with pytest.raises(Exception, match="known: redis-1"):
        Sandbox(tmp_path).logs("nope")


def test_endpoint_ports_status_reads_the_services_endpoints(tmp_path: Path) -> None:
    spec = SandboxSpec(state_dir=tmp_path, endpoint_ports=True, head_proxy_port=7001)
    spec.save()
    supervisor = procs.spawn(["sleep", "60"], {}, tmp_path / "sup.log", tmp_path)
    worker = procs.spawn(["sleep", "60"], {}, tmp_path / "worker.log", tmp_path)
    try:

        def pod(name: str, sid: int, ports: dict[str, int]) -> PodRecord:
            return PodRecord(
                name=name,
                role="worker",
                uid=name,
                sid=sid,
                start_ticks=procs.start_time_of(sid) or 0 if sid else 0,
                created_at=time.time(),
                started_at=time.time(),
                phase="Running" if sid else "Pending",
                ports=ports,
            )

        pods = [pod("worker-a", worker.pid, {"proxy": 7002}), pod("worker-b", 0, {})]
        ticks = procs.start_time_of(supervisor.pid) or 0
        state = SandboxState("up", supervisor.pid, ticks, "id", "c", pods=pods)
        state.ready_endpoints = ["worker-a"]
        state.save(tmp_path)

        status = Sandbox(tmp_path).status(check_serve=False)

        endpoints = {e.pod: (e.url, e.ready) for e in status.endpoints}
        assert endpoints == {
            "worker-a": ("http://127.0.0.1:7002", True),
            "worker-b": ("", False),  # pending: no address yet
        }
        assert [p.ready for p in status.pods] == [True, False]

        procs.kill_session(supervisor.pid)
        supervisor.wait(5)
        stale = Sandbox(tmp_path).status(check_serve=False)

        assert stale.state == "stale"
        assert not any(e.ready for e in stale.endpoints)  # the Service died with it
    finally:
        procs.kill_session(supervisor.pid)
        procs.kill_session(worker.pid)
        worker.wait(5)
