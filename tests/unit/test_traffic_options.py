"""Traffic options are declared once, and the control checks the target before any request."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from chaoslib.exceptions import InterruptExecution

from chaosraysvc.activities import traffic as old_path
from chaosraysvc.activities import traffic_actions
from chaosraysvc.controls import traffic as control
from chaosraysvc.traffic import build_settings, registry
from chaosraysvc.traffic.log import HEADER_FIELDS, run_header, run_line
from chaosraysvc.traffic.settings import OPTION_NAMES


def test_the_action_and_the_control_take_the_same_knobs_failure_pause_included() -> None:
    params = list(inspect.signature(traffic_actions.start_traffic).parameters)
    assert params == [*OPTION_NAMES, "configuration", "secrets"]
    assert set(OPTION_NAMES) == control.ARGUMENTS
    control.validate_control(
        {"name": "traffic", "provider": {"type": "python", "arguments": {"failure_pause": 0.1}}}
    )


def test_the_journal_and_the_log_header_describe_the_traffic_alike(tmp_path: Path) -> None:
    settings = build_settings(
        endpoints=["head=http://127.0.0.1:8001"], log_path=str(tmp_path / "t")
    )
    described = settings.describe()
    header = json.loads(run_line(run_header(1.0, described)))
    assert described["endpoint_urls"] == header["endpoint_urls"] == ["http://127.0.0.1:8001"]
    assert {k: header[k] for k in HEADER_FIELDS} == {k: described[k] for k in HEADER_FIELDS}


def test_experiments_naming_the_first_module_path_still_find_every_activity() -> None:
    for name in ("start_traffic", "stop_traffic", "traffic_failures", "traffic_summary"):
        assert callable(getattr(old_path, name))


def test_the_control_checks_the_target_before_sending_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Kubernetes target with a serve URL but no kubeconfig: the URL alone would let the
    # traffic start, and every later probe would fail.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    for name in ("KUBERNETES_HOST", "CHAOSTOOLKIT_IN_POD", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(registry, "_engine", None)
    log = tmp_path / "traffic.jsonl"
    configuration = {"raysvc_target": "kubernetes", "serve_url": "http://127.0.0.1:9"}
    with pytest.raises(InterruptExecution, match="no Kubernetes configuration found"):
        control.before_experiment_control({}, configuration=configuration, log_path=str(log))
    assert registry.last_engine() is None and not log.exists()


def test_a_sandbox_that_was_brought_down_is_reported_as_down_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaosraysvc.sandbox.spec import SandboxSpec
    from chaosraysvc.sandbox.state import SandboxState

    state_dir = tmp_path / "sandbox"  # what `chaosraysvc sandbox down` leaves behind
    SandboxSpec(state_dir=state_dir).save()
    SandboxState(
        "down", supervisor_pid=0, supervisor_ticks=0, sandbox_id="s", cluster_name="c"
    ).save(state_dir)
    monkeypatch.setattr(registry, "_engine", None)
    log = tmp_path / "traffic.jsonl"
    configuration = {"raysvc_target": "sandbox", "sandbox_state_dir": str(state_dir)}
    with pytest.raises(InterruptExecution) as err:
        control.before_experiment_control({}, configuration=configuration, log_path=str(log))
    assert "is down: run `chaosraysvc sandbox up`" in str(err.value)
    assert "sandbox down" not in str(err.value)
    assert registry.last_engine() is None and not log.exists()
