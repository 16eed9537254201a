#!/usr/bin/env python3
"""What each Kubernetes-side probe and target method costs: wall time and API calls.

    .venv/bin/python benchmarks/probe_cost.py [--calls 20]
    .venv/bin/python benchmarks/probe_cost.py --quick        # smoke run, 5 calls each

Runs the HTTP-level Kubernetes API double of the integration tests
(`tests/integration/kube/`: kmock's emulator with label selectors, bearer-token auth, the
Role of deploy/role.yaml enforced, every call recorded), seeded with the KubeRay HA
sample, and reaches it through the official client and a kubeconfig, as the tests do.
Then, for each of

- the target methods `pods()`, `serve_endpoints()`, `gcs_fault_tolerance()`,
  `redis_storage_persistent()` on one `KubernetesTarget` (its API client kept between
  calls, as within one activity);
- the probes `serve_endpoint_count`, `head_pod_ready`, `gcs_fault_tolerance_enabled`,
  `redis_storage_persistent` called with `{"raysvc_target": "kubernetes", ...}` (each
  call resolves its target and builds a new API client from the kubeconfig, as under
  `chaos run`);

it makes one cold call, then `--calls` calls, and reports the median and p90 wall time in
ms and the number of API calls per call (with their verbs and resources), counted by the
double. Loopback, no network latency: on a real API server add about one round trip per
call. Prints a markdown table and writes JSON to benchmarks/results/probe_cost.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    default_out,
    describe_machine,
    fmt,
    machine_info,
    markdown_table,
    write_result,
)

sys.path.insert(0, str(ROOT / "tests" / "integration"))  # the double: package `kube`

from kube import seed
from kube.apidouble import ApiCall, ApiDouble
from kube.conftest import _ENV_TO_CLEAR, shipped_rbac
from kube.server import TOKEN, DoubleServer, write_kubeconfig

from chaosraysvc.activities.pod_probes import (
    gcs_fault_tolerance_enabled,
    head_pod_ready,
    redis_storage_persistent,
)
from chaosraysvc.activities.serve_probes import serve_endpoint_count
from chaosraysvc.config import Settings
from chaosraysvc.targets.kubernetes import KubernetesTarget

# besides what the kube tests' `kube_env` fixture clears: what would steer the probes
_MORE_ENV_TO_CLEAR = ("RAYSVC_TARGET", "RAYSVC_NAME", "RAYSVC_NAMESPACE")


def _describe_calls(calls: list[ApiCall]) -> str:
    counts = Counter(f"{c.verb} {c.resource}" for c in calls)
    return ", ".join(f"{n}x {what}" if n > 1 else what for what, n in counts.items())


def measure(
    name: str, kind: str, fn: Callable[[], Any], server: DoubleServer, calls: int
) -> dict[str, Any]:
    """Call `fn` once cold, then `calls` times; time each call and count its API calls."""
    double = server.double

    def recorded() -> int:
        return server.call(lambda: len(double.calls))

    def one() -> tuple[float, int, Any, list[ApiCall]]:
        before = recorded()
        t0 = time.perf_counter()
        value = fn()
        ms = (time.perf_counter() - t0) * 1000
        after = recorded()
        made = server.call(lambda: list(double.calls[before:after]))
        return ms, after - before, value, made

    cold_ms, cold_calls, value, _ = one()
    times, counts = [], []
    made: list[ApiCall] = []
    for _ in range(calls):
        ms, n, value, made = one()
        times.append(ms)
        counts.append(n)
    times.sort()
    writes = [c for c in made if c.verb not in ("get", "list")]
    return {
        "name": name,
        "kind": kind,
        "returned": value if isinstance(value, bool | int | str) else type(value).__name__,
        "cold_ms": round(cold_ms, 2),
        "cold_api_calls": cold_calls,
        "median_ms": round(statistics.median(times), 2),
        "p90_ms": round(times[max(int(0.9 * len(times)) - 1, 0)], 2),
        "min_ms": round(times[0], 2),
        "api_calls": statistics.median(counts),
        "api_calls_min_max": [min(counts), max(counts)],
        "calls_made": _describe_calls(made),
        "writes": len(writes),
        "samples": len(times),
    }


COLUMNS = [
    ("name", "method / probe"),
    ("returned", "returned"),
    ("median_ms", "median ms"),
    ("p90_ms", "p90 ms"),
    ("cold_ms", "cold ms"),
    ("api_calls", "API calls per call"),
    ("calls_made", "which"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 calls each")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per method")
    parser.add_argument("--out", default=str(default_out("probe_cost")))
    args = parser.parse_args()
    if args.quick:
        args.calls = 5
    for name in (*_ENV_TO_CLEAR, *_MORE_ENV_TO_CLEAR):
        os.environ.pop(name, None)

    info = machine_info()
    print(describe_machine(info), flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="crs-bench-probes-") as tmp:
        double = ApiDouble(token=TOKEN, rbac=shipped_rbac())  # deploy/role.yaml
        with DoubleServer(double, seed.ha_sample()) as server:
            kubeconfig = write_kubeconfig(Path(tmp) / "kubeconfig", server.url, TOKEN)
            os.environ["KUBECONFIG"] = str(kubeconfig)
            print(f"Kubernetes API double on {server.url}, seeded with the KubeRay HA sample")
            target = KubernetesTarget(
                Settings(
                    target="kubernetes",
                    rayservice_name=seed.RAYSERVICE,
                    rayservice_namespace=seed.NAMESPACE,
                ),
                request_timeout=5.0,
            )
            configuration = {
                "raysvc_target": "kubernetes",
                "rayservice_name": seed.RAYSERVICE,
                "rayservice_namespace": seed.NAMESPACE,
            }
            cases: list[tuple[str, str, Callable[[], Any]]] = [
                ("target.pods()", "target method", lambda: len(target.pods())),
                (
                    "target.serve_endpoints()",
                    "target method",
                    lambda: len(target.serve_endpoints()),
                ),
                (
                    "target.gcs_fault_tolerance()",
                    "target method",
                    lambda: target.gcs_fault_tolerance().enabled,
                ),
                (
                    "target.redis_storage_persistent()",
                    "target method",
                    lambda: target.redis_storage_persistent(),
                ),
                (
                    "probe serve_endpoint_count",
                    "probe",
                    lambda: serve_endpoint_count(configuration),
                ),
                ("probe head_pod_ready", "probe", lambda: head_pod_ready(configuration)),
                (
                    "probe gcs_fault_tolerance_enabled",
                    "probe",
                    lambda: gcs_fault_tolerance_enabled(configuration),
                ),
                (
                    "probe redis_storage_persistent",
                    "probe",
                    lambda: redis_storage_persistent(configuration),
                ),
            ]
            for name, kind, fn in cases:
                print(f"  {name} ...", flush=True)
                rows.append(measure(name, kind, fn, server, args.calls))
            total_calls = server.call(lambda: len(double.calls))
            writes = server.call(lambda: [c for c in double.calls if c.verb not in ("get", "list")])
    print()
    print(
        markdown_table(
            COLUMNS,
            rows,
            {
                "median_ms": lambda v: fmt(v, 1),
                "p90_ms": lambda v: fmt(v, 1),
                "cold_ms": lambda v: fmt(v, 1),
                "api_calls": lambda v: fmt(v, 0) if isinstance(v, float) else fmt(v),
            },
        )
    )
    notes = [
        "`returned`: what the call gave (a count for pods()/serve_endpoints(), the probe's value).",
        "Target methods reuse one API client; probes resolve a new target and client per call.",
        "API double on loopback: each real API call adds a network round trip on a cluster.",
    ]
    if writes:
        notes.append(f"unexpected writes to the API: {[str(c) for c in writes]}")
    print()
    for note in notes:
        print(f"note: {note}")
    out = write_result(
        Path(args.out),
        {
            "benchmark": "probe_cost",
            "machine": info,
            "args": {k: v for k, v in vars(args).items() if k != "out"},
            "api_calls_total": total_calls,
            "rows": rows,
            "notes": notes,
            "work_dir": tmp,
        },
    )
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
