#!/usr/bin/env python3
"""The process sandbox and the real one-machine Kubernetes node, side by side in one run.

    sudo .venv/bin/python benchmarks/node_vs_sandbox.py [--out FILE.json]

For each set-up, on the same machine one after the other: the time `up` takes until the
RayService (or the sandbox's app) is Ready with ready serve endpoints, the PSS of every process
it runs (summed over the process trees rooted at what `up` started: the supervisor; or the
control plane components and the kubelet agent, whose pods are its children), then one
head-kill through `chaos run` (recovery milestones and failed requests) and `down`'s time.
Needs the control plane built (`make controlplane`) and root. Writes JSON as it goes; brings
everything down at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chaosraysvc.runtime.ports import free_port  # noqa: E402
from chaosraysvc.sandbox.manager import Sandbox  # noqa: E402
from chaosraysvc.sandbox.spec import SandboxSpec  # noqa: E402
from chaosraysvc_lab.stack import KubeNode  # noqa: E402

# KubeRay's kind quickstart, for reference (not measured here): `kind create cluster` ~30-60 s,
# the operator Helm install ~30 s, and a RayService with the HA sample 2-5 min, mostly image
# pulls of rayproject/ray (several GB) on a first run.
KIND_REFERENCE = "kind + KubeRay quickstart: cluster 30-60 s, operator ~30 s, RayService 2-5 min"


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def pss_mib(roots: list[int]) -> float:
    """Sum the PSS of `roots` and all their descendants, in MiB."""
    tree, seen, stack, total = _children(), set(), list(roots), 0
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stack.extend(tree.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def head_kill(env: dict[str, str], work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    chaos = str(Path(sys.executable).parent / "chaos")
    subprocess.run(
        [chaos, "run", str(ROOT / "experiments" / "head-kill.json")],
        cwd=work, env={**os.environ, **env}, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    journal = json.loads((work / "journal.json").read_text())
    deleted = next(r for r in journal["run"] if r["activity"]["name"] == "delete-head-pod")
    traffic = next(r for r in journal["rollbacks"] if r["activity"]["name"] == "stop-traffic")
    return {
        "status": journal["status"],
        "deviated": journal["deviated"],
        "seconds_to": (deleted.get("output") or {}).get("recovery", {}).get("seconds_to"),
        "requests": traffic["output"]["requests"],
        "failures": traffic["output"]["failures"],
    }


def sandbox_run(base: Path) -> dict[str, Any]:
    state_dir = base / "sandbox"
    spec = SandboxSpec(state_dir=state_dir, serve_port=free_port(), dashboard_port=free_port())
    box = Sandbox(state_dir)
    started = time.monotonic()
    try:
        box.up(spec, timeout=300, progress=lambda _m: None)
        up_s = round(time.monotonic() - started, 1)
        state = box.state()
        memory = pss_mib([state.supervisor_pid]) if state else 0.0
        env = {"RAYSVC_TARGET": "sandbox", "RAYSVC_SANDBOX_DIR": str(state_dir)}
        kill = head_kill(env, base / "sandbox-run")
    finally:
        began = time.monotonic()
        box.down()
        down_s = round(time.monotonic() - began, 1)
    return {"up_s": up_s, "pss_mib": memory, "head_kill": kill, "down_s": down_s}


def node_run(base: Path) -> dict[str, Any]:
    node = KubeNode(base / "kube")
    started = time.monotonic()
    try:
        settings = node.up(progress=lambda _m: None)
        up_s = round(time.monotonic() - started, 1)
        plane = node.plane.state()
        roots = [c.sid for c in plane.components] if plane else []
        agent = json.loads((node.state_dir / "node.json").read_text())["agent"]["sid"]
        memory = {
            "control_plane_and_operator": pss_mib(roots),
            "kubelet_and_pods": pss_mib([agent]),
        }
        kill = head_kill(settings, base / "node-run")
    finally:
        began = time.monotonic()
        leftovers = node.down()
        down_s = round(time.monotonic() - began, 1)
    return {"up_s": up_s, "pss_mib": memory, "head_kill": kill, "down_s": down_s,
            "leftovers": leftovers}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "node_vs_sandbox.json")
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="crs-bench-"))
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": os.getloadavg()},
        "reference": KIND_REFERENCE,
    }  # fmt: skip
    try:
        result["sandbox"] = sandbox_run(base)
        print("sandbox:", json.dumps(result["sandbox"]), flush=True)
        result["node"] = node_run(base)
        print("node:   ", json.dumps(result["node"]), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result["node_up_over_sandbox_up"] = round(result["node"]["up_s"] / result["sandbox"]["up_s"], 2)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"node up / sandbox up = {result['node_up_over_sandbox_up']} (target <= 2); {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
