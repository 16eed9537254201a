"""A fault that was never injected never reads as passed (issue 25, item 12).

For every experiment in experiments/, on both targets, the real passing journal of
`make demo` (tests/fixtures/reports/demo-pass) is given that experiment and its fault
action failed, as the action fails on each target: refused before its fault (GCS fault
tolerance off: no mark in the traffic log), or at its fault (the traffic log holds the
action's `fault` mark and then its `fault_not_injected` mark, as the actions write them).
The journal still says `completed`, not deviated, the steady state held before and after:
what `chaos run experiments/gcs-kill.json` left on the kubernetes target. The verdict,
the report (HTML and Markdown), the metrics and the run's journal status must all say the
run proves nothing, naming the action and its error, and state no fault.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from chaoslib.types import Dry

from chaosraysvc.errors import RefusedError
from chaosraysvc.kube.client import exec_forbidden
from chaosraysvc.model import Pod
from chaosraysvc.report import verdict_control
from chaosraysvc.report.cli import build
from chaosraysvc.report.faults import find_faults
from chaosraysvc.report.figures import run_figures
from chaosraysvc.report.load import load_run
from chaosraysvc.report.metrics import registry_of, run_metrics
from chaosraysvc.report.steady import SteadyState
from chaosraysvc.report.verdict import verdict
from chaosraysvc.targets.sandbox import PARTITION_REFUSED, SandboxTarget
from tests.support.report_samples import (
    FIXTURES,
    figures_of,
    passing_journal,
    real_journal,
    traffic_records,
    write_run,
)

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.json"))
TARGETS = ("sandbox", "kubernetes")
HEAD = "rayservice-ha-raycluster-dcc68-head-vmmc0"
WORKER = "rayservice-ha-raycluster-dcc68-worker-small-group-x2k9d"
REDIS = "redis-7c9f8d6b5-q4wzt"
CLUSTER = "rayservice-ha-raycluster-dcc68"
NO_GCS_FT = (
    "refusing to delete the head pod: GCS fault tolerance is not enabled, so the Serve "
    "applications would be lost with it. Enable gcsFaultToleranceOptions on the RayService, "
    "or pass allow_without_gcs_ft=true to do it anyway"
)


def _pod(name: str, role: Any) -> Pod:
    return Pod(name=name, role=role, phase="Running", ready=True, uid="u", created_at=0.0)


def _refusal(target: str, func: str) -> str:
    """Return the error the `target` gives when the fault of `func` is attempted."""
    if func == "partition_redis" and target == "sandbox":
        return PARTITION_REFUSED  # before any mark: the sandbox has no network to cut
    if func == "partition_redis":  # created, but a new connection still got through
        return (
            "the NetworkPolicies default/rayservice-ha-redis-partition-ray, "
            "default/rayservice-ha-redis-partition-redis were created but a new connection "
            f"from the head pod '{HEAD}' to Redis at redis:6379 still succeeded 30 s later "
            "(148 tries): this cluster's network plugin does not enforce NetworkPolicy (e.g. "
            "kindnet or flannel alone). They were deleted again: no partition happened"
        )
    if func == "hang_redis" and target == "kubernetes":  # the GCS's password, read in the head
        return exec_forbidden("default", HEAD)
    if func == "hang_redis":  # paused, but another connection's PING still got an answer
        return (
            "Redis at 127.0.0.1:6379 accepted CLIENT PAUSE 15000 ALL but answered a PING from "
            "another connection 0.01 s later ('PONG'): the pause did not take effect, no hang "
            "happened"
        )
    if func == "kill_gcs_server" and target == "kubernetes":
        return exec_forbidden("default", HEAD)  # without the opt-in exec Role, word for word
    if func == "upgrade_rayservice" and target == "sandbox":
        with pytest.raises(RefusedError) as refused:
            SandboxTarget.upgrade(object.__new__(SandboxTarget), {})
        return str(refused.value)
    if target == "kubernetes":
        return (
            "the Kubernetes API at https://10.96.0.1:443 answered 403 Forbidden to delete "
            f"pod '{HEAD}' in namespace 'default': check the Role in deploy/role.yaml"
        )
    return f"pod {HEAD!r} is not a pod of the sandbox in /var/lib/chaosraysvc/sandbox"


def _marks(func: str, at: float) -> list[dict[str, Any]]:
    """Return the marks the action of `func` writes when its fault call raises."""
    if func == "upgrade_rayservice":
        detail: dict[str, Any] = {"role": "rayservice", "cluster": CLUSTER, "action": func}
        gone: dict[str, Any] = {"cluster": CLUSTER}
    else:
        role = {"delete_worker_pod": "worker", "delete_pods": "worker"}.get(func, "head")
        pod = {"worker": WORKER, "head": HEAD}[role]
        if func in ("delete_redis_pod", "partition_redis", "hang_redis"):
            role, pod = "redis", REDIS
        action = (
            func
            if func in ("kill_gcs_server", "delete_pods", "partition_redis", "hang_redis")
            else f"delete_{role}_pod"
        )
        detail = {"pod": pod, "role": role, "action": action}
        gone = {"pod": pod}
    return [
        {"kind": "mark", "t": at, "event": "fault", "detail": detail},
        {
            "kind": "mark",
            "t": at + 0.004,
            "event": "fault_not_injected",
            "detail": {**gone, "error": "RefusedError"},
        },
    ]


def _fault_actions(experiment: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in experiment["method"] if a.get("type") == "action"]


def _failed_run(
    folder: Path, experiment_path: Path, target: str, action: dict[str, Any], at_fault: bool
) -> tuple[Path, str]:
    """Write the demo journal with `action` failed, and its traffic log; return path, error."""
    journal = real_journal("demo-pass")
    experiment = json.loads(experiment_path.read_text())
    experiment["configuration"]["raysvc_target"] = target
    journal["experiment"] = experiment
    func = action["provider"]["func"]
    error = _refusal(target, func) if at_fault else NO_GCS_FT
    demo = journal["run"][0]
    journal["run"][0] = {
        "activity": copy.deepcopy(action),
        "output": None,
        "start": demo["start"],
        "status": "failed",
        "exception": [
            "Traceback (most recent call last):\n",
            '  File "chaoslib/activity.py", line 254, in execute_activity\n',
            f"chaosraysvc.errors.RefusedError: {error}\n",
            "\nThe above exception was the direct cause of the following exception:\n\n",
            f"chaoslib.exceptions.ActivityFailed: {error}\n",
        ],
        "end": demo["start"],
        "duration": 0.21,
    }
    lines = (FIXTURES / "demo-pass-journal-traffic.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    fault_t = next(r["t"] for r in records if r.get("event") == "fault")
    records = [r for r in records if r["kind"] != "mark"]
    if at_fault:
        records[-1:-1] = _marks(func, fault_t)
    requests = [r for r in records if r["kind"] == "req"]
    for entry in journal["extensions"]:  # the journal counts what the (trimmed) log holds
        if entry.get("name") == "chaosraysvc":
            entry["target"]["target"] = target
            entry["traffic"]["summary"]["requests"] = len(requests)
            entry["traffic"]["summary"]["failures"] = sum(1 for r in requests if not r["ok"])
            entry["traffic"]["summary"]["marks"] = [r for r in records if r["kind"] == "mark"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "journal.json"
    path.write_text(json.dumps(journal))
    (folder / "journal-traffic.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return path, error


CASES = [
    pytest.param(e, t, a["name"], at_fault, id=f"{e.stem}-{a['name']}-{t}-{w}")
    for e in EXPERIMENTS
    for a in _fault_actions(json.loads(e.read_text()))
    for t in TARGETS
    for at_fault, w in ((True, "at-its-fault"), (False, "before-its-fault"))
]


def test_every_experiment_has_one_fault_action_and_the_verdict_control() -> None:
    assert [e.stem for e in EXPERIMENTS] == [
        "drain-head-node",
        "gcs-kill",
        "head-kill-serve-metrics",
        "head-kill",
        "lose-head-node",
        "redis-failover",
        "redis-hang",
        "redis-kill",
        "redis-partition",
        "upgrade",
        "worker-kill-repeated",
        "worker-kill",
    ]
    for path in EXPERIMENTS:
        experiment = json.loads(path.read_text())
        assert len(_fault_actions(experiment)) == 1, path.name
        modules = [c["provider"]["module"] for c in experiment["controls"]]
        # the verdict control settles the run after the traffic control recorded its log;
        # a run judged by Serve's metrics has no traffic of ours: Serve's view instead
        first = "serve_metrics" if path.stem.endswith("-serve-metrics") else "traffic"
        assert modules == [f"chaosraysvc.controls.{first}", "chaosraysvc.report.verdict_control"]


@pytest.mark.parametrize(("experiment", "target", "name", "at_fault"), CASES)
def test_a_failed_fault_action_never_passes(
    tmp_path: Path, experiment: Path, target: str, name: str, at_fault: bool
) -> None:
    path, error = _failed_run(
        tmp_path,
        experiment,
        target,
        next(a for a in _fault_actions(json.loads(experiment.read_text())) if a["name"] == name),
        at_fault,
    )
    journal = json.loads(path.read_text())
    assert (journal["status"], journal["deviated"]) == ("completed", False)  # as chaoslib left it

    figures = run_figures(load_run(path))
    f = figures.to_json()
    v = f["verdict"]
    assert (v["outcome"], v["label"]) == ("inconclusive", "Inconclusive")
    assert v["headline"].startswith(f"Inconclusive: the fault was not injected: action '{name}'")
    assert f"failed: ActivityFailed: {error[:60]}" in v["headline"]
    facts = " ".join(v["facts"])
    for claim in (" was deleted", " was killed", " was upgraded", " was cut off", "recovered in",
                  " was lost",
                  " stopped answering", "held before"):  # fmt: skip
        assert claim not in facts, facts
    assert all(not fault["confirmed"] and fault["injected"] is False for fault in f["faults"])
    assert f["trend"]["verdict"] == "Inconclusive" and f["deletion_offset_s"] is None

    files, _ = build([path], None, tmp_path / "report.md", "md")
    markdown = files[tmp_path / "report.md"].decode()
    assert markdown.startswith(f"## INCONCLUSIVE: the fault was not injected: action '{name}'")
    files, _ = build([path], None, tmp_path / "report.html", "html")
    html = files[tmp_path / "report.html"].decode()
    assert "Passed" not in html and 'class="verdict inconclusive"' in html

    metrics = run_metrics(figures)
    assert metrics.outcome == "inconclusive" and metrics.recovery_s == {}
    registry = registry_of(metrics)
    base = {"experiment": f["about"]["title"], "rayservice": "rayservice-ha"}
    base |= {"namespace": "default", "target": target}
    assert registry.get_sample_value("chaosraysvc_run_outcome", base | {"outcome": "passed"}) == 0
    assert (
        registry.get_sample_value("chaosraysvc_run_outcome", base | {"outcome": "inconclusive"})
        == 1
    )

    settled = verdict_control.settle(journal)
    assert journal["status"] == "failed" and settled["outcome"] == "inconclusive"
    assert name in settled["headline"]


# --- the other ways a fault does not happen, and a fault whose action failed after it ----


def _delete_action(journal: dict[str, Any]) -> dict[str, Any]:
    return journal["run"][0]


def test_a_fault_whose_action_failed_after_it_fails_a_run_that_held(tmp_path: Path) -> None:
    """The head was deleted and came back, but not within the action's timeout."""
    journal = passing_journal()
    timeout = "head pod rayservice-ha-head-abcde was deleted but the RayService did not recover"
    _delete_action(journal).update(
        output=None,
        status="failed",
        exception=[f"chaoslib.exceptions.ActivityFailed: {timeout} within 10 s\n"],
    )
    f = figures_of(tmp_path, journal, traffic_records()).to_json()
    v = f["verdict"]
    assert (v["outcome"], v["label"]) == ("failed", "Failed")
    assert v["reason"] == (
        f"action 'delete-head-pod' failed after its fault was injected: ActivityFailed: "
        f"{timeout} within 10 s"
    )
    [fault] = f["faults"]
    assert fault["injected"] is True and fault["recovered"] is True  # from the marks
    assert any(" was deleted 10.0 s into the traffic" in fact for fact in v["facts"])


