"""Known failure patterns are named, with the doctor risk they come from (one the set-up has)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc.activities.pod_actions import setup_facts
from chaosraysvc.errors import TargetNotReadyError
from chaosraysvc.model import Endpoint, GcsFaultTolerance
from chaosraysvc.traffic.attribution import likely_causes
from chaosraysvc.traffic.log import read_traffic_log
from chaosraysvc.traffic.stats import summarize

T0 = 1_800_000_000.0


def write_log(path: Path, requests: list[dict[str, Any]], marks: list[dict[str, Any]]) -> Path:
    lines = [
        {
            "kind": "run",
            "version": 1,
            "started": T0,
            "url": "http://x",
            "path": "/fruit/",
            "mode": "sequential",
            "rate": 0.0,
            "concurrency": 1,
            "timeout_s": 2.0,
            "endpoints": [],
        }
    ]
    lines += [
        {
            "kind": "req",
            "ms": 10.0,
            "code": 200 if r["ok"] else None,
            "err": None if r["ok"] else r.get("err", "timeout"),
            "ep": r.get("ep"),
            **r,
        }
        for r in requests
    ]
    lines += [{"kind": "mark", "detail": {}, **m} for m in marks]
    lines.append(
        {
            "kind": "end",
            "t": max(r["t"] for r in requests) + 0.05,
            "requests": len(requests),
            "failures": sum(not r["ok"] for r in requests),
        }
    )
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def ok(t: float, ep: str | None = None) -> dict[str, Any]:
    return {"t": T0 + t, "ok": True, "ep": ep}


def bad(t: float, err: str, ep: str | None = None) -> dict[str, Any]:
    return {"t": T0 + t, "ok": False, "err": err, "ep": ep}


def causes(path: Path) -> dict[str, dict[str, Any]]:
    return {c["pattern"]: c for c in summarize(read_traffic_log(path))["likely_causes"]}


def fault(role: str, pod: str, t: float = 10.0, **facts: Any) -> dict[str, Any]:
    return {"t": T0 + t, "event": "fault", "detail": {"pod": pod, "role": role, **facts}}


HEAD_IN = {"head_in_serve_svc": True, "serve_endpoints": ["head-1", "worker-1", "worker-2"]}
HEAD_OUT = {"head_in_serve_svc": False, "serve_endpoints": ["worker-1", "worker-2"]}


def test_failures_on_the_deleted_heads_proxy_point_at_the_head_in_the_service(
    tmp_path: Path,
) -> None:
    reqs = [ok(t / 10, "head-1") for t in range(100)] + [bad(10.2, "connect_refused", "head-1")]
    reqs += [ok(11 + t / 10, "worker-1") for t in range(50)]
    found = causes(write_log(tmp_path / "t.jsonl", reqs, [fault("head", "head-1", **HEAD_IN)]))
    assert found["deleted-pod-proxy"]["risk"] == "head-in-serve-svc"
    assert found["deleted-pod-proxy"]["failures"] == 1


def test_timeouts_on_survivors_after_a_head_kill_are_a_queue_length_stall(
    tmp_path: Path,
) -> None:
    reqs = [ok(t / 10, "worker-1") for t in range(100)]
    reqs += [bad(24.0 + i * 2, "timeout", "worker-1") for i in range(3)]
    reqs += [ok(31 + t / 10, "worker-1") for t in range(20)]
    marks = [fault("head", "head-1"), {"t": T0 + 25.0, "event": "pod_ready"}]
    found = causes(write_log(tmp_path / "t.jsonl", reqs, marks))
    assert found["surviving-proxy-stall"]["failures"] == 3
    assert "deleted-pod-proxy" not in found


def test_a_long_outage_after_a_redis_loss_points_at_ephemeral_storage(tmp_path: Path) -> None:
    reqs = [ok(t / 10) for t in range(100)]
    reqs += [bad(30 + t / 10, "http_503") for t in range(40)] + [ok(45.0)]
    marks = [fault("redis", "redis-1", gcs_storage_persistent=False)]
    found = causes(write_log(tmp_path / "t.jsonl", reqs, marks))
    assert found["cluster-restart-after-redis-loss"]["risk"] == "gcs-storage-ephemeral"


def test_a_clean_run_has_no_cause(tmp_path: Path) -> None:
    reqs = [ok(t / 10) for t in range(300)]
    assert causes(write_log(tmp_path / "t.jsonl", reqs, [fault("worker", "w-1")])) == {}


def test_a_500_from_a_replica_lost_mid_request_is_the_deleted_pods_fault(tmp_path: Path) -> None:
    reqs = [ok(t / 10) for t in range(99)] + [bad(9.99, "http_500")]
    reqs += [ok(10.2 + t / 10) for t in range(50)]
    found = causes(write_log(tmp_path / "t.jsonl", reqs, [fault("worker", "worker-1")]))
    assert found["deleted-pod-proxy"]["failures"] == 1
    assert found["deleted-pod-proxy"]["risk"] is None


def test_a_drop_when_a_draining_pod_ends_is_the_deleted_pods_fault(tmp_path: Path) -> None:
    # Grace period 30 s: SIGTERM to PID 1, Ray drains its node, the kubelet's SIGKILL at 30 s
    # drops the keep-alive connection still on the draining proxy.
    reqs = [ok(t / 10) for t in range(100)] + [ok(10 + t / 10) for t in range(300)]
    reqs += [bad(40.15, "disconnected")] + [ok(40.3 + t / 10) for t in range(50)]
    marks = [fault("worker", "worker-1"), {"t": T0 + 40.1, "event": "pod_terminated"}]
    found = causes(write_log(tmp_path / "t.jsonl", reqs, marks))
    assert found["deleted-pod-proxy"]["failures"] == 1
    assert "of its end" in found["deleted-pod-proxy"]["evidence"]
    without_end = causes(write_log(tmp_path / "u.jsonl", reqs, marks[:1]))
    assert "deleted-pod-proxy" not in without_end  # 30 s after the deletion: not explained


def test_a_drop_seen_before_the_watcher_noticed_the_pod_gone_is_the_deleted_pods_fault(
    tmp_path: Path,
) -> None:
    # Sandbox, grace 30 s: the drop 30.0 s after the deletion, `pod_terminated` marked 0.6 s
    # later (the recovery watcher polls; its mark lags the pod's end).
    reqs = [ok(t / 10) for t in range(100)] + [ok(10 + t / 10) for t in range(300)]
    reqs += [bad(40.0, "disconnected")] + [ok(40.1 + t / 10) for t in range(50)]
    marks = [fault("worker", "worker-1"), {"t": T0 + 40.62, "event": "pod_terminated"}]
    found = causes(write_log(tmp_path / "t.jsonl", reqs, marks))
    assert found["deleted-pod-proxy"]["failures"] == 1
    late = [fault("worker", "worker-1"), {"t": T0 + 42.5, "event": "pod_terminated"}]
    assert "deleted-pod-proxy" not in causes(write_log(tmp_path / "u.jsonl", reqs, late))


def one_drop_after_a_head_kill(path: Path, **facts: Any) -> Path:
    """The run of issue 10: one `disconnected` 20 ms after the head's deletion, no label."""
    reqs = [ok(t / 100) for t in range(1000)] + [bad(10.02, "disconnected")]
    reqs += [ok(10.1 + t / 100) for t in range(1000)]
    return write_log(path, reqs, [fault("head", "head-1", **facts)])


