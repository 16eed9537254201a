"""Kubernetes' own end-to-end tests (`e2e.test`) run against the lab's node.

`run(kubeconfig, focus, skip, logs)` runs the tests `e2e.test` (from `lab/e2e/build.sh`)
matches with Ginkgo's focus and skip regexes, writing its log and Ginkgo's JSON report into
`logs`, and returns its exit code and one `Row` per test. `SUBSETS` names the ones the project
runs: `node-network` (benchmarks/conformance.py: where HA results are decided) and `fast` (the
handful `make test` runs).

```python
code, rows = run(kube.plane.kubeconfig, *SUBSETS["fast"], Path("logs"), progress=print)
assert all(row.state == "passed" for row in rows)
```
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from chaosraysvc_lab import binaries

AREAS = (
    r"\[sig-node\] Pods ",
    r"\[sig-node\] PodTemplates",
    r"\[sig-node\] Container Lifecycle Hook",
    r"\[sig-node\] Probing container",
    r"\[sig-node\] Container Runtime",
    r"\[sig-node\] InitContainer",
    r"\[sig-node\] Downward API",
    r"\[sig-node\] Variable Expansion",
    r"\[sig-node\] PreStop",
    r"\[sig-node\] ConfigMap",
    r"\[sig-node\] Secrets",
    r"\[sig-storage\] Downward API volume",
    r"\[sig-storage\] ConfigMap",
    r"\[sig-storage\] Secrets",
    r"\[sig-storage\] Projected",
    r"\[sig-network\] Services ",
    r"\[sig-network\] EndpointSlice",
    r"\[sig-network\] DNS ",
    r"\[sig-network\] Networking Granular Checks: Pods",
    r"\[sig-network\] Proxy",
)
SKIP = (
    r"\[Serial\]|\[Disruptive\]|\[Slow\]|\[Flaky\]|\[Feature:|\[FeatureGate:|\[Alpha\]|\[Beta\]"
    r"|\[sig-windows\]|Windows|\[Environment:|\[NodeFeature:|LoadBalancer|GCE|AWS"
)
# What `make test` runs: one test per place where HA results are decided.
FAST = (
    # a graceful delete: the pod goes and the watch sees it
    "[sig-node] Pods should be submitted and removed",
    # preStop runs before the container's SIGTERM
    "[sig-node] Container Lifecycle Hook when create a pod with lifecycle hook "
    "should execute prestop exec hook properly",
    # a failing liveness probe restarts the container
    '[sig-node] Probing container should be restarted with a exec "cat /tmp/health" '
    "liveness probe",
    # kube-proxy: a Service's ClusterIP to its pods, as endpoints come and go
    "[sig-network] Services should serve a basic endpoint from pods",
    # CoreDNS: Services' names
    "[sig-network] DNS should provide DNS for services",
)
SUBSETS: dict[str, tuple[str, str]] = {
    "node-network": ("(" + "|".join(AREAS) + ")", SKIP),
    # (Ginkgo matches a focus against more than the name: no "^")
    "fast": ("(" + "|".join(re.escape(name) for name in FAST) + r")( \[|$)", SKIP),
}


@dataclass
class Row:
    """One test's result: Ginkgo's state (passed, failed, skipped, timedout, ...), its
    seconds, and the first line of its failure."""

    name: str
    state: str
    seconds: float
    failure: str = ""


def plain(name: str) -> str:
    """A test's name without the labels Kubernetes appends (`[NodeConformance] [Conformance]`)."""
    return re.sub(r"( \[[^\]]+\])+$", "", name.strip()).strip()


def spec_name(spec: dict[str, Any]) -> str:
    """A spec's full name as Ginkgo prints it: its containers' texts, then its own."""
    return " ".join([*(spec.get("ContainerHierarchyTexts") or []), spec.get("LeafNodeText", "")])


def rows(report: list[dict[str, Any]]) -> list[Row]:
    """One row per test ("It" node) of a `--ginkgo.json-report`, and one for each suite-level
    node (BeforeSuite ...) that did not pass: when one fails, no test ran."""
    out = []
    for suite in report:
        for spec in suite.get("SpecReports") or []:
            kind = spec.get("LeafNodeType", "")
            if kind != "It" and spec.get("State") == "passed":
                continue
            message = ((spec.get("Failure") or {}).get("Message") or "").strip()
            out.append(
                Row(
                    name=spec_name(spec) if kind == "It" else kind,
                    state=spec.get("State", ""),
                    seconds=round((spec.get("RunTime") or 0) / 1e9, 1),
                    failure=message.splitlines()[0][:300] if message else "",
                )
            )
    return out


def _interrupt(proc: subprocess.Popen[str], log: IO[str], grace: float = 90) -> None:
    """Stop Ginkgo and its test processes: SIGTERM first (their clean-up deletes their
    namespaces) while their output is still read (a full pipe would block them), SIGKILL to
    the whole group if they are not gone within `grace` seconds (seen: stuck after SIGTERM)."""
    assert proc.stdout is not None
    stdout = proc.stdout
    drain = threading.Thread(target=lambda: [log.write(line) for line in stdout], daemon=True)
    drain.start()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    drain.join(5)


def run(
    kubeconfig: Path,
    focus: str,
    skip: str,
    logs: Path,
    *,
    progress: Callable[[str], object] = print,
    timeout: str = "3h",
    procs: int = 1,
) -> tuple[int, list[Row]]:
    """Run the tests `focus` and `skip` select against the cluster of `kubeconfig`, `procs` at
    a time (Ginkgo's CLI runs e2e.test in parallel, as Kubernetes' hack/ginkgo-e2e.sh does;
    [Serial] tests are left out by `SKIP`); return the exit code and the rows of Ginkgo's JSON
    report (empty if it wrote none). Builds e2e.test first if missing (`lab/e2e/build.sh`)."""
    e2e = binaries.e2e_dir()
    logs.mkdir(parents=True, exist_ok=True)
    report = logs / "ginkgo.json"
    report.unlink(missing_ok=True)
    ginkgo = [f"--focus={focus}", f"--skip={skip}", f"--json-report={report}",
              f"--timeout={timeout}", "--no-color", "-v"]  # fmt: skip
    kubectl = binaries.binary_dir() / "kubectl"  # the pinned one, not whatever is on PATH
    test = [f"--kubeconfig={kubeconfig}", "--provider=local", f"--report-dir={logs}",
            f"--kubectl-path={kubectl}"]  # fmt: skip
    if procs > 1:
        cmd = [str(e2e / "ginkgo"), f"--procs={procs}", *ginkgo, str(e2e / "e2e.test"), "--", *test]
    else:
        cmd = [str(e2e / "e2e.test"), *test, *(f"--ginkgo.{flag.lstrip('-')}" for flag in ginkgo)]
    started = time.monotonic()
    with open(logs / "e2e.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)  # fmt: skip
        assert proc.stdout is not None
        try:
            done = 0
            for line in proc.stdout:
                log.write(line)
                if line.startswith("•"):  # Ginkgo -v ends each spec with "• [N seconds]"
                    done += 1
                    progress(f"e2e: {done} tests done ({time.monotonic() - started:.0f} s): "
                             f"{line.strip()[:100]}")  # fmt: skip
        finally:
            if proc.poll() is None:
                _interrupt(proc, log)
            code = proc.wait()
    found = rows(json.loads(report.read_text())) if report.exists() else []
    return code, found
