"""The traffic control's validation and abort logic, and the engine's error classes."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from chaoslib.exceptions import InterruptExecution, InvalidControl
from chaoslib.run import EventHandlerRegistry

from chaosraysvc.controls import traffic as control
from chaosraysvc.traffic import registry
from chaosraysvc.traffic.http import classify_error


def ctl(**arguments: Any) -> dict[str, Any]:
    return {
        "name": "traffic",
        "provider": {
            "type": "python",
            "module": "chaosraysvc.controls.traffic",
            "arguments": arguments,
        },
    }


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    control._state.reset()
    yield
    control._state.reset()


def test_validation_names_unknown_arguments_and_bad_values() -> None:
    control.validate_control(ctl(mode="rate", rate=100, concurrency=4, url="${serve}"))
    control.validate_control(ctl(endpoints="serve_endpoints"))
    with pytest.raises(InvalidControl, match="unknown argument.*rps"):
        control.validate_control(ctl(rps=100))
    with pytest.raises(InvalidControl, match="needs `rate` > 0"):
        control.validate_control(ctl(mode="rate"))


def fake_engine(failures: int = 6, limit: int = 5) -> Any:
    options = SimpleNamespace(max_failures=limit)
    return SimpleNamespace(failures=failures, settings=SimpleNamespace(options=options))


def test_abort_marks_the_running_journal_aborted_before_the_method_ends() -> None:
    events = EventHandlerRegistry()
    control.configure_control(event_registry=events)
    journal: dict[str, Any] = {"status": None}
    events.running({}, journal, {}, {}, None, {})
    control._abort(fake_engine())
    assert journal["status"] == "aborted"
    assert "exceeded max_failures (5)" in control._state.abort_reason


def test_abort_after_the_method_or_a_failed_run_changes_nothing() -> None:
    events = EventHandlerRegistry()
    control.configure_control(event_registry=events)
    journal: dict[str, Any] = {"status": "failed"}
    events.running({}, journal, {}, {}, None, {})
    control._abort(fake_engine())
    assert journal["status"] == "failed"
    journal["status"] = None
    events.method_completed({}, [])
    control._abort(fake_engine())
    assert journal["status"] is None


def test_a_method_activity_is_refused_once_aborted_before_the_method() -> None:
    first, probe = {"name": "kill-head"}, {"name": "probe"}
    experiment = {"method": [first], "steady-state-hypothesis": {"probes": [probe]}}
    control.before_activity_control(first, experiment=experiment)  # nothing yet
    control._state.abort_reason = "traffic failures (6) exceeded max_failures (5)"
    control.before_activity_control(probe, experiment=experiment)  # not a method activity
    with pytest.raises(InterruptExecution, match="not starting 'kill-head'"):
        control.before_activity_control(first, experiment=experiment)


def test_traffic_that_cannot_start_interrupts_the_experiment(tmp_path: Any) -> None:
    with pytest.raises(InterruptExecution, match="traffic control: .*`mode`"):
        control.before_experiment_control(
            {}, url="http://127.0.0.1:9", mode="fast", log_path=str(tmp_path / "t.jsonl")
        )


def test_after_experiment_without_traffic_leaves_the_journal_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "_engine", None)
    journal: dict[str, Any] = {"status": "completed"}
    control.after_experiment_control({}, state=journal)
    assert journal == {"status": "completed"}


def _connector_error(os_error: OSError) -> aiohttp.ClientConnectorError:
    key = SimpleNamespace(host="127.0.0.1", port=1, ssl=False)
    return aiohttp.ClientConnectorError(key, os_error)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "exc, expected",
    [
        (
            _connector_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused")),
            "connect_refused",
        ),
        (_connector_error(OSError(errno.EHOSTUNREACH, "no route")), "connect_error"),
        (TimeoutError(), "timeout"),
        (aiohttp.ServerTimeoutError("read"), "timeout"),
        (aiohttp.ServerDisconnectedError(), "disconnected"),
        (aiohttp.ClientPayloadError("cut"), "disconnected"),
        (aiohttp.ClientOSError(errno.ECONNRESET, "reset"), "disconnected"),
        (aiohttp.ClientOSError("Cannot write to closing transport"), "disconnected"),
        (ConnectionResetError(), "disconnected"),
        (ValueError("x"), "other:ValueError"),
    ],
)
def test_error_classes(exc: BaseException, expected: str) -> None:
    assert classify_error(exc) == expected


def test_the_doctors_risks_as_the_run_started_go_to_the_journal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # Issue 25 item 7: the demo's report said "HA risks: not recorded" although the demo
    # printed them. A target the doctor cannot read is recorded with its error.
    conf = {"raysvc_target": "sandbox", "sandbox_state_dir": str(tmp_path / "none")}
    record = control._diagnose(conf, None)
    assert record["risks"] == [] and "no sandbox" in record["error"]

    monkeypatch.setattr(control._state, "doctor", {**record, "error": "", "risks": [{"id": "x"}]})
    monkeypatch.setattr(registry, "stop_engine", lambda: {"log": "t.jsonl", "requests": 0})
    monkeypatch.setattr(control, "journal_summary", lambda summary: {"requests": 0})
    journal: dict[str, Any] = {"status": "completed"}
    control.after_experiment_control({}, state=journal, configuration=conf)
    [entry] = journal["extensions"]
    assert entry["doctor"]["risks"] == [{"id": "x"}]
