"""The activity contract: False means "answered unhealthy"; unknown raises `ActivityFailed`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosraysvc.activities import serve_probes, traffic_actions
from chaosraysvc.runtime import sessions as procs
from chaosraysvc.runtime.ports import free_port
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.sandbox.state import SandboxState
from chaosraysvc.traffic import registry


@pytest.fixture
def up_sandbox(tmp_path: Path) -> Path:
    """A sandbox state directory that reads as up (its supervisor: this process)."""
    state_dir = tmp_path / "sandbox"
    SandboxSpec(state_dir=state_dir).save()
    me = os.getpid()
    SandboxState("up", me, procs.start_time_of(me) or 0, "s", "c").save(state_dir)
    return state_dir


def config(state_dir: Path, dashboard_url: str) -> dict[str, str]:
    return {"sandbox_state_dir": str(state_dir), "dashboard_url": dashboard_url}


def test_an_application_that_answers_not_running_is_false(
    dashboard: tuple[str, dict[str, Any]], up_sandbox: Path
) -> None:
    url, documents = dashboard
    apps = documents["/api/serve/applications"] = {"applications": {}}
    apps["applications"] = {"fruit_app": {"status": "DEPLOY_FAILED"}}
    assert serve_probes.serve_applications_healthy("", config(up_sandbox, url)) is False
    apps["applications"] = {"fruit_app": {"status": "RUNNING"}}
    assert serve_probes.serve_applications_healthy("", config(up_sandbox, url)) is True
    assert serve_probes.serve_applications_healthy("other", config(up_sandbox, url)) is False


@pytest.mark.parametrize(
    "probe", [serve_probes.serve_applications_healthy, serve_probes.serve_proxies_healthy]
)
def test_an_unreachable_dashboard_fails_the_probe_with_what_to_do(
    probe: Any, up_sandbox: Path
) -> None:
    configuration = config(up_sandbox, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ActivityFailed, match="unreachable.*is the head pod up"):
        probe(configuration=configuration)


def test_stop_traffic_whose_log_was_removed_fails_the_activity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_engine", None)
    log = tmp_path / "traffic.jsonl"
    url = f"http://127.0.0.1:{free_port()}"
    started = traffic_actions.start_traffic(url=url, timeout=0.2, log_path=str(log))
    assert started["started"] is True
    log.unlink()
    with pytest.raises(ActivityFailed, match=f"traffic log {log} cannot be read"):
        traffic_actions.stop_traffic()
