#!/usr/bin/env python3
"""Kubernetes' own end-to-end tests against the lab's node: what passes, what fails, and why.

    sudo .venv/bin/python benchmarks/conformance.py [--subset node-network|fast] [--focus RE]
        [--out benchmarks/results/conformance.json] [--keep-logs DIR]

Runs `e2e.test` (built from the Kubernetes the lab pins, by `lab/e2e/build.sh`) against a node
of its own (`KubeNode.up(sample=False)`: the real control plane, kube-proxy, CoreDNS and the
process kubelet, no RayService) through `chaosraysvc_lab.e2etests`, and writes one row per test:
its name, state (passed / failed / skipped ...), seconds, the first line of its failure, and
whether docs/conformance.md explains it. A failure is either fixed or explained there: the
script lists the unexplained ones and exits 1 when there are any. Needs root, the machine's
node lock (waits for it) and the control plane built; brings everything down at the end.

Subsets (`e2etests.SUBSETS`): `node-network`, the part of sig-node and sig-network where HA
results are decided (pod lifecycle and termination, container lifecycle hooks, probes, restart
policy, the downward API, configMap and secret volumes, Services, EndpointSlices, DNS), without
[Serial], [Disruptive], [Slow], [Flaky] or feature-gated tests; `fast`, the five `make test` runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lab"))

from chaosraysvc_lab import binaries, e2etests  # noqa: E402
from chaosraysvc_lab.agent import try_lock  # noqa: E402
from chaosraysvc_lab.stack import KubeNode  # noqa: E402

DOC = ROOT / "docs" / "conformance.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--subset", choices=sorted(e2etests.SUBSETS), default="node-network")
    parser.add_argument("--focus", default="", help="a Ginkgo focus regex instead of the subset's")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/conformance.json"))
    parser.add_argument("--keep-logs", default="", help="directory for e2e.log and ginkgo.json")
    parser.add_argument("--procs", type=int, default=4, help="tests run at once (Ginkgo's -p)")
    args = parser.parse_args()
    # SIGTERM (and SIGINT, which a background job started by a script ignores) unwind: e2e.test
    # is stopped and the node brought down by the `finally` clauses, nothing left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    focus, skip = e2etests.SUBSETS[args.subset]
    focus = args.focus or focus
    e2e = binaries.e2e_dir()  # built first if missing (~10 min on 2 cores)
    keep = Path(args.keep_logs) if args.keep_logs else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    # the node's state (its pods' logs) goes with the kept logs, else it is removed at the end
    state = Path(tempfile.mkdtemp(prefix="crs-conformance-", dir=keep))
    logs = keep or state / "e2e"
    while (lock := try_lock()) is None:
        print("waiting for the machine's node lock (another node is up)", flush=True)
        time.sleep(10)
    lock.close()
    kube = KubeNode(state)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    try:
        kube.up(sample=False, progress=print)
        print(f"running e2e.test ({args.subset}); its log: {logs / 'e2e.log'}", flush=True)
        code, rows = e2etests.run(kube.plane.kubeconfig, focus, skip, logs, procs=args.procs,
                                  progress=lambda m: print(m, flush=True))  # fmt: skip
    finally:
        leftovers = kube.down()
    doc = DOC.read_text() if DOC.exists() else ""
    ran = [r for r in rows if r.state != "skipped"]
    counts = Counter(r.state for r in ran)
    # a failure is explained when docs/conformance.md names it (without its trailing labels)
    unexplained = [r.name for r in ran if r.state != "passed" and e2etests.plain(r.name) not in doc]
    summary = {
        "subset": args.subset,
        "procs": args.procs,
        "focus": focus,
        "skip": skip,
        "versions": (e2e / "VERSIONS").read_text().splitlines(),
        "ended_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "wall_s": round(time.monotonic() - started, 1),
        "load_1m_before": load_before,
        "e2e_exit_code": code,
        "counts": dict(counts),
        "unexplained_failures": unexplained,
        "leftovers": leftovers,
        "tests": [
            {
                **dataclasses.asdict(r),
                "explained": r.state == "passed" or e2etests.plain(r.name) in doc,
            }  # fmt: skip
            for r in sorted(ran, key=lambda r: r.name)
        ],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{len(ran)} tests: " + ", ".join(f"{n} {s}" for s, n in counts.most_common()))
    for name in unexplained:
        print(f"  not explained in {DOC.relative_to(ROOT)}: {name}")
    failed = bool(unexplained or leftovers or not ran)
    if keep is None and not failed:
        shutil.rmtree(state, ignore_errors=True)  # nothing to read: the JSON says it all
        print(f"results: {out}")
    else:
        print(f"results: {out}; e2e log: {logs / 'e2e.log'}; the node's pod logs: {state}")
    if not ran:
        print("no test ran: see the e2e log (did the suite's set-up fail?)")
        return 1
    return 1 if unexplained or leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
