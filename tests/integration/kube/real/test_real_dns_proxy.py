"""Cluster DNS and the userspace kube-proxy against the real API server and controllers.

DNS answers from Services and the EndpointSlices the real endpointslice controller writes;
the proxy forwards TCP connections on a ClusterIP to an echo server standing in for a pod.
The proxy test adds two `local` routes (the Service range and the echo server's address,
198.18.250.1, outside every node's pod /24) unless present and removes exactly those it
added, even on failure (a kubelet running beside it keeps its Service route).
"""

from __future__ import annotations

import socket
import socketserver
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, DNSRecord
from kubernetes import client

from chaosraysvc_lab.controlplane import SERVICE_CIDR
from chaosraysvc_lab.dns import ClusterDns, DnsError
from chaosraysvc_lab.network import ip
from chaosraysvc_lab.proxy import ServiceProxy
from tests.support.polling import wait_for

from .conftest import NODE, RealPlane, requires_namespaces

ECHO_IP = "198.18.250.1"


@pytest.fixture
def namespace(real_plane: RealPlane) -> Iterator[str]:
    name = f"dns-{uuid.uuid4().hex[:8]}"
    core = real_plane.core
    core.create_namespace({"metadata": {"name": name}})
    try:
        wait_for(
            lambda: core.list_namespaced_service_account(
                name, field_selector="metadata.name=default"
            ).items,
            10,
            what=f"ServiceAccount default in namespace {name}",
        )
        yield name
    finally:
        core.delete_namespace(name, grace_period_seconds=0)


@pytest.fixture
def dns(real_plane: RealPlane) -> Iterator[ClusterDns]:
    server = ClusterDns(real_plane.api, "127.0.0.1", port=0).start()
    try:
        yield server
    finally:
        server.stop()


def query(dns: ClusterDns, name: str, *, tcp: bool = False) -> tuple[str, list[str]]:
    """Ask `dns` for the A records of `name`; return (rcode name, sorted addresses)."""
    raw = DNSRecord.question(name, "A").send("127.0.0.1", dns.port, tcp=tcp, timeout=2)
    reply = DNSRecord.parse(raw)
    answers = sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A)
    assert all(rr.ttl <= 5 for rr in reply.rr)
    return RCODE[reply.header.rcode], answers


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"ports": [{"name": "http", "port": 80}], **spec}}


def running_pod(core: client.CoreV1Api, namespace: str, name: str, pod_ip: str) -> None:
    """Create a pod bound to the session's Node and write a Running, ready status for it."""
    body = {
        "metadata": {"name": name, "labels": {"app": "hl"}},
        "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "busybox"}]},
    }
    core.create_namespaced_pod(namespace, body)
    set_ready(core, namespace, name, pod_ip, True)


def set_ready(core: client.CoreV1Api, namespace: str, name: str, pod_ip: str, ready: bool) -> None:
    status = {
        "phase": "Running",
        "hostIP": "198.18.0.2",
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "conditions": [{"type": "Ready", "status": str(ready)}],
    }
    core.patch_namespaced_pod_status(name, namespace, {"status": status})


def test_dns_answers_a_clusterip_and_nxdomain_for_unknown_names(
    real_plane: RealPlane, namespace: str, dns: ClusterDns
) -> None:
    created = real_plane.core.create_namespaced_service(
        namespace, service("web", selector={"app": "web"})
    )
    cluster_ip = created.spec.cluster_ip
    fqdn = f"web.{namespace}.svc.cluster.local"
    expected = ("NOERROR", [cluster_ip])
    wait_for(lambda: query(dns, fqdn) == expected, 5, what=fqdn, state=lambda: query(dns, fqdn))
    assert query(dns, fqdn.upper() + ".", tcp=True) == expected

    assert query(dns, f"198-18-0-7.{namespace}.pod.cluster.local") == ("NOERROR", ["198.18.0.7"])
    for unknown in (
        f"nope.{namespace}.svc.cluster.local",
        f"web.other-{namespace}.svc.cluster.local",
        f"not-an-ip.{namespace}.pod.cluster.local",
        "cluster.local",
        "example.com",
    ):
        assert query(dns, unknown) == ("NXDOMAIN", []), unknown


