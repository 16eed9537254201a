"""The node enforces NetworkPolicy: kube-router's firewall between two pods on the bridge.

The lab's node without the RayService (`KubeNode.up(sample=False)`: control plane, kube-proxy,
CoreDNS, kube-router's NetworkPolicy controller, our kubelet). A `server` pod runs an echo
server, a `client` pod sleeps; the test talks from the client pod's network namespace (`ip
netns exec`), as a process of that pod would. What is checked is what a client sees on a
cluster whose CNI enforces NetworkPolicy with kube-router:

- a policy that allows no ingress to the server (or no egress from the client) refuses a new
  connection (kube-router's REJECT: ICMP port unreachable), within seconds of its creation;
- a connection established before the policy goes on (kube-router's pod chains accept
  RELATED,ESTABLISHED first): conntrack still lists it ESTABLISHED;
- deleting the policy lets new connections through again;
- `node down` leaves no kube-router chain, ipset or process.

Without the engine (the node before issue 22, or kube-router not running) the new connection
is accepted and the first two tests fail. Needs root and the machine's node lock, as the
other node tests (marked `node`: under CI a skip fails the run).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaosraysvc_lab import kubeconfig, netpol, network
from chaosraysvc_lab.stack import KubeNode
from tests.support.polling import wait_for

from .conftest import NAMESPACES_REFUSED, wait_for_node_lock

pytestmark = pytest.mark.node

NAMESPACE = "default"
IMAGE = "rayproject/ray:2.9.0"  # the Ray installed here: bash and python
PORT = 9000
ENFORCED_WITHIN_S = 15.0
ECHO = """
import socket, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", PORT))
srv.listen(64)
def serve(conn):
    while data := conn.recv(65536):
        conn.sendall(data)
    conn.close()
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
""".replace("PORT", str(PORT))
# One new connection: prints "connected", "refused" or "timeout".
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
    print("connected")
except ConnectionRefusedError:
    print("refused")
except OSError as exc:
    print("timeout" if isinstance(exc, TimeoutError) else type(exc).__name__)
"""
# A connection held open: echoes each line of stdin through the server, "-" when no answer.
HELD = """
import socket, sys
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
print("connected", flush=True)
for line in sys.stdin:
    try:
        conn.sendall(line.encode())
        print(conn.recv(65536).decode().strip() or "-", flush=True)
    except OSError as exc:
        print(f"- {type(exc).__name__}", flush=True)
"""


@dataclass
class Node:
    api: client.ApiClient
    state_dir: Path

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def policies(self) -> client.NetworkingV1Api:
        return client.NetworkingV1Api(self.api)


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    if os.geteuid() != 0:
        pytest.skip("the node needs root (network namespaces, iptables)")
    if NAMESPACES_REFUSED:
        pytest.skip(f"network/mount namespaces refused: {NAMESPACES_REFUSED}")
    if netpol.tools_missing():
        pytest.skip(f"kube-router needs {', '.join(netpol.tools_missing())} (make node-deps)")
    state_dir = Path(tempfile.mkdtemp(prefix="crs-netpol-"))
    kube = KubeNode(state_dir)
    try:
        wait_for_node_lock()
        kube.up(sample=False, progress=print)
        api = kubeconfig.api_client(kube.plane.kubeconfig)
        wait_for(
            lambda: client.CoreV1Api(api)
            .list_namespaced_service_account(NAMESPACE, field_selector="metadata.name=default")
            .items,
            30,
            what="ServiceAccount default",
        )
        yield Node(api, state_dir)
    finally:
        if kube.running() or (state_dir / "node.json").exists():
            kube.down()
        shutil.rmtree(state_dir, ignore_errors=True)