def test_a_dry_run_fault_is_no_fault(tmp_path: Path) -> None:
    journal = passing_journal()
    _delete_action(journal)["output"]["dry_run"] = True
    records = [r for r in traffic_records() if r["kind"] != "mark"]
    v = figures_of(tmp_path, journal, records).to_json()["verdict"]
    assert v["outcome"] == "inconclusive"
    assert v["reason"] == (
        "the fault was not injected: action 'delete-head-pod' ran as a dry run "
        "(dry_run=true): nothing was changed"
    )


def test_chaos_run_dry_actions_injects_nothing(tmp_path: Path) -> None:
    """`chaos run --dry actions` records the action succeeded, with no output."""
    journal = passing_journal()
    journal["experiment"]["dry"] = "actions"
    _delete_action(journal)["output"] = None
    records = [r for r in traffic_records() if r["kind"] != "mark"]
    v = figures_of(tmp_path, journal, records).to_json()["verdict"]
    assert v["outcome"] == "inconclusive"
    assert v["reason"] == (
        "the fault was not injected: action 'delete-head-pod' was skipped by "
        "`chaos run --dry actions`"
    )
    # while the run is on (the controls' view), the journal holds chaoslib's Dry
    journal["experiment"]["dry"] = Dry.ACTIONS
    steady = SteadyState(before_met=True, after_met=True)
    faults = find_faults(journal, [], None)
    assert verdict(journal, steady, None, faults)["reason"].endswith("`chaos run --dry actions`")


