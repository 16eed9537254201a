#!/usr/bin/env python3
"""Run the experiments several times against one sandbox and tabulate what they found.

    .venv/bin/python benchmarks/experiment_campaign.py --runs 5 [--experiments head-kill,...]
        [--redis-storage persistent|ephemeral] [--exclude-head-from-serve-svc]
        [--endpoint-ports] [--out benchmarks/results/campaign.json]

Brings a sandbox up (its own state dir and free ports), runs `chaos run` for each
experiment `--runs` times, and prints one row per run (requests, failures, failure
classes, longest failure window, brownout, time to new pod ready / endpoints restored /
applications RUNNING, wall time), then a median row per experiment. The sandbox is
brought down at the end, also on Ctrl-C. Results are written as JSON as they come.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chaosraysvc.config import Settings
from chaosraysvc.faults.recovery import wait_until_healthy
from chaosraysvc.sandbox.manager import Sandbox
from chaosraysvc.sandbox.netcheck import free_port
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.targets.sandbox import SandboxTarget
from chaosraysvc.traffic.log import read_traffic_log
from chaosraysvc.traffic.stats import summarize

ROOT = Path(__file__).resolve().parents[1]
CHAOS = Path(sys.executable).parent / "chaos"
ACTIONS = {
    "head-kill": "delete-head-pod",
    "worker-kill": "delete-worker-pod",
    "redis-kill": "delete-redis-pod",
}


def run_once(name: str, sandbox: Sandbox, run_dir: Path, endpoints: int) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ) | {
        "RAYSVC_SANDBOX_DIR": str(sandbox.state_dir),
        "RAYSVC_EXPECTED_ENDPOINTS": str(endpoints),
        "RAYSVC_RECOVERY_TIMEOUT": "240",
    }
    journal_path = run_dir / "journal.json"
    start = time.monotonic()
    subprocess.run(
        [
            str(CHAOS),
            "--no-version-check",
            "--log-file",
            str(run_dir / "chaos.log"),
            "run",
            "--journal-path",
            str(journal_path),
            str(ROOT / "experiments" / f"{name}.json"),
        ],
        cwd=run_dir,
        env=env,
        capture_output=True,
        timeout=1200,
    )
    wall = time.monotonic() - start
    journal = json.loads(journal_path.read_text())
    summary = summarize(read_traffic_log(run_dir / "journal-traffic.jsonl"))
    action = next((r for r in journal["run"] if r["activity"]["name"] == ACTIONS[name]), None)
    recovery = ((action or {}).get("output") or {}).get("recovery") or {}
    seconds = recovery.get("seconds_to", {})
    window = summary.get("longest_failure_window") or {}
    brownout = summary.get("brownout") or {}
    return {
        "experiment": name,
        "status": journal["status"],
        "deviated": journal["deviated"],
        "requests": summary["requests"],
        "failures": summary["failures"],
        "failures_by_error": summary.get("failures_by_error", {}),
        "failure_window_s": window.get("duration_s", 0.0) if isinstance(window, dict) else 0.0,
        "brownout_s": brownout.get("duration_s", 0.0) if isinstance(brownout, dict) else 0.0,
        "pod_ready_s": seconds.get("pod_ready"),
        "endpoints_restored_s": seconds.get("endpoints_restored"),
        "applications_running_s": seconds.get("applications_running"),
        "wall_s": round(wall, 1),
        "run_dir": str(run_dir),
    }


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


COLUMNS = [
    "experiment",
    "deviated",
    "requests",
    "failures",
    "failure_window_s",
    "brownout_s",
    "pod_ready_s",
    "endpoints_restored_s",
    "applications_running_s",
    "wall_s",
]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name in dict.fromkeys(r["experiment"] for r in rows):
        mine = [r for r in rows if r["experiment"] == name]
        row: dict[str, Any] = {
            "experiment": f"{name} (median of {len(mine)})",
            "deviated": f"{sum(r['deviated'] for r in mine)}/{len(mine)}",
        }
        for col in COLUMNS[2:]:
            values = [r[col] for r in mine if isinstance(r.get(col), (int, float))]
            row[col] = statistics.median(values) if values else None
        out.append(row)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--experiments", default="head-kill,worker-kill,redis-kill")
    parser.add_argument(
        "--redis-storage", choices=("persistent", "ephemeral"), default="persistent"
    )
    parser.add_argument("--exclude-head-from-serve-svc", action="store_true")
    parser.add_argument(
        "--endpoint-ports",
        action="store_true",
        help="each proxy on its own port behind the sandbox's kube-proxy-like Service",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "campaign.json"))
    args = parser.parse_args()
    names = [n.strip() for n in args.experiments.split(",") if n.strip()]
    unknown = [n for n in names if n not in ACTIONS]
    if unknown:
        parser.error(f"unknown experiments {unknown}: choose from {', '.join(ACTIONS)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="crs-campaign-"))
    spec = SandboxSpec(
        state_dir=work / "sandbox",
        serve_port=free_port(),
        dashboard_port=free_port(),
        redis_storage=args.redis_storage,
        head_in_serve_svc=not args.exclude_head_from_serve_svc,
        endpoint_ports=args.endpoint_ports,
    )
    sandbox = Sandbox(spec.state_dir)
    rows: list[dict[str, Any]] = []
    endpoints = 3 if spec.head_in_serve_svc else 2
    try:
        sandbox.up(spec, timeout=300, progress=lambda m: print(m, flush=True))
        target = SandboxTarget(Settings(sandbox_state_dir=spec.state_dir))
        for i in range(args.runs):
            for name in names:
                wait_until_healthy(target, 300)
                print(f"run {i + 1}/{args.runs}: {name} ...", flush=True)
                row = run_once(name, sandbox, work / f"{name}-{i + 1}", endpoints)
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
                out.write_text(json.dumps({"sandbox": spec.to_json(), "runs": rows}, indent=1))
    finally:
        sandbox.down()
    print()
    print(table(rows + medians(rows)))
    print(f"\nresults: {out}; run directories under {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