def _run_pod(node: Node, name: str, script: str) -> str:
    """Create pod `name` (label app=`name`) running `python -c script`; return its IP."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "containers": [{"name": "main", "image": IMAGE, "command": ["python", "-c", script]}],
            "terminationGracePeriodSeconds": 1,
        },
    }
    node.core.create_namespaced_pod(NAMESPACE, body)

    def running() -> str:
        pod = node.core.read_namespaced_pod(name, NAMESPACE)
        statuses = pod.status.container_statuses or []
        up = statuses and all(s.state.running for s in statuses)
        return str(pod.status.pod_ip or "") if up else ""

    return wait_for(running, 60, what=f"pod {name} to run", interval=0.2)


def _netns_of(ip: str) -> str:
    """The network namespace holding address `ip` (a pod's, on the node's bridge)."""
    for line in network.ip("netns", "list").splitlines():
        name = line.split(" ")[0]
        if f" {ip}/" in network.ip("-4", "-o", "addr", "show", netns=name, check=False):
            return name
    raise AssertionError(f"no network namespace holds {ip}")


@dataclass
class Pair:
    """The server and client pods, and the client's network namespace."""

    server_ip: str
    client_netns: str

    def connect(self) -> str:
        """One new connection from the client to the server: connected, refused or timeout."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.client_netns, sys.executable, "-c", CONNECT,
             self.server_ip, str(PORT)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        return done.stdout.strip() or done.stderr.strip()

    @contextlib.contextmanager
    def held(self) -> Iterator[Any]:
        """A connection from the client to the server, held open (stdin/stdout lines)."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.client_netns, sys.executable, "-c", HELD,
             self.server_ip, str(PORT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "connected"
            yield proc
        finally:
            proc.kill()
            proc.wait()


def _echo(proc: Any, text: str) -> str:
    proc.stdin.write(text + "\n")
    proc.stdin.flush()
    return str(proc.stdout.readline().strip())


@pytest.fixture(scope="module")
def pair(node: Node) -> Pair:
    server_ip = _run_pod(node, "server", ECHO)
    client_ip = _run_pod(node, "client", "import time; time.sleep(86400)")
    found = Pair(server_ip, _netns_of(client_ip))
    wait_for(lambda: found.connect() == "connected", 30, what="the echo server to accept",
             state=found.connect)  # fmt: skip
    return found


def _policy(name: str, app: str, kind: str) -> dict[str, Any]:
    """A policy selecting pods app=`app` that allows no traffic of `kind` (Ingress/Egress)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": [kind]},
    }


def _conntrack_established(pair: Pair) -> str:
    done = subprocess.run(
        ["conntrack", "-L", "-p", "tcp", "--dport", str(PORT), "-d", pair.server_ip],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout


@pytest.mark.parametrize(("app", "kind"), [("server", "Ingress"), ("client", "Egress")])
def test_a_deny_policy_refuses_new_connections_and_keeps_established_ones(
    node: Node, pair: Pair, app: str, kind: str
) -> None:
    with pair.held() as held:
        assert _echo(held, "before") == "before"
        name = f"deny-{kind.lower()}"
        created = time.monotonic()
        node.policies.create_namespaced_network_policy(NAMESPACE, _policy(name, app, kind))
        try:
            # no engine: "connected" until the timeout
            refused = wait_for(
                lambda: (answer := pair.connect()) != "connected" and answer,
                ENFORCED_WITHIN_S,
                what=f"a new connection to be refused under a policy allowing no {kind}",
                interval=0.2,
            )
            enforced_s = time.monotonic() - created
            assert refused == "refused", refused  # kube-router REJECTs: port unreachable
            assert _echo(held, "after") == "after"  # ESTABLISHED is accepted first
            assert "ESTABLISHED" in _conntrack_established(pair)
            print(f"{kind} policy enforced {enforced_s:.1f} s after its creation")
        finally:
            node.policies.delete_namespaced_network_policy(name, NAMESPACE)
    wait_for(lambda: pair.connect() == "connected", ENFORCED_WITHIN_S,
             what="new connections again once the policy is deleted", interval=0.2)  # fmt: skip


def test_node_down_leaves_no_kube_router_chain_ipset_or_process(node: Node, pair: Pair) -> None:
    node.policies.create_namespaced_network_policy(
        NAMESPACE, _policy("deny-left", "server", "Ingress")
    )
    wait_for(lambda: pair.connect() == "refused", ENFORCED_WITHIN_S, what="the policy")
    chains, sets = netpol.chains(), netpol.ipsets()
    assert "KUBE-ROUTER-FORWARD" in chains and any(c.startswith("KUBE-POD-FW-") for c in chains)
    agent: dict[str, Any] = json.loads((node.state_dir / "node.json").read_text())["agent"]
    pids = subprocess.run(["pgrep", "-s", str(agent["sid"]), "-x", "kube-router"],
                          capture_output=True, text=True, check=False).stdout.split()  # fmt: skip
    assert len(pids) == 1, pids

    leftovers = KubeNode(node.state_dir).down()

    assert leftovers == []
    assert netpol.chains() == [] and netpol.ipsets() == [], (chains, sets)
    assert (
        "KUBE-ROUTER"
        not in subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    )
    assert not Path(f"/proc/{pids[0]}").exists()