def test_another_failed_action_of_the_method_makes_the_run_inconclusive(tmp_path: Path) -> None:
    journal = passing_journal()
    journal["run"].insert(
        0,
        {
            "activity": {
                "type": "action",
                "name": "scale-down-proxies",
                "provider": {"type": "http", "url": "http://example.invalid/scale"},
            },
            "output": None,
            "status": "failed",
            "exception": ["chaoslib.exceptions.ActivityFailed: failed to connect\n"],
        },
    )
    v = figures_of(tmp_path, journal, traffic_records()).to_json()["verdict"]
    assert v["outcome"] == "inconclusive"
    assert v["reason"] == (
        "the method did not run as written: action 'scale-down-proxies' failed: "
        "ActivityFailed: failed to connect"
    )


def test_a_repeated_kill_refused_on_its_second_pod_states_only_the_first(tmp_path: Path) -> None:
    journal = passing_journal()
    action = _delete_action(journal)
    action["activity"].update(name="delete-worker-pods-repeatedly")
    action["activity"]["provider"]["func"] = "delete_pods"
    action.update(
        output=None,
        status="failed",
        exception=["chaoslib.exceptions.ActivityFailed: 403 Forbidden deleting worker-b\n"],
    )
    records = [r for r in traffic_records() if r["kind"] != "mark"]
    t0 = records[0]["started"]
    kill = {"role": "worker", "action": "delete_pods"}
    records[-1:-1] = [
        {"kind": "mark", "t": t0 + 10.0, "event": "fault", "detail": {"pod": "worker-a", **kill}},
        {"kind": "mark", "t": t0 + 11.0, "event": "fault", "detail": {"pod": "worker-b", **kill}},
        {
            "kind": "mark",
            "t": t0 + 11.01,
            "event": "fault_not_injected",
            "detail": {"pod": "worker-b", "error": "ApiError"},
        },
    ]
    f = figures_of(tmp_path, journal, records).to_json()
    v = f["verdict"]
    assert v["outcome"] == "inconclusive"
    assert v["reason"].startswith(
        "the fault was not injected: action 'delete-worker-pods-repeatedly' failed: "
        "ActivityFailed: 403 Forbidden deleting worker-b"
    )
    happened = [fault["pod"] for fault in f["faults"] if fault["injected"]]
    assert happened == ["worker-a"]
    assert [p["name"] for p in f["phases"]][:2] == ["baseline", "outage"]  # from worker-a


