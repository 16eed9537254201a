"""Known failure patterns are named, with the doctor risk they come from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def fault(role: str, pod: str, t: float = 10.0) -> dict[str, Any]:
    return {"t": T0 + t, "event": "fault", "detail": {"pod": pod, "role": role}}


def test_failures_on_the_deleted_heads_proxy_point_at_the_head_in_the_service(
    tmp_path: Path,
) -> None:
    reqs = [ok(t / 10, "head-1") for t in range(100)] + [bad(10.2, "connect_refused", "head-1")]
    reqs += [ok(11 + t / 10, "worker-1") for t in range(50)]
    found = causes(write_log(tmp_path / "t.jsonl", reqs, [fault("head", "head-1")]))
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
    found = causes(write_log(tmp_path / "t.jsonl", reqs, [fault("redis", "redis-1")]))
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
