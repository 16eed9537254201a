"""The node's Service path on the real kernel: kube-proxy's nftables rules and CoreDNS.

One `chaosraysvc-lab node up` for the module (KubeRay's HA sample included: its head pod's
network namespace is the client "pod"); a backend is an echo server in a network namespace
of its own on the node's bridge (it first sends the address it sees the client as), put
behind a selector-less Service by an EndpointSlice the test writes, so the test decides when
an endpoint leaves or turns terminating. What is checked is what a client of a Service sees
on Kubernetes, and what the userspace proxy of before did not give:

- the host's connection to a ClusterIP is DNATed by the kernel (its conntrack entry's reply
  comes from the backend's address; a userspace proxy's came from the ClusterIP);
- a pod's connection reaches the backend from the pod's own address (not the node's);
- an established connection stays on its backend after the endpoint leaves the EndpointSlice,
  while a new one is refused (kube-proxy's reject; the userspace proxy accepted, then closed);
- with no ready endpoint left, a serving-terminating one takes new connections;
- CoreDNS answers pods through the `kube-dns` ClusterIP, forwards and reverse (PTR);
- `node down` leaves no nftables table, route, link, network namespace or process, nor any
  of kube-router's iptables chains and ipsets.

Needs root, network namespaces and nftables: skipped with the reason otherwise (marked `node`:
under CI, `$CI` set, that skip is a failure, tests/support/costs.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaosraysvc_lab import kubeconfig, netpol, network
from chaosraysvc_lab.stack import KubeNode
from tests.support.polling import wait_for

from .conftest import NAMESPACES_REFUSED

pytestmark = pytest.mark.node

BACKEND_SLOT = 200  # a pod slot the kubelet never reaches with the sample's five pods
BACKEND_PORT = 9000
SERVICE_PORT = 8080
DNS_SERVICE_IP = "198.19.0.10"
ECHO = """
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(64)
print("listening", flush=True)
def serve(conn, peer):
    conn.sendall(f"peer {peer[0]}\\n".encode())
    while data := conn.recv(65536):
        conn.sendall(data)
    conn.close()
while True:
    conn, peer = srv.accept()
    threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
"""
CLIENT = """
import socket, sys
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
reader = conn.makefile("rb")
print(reader.readline().decode().strip(), flush=True)
for line in sys.stdin:
    conn.sendall(line.encode())
    print(reader.readline().decode().strip(), flush=True)