def test_a_head_out_of_the_service_is_never_blamed_for_a_drop(tmp_path: Path) -> None:
    found = causes(one_drop_after_a_head_kill(tmp_path / "t.jsonl", **HEAD_OUT))
    assert [c["risk"] for c in found.values()] == [None]
    assert "deleted-pod-proxy" not in found  # the head's proxy takes no Service traffic
    assert found["in-flight-at-head-deletion"]["failures"] == 1
    assert "not a serve endpoint" in found["in-flight-at-head-deletion"]["evidence"]


def test_the_same_drop_with_the_head_in_the_service_names_the_risk(tmp_path: Path) -> None:
    found = causes(one_drop_after_a_head_kill(tmp_path / "t.jsonl", **HEAD_IN))
    assert found["deleted-pod-proxy"]["risk"] == "head-in-serve-svc"


def test_an_unrecorded_set_up_names_no_risk_but_says_which_it_would_be(tmp_path: Path) -> None:
    found = causes(one_drop_after_a_head_kill(tmp_path / "t.jsonl"))
    assert found["deleted-pod-proxy"]["risk"] is None
    assert (
        "`head-in-serve-svc` risk if the head is a serve endpoint"
        in (found["deleted-pod-proxy"]["evidence"])
    )


@pytest.mark.parametrize(
    ("risks", "named"), [([], None), (["head-in-serve-svc"], "head-in-serve-svc")]
)
def test_the_doctors_risks_given_at_summary_time_decide(
    tmp_path: Path, risks: list[str], named: str | None
) -> None:
    # The recorded facts say "in the Service"; the doctor's list for the target wins.
    log = read_traffic_log(one_drop_after_a_head_kill(tmp_path / "t.jsonl", **HEAD_IN))
    found = {c["pattern"]: c for c in likely_causes(log, summarize(log), risks=risks)}
    assert [c["risk"] for c in found.values()] == [named]