def test_dns_answers_the_ready_pods_of_a_headless_service(
    real_plane: RealPlane, namespace: str, dns: ClusterDns
) -> None:
    core = real_plane.core
    core.create_namespaced_service(
        namespace, service("hl", clusterIP="None", selector={"app": "hl"})
    )
    running_pod(core, namespace, "hl-0", "198.18.0.201")
    running_pod(core, namespace, "hl-1", "198.18.0.202")
    fqdn = f"hl.{namespace}.svc.cluster.local"
    both = ("NOERROR", ["198.18.0.201", "198.18.0.202"])
    wait_for(lambda: query(dns, fqdn) == both, 15, what=fqdn, state=lambda: query(dns, fqdn))

    set_ready(core, namespace, "hl-1", "198.18.0.202", False)
    one = ("NOERROR", ["198.18.0.201"])
    wait_for(
        lambda: query(dns, fqdn) == one,
        15,
        what=f"{fqdn} without hl-1",
        state=lambda: query(dns, fqdn),
    )


def test_dns_names_the_address_it_cannot_bind(real_plane: RealPlane, dns: ClusterDns) -> None:
    with pytest.raises(DnsError, match=rf"127\.0\.0\.1:{dns.port}\b"):
        ClusterDns(real_plane.api, "127.0.0.1", port=dns.port).start()


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[int]:
    """An echo server on ECHO_IP (a local route of its own); yield its port."""
    added: list[str] = []
    server: socketserver.ThreadingTCPServer | None = None
    try:
        for route in (f"{ECHO_IP}/32", SERVICE_CIDR):
            if ip("-4", "route", "show", "table", "local", "exact", route).strip():
                continue  # a running node's own route: not ours to remove
            ip("route", "replace", "local", route, "dev", "lo", "table", "local")
            added.append(route)
        server = socketserver.ThreadingTCPServer((ECHO_IP, 0), _Echo)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield server.server_address[1]
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        for route in added:
            ip("route", "delete", "local", route, "dev", "lo", "table", "local", check=False)


def roundtrip(address: tuple[str, int], payload: bytes) -> bytes:
    """Send `payload`, half-close, and return everything read until the peer closes."""
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def echoes(address: tuple[str, int]) -> bool:
    """True once a connection reaches the echo server (before that the proxy closes it)."""
    try:
        return roundtrip(address, b"ping") == b"ping"
    except OSError:
        return False


def closed_at_once(address: tuple[str, int]) -> bool:
    """True when the proxy accepts and closes without sending anything (no endpoint)."""
    try:
        with socket.create_connection(address, timeout=1) as conn:
            return conn.recv(1) == b""
    except (TimeoutError, ConnectionError):
        return False


@requires_namespaces
def test_proxy_forwards_to_a_ready_endpoint_and_closes_without_one(
    real_plane: RealPlane, namespace: str, echo: int
) -> None:
    core, discovery = real_plane.core, client.DiscoveryV1Api(real_plane.api)
    spec = {"ports": [{"name": "tcp", "port": 8080, "targetPort": 9}]}  # the slice names the port
    created = core.create_namespaced_service(
        namespace, {"metadata": {"name": "echo"}, "spec": spec}
    )
    address = (created.spec.cluster_ip, 8080)
    proxy = ServiceProxy(real_plane.api).start()
    try:
        wait_for(lambda: address in proxy.listening, 5, what=f"a listener on {address}")
        assert closed_at_once(address)

        endpoint = {"addresses": [ECHO_IP], "conditions": {"ready": True}}
        body = {
            "metadata": {"name": "echo-1", "labels": {"kubernetes.io/service-name": "echo"}},
            "addressType": "IPv4",
            "endpoints": [endpoint],
            "ports": [{"name": "tcp", "port": echo, "protocol": "TCP"}],
        }
        discovery.create_namespaced_endpoint_slice(namespace, body)
        payload = uuid.uuid4().bytes * 65536  # 1 MiB each way, then a half-close
        wait_for(lambda: echoes(address), 5, what="the echo server via the proxy")
        assert roundtrip(address, payload) == payload

        endpoint["conditions"] = {"ready": False}
        discovery.replace_namespaced_endpoint_slice("echo-1", namespace, body)
        wait_for(lambda: closed_at_once(address), 5, what="the proxy to refuse without endpoints")

        core.delete_namespaced_service("echo", namespace)
        wait_for(lambda: address not in proxy.listening, 5, what=f"{address} to close")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=2).close()
    finally:
        proxy.stop()
    assert not proxy.listening
