"""A RayService name that does not exist fails every probe and action, naming it (issue 10).

On the sandbox the configured name is compared with the one its spec records; on Kubernetes
the RayService is read from the API (here a loopback server that answers 404 to everything).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed, InterruptExecution

from chaosraysvc.controls import traffic as control
from chaosraysvc.discovery import ACTION_MODULES, PROBE_MODULES
from chaosraysvc.runtime import sessions as procs
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.sandbox.state import PodRecord, SandboxState
from chaosraysvc.traffic import registry
from tests.support.loopback import LoopbackServer, QuietHandler

# Activities that read only the traffic log, never the target.
LOG_ONLY = {
    "traffic_failures",
    "traffic_summary",
    "traffic_latency_ms",
    "traffic_sent_at_least",
    "stop_traffic",
    "mark",
}
# Activities that read only Prometheus, never the target (tests/integration/test_metric_probes.py)
PROMETHEUS_ONLY = set(importlib.import_module("chaosraysvc.activities.metric_probes").__all__)
HEAD = "rayservice-ha-raycluster-head-abcde"


def _target_activities() -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for module_name in PROBE_MODULES + ACTION_MODULES:
        module = importlib.import_module(module_name)
        found += [(n, getattr(module, n)) for n in module.__all__
                  if n not in LOG_ONLY | PROMETHEUS_ONLY]  # fmt: skip
    return found


ACTIVITIES = _target_activities()
IDS = [name for name, _ in ACTIVITIES]


@pytest.fixture
def sandbox_up(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A sandbox `up` as its state file says: this process supervises a head pod (`sleep`)."""
    state_dir = tmp_path / "sandbox"
    SandboxSpec(state_dir=state_dir).save()
    head = subprocess.Popen(["sleep", "60"], start_new_session=True)
    now = time.time()
    pod = PodRecord(
        name=HEAD,
        role="head",
        uid="uid-1",
        sid=head.pid,
        start_ticks=procs.start_time_of(head.pid) or 0,
        created_at=now,
        started_at=now,
        phase="Running",
    )
    SandboxState(
        "up",
        supervisor_pid=os.getpid(),
        supervisor_ticks=procs.start_time_of(os.getpid()) or 0,
        sandbox_id="t",
        cluster_name="rayservice-ha-raycluster",
        pods=[pod],
    ).save(state_dir)
    try:
        yield state_dir, head
    finally:
        head.kill()
        head.wait()


def _sandbox_message_ok(message: str, state_dir: Path) -> None:
    assert "RayService 'typo-name' not found in namespace 'default'" in message
    assert f"the sandbox in {state_dir} runs RayService 'rayservice-ha'" in message
    assert "$RAYSVC_NAME" in message and "leave them unset" in message


@pytest.mark.parametrize(("name", "activity"), ACTIVITIES, ids=IDS)
def test_a_wrong_name_on_the_sandbox_fails_every_activity_and_deletes_nothing(
    name: str,
    activity: Callable[..., Any],
    sandbox_up: tuple[Path, subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state_dir, head = sandbox_up
    monkeypatch.setenv("RAYSVC_NAME", "typo-name")
    monkeypatch.setattr(registry, "_engine", None)

    with pytest.raises(ActivityFailed) as err:
        activity(configuration={"sandbox_state_dir": str(state_dir)})

    _sandbox_message_ok(str(err.value), state_dir)
    assert head.poll() is None, f"{name} touched the head pod"
    assert registry.last_engine() is None


def test_a_wrong_name_on_a_sandbox_that_is_down_is_named_first(tmp_path: Path) -> None:
    from chaosraysvc.activities.serve_probes import serve_endpoint_count

    state_dir = tmp_path / "sandbox"  # what `sandbox down` leaves: the spec, a "down" state
    SandboxSpec(state_dir=state_dir).save()
    SandboxState(
        "down", supervisor_pid=0, supervisor_ticks=0, sandbox_id="s", cluster_name="c"
    ).save(state_dir)
    configuration = {"sandbox_state_dir": str(state_dir), "rayservice_name": "typo-name"}

    with pytest.raises(ActivityFailed) as err:
        serve_endpoint_count(configuration=configuration)
    _sandbox_message_ok(str(err.value), state_dir)


def test_the_traffic_control_refuses_a_wrong_sandbox_name_before_any_request(
    sandbox_up: tuple[Path, subprocess.Popen[bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state_dir, _ = sandbox_up
    monkeypatch.setattr(registry, "_engine", None)
    log = tmp_path / "traffic.jsonl"
    configuration = {"sandbox_state_dir": str(state_dir), "rayservice_name": "typo-name"}

    with pytest.raises(InterruptExecution) as err:
        control.before_experiment_control({}, configuration=configuration, log_path=str(log))

    _sandbox_message_ok(str(err.value), state_dir)
    assert registry.last_engine() is None and not log.exists()


class _NotFound(QuietHandler):
    """Answer every request 404, as an API server (or a dashboard) with nothing there."""

    def _answer(self) -> None:
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
        self.answer(404, {**status, "reason": "NotFound", "message": "not found"})

    do_GET = do_POST = do_DELETE = _answer


@pytest.fixture
def empty_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A kubeconfig reaching a loopback API server that has no RayService; yields its URL."""
    server = LoopbackServer(_NotFound)
    url = server.url
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(path))
    try:
        yield url
    finally:
        server.close()


@pytest.mark.parametrize(("name", "activity"), ACTIVITIES, ids=IDS)
def test_a_missing_rayservice_on_kubernetes_fails_every_activity(
    name: str, activity: Callable[..., Any], empty_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_engine", None)
    configuration = {
        "raysvc_target": "kubernetes",
        "rayservice_name": "typo-name",
        "rayservice_namespace": "ml",
        # URLs that answer, so only the RayService check can tell the name is wrong
        "serve_url": empty_cluster,
        "dashboard_url": empty_cluster,
    }

    with pytest.raises(ActivityFailed) as err:
        activity(configuration=configuration)

    message = str(err.value)
    assert "RayService 'typo-name' not found in namespace 'ml'" in message, name
    assert "$RAYSVC_NAME" in message
    assert registry.last_engine() is None
