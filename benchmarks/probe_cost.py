#!/usr/bin/env python3
"""What each Kubernetes-side probe and target method costs: wall time and API calls.

    .venv/bin/python benchmarks/probe_cost.py [--calls 20]
    .venv/bin/python benchmarks/probe_cost.py --quick        # smoke run, 3 calls each

Runs the HTTP-level Kubernetes API double of the integration tests
(`tests/integration/kube/faults/`: kmock's emulator with label selectors, bearer-token auth, the
Role of deploy/role.yaml enforced, every call recorded), seeded with the KubeRay HA
sample, and reaches it through the official client and a kubeconfig, as the fault tests do.
Then, for each of

- the target methods `pods()`, `serve_endpoints()`, `gcs_fault_tolerance()` on one
  `KubernetesTarget` (its API client kept between calls, as within one activity);
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
import math
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
from kube.conftest import _ENV_TO_CLEAR
from kube.faults.apidouble import ApiCall, ApiDouble
from kube.faults.conftest import shipped_rbac
from kube.faults.server import TOKEN, DoubleServer, write_kubeconfig

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


SETTINGS = Settings(
    target="kubernetes", rayservice_name=seed.RAYSERVICE, rayservice_namespace=seed.NAMESPACE
)
CONFIGURATION = {
    "raysvc_target": "kubernetes",
    "rayservice_name": seed.RAYSERVICE,
    "rayservice_namespace": seed.NAMESPACE,
}


def _target() -> KubernetesTarget:
    return KubernetesTarget(SETTINGS, request_timeout=5.0)


def _method(call: Callable[[KubernetesTarget], Any]) -> Callable[[], Callable[[], Any]]:
    """Return a maker of `call` on one target kept for the case (one API client)."""

    def make() -> Callable[[], Any]:
        target = _target()
        return lambda: call(target)

    return make


def _probe(probe: Callable[..., Any]) -> Callable[[], Callable[[], Any]]:
    """Return a maker of `probe(configuration)`: a new target and API client every call."""
    return lambda: lambda: probe(CONFIGURATION)


CASES: list[tuple[str, str, Callable[[], Callable[[], Any]]]] = [
    ("target.pods()", "target method", _method(lambda t: len(t.pods()))),
    ("target.serve_endpoints()", "target method", _method(lambda t: len(t.serve_endpoints()))),
    (
        "target.gcs_fault_tolerance()",
        "target method",
        _method(lambda t: t.gcs_fault_tolerance().enabled),
    ),
    (
        "target.gcs_fault_tolerance().persistent",
        "target method",
        _method(lambda t: t.gcs_fault_tolerance().persistent),
    ),
    ("probe serve_endpoint_count", "probe", _probe(serve_endpoint_count)),
    ("probe head_pod_ready", "probe", _probe(head_pod_ready)),
    ("probe gcs_fault_tolerance_enabled", "probe", _probe(gcs_fault_tolerance_enabled)),
    ("probe redis_storage_persistent", "probe", _probe(redis_storage_persistent)),
]


class Double:
    """A fresh API double seeded with the HA sample, reached through `$KUBECONFIG`.

    kmock 0.8 matches every request against the whole history of requests the server
    has served (`request in payload._source`), so each answer gets slower as the history
    grows (about 10x after 600 requests here). Unless `keep_history`, the history is
    emptied before each timed call, so every call meets the same server; the double's own
    record of calls (`ApiDouble.calls`) is kept.
    """

    def __init__(self, work: Path, keep_history: bool) -> None:
        self.double = ApiDouble(token=TOKEN, rbac=shipped_rbac())  # deploy/role.yaml
        self.server = DoubleServer(self.double, seed.ha_sample())
        self.work = work
        self.keep_history = keep_history

    def __enter__(self) -> Double:
        self.server.__enter__()
        path = write_kubeconfig(self.work / "kubeconfig", self.server.url, TOKEN)
        os.environ["KUBECONFIG"] = str(path)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(None, None, None)

    def recorded(self) -> int:
        return self.server.call(lambda: len(self.double.calls))

    def calls_since(self, index: int) -> list[ApiCall]:
        return self.server.call(lambda: list(self.double.calls[index:]))

    def forget_history(self) -> None:
        if not self.keep_history:
            self.server.call(self.double._requests.clear)


def measure(
    name: str, kind: str, fn: Callable[[], Any], double: Double, calls: int
) -> dict[str, Any]:
    """Call `fn` once cold, then `calls` times; time each call and count its API calls."""

    def one() -> tuple[float, Any, list[ApiCall]]:
        double.forget_history()
        before = double.recorded()
        t0 = time.perf_counter()
        value = fn()
        ms = (time.perf_counter() - t0) * 1000
        return ms, value, double.calls_since(before)

    cold_ms, value, cold_made = one()
    times, counts = [], []
    made: list[ApiCall] = []
    for _ in range(calls):
        ms, value, made = one()
        times.append(ms)
        counts.append(len(made))
    times.sort()
    writes = [c for c in made + cold_made if c.verb not in ("get", "list")]
    return {
        "name": name,
        "kind": kind,
        "returned": value if isinstance(value, bool | int | str) else type(value).__name__,
        "cold_ms": round(cold_ms, 2),
        "cold_api_calls": len(cold_made),
        "median_ms": round(statistics.median(times), 2),
        "p90_ms": round(times[max(math.ceil(0.9 * len(times)) - 1, 0)], 2),
        "min_ms": round(times[0], 2),
        "max_ms": round(times[-1], 2),
        "api_calls": statistics.median(counts),
        "api_calls_min_max": [min(counts), max(counts)],
        "calls_made": _describe_calls(made),
        "writes": [f"{c.verb} {c.resource}" for c in writes],
        "samples": len(times),
    }


COLUMNS = [
    ("name", "method / probe"),
    ("returned", "returned"),
    ("median_ms", "median ms"),
    ("p90_ms", "p90 ms"),
    ("cold_ms", "first call ms"),
    ("api_calls", "API calls per call"),
    ("calls_made", "which"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 calls each")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per method")
    parser.add_argument(
        "--keep-double-history",
        action="store_true",
        help="do not empty kmock's request history between calls (shows its slow-down)",
    )
    parser.add_argument("--out", default=str(default_out("probe_cost")))
    args = parser.parse_args()
    if args.quick:
        args.calls = 3
    for name in (*_ENV_TO_CLEAR, *_MORE_ENV_TO_CLEAR):
        os.environ.pop(name, None)

    info = machine_info()
    print(describe_machine(info), flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="crs-bench-probes-") as tmp:
        work = Path(tmp)
        with Double(work, args.keep_double_history) as double:
            # the first call of the process imports and sets up the client libraries
            t0 = time.perf_counter()
            _target().pods()
            first_ms = (time.perf_counter() - t0) * 1000
            print(f"Kubernetes API double on {double.server.url}, seeded with the HA sample")
            print(f"first API use in this process (imports included): {first_ms:,.0f} ms")
        for name, kind, make in CASES:
            print(f"  {name} ...", flush=True)
            with Double(work, args.keep_double_history) as double:
                rows.append(measure(name, kind, make(), double, args.calls))
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
        "returned: a count for pods()/serve_endpoints(), else the value itself",
        "target methods reuse one target and API client per case; probes resolve a new "
        "target and build a new API client from the kubeconfig on every call",
        "first call ms: the first call of a case (a new API client for the target methods)",
        f"the process's first API use, with the client libraries' imports: {first_ms:,.0f} ms",
        "a fresh API double per case; "
        + (
            "kmock's request history kept: later calls meet a slower double"
            if args.keep_double_history
            else "kmock's request history emptied before each call (see Double)"
        ),
        "loopback API double: on a cluster each API call adds a network round trip",
    ]
    writes = [w for r in rows for w in r["writes"]]
    if writes:
        notes.append(f"unexpected writes to the API: {writes}")
    print()
    for note in notes:
        print(f"note: {note}")
    out = write_result(
        Path(args.out),
        {
            "benchmark": "probe_cost",
            "machine": info,
            "args": {k: v for k, v in vars(args).items() if k != "out"},
            "first_api_use_ms": round(first_ms, 1),
            "rows": rows,
            "notes": notes,
            "work_dir": str(work),
        },
    )
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
