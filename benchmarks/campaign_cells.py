"""Add up node campaigns cell by cell: the tables of docs/findings.md from result files.

A cell is one experiment in one set-up: the head in or out of the serve Service, the grace
period, any Ray settings added (`--ray-env`) and whether the node ran its NetworkPolicy
engine (`--no-network-policy`). Campaigns of the same cell (e.g. 10 runs at
noon and 10 more in the evening) add up; each file is named beside the cell. Only tested runs
count (Passed or Deviated, not left out by hand: the rule of `experiment_campaign.spread`);
the others are listed with their reason.

Each failed request is placed against its run's milestones (seconds after the fault):

- `at the kill`: within 1.5 s of the fault;
- `at the SIGKILL`: within 1.5 s after the grace period ended (grace > 0);
- `at the join`: head-kill, from 3 s before the new head pod was Ready to 3 s after Serve's
  applications were RUNNING again; worker-kill, from 7 s before to 1 s after the new worker
  was Ready;
- `other`: anything else (listed with its time).

    python benchmarks/campaign_cells.py RESULT.json [RESULT.json ...] [--out CELLS.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

TESTED = ("passed", "deviated")  # as experiment_campaign.TESTED
PHASES = ("at the kill", "at the SIGKILL", "at the join", "other")


def phase(failure: dict[str, Any], run: dict[str, Any], grace: int) -> str:
    """Return where a failed request falls against its run's milestones (module docstring)."""
    at = failure.get("after_fault_s")
    ready, running = run.get("pod_ready_s"), run.get("applications_running_s")
    if at is None:
        return "other"
    if at < 1.5:
        return "at the kill"
    if grace and grace <= at < grace + 1.5:
        return "at the SIGKILL"
    if ready is not None:
        if run["experiment"] == "head-kill" and running is not None:
            if ready - 3 <= at <= running + 3:
                return "at the join"
        elif run["experiment"] == "worker-kill" and -7 <= at - ready <= 1:
            return "at the join"
    return "other"


def cell_of(result: dict[str, Any], run: dict[str, Any]) -> str:
    node = result.get("node") or {}
    where = "head out" if node.get("exclude_head") else "head in"
    extra = [f"{k}={v}" for k, v in sorted((node.get("ray_env") or {}).items())]
    if node.get("network_policy") is False:
        extra.append("no NetworkPolicy engine")
    return f"{run['experiment']}, {where}, grace {result['grace_period']}" + "".join(
        f", {e}" for e in extra
    )


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def cells(paths: list[Path]) -> dict[str, Any]:
    """Return every cell of `paths`, tested runs added up across files."""
    out: dict[str, Any] = {}
    for path in paths:
        result = json.loads(path.read_text())
        grace = result["grace_period"]
        for run in result["runs"]:
            cell = out.setdefault(
                cell_of(result, run),
                {"files": [], "runs": 0, "deviated": 0, "failures_per_run": [], "requests": 0}
                | {"errors": {}, "phases": {p: 0 for p in PHASES}, "runs_with": {}}
                | {"other": [], "not_counted": {}, "_ready": [], "_running": [], "_load": []},
            )
            if path.name not in cell["files"]:
                cell["files"].append(path.name)
            name = f"{path.stem}/{Path(run['run_dir']).name}"
            outcome = run.get("outcome", "deviated" if run.get("deviated") else "passed")
            if run.get("left_out") or outcome not in TESTED:
                cell["not_counted"][name] = run.get("left_out") or run.get("verdict") or outcome
                continue
            failed = run.get("failed_requests") or []
            cell["runs"] += 1
            cell["deviated"] += outcome == "deviated"
            cell["failures_per_run"].append(len(failed))
            cell["requests"] += run.get("requests") or 0
            seen = set()
            for failure in failed:
                where = phase(failure, run, grace)
                seen.add(where)
                cell["phases"][where] += 1
                cell["errors"][failure["err"]] = cell["errors"].get(failure["err"], 0) + 1
                if where == "other":
                    cell["other"].append([name, failure["err"], failure["after_fault_s"]])
            for where in seen:
                cell["runs_with"][where] = cell["runs_with"].get(where, 0) + 1
            for key, field in (("_ready", "pod_ready_s"), ("_running", "applications_running_s")):
                if run.get(field) is not None:
                    cell[key].append(run[field])
            if run.get("load_1m_before") is not None:
                cell["_load"].append(run["load_1m_before"])
    for cell in out.values():
        cell["pod_ready_s"] = _spread(cell.pop("_ready"))
        cell["applications_running_s"] = _spread(cell.pop("_running"))
        cell["load_1m_before"] = _spread(cell.pop("_load"))
    return dict(sorted(out.items()))


def table(found: dict[str, Any]) -> str:
    rows = [
        "| cell | tested runs | deviated | failures per run | at the kill / SIGKILL / join"
        " / other (runs) | pod Ready s, median (range) | load |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, c in found.items():
        runs_with = " / ".join(str(c["runs_with"].get(p, 0)) for p in PHASES)
        ready = c["pod_ready_s"] or {}
        load = c["load_1m_before"] or {}
        rows.append(
            f"| {name} | {c['runs']} | {c['deviated']}/{c['runs']} | "
            f"{','.join(map(str, c['failures_per_run']))} | {runs_with} | "
            f"{ready.get('median')} ({ready.get('min')}-{ready.get('max')}) | "
            f"{load.get('median')} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, help="write the cells as JSON here too")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.results if not p.is_file()]
    if missing:
        print(f"no such result file: {', '.join(missing)}", file=sys.stderr)
        return 2
    found = cells(args.results)
    print(table(found))
    if args.out:
        payload = {"method": __doc__, "results": [p.name for p in args.results], "cells": found}
        args.out.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"{args.out}: {len(found)} cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
