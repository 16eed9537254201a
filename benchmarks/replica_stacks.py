"""Sample Serve replicas' Python stacks during a node campaign's kills, and place the
stalls against the failed requests.

`sample` runs beside `experiment_campaign.py --kubernetes` on the same machine: while
the campaign's log says one of `--experiments` runs (head-kill by default), it dumps every
replica process whose command line names DEPLOYMENT (`py-spy dump --nonblocking`: the
process is not paused) every 0.2 s, one text file per run. `summarize` reads a campaign's
result JSON and those files and writes, per run, the spans in which a replica sat in one
frame (by default Ray's synchronous GCS read while loading an actor class,
`_load_actor_class_from_gcs`), beside the run's failed requests and milestones.

    python benchmarks/replica_stacks.py sample --py-spy PATH --out DIR \
        [--experiments head-kill,worker-kill] LOG [LOG ...]
    python benchmarks/replica_stacks.py summarize --stacks DIR --out OUT.json RESULT.json ...

py-spy is not a dependency of the project: install it in a venv of its own
(`pip install py-spy==0.4.3`) and pass its path. Stop `sample` with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

RUN_LINE = re.compile(r"^run (\d+)/\d+: (\S+) \.\.\.$", re.M)
DUMP = re.compile(r"^=== ", re.M)
THREAD = re.compile(r'^Thread (\d+) \((\w+)\): "([^"]*)"\n((?:    .*\n)*)', re.M)
FRAME = "_load_actor_class_from_gcs"


def _current(logs: list[Path]) -> tuple[str, str, str] | None:
    """The newest campaign log's running (cell, run number, experiment), if any."""
    live = [p for p in logs if p.exists()]
    if not live:
        return None
    log = max(live, key=lambda p: p.stat().st_mtime)
    runs = RUN_LINE.findall(log.read_text())
    return (log.stem, *runs[-1]) if runs else None


def _replicas(deployment: str, kind: str = "ServeReplica") -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if kind.encode() in cmd and deployment.encode() in cmd:
            found.append(int(entry))
    return found


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def sample(
    py_spy: str,
    out: Path,
    logs: list[Path],
    deployment: str,
    experiments: set[str],
    kind: str = "ServeReplica",
) -> int:
    out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while True:
            run = _current(logs)
            if run is None or run[2] not in experiments:
                time.sleep(1)
                continue
            path = out / f"{run[0]}-{run[2]}-{run[1]}.txt"
            print(f"sampling {path.name}", flush=True)
            with path.open("a") as f:
                while _current(logs) == run:
                    t = time.time()
                    for pid in _replicas(deployment, kind):
                        dump = subprocess.run(
                            [py_spy, "dump", "--nonblocking", "--pid", str(pid)],
                            capture_output=True,
                            text=True,
                            timeout=5,
                            check=False,
                        )
                        f.write(f"=== {t:.3f} {time.time():.3f} pid {pid}\n")
                        f.write(dump.stdout + dump.stderr + "\n")
                    f.flush()
                    time.sleep(max(0.0, 0.2 - (time.time() - t)))
    except KeyboardInterrupt:
        return 0


def spans(text: str, frame: str) -> list[dict[str, Any]]:
    """Per replica process, each run of consecutive dumps showing `frame`: start, length."""
    open_: dict[str, list[float]] = {}
    found: list[dict[str, Any]] = []
    for dump in DUMP.split(text)[1:]:
        fields = dump.split()
        t, pid = float(fields[0]), fields[3]
        if frame in dump:
            open_.setdefault(pid, [t, t])[1] = t
        elif pid in open_:
            start, end = open_.pop(pid)
            found.append({"pid": int(pid), "start": start, "sampled_s": round(end - start, 2)})
    for pid, (start, end) in open_.items():
        found.append({"pid": int(pid), "start": start, "sampled_s": round(end - start, 2)})
    return sorted(found, key=lambda s: s["start"])


def summarize(stacks: Path, results: list[Path], frame: str) -> dict[str, Any]:
    rows = []
    for result in results:
        cell = result.stem
        for run in json.loads(result.read_text())["runs"]:
            name = Path(run["run_dir"]).name
            path = stacks / f"{cell}-{name}.txt"
            fault = run.get("fault_t")
            if not path.exists() or fault is None:  # not sampled, or its fault never happened
                continue
            found = spans(path.read_text(), frame)
            failed = run["failed_requests"]
            rows.append(
                {
                    "cell": cell,
                    "run": name,
                    "experiment": run["experiment"],
                    "pod_ready_s": run.get("pod_ready_s"),
                    "applications_running_s": run.get("applications_running_s"),
                    "stalls": [
                        {
                            "pid": s["pid"],
                            "after_fault_s": round(s["start"] - fault, 2),
                            "sampled_s": s["sampled_s"],
                        }
                        for s in found
                    ],
                    "failed_requests": [
                        {
                            "after_fault_s": f["after_fault_s"],
                            "err": f["err"],
                            "id": f["id"],
                            "in_a_stall": any(
                                s["start"] - 2.1 <= f["t"] <= s["start"] + s["sampled_s"] + 0.2
                                for s in found
                            ),
                        }
                        for f in failed
                    ],
                }
            )
    return {
        "method": "py-spy 0.4.3 `dump --nonblocking` of every FruitMarket replica every 0.2 s "
        f"during the sampled kills; a stall is consecutive dumps showing {frame}; a failed request "
        "is in a stall when it started at most 2.1 s before the stall's first sample and no "
        "later than 0.2 s after its last",
        "frame": frame,
        "runs": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("sample")
    one.add_argument("--py-spy", required=True)
    one.add_argument("--out", required=True)
    one.add_argument("--deployment", default="fruit_app:FruitMarket")
    one.add_argument(
        "--kind",
        default="ServeReplica",
        help="what the process's command line names: ServeReplica (default) or ProxyActor "
        "(then pass --deployment '')",
    )
    one.add_argument(
        "--experiments",
        default="head-kill",
        help="comma-separated experiments to sample during (default: head-kill)",
    )
    one.add_argument("logs", nargs="+")
    two = sub.add_parser("summarize")
    two.add_argument("--stacks", required=True)
    two.add_argument("--out", required=True)
    two.add_argument("--frame", default=FRAME)
    two.add_argument("results", nargs="+")
    args = parser.parse_args()
    if args.command == "sample":
        experiments = {e.strip() for e in args.experiments.split(",") if e.strip()}
        logs = [Path(p) for p in args.logs]
        return sample(args.py_spy, Path(args.out), logs, args.deployment, experiments, args.kind)
    summary = summarize(Path(args.stacks), [Path(p) for p in args.results], args.frame)
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{args.out}: {len(summary['runs'])} sampled runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