def test_a_refused_fault_starts_no_outage_phase(tmp_path: Path) -> None:
    journal = passing_journal()
    _delete_action(journal).update(output=None, status="failed", exception=["x: refused\n"])
    records = [r for r in traffic_records() if r["kind"] != "mark"]
    t0 = records[0]["started"]
    detail = {"pod": "rayservice-ha-head-abcde", "role": "head", "action": "delete_head_pod"}
    records[-1:-1] = [
        {"kind": "mark", "t": t0 + 10.0, "event": "fault", "detail": detail},
        {"kind": "mark", "t": t0 + 10.01, "event": "fault_not_injected", "detail": detail},
    ]
    f = figures_of(tmp_path, journal, records).to_json()
    assert [p["name"] for p in f["phases"]] == ["baseline"]
    assert f["traffic"]["failures_after_fault"] is None
    assert f["deletion_offset_s"] is None


@pytest.mark.parametrize(
    ("deviated", "outcome"), [(False, "passed"), (True, "deviated")], ids=["passed", "deviated"]
)
def test_the_verdict_control_leaves_a_run_that_judged_the_fault_alone(
    tmp_path: Path, deviated: bool, outcome: str
) -> None:
    journal = passing_journal()
    journal["deviated"] = deviated
    path = write_run(tmp_path, journal, traffic_records())
    journal = json.loads(path.read_text())
    journal["extensions"][0]["traffic"]["log"] = str(tmp_path / "journal-traffic.jsonl")
    record = verdict_control.settle(journal)
    assert record["outcome"] == outcome and journal["status"] == "completed"
    assert "status_was" not in record


