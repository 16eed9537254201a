"""A Ray dashboard double in a network namespace of its own: a "head" the API server can dial.

The API server's service proxy refuses loopback, so a dashboard it proxies to must listen on
another address: this script (run as root) creates network namespace `--netns` with a veth
pair to the host (`--host-if` holds `--host-address`, the namespace's `eth0` holds
`--address`, both in 198.18.0.0/15), serves the double inside it on `--port`, prints
`ready <address>` once it answers, and on SIGTERM or SIGINT stops the server and removes the
veth and the namespace. Run as a file, never imported (tests and benchmarks both start it):

    python tests/support/dashboard_head.py --netns crs-dash-1 --host-if crsdh1 \
        --host-address 198.18.240.1/30 --address 198.18.240.2/30 --node-id head-a

The double answers what chaosraysvc reads: `GET /api/serve/applications/?api_type=declarative`
(one application `fruit_app` RUNNING, one FruitMarket replica on this node) and
`GET /nodes?view=summary` (this node, the head, ALIVE); a request without the query the
real dashboard needs answers 400, so a proxy that drops it is seen.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def documents(address: str, node_id: str) -> dict[str, tuple[dict[str, str], Any]]:
    """Return {path: (required query, JSON document)} for the node at `address`."""
    replica = {
        "replica_id": f"{node_id}-r1",
        "state": "RUNNING",
        "node_id": node_id,
        "node_ip": address,
        "actor_id": "a1",
        "pid": 1,
    }
    details = {
        "controller_info": {"node_id": node_id, "node_ip": address},
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": 8000},
        "proxies": {
            node_id: {"node_id": node_id, "node_ip": address, "actor_id": "p1", "status": "HEALTHY"}
        },
        "applications": {
            "fruit_app": {
                "status": "RUNNING",
                "message": "",
                "route_prefix": "/fruit",
                "deployments": {
                    "FruitMarket": {
                        "status": "HEALTHY",
                        "target_num_replicas": 1,
                        "replicas": [replica],
                    }
                },
            }
        },
    }
    summary = [
        {
            "ip": address,
            "raylet": {
                "nodeId": node_id,
                "state": "ALIVE",
                "isHeadNode": True,
                "nodeManagerPort": 40000,
            },
        }
    ]
    return {
        "/api/serve/applications": ({"api_type": "declarative"}, details),
        "/nodes": ({"view": "summary"}, {"data": {"summary": summary}}),
    }


def serve(address: str, node_id: str, port: int) -> None:
    """Serve the double on `address:port` until killed (inside the namespace)."""
    docs = documents(address, node_id)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            parts = urlsplit(self.path)
            found = docs.get(parts.path.rstrip("/"))
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if found is None:
                status, body = 404, {"error": f"no {parts.path}"}
            elif any(query.get(k) != v for k, v in found[0].items()):
                status, body = 400, {"error": f"query {found[0]} missing from {self.path}"}
            else:
                status, body = 200, found[1]
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    print("listening", flush=True)
    server.serve_forever()


def ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def remove(netns: str, host_if: str) -> None:
    """Delete the veth and the namespace (idempotent)."""
    ip("link", "delete", host_if, check=False)
    ip("netns", "delete", netns, check=False)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--netns", required=True)
    parser.add_argument("--host-if", required=True)
    parser.add_argument("--host-address", required=True, help="CIDR, e.g. 198.18.240.1/30")
    parser.add_argument("--address", required=True, help="CIDR, e.g. 198.18.240.2/30")
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--port", type=int, default=8265)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    address = args.address.split("/")[0]
    if args.serve:
        serve(address, args.node_id, args.port)
        return 0

    remove(args.netns, args.host_if)
    child: subprocess.Popen[str] | None = None

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        ip("netns", "add", args.netns)
        ip("link", "add", args.host_if, "type", "veth", "peer", "name", "eth0", "netns",
           args.netns)  # fmt: skip
        ip("addr", "add", args.host_address, "dev", args.host_if)
        ip("link", "set", args.host_if, "up")
        ip("-n", args.netns, "link", "set", "lo", "up")
        ip("-n", args.netns, "addr", "add", args.address, "dev", "eth0")
        ip("-n", args.netns, "link", "set", "eth0", "up")
        child = subprocess.Popen(
            ["ip", "netns", "exec", args.netns, sys.executable, __file__, *argv, "--serve"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        if child.stdout.readline().strip() != "listening":
            raise SystemExit(f"the dashboard double in {args.netns} did not start")
        print(f"ready {address}", flush=True)
        while child.poll() is None:
            time.sleep(0.2)
        return child.returncode or 1
    except KeyboardInterrupt:
        return 0
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        remove(args.netns, args.host_if)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
