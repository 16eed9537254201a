"""What a client of the serve Service sees when the pod its connection is on dies (the node).

    sudo .venv/bin/python benchmarks/inflight_endpoint_death.py --state-dir DIR [--grace 0]

On a node that is up (`chaosraysvc-lab node up --state-dir DIR`), one keep-alive HTTP
connection from the host sends `POST /fruit/` through the serve Service every 50 ms (2 s
timeout, as the traffic engine's sequential mode). Once it runs, the pod its connection ends
on is read from the kernel's conntrack table (the one ESTABLISHED flow from the node's address
to a pod's port 8000: kube-proxy's DNATed flow, or a userspace proxy's upstream), reconnecting
until that is a worker; the worker pod is deleted with `--grace` seconds, and requests go on
for `--after` seconds. Prints every outcome that is not a 200 and a summary as JSON: when the
first failure came after the delete, its class, how many failed, and when requests succeeded
again. Needs root (conntrack) and `conntrack` on PATH.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BODY = json.dumps(["MANGO", 2])


def settings(state_dir: Path) -> dict[str, str]:
    pairs = (line.removeprefix("export ").split("=", 1) for line in
             (state_dir / "kube.env").read_text().splitlines() if line)  # fmt: skip
    return {key: (shlex.split(value) or [""])[0] for key, value in pairs}


def flows(gateway: str) -> set[tuple[str, str]]:
    """(local port, pod IP) of the host's established flows to a pod's port 8000.

    kube-proxy: the host's socket is to the ClusterIP; conntrack's reply direction names the
    pod. A userspace proxy: its own upstream socket to the pod (no conntrack without rules).
    """
    sockets = subprocess.run(["ss", "-Htn", "state", "established", "dport", "= :8000"],
                             capture_output=True, text=True, check=False).stdout  # fmt: skip
    found = set()
    for line in sockets.splitlines():
        local, peer = line.split()[-2:]
        if peer.startswith("198.18."):
            found.add((local.rsplit(":", 1)[1], peer.rsplit(":", 1)[0]))
    out = subprocess.run(["conntrack", "-L", "-p", "tcp", "--state", "ESTABLISHED"],
                         capture_output=True, text=True, check=False).stdout  # fmt: skip
    for line in out.splitlines():
        parts = line.split(" src=")
        if (
            len(parts) >= 3
            and parts[1].startswith(f"{gateway} ")
            and " sport=8000 " in f" {parts[2]}"
        ):
            sport = parts[1].split("sport=")[1].split()[0]
            found.add((sport, parts[2].split()[0]))
    return found


def request(conn: http.client.HTTPConnection) -> str:
    try:
        conn.request("POST", "/fruit/", BODY, {"Content-Type": "application/json"})
        answer = conn.getresponse()
        answer.read()
        return str(answer.status)
    except Exception as exc:  # noqa: BLE001 - the outcome is what is measured
        conn.close()
        return type(exc).__name__


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--grace", type=int, default=0)
    parser.add_argument("--after", type=float, default=20.0)
    args = parser.parse_args()
    env = settings(args.state_dir)
    from kubernetes import client

    from chaosraysvc_lab import kubeconfig

    core: Any = client.CoreV1Api(kubeconfig.api_client(Path(env["KUBECONFIG"])))
    state = json.loads((args.state_dir / "node.json").read_text())
    gateway = f"198.18.{state['node_index']}.1"
    host, port = env["RAYSVC_SERVE_URL"].removeprefix("http://").split(":")
    pods = {p.status.pod_ip: p for p in core.list_namespaced_pod("default").items}
    for _ in range(30):
        baseline = flows(gateway)
        conn = http.client.HTTPConnection(host, int(port), timeout=2)
        first = request(conn)
        assert first == "200", first
        new = {pod_ip for _, pod_ip in flows(gateway) - baseline}
        ip = new.pop() if len(new) == 1 else ""
        pod = pods.get(ip)
        if pod and pod.metadata.labels.get("ray.io/node-type") == "worker":
            break
        conn.close()
    else:
        print("no connection landed on a worker", file=sys.stderr)
        return 1
    name = pod.metadata.name
    print(f"connection on worker {name} ({ip}); deleting it with grace {args.grace}s")
    core.delete_namespaced_pod(name, "default", grace_period_seconds=args.grace)
    deleted = time.monotonic()
    outcomes: list[tuple[float, str]] = []
    while time.monotonic() - deleted < args.after:
        started = time.monotonic()
        outcome = request(conn)
        outcomes.append((round(started - deleted, 3), outcome))
        if outcome != "200":
            print(f"  +{started - deleted:6.3f}s {outcome}")
        time.sleep(0.05)
    failed = [(t, o) for t, o in outcomes if o != "200"]
    summary = {
        "pod": name,
        "grace_s": args.grace,
        "requests": len(outcomes),
        "failed": len(failed),
        "first_failure": failed[0] if failed else None,
        "classes": sorted({o for _, o in failed}),
        "ok_again_at_s": next(
            (t for t, o in outcomes if o == "200" and failed and t > failed[-1][0]), None
        ),  # fmt: skip
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
