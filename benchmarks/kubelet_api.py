#!/usr/bin/env python3
"""What `kubectl logs/exec/port-forward` cost through the real API server to the lab's kubelet.

    sudo .venv/bin/python benchmarks/kubelet_api.py [--runs 10] [--out FILE.json]

Brings up the lab's node without its RayService (`KubeNode.up(sample=False)`), then
times, `--runs` times each: `kubectl get pod` (an API round trip: the baseline), `kubectl logs
--tail 10`, `kubectl exec -- true`, the Python client's WebSocket exec of `true`, and a
request through a fresh `kubectl port-forward` (start to first answer); then throughput of
50 MB through `kubectl exec` stdout and through a port-forward. Needs root, the machine's node
lock (waits for it) and the control plane built. Brings everything down at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lab"))

from kubernetes import client  # noqa: E402
from kubernetes.stream import stream  # noqa: E402

from chaosraysvc_lab import binaries, kubeconfig  # noqa: E402
from chaosraysvc_lab.agent import try_lock  # noqa: E402
from chaosraysvc_lab.stack import KubeNode  # noqa: E402

IMAGE = "rayproject/ray:2.9.0"
BIG = 50_000_000


def _timed(action: Callable[[], object], runs: int) -> dict[str, float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    seconds.sort()
    return {
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "p90_ms": round(seconds[int(0.9 * (len(seconds) - 1))] * 1000, 1),
        "min_ms": round(seconds[0] * 1000, 1),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/kubelet_api.json"))
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="crs-kapi-bench-"))
    kube = KubeNode(state)
    while (lock := try_lock()) is None:
        print("waiting for the machine's node lock", flush=True)
        time.sleep(10)
    lock.close()
    results: dict[str, Any] = {"machine": platform.node(), "cpus": os.cpu_count(),
                               "load_before": os.getloadavg()[0]}  # fmt: skip
    try:
        kube.up(sample=False, progress=print)  # the lab's node, no RayService
        plane = kube.plane
        api = kubeconfig.api_client(plane.kubeconfig)
        core = client.CoreV1Api(api)
        kubectl = str(binaries.binary_dir() / "kubectl")
        env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}

        def run(*argv: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
            return subprocess.run([kubectl, *argv], env=env, capture_output=True, check=True,
                                  timeout=120, **kw)  # fmt: skip

        deadline = time.monotonic() + 120
        while not core.list_namespaced_service_account(
            "default", field_selector="metadata.name=default"
        ).items:  # the ServiceAccount admission refuses pods until it exists
            assert time.monotonic() < deadline, "no ServiceAccount default"
            time.sleep(0.5)
        script = (
            f"cd /tmp && head -c {BIG} /dev/zero > big && echo ok > small && "
            "(while true; do echo tick; sleep 1; done &) && exec python -m http.server 8080"
        )
        core.create_namespaced_pod("default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench"},
            "spec": {"containers": [{"name": "main", "image": IMAGE,
                                     "command": ["bash", "-c", script]}]},
        })  # fmt: skip
        started = time.monotonic()
        while subprocess.run([kubectl, "exec", "bench", "--", "bash", "-c",
                              "exec 3<>/dev/tcp/127.0.0.1/8080"], env=env,
                             capture_output=True).returncode:  # fmt: skip
            assert time.monotonic() - started < 120, "the bench pod did not serve"
            time.sleep(0.5)
        results["pod_serving_s"] = round(time.monotonic() - started, 1)

        results["kubectl_get_pod"] = _timed(lambda: run("get", "pod", "bench"), args.runs)
        results["kubectl_logs_tail10"] = _timed(
            lambda: run("logs", "bench", "--tail", "10"), args.runs
        )
        results["kubectl_exec_true"] = _timed(lambda: run("exec", "bench", "--", "true"), args.runs)
        results["python_client_exec_true"] = _timed(
            lambda: stream(core.connect_get_namespaced_pod_exec, "bench", "default",
                           command=["true"], stdout=True, stderr=True, stdin=False, tty=False),
            args.runs,
        )  # fmt: skip

        def forwarded_request() -> None:
            port = _free_port()
            proc = subprocess.Popen([kubectl, "port-forward", "pod/bench", f"{port}:8080"],
                                    env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
            try:
                assert proc.stdout is not None
                proc.stdout.readline()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/small", timeout=10) as r:
                    r.read()
            finally:
                proc.terminate()
                proc.wait()

        results["kubectl_port_forward_start_to_answer"] = _timed(forwarded_request, args.runs)

        started = time.perf_counter()
        out = run("exec", "bench", "--", "cat", "/tmp/big").stdout
        seconds = time.perf_counter() - started
        results["exec_stdout_50MB"] = {"bytes": len(out), "seconds": round(seconds, 2),
                                       "MB_per_s": round(len(out) / seconds / 1e6, 1)}  # fmt: skip
        port = _free_port()
        proc = subprocess.Popen([kubectl, "port-forward", "pod/bench", f"{port}:8080"], env=env,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert proc.stdout is not None
            proc.stdout.readline()
            started = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/big", timeout=120) as answer:
                size = len(answer.read())
            seconds = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait()
        results["port_forward_50MB"] = {"bytes": size, "seconds": round(seconds, 2),
                                        "MB_per_s": round(size / seconds / 1e6, 1)}  # fmt: skip
        results["load_after"] = os.getloadavg()[0]
        print(json.dumps(results, indent=1))
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
        return 0
    finally:
        leftovers = kube.down()
        if leftovers:
            print(f"left behind: {leftovers}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