def test_settled_twice_the_journal_keeps_the_status_chaoslib_gave(tmp_path: Path) -> None:
    """Declared in the settings file and in the experiment, the control settles twice: the
    journal keeps the status chaoslib gave, and the report judges the run the same."""
    journal = passing_journal()
    _delete_action(journal).update(output=None, status="failed", exception=["x: refused\n"])
    records = [r for r in traffic_records() if r["kind"] != "mark"]
    path = write_run(tmp_path, journal, records)
    journal = json.loads(path.read_text())
    journal["extensions"][0]["traffic"]["log"] = str(tmp_path / "journal-traffic.jsonl")
    first = verdict_control.settle(journal)
    second = verdict_control.settle(journal)
    assert first == second and second["status_was"] == "completed"
    assert journal["status"] == "failed"
    path.write_text(json.dumps(journal))
    assert run_figures(load_run(path)).to_json()["verdict"]["headline"] == first["headline"]


def test_a_hypothesis_out_of_tolerance_before_the_fault_never_passes(tmp_path: Path) -> None:
    """chaoslib ends such a run `completed`, not deviated, with no method run (seen in a
    node campaign: one request timed out before the fault); it is "Not tested" in the
    report, the metrics and the journal's status (so `chaos run` exits 1)."""
    journal = passing_journal()
    journal.update(status="completed", deviated=False, run=[], rollbacks=[])
    before = journal["steady_states"]["before"]
    before["steady_state_met"] = False
    before["probes"][0].update(output=1, tolerance_met=False)
    journal["steady_states"]["after"] = None
    records = [r for r in traffic_records() if r["kind"] != "mark"]
    path = write_run(tmp_path, journal, records)
    figures = run_figures(load_run(path))
    f = figures.to_json()
    v = f["verdict"]
    assert (v["outcome"], v["label"]) == ("failed", "Not tested")
    assert f["trend"]["verdict"] == "Not tested"
    files, _ = build([path], None, tmp_path / "report.html", "html")
    html = files[tmp_path / "report.html"].decode()
    assert "<title>Passed" not in html and "Not tested" in html
    metrics = run_metrics(figures)
    assert metrics.outcome == "failed"
    journal = json.loads(path.read_text())
    journal["extensions"][0]["traffic"]["log"] = str(tmp_path / "journal-traffic.jsonl")
    settled = verdict_control.settle(journal)
    assert settled["outcome"] == "failed" and journal["status"] == "failed"
