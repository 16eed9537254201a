"""The node's cluster DNS: the real CoreDNS (v1.14.7, `lab/coredns/`), kubernetes plugin.

    dns = CoreDns(api, binary, kubeconfig, "198.18.10.1", "chaosraysvc-node", work_dir).start()
    ...   # pods ask 198.19.0.10 (resolv.conf), kube-proxy DNATs it to CoreDNS
    dns.stop()

As kubeadm sets it up, but as a host process: CoreDNS listens on the node's address (the
bridge's) and a `kube-dns` Service in kube-system with the ClusterIP `DNS_SERVICE_IP` has an
EndpointSlice naming that address (the Service has no selector: no pod backs it), so pods
reach it through kube-proxy like any Service. It reads Services, EndpointSlices, pods and
namespaces as user `system:coredns`, bound to kubeadm's ClusterRole `system:coredns`.

The Corefile is kubeadm's without what needs the internet: `kubernetes cluster.local
in-addr.arpa ip6.arpa` with `pods insecure`, `ttl 30`, `cache 30`, `loadbalance`; nothing is
forwarded upstream (there is no upstream here), so every name outside the cluster domain is
answered NXDOMAIN by a `template` block. Health and readiness listen on loopback.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.runtime.ports import free_port
from chaosraysvc_lab import controlplane, kubeconfig

CLUSTER_DOMAIN = "cluster.local"
DNS_SERVICE_IP = controlplane.DNS_SERVICE_IP  # the 10th of the Service CIDR, as kubeadm's
SERVICE = "kube-dns"
NAMESPACE = "kube-system"
USER = "system:coredns"
MANAGED_BY = "chaosraysvc-lab"
READY_TIMEOUT = 30.0
DNS_PORTS = [
    {"name": "dns", "port": 53, "protocol": "UDP"},
    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
]
# kubeadm's ClusterRole for CoreDNS (cmd/kubeadm/app/phases/addons/dns/manifests.go).
CLUSTER_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": USER},
    "rules": [
        {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
         "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
         "verbs": ["list", "watch"]},
    ],
}  # fmt: skip


class CoreDnsError(ChaosRaySvcError):
    """CoreDNS did not start or get ready (names its log)."""


def corefile(listen_ip: str, kubeconfig: Path, health: int, ready: int) -> str:
    """Return the node's Corefile."""
    return f"""\
{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {listen_ip}
    errors
    health 127.0.0.1:{health}
    ready 127.0.0.1:{ready}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} chaosraysvc-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    loadbalance
}}
.:53 {{
    bind {listen_ip}
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""


def service() -> dict[str, Any]:
    """The `kube-dns` Service: kubeadm's, without a selector (CoreDNS is not a pod here)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": SERVICE,
            "namespace": NAMESPACE,
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
        },
        "spec": {"clusterIP": DNS_SERVICE_IP, "ports": DNS_PORTS},
    }


def endpoint_slice(address: str, node_name: str) -> dict[str, Any]:
    """The EndpointSlice naming CoreDNS's address for the `kube-dns` Service."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{SERVICE}-{node_name}",
            "namespace": NAMESPACE,
            "labels": {
                "kubernetes.io/service-name": SERVICE,
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [address],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "nodeName": node_name,
            }
        ],
        "ports": DNS_PORTS,
    }


def install_rbac(api: Any) -> None:
    """Create (or keep) kubeadm's `system:coredns` ClusterRole and bind user `system:coredns`."""
    kubeconfig.bind_cluster_role(api, USER, CLUSTER_ROLE)


def _create(call: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        call()
    except ApiException as exc:
        if exc.status != 409:
            raise


class CoreDns:
    """CoreDNS on `listen_ip`, backing the `kube-dns` Service; logs in `work_dir`."""

    def __init__(
        self,
        api: Any,
        binary: Path,
        kubeconfig: Path,
        listen_ip: str,
        node_name: str,
        work_dir: Path,
    ) -> None:
        self.api = api
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.listen_ip = listen_ip
        self.node_name = node_name
        self.work_dir = work_dir
        self.log = work_dir / "coredns.log"
        self.ready_port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = READY_TIMEOUT) -> CoreDns:
        """Publish the `kube-dns` Service, start CoreDNS and return once it is ready."""
        from kubernetes import client

        self.work_dir.mkdir(parents=True, exist_ok=True)
        install_rbac(self.api)
        core: Any = client.CoreV1Api(self.api)
        discovery: Any = client.DiscoveryV1Api(self.api)
        _create(lambda: core.create_namespaced_service(NAMESPACE, service()))
        body = endpoint_slice(self.listen_ip, self.node_name)
        with contextlib.suppress(Exception):  # a crashed node's, whose address may differ
            discovery.delete_namespaced_endpoint_slice(body["metadata"]["name"], NAMESPACE)
        discovery.create_namespaced_endpoint_slice(NAMESPACE, body)
        self.ready_port = free_port()
        path = self.work_dir / "Corefile"
        path.write_text(corefile(self.listen_ip, self.kubeconfig, free_port(), self.ready_port))
        cmd = ["setpriv", "--pdeathsig", "TERM", "--", str(self.binary), "-conf", str(path)]
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.work_dir,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self._proc.poll() is not None:
                raise CoreDnsError(
                    f"CoreDNS exited with code {self._proc.returncode}: read {self.log}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise CoreDnsError(f"CoreDNS was not ready within {timeout:g}s: read {self.log}")
            time.sleep(0.2)
        return self

    def _ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.ready_port}/ready"
            with urllib.request.urlopen(url, timeout=1) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """End CoreDNS (SIGTERM, then SIGKILL; idempotent). The Service stays with the API."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            self._proc.wait()
        self._proc = None
