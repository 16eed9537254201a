"""Synthetic runs for the report tests: journals and traffic logs made in code.

The real journals in tests/fixtures/reports/ come from runs whose head never
recovered and no request failed; these fill the other cases: a passing run with a
failure window and every recovery milestone, and the damaged or odd journals a report
must survive. Times are fixed (T0) so figures are exact.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaosraysvc.report.figures import RunFigures

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
T0 = 1_800_000_000.0  # traffic start, 2027-01-15 08:00:00 UTC
FAULT, READY, RESTORED, RUNNING = 10.0, 15.0, 20.0, 22.0
FAIL_FROM, FAIL_TO = 10.0, 12.5
SECRET = "s3cr3t-hunter2"


def iso(offset: float) -> str:
    return datetime.fromtimestamp(T0 + offset, UTC).isoformat()


def traffic_records(
    duration: float = 40.0, rate: float = 20.0, pod: str = "rayservice-ha-head-abcde"
) -> list[dict[str, Any]]:
    """Return a traffic log: two endpoints, failures from FAIL_FROM to FAIL_TO, marks."""
    records: list[dict[str, Any]] = [
        {
            "kind": "run",
            "version": 1,
            "started": T0,
            "url": "",
            "path": "/fruit/",
            "mode": "rate",
            "rate": rate,
            "concurrency": 4,
            "timeout_s": 2.0,
            "endpoints": ["worker-1", "worker-2"],
            "endpoint_urls": ["http://127.0.0.1:8001", "http://127.0.0.1:8002"],
            "endpoint_mode": "round_robin",
        }
    ]
    errors = ["connect_refused", "timeout", "http_503"]
    n = int(duration * rate)
    for i in range(n):
        t = i / rate
        ep = "worker-1" if i % 2 else "worker-2"
        failed = FAIL_FROM <= t < FAIL_TO
        ms = 1500.0 if failed else (25.0 + (i % 7) * 3.0 + (40.0 if READY <= t < RUNNING else 0))
        records.append(
            {
                "kind": "req",
                "t": T0 + t,
                "ms": ms,
                "ok": not failed,
                "code": None if failed else 200,
                "err": errors[i % 3] if failed else None,
                "ep": ep,
                "id": f"crs-0a1b2c3d-{i + 1}",
            }
        )
    marks = [
        (FAULT, "fault", {"pod": pod, "role": "head", "action": "delete_head_pod"}),
        (READY, "pod_ready", {"pod": "rayservice-ha-head-fghij", "role": "head"}),
        (RESTORED, "endpoints_restored", {"endpoints": 3}),
        (RUNNING, "applications_running", {}),
    ]
    for offset, event, detail in marks:
        records.append({"kind": "mark", "t": T0 + offset, "event": event, "detail": detail})
    records.append({"kind": "end", "t": T0 + duration, "requests": n, "failures": 0})
    return records


def _probe(name: str, func: str, tolerance: Any, output: Any, met: bool, at: float) -> dict:
    return {
        "activity": {
            "type": "probe",
            "name": name,
            "tolerance": tolerance,
            "provider": {"type": "python", "module": "m", "func": func},
        },
        "output": output,
        "status": "succeeded",
        "start": iso(at),
        "end": iso(at + 0.05),
        "duration": 0.05,
        "tolerance_met": met,
    }


def passing_journal(pod: str = "rayservice-ha-head-abcde") -> dict[str, Any]:
    """Return the journal of a run that passed: the head deleted, everything recovered."""
    probes = [
        ("serve-endpoints-ready", "serve_endpoint_count", "${expected_endpoints}", 3),
        ("serve-applications-running", "serve_applications_healthy", True, True),
        ("zero-failed-requests", "traffic_failures", 0, 0),
    ]
    hypothesis = {
        "title": "Serve answers, every endpoint ready",
        "probes": [
            {"type": "probe", "name": n, "tolerance": tol, "provider": {"func": f}}
            for n, f, tol, _ in probes
        ],
    }
    recovery_at = {
        "pod_ready": READY,
        "endpoints_restored": RESTORED,
        "applications_running": RUNNING,
    }
    delete_output = {
        "deleted": {"name": pod, "role": "head", "uid": "u-1"},
        "deleted_at": T0 + FAULT,
        "grace_period": 0,
        "dry_run": False,
        "target": "kubernetes",
        "before": {"endpoints": 3, "applications": ["fruit_app"]},
        "recovery": {
            "new_pod": "rayservice-ha-head-fghij",
            "recovered": True,
            "seconds_to": {k: v - FAULT for k, v in recovery_at.items()},
            "at": {k: T0 + v for k, v in recovery_at.items()},
        },
    }
    return {
        "chaoslib-version": "1.44.0",
        "platform": "Linux-test",
        "node": "ci",
        "experiment": {
            "title": "The Serve service stays up when the Ray head pod is deleted",
            "description": "Synthetic passing run.",
            "tags": ["ray", "head"],
            "configuration": {
                "raysvc_target": "kubernetes",
                "rayservice_name": {"type": "env", "key": "RAYSVC_NAME", "default": "rs-ha"},
                "rayservice_namespace": "serving",
                "serve_url": "https://admin:" + SECRET + "@serve.example:8000",
                "redis_password": SECRET,
                "expected_endpoints": 3,
            },
            "secrets": {"redis": {"password": SECRET}},
            "steady-state-hypothesis": hypothesis,
            "method": [],
        },
        "start": iso(-1.0),
        "end": iso(41.0),
        "duration": 42.0,
        "status": "completed",
        "deviated": False,
        "steady_states": {
            "before": {
                "steady_state_met": True,
                "probes": [_probe(n, f, tol, out, True, 1.0) for n, f, tol, out in probes],
            },
            "after": {
                "steady_state_met": True,
                "probes": [_probe(n, f, tol, out, True, 35.0) for n, f, tol, out in probes],
            },
            "during": [],
        },
        "run": [
            {
                "activity": {
                    "type": "action",
                    "name": "delete-head-pod",
                    "provider": {"type": "python", "module": "x", "func": "delete_head_pod"},
                },
                "output": delete_output,
                "status": "succeeded",
                "start": iso(FAULT - 0.3),
                "end": iso(RUNNING + 0.2),
                "duration": RUNNING + 0.5 - FAULT,
            }
        ],
        "rollbacks": [
            {
                "activity": {
                    "type": "action",
                    "name": "stop-traffic",
                    "provider": {"type": "python", "module": "x", "func": "stop_traffic"},
                },
                "output": {"requests": 800, "failures": 50, "latency_ms": {"p99": 90.0}},
                "status": "succeeded",
                "start": iso(40.0),
                "end": iso(40.2),
                "duration": 0.2,
            }
        ],
        "extensions": [
            {
                "name": "chaosraysvc",
                "traffic": {
                    "log": "/nonexistent/journal-traffic.jsonl",
                    "summary": {"run": {"started": T0}, "requests": 800, "failures": 50},
                },
            }
        ],
    }


def write_run(
    folder: Path,
    journal: dict[str, Any] | None = None,
    records: list[dict[str, Any]] | None = None,
    name: str = "journal",
) -> Path:
    """Write a journal (default: passing) and its traffic log beside it; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(passing_journal() if journal is None else journal))
    if records is not None:
        log = folder / f"{name}-traffic.jsonl"
        log.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def real_journal(name: str) -> dict[str, Any]:
    """Return a copy of a real journal from tests/fixtures/reports."""
    return copy.deepcopy(json.loads((FIXTURES / f"{name}-journal.json").read_text()))


def real_runs() -> list[Path]:
    """Return every real journal in tests/fixtures/reports (the lead may add more)."""
    return sorted(FIXTURES.glob("*-journal.json"))


def figures_of(folder: Path, journal: dict[str, Any], records: list | None = None) -> RunFigures:
    """Write `journal` (and its traffic `records`) under `folder`; return the report's figures."""
    from chaosraysvc.report.figures import run_figures
    from chaosraysvc.report.load import load_run

    return run_figures(load_run(write_run(folder, journal, records)))