def test_no_cause_names_a_risk_the_set_up_does_not_have(tmp_path: Path) -> None:
    none_present = {**HEAD_OUT, "gcs_storage_persistent": True}
    scenarios = {
        "head": [bad(10.02, "disconnected"), bad(14.0, "timeout"), bad(16.0, "timeout")],
        "redis": [bad(30 + t / 10, "http_503") for t in range(40)],
    }
    for role, failures in scenarios.items():
        reqs = sorted([ok(t / 10) for t in range(100)] + failures, key=lambda r: r["t"])
        reqs.append(ok(45.0))
        marks = [fault(role, f"{role}-1", **none_present)]
        found = causes(write_log(tmp_path / f"{role}.jsonl", reqs, marks))
        assert found, role
        assert all(c["risk"] is None for c in found.values()), found


def test_a_stall_after_a_head_kill_with_the_head_out_does_not_blame_its_proxy(
    tmp_path: Path,
) -> None:
    reqs = [ok(t / 10, "worker-1") for t in range(100)]
    reqs += [bad(24.0 + i * 2, "timeout", "worker-1") for i in range(3)]
    reqs += [ok(31 + t / 10, "worker-1") for t in range(20)]
    found = causes(write_log(tmp_path / "t.jsonl", reqs, [fault("head", "head-1", **HEAD_OUT)]))
    assert found["surviving-proxy-stall"]["risk"] is None
    assert "dead head proxy's request" not in found["surviving-proxy-stall"]["evidence"].replace(
        "no dead head proxy's request", ""
    )


class FakeTarget:
    kind = "fake"

    def __init__(self, endpoints: list[Endpoint] | None, persistent: bool | None) -> None:
        self.endpoints, self.persistent = endpoints, persistent

    def serve_endpoints(self) -> list[Endpoint]:
        if self.endpoints is None:
            raise TargetNotReadyError("no Service")
        return self.endpoints

    def gcs_fault_tolerance(self) -> GcsFaultTolerance:
        return GcsFaultTolerance(enabled=True, backend="redis", persistent=self.persistent)


def test_the_delete_actions_record_the_set_up_in_the_fault_mark() -> None:
    workers = [Endpoint("worker-1", "http://a", True), Endpoint("worker-2", "http://b", False)]
    head = Endpoint("head-1", "http://h", True, role="head")
    out = setup_facts(FakeTarget(workers, persistent=True))  # type: ignore[arg-type]
    assert out == {
        "serve_endpoints": ["worker-1", "worker-2"],
        "head_in_serve_svc": False,
        "gcs_storage_persistent": True,
    }
    assert setup_facts(FakeTarget([head, *workers], None))["head_in_serve_svc"] is True  # type: ignore[arg-type]
    assert setup_facts(FakeTarget(None, None)) == {}  # type: ignore[arg-type]


def test_a_lost_node_names_its_silence_and_the_stall_after_not_a_deletion(tmp_path: Path) -> None:
    loss = fault("head", "head-1", nodes=["node-a"], action="lose_node", **HEAD_IN)
    dropped = {"t": T0 + 60.0, "event": "endpoints_dropped", "detail": {"pods": ["worker-1"]}}
    requests = [ok(float(t)) for t in range(10)]
    requests += [bad(12.0, "timeout"), bad(40.0, "timeout"), bad(90.0, "timeout")]
    requests += [ok(100.0)]
    log = write_log(tmp_path / "t.jsonl", requests, [loss, dropped])

    named = causes(log)

    assert set(named) == {"lost-node-silence", "lost-node-stall"}  # no deletion pattern
    assert named["lost-node-silence"]["failures"] == 2
    assert "2.0-30.0 s after node(s) node-a were lost" in named["lost-node-silence"]["evidence"]
    assert "(50.0 s after the loss)" in named["lost-node-silence"]["evidence"]
    stall = named["lost-node-stall"]
    assert stall["failures"] == 1 and stall["risk"] is None
    assert "`replicas-one-node` risk if" in stall["evidence"]  # the set-up was not recorded
    summary = summarize(read_traffic_log(log))
    linked = likely_causes(read_traffic_log(log), summary, risks=["replicas-one-node"])
    assert [c["risk"] for c in linked if c["pattern"] == "lost-node-stall"] == ["replicas-one-node"]
    unlinked = likely_causes(read_traffic_log(log), summary, risks=["head-in-serve-svc"])
    assert [c["risk"] for c in unlinked if c["pattern"] == "lost-node-stall"] == [None]


def test_a_lost_node_whose_endpoints_never_left_the_service_is_all_silence(
    tmp_path: Path,
) -> None:
    loss = fault("worker", "worker-1", nodes=["node-b"], action="lose_node", **HEAD_OUT)
    requests = [ok(float(t)) for t in range(10)] + [bad(20.0, "timeout"), bad(200.0, "timeout")]
    log = write_log(tmp_path / "t.jsonl", requests, [loss])

    named = causes(log)

    assert set(named) == {"lost-node-silence"}
    assert named["lost-node-silence"]["failures"] == 2
    assert "never dropped the endpoints" in named["lost-node-silence"]["evidence"]