"""


def _unmet() -> str:
    if os.geteuid() != 0:
        return "the node needs root"
    if NAMESPACES_REFUSED:
        return f"network/mount namespaces refused: {NAMESPACES_REFUSED}"
    missing = [tool for tool in ("nft", "conntrack") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install nftables conntrack)"
    return ""


@pytest.fixture(scope="module", autouse=True)
def requirements() -> None:
    """Skip without root, namespaces or nftables (a failure under CI: the `node` marker)."""
    unmet = _unmet()
    if unmet:
        pytest.skip(unmet)


@dataclass
class Node:
    state_dir: Path
    index: int
    api: client.ApiClient
    client_netns: str  # the head pod's
    client_ip: str

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def in_pod(self, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """Run `argv` in the client pod's network namespace (with its resolv.conf)."""
        cmd = ["ip", "netns", "exec", self.client_netns, *argv]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _cli(verb: str, state_dir: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "chaosraysvc_lab.cli", "node", verb, "--state-dir", str(state_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def node(requirements: None) -> Iterator[Node]:
    state_dir = Path(tempfile.mkdtemp(prefix="crs-svcpath-"))
    try:
        up = _cli("up", state_dir, 900)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        index = json.loads((state_dir / "node.json").read_text())["node_index"]
        api = kubeconfig.api_client(state_dir / "cp" / "admin.kubeconfig")
        head = client.CoreV1Api(api).list_namespaced_pod(
            "default", label_selector="ray.io/node-type=head"
        )
        pod_ip = head.items[0].status.pod_ip
        slot = int(pod_ip.split(".")[-1]) - 10  # network.NodeNetwork.pod_ip
        yield Node(state_dir, index, api, f"crs{index}-{slot}", pod_ip)
    finally:
        _cli("down", state_dir, 120)
        KubeNode(state_dir).down()
        shutil.rmtree(state_dir, ignore_errors=True)


@dataclass
class Backend:
    name: str  # the Service's
    namespace: str
    cluster_ip: str
    ip: str

    @property
    def address(self) -> tuple[str, int]:
        return self.cluster_ip, SERVICE_PORT


@pytest.fixture(scope="module")
def backend(node: Node) -> Iterator[Backend]:
    """An echo server on the bridge behind Service `echo` of a fresh namespace (no endpoint)."""
    net = network.NodeNetwork(node.index)
    netns, backend_ip = net.add_pod(BACKEND_SLOT)
    server = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", ECHO, str(BACKEND_PORT)],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    namespace = f"svc-{uuid.uuid4().hex[:8]}"
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "listening"
        node.core.create_namespace({"metadata": {"name": namespace}})
        spec = {"ports": [{"name": "tcp", "port": SERVICE_PORT, "targetPort": BACKEND_PORT}]}
        created = node.core.create_namespaced_service(
            namespace, {"metadata": {"name": "echo"}, "spec": spec}
        )
        yield Backend("echo", namespace, created.spec.cluster_ip, backend_ip)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        net.remove_pod(BACKEND_SLOT)
        with contextlib.suppress(Exception):  # gone with the node when the down test ran
            node.core.delete_namespace(namespace, _request_timeout=5)


def set_endpoint(node: Node, backend: Backend, **conditions: bool) -> None:
    """Write the Service's one EndpointSlice: the backend with `conditions`, or none."""
    endpoints = [{"addresses": [backend.ip], "conditions": conditions}] if conditions else []
    body = {
        "metadata": {
            "name": "echo-1",
            "labels": {
                "kubernetes.io/service-name": backend.name,
                "endpointslice.kubernetes.io/managed-by": "chaosraysvc-tests",
            },
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "tcp", "port": BACKEND_PORT, "protocol": "TCP"}],
    }
    discovery = client.DiscoveryV1Api(node.api)
    try:
        discovery.replace_namespaced_endpoint_slice("echo-1", backend.namespace, body)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        discovery.create_namespaced_endpoint_slice(backend.namespace, body)


def connect_outcome(address: tuple[str, int]) -> str:
    """Connect from the host; return "peer <ip>" (the backend answered), "refused" or what else."""
    try:
        with socket.create_connection(address, timeout=2) as conn:
            conn.settimeout(2)
            line = conn.makefile("rb").readline().decode().strip()
            return line or "closed"  # accepted, then closed without a word: a userspace proxy
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return type(exc).__name__


def answered(address: tuple[str, int]) -> bool:
    return connect_outcome(address).startswith("peer ")


def conntrack_entries(cluster_ip: str) -> str:
    done = subprocess.run(
        ["conntrack", "-L", "-p", "tcp", "--orig-dst", cluster_ip],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout


def test_the_hosts_connection_to_a_clusterip_is_dnated_by_the_kernel(
    node: Node, backend: Backend
) -> None:
    set_endpoint(node, backend, ready=True)
    wait_for(lambda: answered(backend.address), 15, what="the backend through the ClusterIP")

    with socket.create_connection(backend.address, timeout=5) as conn:
        reader = conn.makefile("rb")
        assert (
            reader.readline().decode().strip() == f"peer {network.NodeNetwork(node.index).gateway}"
        )
        conn.sendall(b"hello\n")
        assert reader.readline() == b"hello\n"
        port = conn.getsockname()[1]
        entries = [line for line in conntrack_entries(backend.cluster_ip).splitlines()
                   if f"sport={port} " in line]  # fmt: skip
        # DNAT: the reply direction comes from the backend, not from the ClusterIP.
        assert len(entries) == 1 and f"src={backend.ip} " in entries[0].split("sport=")[1], entries
    ruleset = subprocess.run(["nft", "list", "table", "ip", "kube-proxy"], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    assert backend.cluster_ip in ruleset and backend.ip in ruleset


def test_a_pods_connection_reaches_the_backend_from_the_pods_own_address(
    node: Node, backend: Backend
) -> None:
    set_endpoint(node, backend, ready=True)
    wait_for(lambda: answered(backend.address), 15, what="the backend through the ClusterIP")

    done = node.in_pod(sys.executable, "-c", CLIENT, *map(str, backend.address))

    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == f"peer {node.client_ip}"  # no proxy in between


def test_an_established_connection_outlives_its_endpoint_and_new_ones_are_refused(
    node: Node, backend: Backend
) -> None:
    set_endpoint(node, backend, ready=True)
    wait_for(lambda: answered(backend.address), 15, what="the backend through the ClusterIP")
    cmd = ["ip", "netns", "exec", node.client_netns, sys.executable, "-c", CLIENT,
           *map(str, backend.address)]  # fmt: skip
    kept = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert kept.stdin is not None and kept.stdout is not None
        assert kept.stdout.readline().startswith("peer ")
        kept.stdin.write("before\n")
        kept.stdin.flush()
        assert kept.stdout.readline().strip() == "before"

        set_endpoint(node, backend)  # the endpoint leaves the EndpointSlice
        wait_for(
            lambda: connect_outcome(backend.address) == "refused",
            15,
            what="a new connection to the Service without endpoints to be refused",
            state=lambda: connect_outcome(backend.address),
        )
        kept.stdin.write("after\n")
        kept.stdin.flush()
        assert kept.stdout.readline().strip() == "after"  # still on its conntrack entry
    finally:
        kept.kill()
        kept.wait()


def test_with_no_ready_endpoint_a_serving_terminating_one_takes_new_connections(
    node: Node, backend: Backend
) -> None:
    set_endpoint(node, backend)
    wait_for(lambda: not answered(backend.address), 15, what="the Service without endpoints")

    set_endpoint(node, backend, ready=False, serving=True, terminating=True)
    wait_for(
        lambda: answered(backend.address),
        15,
        what="the serving-terminating endpoint to take a new connection",
        state=lambda: connect_outcome(backend.address),
    )

    set_endpoint(node, backend, ready=False, serving=False, terminating=True)
    wait_for(
        lambda: connect_outcome(backend.address) == "refused",
        15,
        what="a terminating endpoint that no longer serves to be left out",
        state=lambda: connect_outcome(backend.address),
    )


def test_coredns_answers_pods_through_the_kube_dns_clusterip(node: Node, backend: Backend) -> None:
    kube_dns = node.core.read_namespaced_service("kube-dns", "kube-system")
    assert kube_dns.spec.cluster_ip == DNS_SERVICE_IP
    resolv = node.in_pod("cat", "/etc/resolv.conf").stdout
    assert f"nameserver {DNS_SERVICE_IP}" in resolv.split("\n")

    fqdn = f"{backend.name}.{backend.namespace}.svc.cluster.local"
    forward = node.in_pod("getent", "hosts", fqdn)
    reverse = node.in_pod("getent", "hosts", backend.cluster_ip)  # PTR, from CoreDNS
    short = node.in_pod("getent", "hosts", "kubernetes.default")  # the search path
    outside = node.in_pod("getent", "hosts", "example.com")

    assert forward.stdout.split() == [backend.cluster_ip, fqdn], forward
    assert reverse.stdout.split() == [backend.cluster_ip, fqdn], reverse
    assert short.stdout.split()[0] == "198.19.0.1", short
    assert outside.returncode == 2 and not outside.stdout  # NXDOMAIN: nothing is forwarded


def _service_path_pids(node: Node) -> dict[str, int]:
    agent: dict[str, Any] = json.loads((node.state_dir / "node.json").read_text())["agent"]
    found = {}
    for pid in subprocess.run(["pgrep", "-s", str(agent["sid"])], capture_output=True,
                              text=True, check=False).stdout.split():  # fmt: skip
        comm = ""
        with contextlib.suppress(OSError):
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        if comm in ("kube-proxy", "coredns", "kube-router"):
            found[comm] = int(pid)
    return found


def _node_links_and_netns(net: network.NodeNetwork) -> set[str]:
    """The node's links ("name@ifindex") and network namespaces ("name@inode") now.

    Identities, not names: once the node is down its index is free, and a test running beside
    this one may create a network of the same names at once.
    """
    found = set()
    for line in network.ip("-o", "link", "show").splitlines():
        number, name = line.split(": ")[:2]
        name = name.split("@")[0]
        if name == net.bridge or name.startswith(f"crsv{net.index}x"):
            found.add(f"{name}@{number}")
    for path in Path("/run/netns").glob(f"{net.netns_prefix}*"):
        with contextlib.suppress(OSError):
            found.add(f"{path.name}@{path.stat().st_ino}")
    return found


def test_node_down_leaves_no_table_route_link_netns_or_process(node: Node) -> None:
    pids = _service_path_pids(node)
    net = network.NodeNetwork(node.index)
    assert set(pids) == {"kube-proxy", "coredns", "kube-router"}, pids
    assert {"ip kube-proxy", f"ip {net.filter_table}"} <= set(network.nft_tables())
    assert "KUBE-ROUTER-FORWARD" in netpol.chains()  # the NetworkPolicy engine's
    assert f"198.19.0.0/20 dev {net.bridge}" in network.ip("-4", "route", "show")
    before = _node_links_and_netns(net)
    assert f"{net.bridge}@" in " ".join(before) and f"{net.netns_prefix}" in " ".join(before)

    down = _cli("down", node.state_dir, 120)

    assert down.returncode == 0, down.stdout + down.stderr
    assert not [t for t in network.nft_tables() if "kube-proxy" in t or "chaosraysvc" in t]
    assert netpol.leftovers() == []  # no kube-router chain or ipset
    assert f"198.19.0.0/20 dev {net.bridge}" not in network.ip(
        "-4", "route", "show", "table", "all"
    )
    assert not before & _node_links_and_netns(net)
    assert not [pid for pid in pids.values() if Path(f"/proc/{pid}").exists()], pids
