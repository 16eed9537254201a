"""The node's kube-proxy: the real one (k8s.io/kubernetes v1.34.2 `cmd/kube-proxy`), nftables mode.

    proxy = KubeProxy(binary, kubeconfig, "chaosraysvc-node", "198.18.10.1", work_dir).start()
    ...   # ClusterIPs are DNATed by the kernel: `nft list table ip kube-proxy`
    proxy.stop()   # ends it and removes its tables

What a Service does to a connection is then Kubernetes' own: a new connection is DNATed to
one endpoint (ready ones; serving-terminating ones when no ready one is left); an established
one stays on its conntrack entry when its endpoint leaves the EndpointSlice; a connection to a
Service without endpoints is rejected (ICMP port unreachable: the client sees "connection
refused"). It runs with the configuration a kubeadm node would give it, except that it leaves
the host's conntrack sysctls as they are (`conntrack.*: 0`), listens for health and metrics on
loopback only, and accepts NodePorts only on the node's address (the bridge's, `nodeIP`).
Its process is a child of the node agent, in the agent's session (so ending that session ends
it), and gets SIGTERM if the agent dies (`setpriv --pdeathsig`).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.runtime.ports import free_port
from chaosraysvc_lab import network

CLUSTER_CIDR = "198.18.0.0/16"  # every node's pods (network.POD_SUPERNET)
TABLES = ("ip kube-proxy", "ip6 kube-proxy")  # what nftables mode creates, by family
READY_TIMEOUT = 30.0


class KubeProxyError(ChaosRaySvcError):
    """kube-proxy did not start or sync (names its log)."""


def config(
    kubeconfig: Path, node_name: str, node_ip: str, healthz: int, metrics: int
) -> dict[str, Any]:
    """Return the KubeProxyConfiguration for this node."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "hostnameOverride": node_name,
        "clusterCIDR": CLUSTER_CIDR,
        "detectLocalMode": "ClusterCIDR",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "healthzBindAddress": f"127.0.0.1:{healthz}",
        "metricsBindAddress": f"127.0.0.1:{metrics}",
        "nodePortAddresses": [f"{node_ip}/32"],
        "conntrack": {  # 0: leave the host's sysctls alone
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
    }


def remove_tables() -> list[str]:
    """Delete kube-proxy's nftables tables if present; return the ones deleted."""
    present = [table for table in TABLES if table in network.nft_tables()]
    for table in present:
        network.nft(f"delete table {table}\n", check=False)
    return present


class KubeProxy:
    """kube-proxy for `node_name` (whose Node object gives `node_ip`), logs in `work_dir`."""

    def __init__(
        self, binary: Path, kubeconfig: Path, node_name: str, node_ip: str, work_dir: Path
    ) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.node_name = node_name
        self.node_ip = node_ip
        self.work_dir = work_dir
        self.log = work_dir / "kube-proxy.log"
        self.healthz_port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = READY_TIMEOUT) -> KubeProxy:
        """Start kube-proxy and return once its rules are in place (healthz ok, table there)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        remove_tables()  # a crashed node's; kube-proxy would take them over anyway
        self.healthz_port = free_port()
        path = self.work_dir / "kube-proxy.yaml"
        body = config(self.kubeconfig, self.node_name, self.node_ip, self.healthz_port,
                      free_port())  # fmt: skip
        path.write_text(yaml.safe_dump(body, sort_keys=False))
        cmd = ["setpriv", "--pdeathsig", "TERM", "--", str(self.binary), f"--config={path}",
               "--v=2"]  # fmt: skip
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not (self._healthy() and "ip kube-proxy" in network.nft_tables()):
            if self._proc.poll() is not None:
                raise KubeProxyError(
                    f"kube-proxy exited with code {self._proc.returncode}: read {self.log}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise KubeProxyError(
                    f"kube-proxy did not sync within {timeout:g}s: read {self.log}"
                )
            time.sleep(0.2)
        return self

    def _healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.healthz_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """End kube-proxy (SIGTERM, then SIGKILL) and remove its tables (idempotent)."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
                self._proc.wait()
            self._proc = None
        remove_tables()
