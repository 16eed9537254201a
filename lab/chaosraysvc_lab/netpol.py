"""The node's NetworkPolicy engine: kube-router's (v2.1.0, `lab/netpol/`), its firewall only.

    engine = NetworkPolicyEngine(api, binary, kubeconfig, "chaosraysvc-node", work_dir).start()
    ...   # a NetworkPolicy is enforced: `iptables -S KUBE-ROUTER-FORWARD`, `ipset list -n`
    engine.stop()   # ends it and removes its chains and ipsets

kube-router runs as its firewall-only DaemonSet runs it (`--run-firewall=true
--run-router=false --run-service-proxy=false`, upstream's daemonset/kube-router-firewall-
daemonset.yaml), as a host process of the node agent: it watches pods, namespaces and
NetworkPolicies as user `kube-router` (bound to upstream's ClusterRole `kube-router`) and
filters the node's pods in the host's `filter` table: a jump from INPUT, FORWARD and OUTPUT to
its `KUBE-ROUTER-*` chains, one `KUBE-POD-FW-*` chain per pod of this node (the pods whose
`status.hostIP` is the Node's InternalIP, the bridge's address), one `KUBE-NWPLCY-*` chain per
policy and `KUBE-SRC-*`/`KUBE-DST-*` ipsets of the peers' addresses. Pods on the bridge reach
each other bridged: `bridge-nf-call-iptables` (1, `network.py`) sends those packets through
FORWARD too, where its `-m physdev --physdev-is-bridged` rules catch them. What it does to a
connection is kube-router's: traffic a policy does not allow is rejected (ICMP port
unreachable: a new TCP connection is refused), while each pod chain first accepts
`RELATED,ESTABLISHED` packets, so a connection established before the policy goes on; the
node's own traffic to its pods (the kubelet's probes) is always accepted.

Differences from its DaemonSet: a host process with a client certificate instead of a pod
with a ServiceAccount; health and metrics servers off (upstream's listens on every
interface); Debian's `iptables` (nf_tables backend) and `ipset` instead of its image's.
kube-router leaves its rules in place when it stops (a restart keeps enforcing), and its
`--cleanup-config` does not remove the firewall's in v2.1.0 (it cleans a controller it never
configured): `stop()` and `remove_leftovers()` delete what it creates, by name.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc_lab import kubeconfig

USER = "kube-router"
READY_TIMEOUT = 60.0
TOP_CHAINS = ("KUBE-ROUTER-INPUT", "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT")
CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")
IPSET_PREFIXES = ("KUBE-SRC-", "KUBE-DST-")
BUILTIN_CHAINS = ("INPUT", "FORWARD", "OUTPUT")
# What kube-router writes once its first full sync is restored (ensureExplicitAccept).
SYNCED = "rule to explicitly ACCEPT traffic that comply to network policies"
# Upstream's ClusterRole (daemonset/kube-router-firewall-daemonset.yaml at v2.1.0): the
# informers it starts whatever runs (services, endpoints and slices too), and what its other
# controllers write.
CLUSTER_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": USER},
    "rules": [
        {"apiGroups": [""], "resources": ["namespaces", "pods", "services", "nodes", "endpoints"],
         "verbs": ["list", "get", "watch"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
         "verbs": ["list", "get", "watch"]},
        {"apiGroups": ["extensions"], "resources": ["networkpolicies"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "verbs": ["get", "create", "update"]},
        {"apiGroups": [""], "resources": ["services/status"], "verbs": ["update"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
         "verbs": ["get", "list", "watch"]},
    ],
}  # fmt: skip


class NetworkPolicyError(ChaosRaySvcError):
    """kube-router could not start or sync, or its tools are missing (names its log)."""


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


def tools_missing() -> list[str]:
    """Return what kube-router needs on PATH and is not there (iptables, ipset)."""
    return [t for t in ("iptables", "iptables-save", "iptables-restore", "ipset") if not
            shutil.which(t)]  # fmt: skip


def chains() -> list[str]:
    """Return kube-router's chains in the host's filter table."""
    if shutil.which("iptables-save") is None:
        return []
    found = []
    for line in _run("iptables-save", "-t", "filter").stdout.splitlines():
        if line.startswith(":") and line[1:].split(" ")[0].startswith(CHAIN_PREFIXES):
            found.append(line[1:].split(" ")[0])
    return found


def ipsets() -> list[str]:
    """Return kube-router's ipsets on the host."""
    if shutil.which("ipset") is None:
        return []
    names = _run("ipset", "list", "-n").stdout.split()
    return [name for name in names if name.startswith(IPSET_PREFIXES)]


def leftovers() -> list[str]:
    """Return kube-router's chains and ipsets on the host ("chain X", "ipset Y")."""
    return [f"iptables chain {c}" for c in chains()] + [f"ipset {s}" for s in ipsets()]


def remove_leftovers() -> list[str]:
    """Delete kube-router's jumps, chains and ipsets (and an empty filter table it made).

    Only kube-router's names are touched: the jumps from INPUT, FORWARD and OUTPUT to a
    `KUBE-ROUTER-*` chain, the `KUBE-ROUTER-*`, `KUBE-POD-FW-*` and `KUBE-NWPLCY-*` chains,
    the `KUBE-SRC-*` and `KUBE-DST-*` ipsets. Returns what was there.
    """
    found = leftovers()
    if shutil.which("iptables-save") is not None:
        for line in _run("iptables-save", "-t", "filter").stdout.splitlines():
            words = shlex.split(line) if line.startswith("-A ") else []
            if (
                len(words) > 1
                and words[1] in BUILTIN_CHAINS
                and any(w.startswith("KUBE-ROUTER-") for w in words[2:])
            ):
                _run("iptables", "-t", "filter", "-D", *words[1:])
        ours = chains()
        for chain in ours:
            _run("iptables", "-t", "filter", "-F", chain)
        for chain in ours:
            _run("iptables", "-t", "filter", "-X", chain)
        _remove_empty_filter_table()
    for name in ipsets():
        _run("ipset", "destroy", name)
    return found


def _remove_empty_filter_table() -> None:
    """Delete nftables' `ip filter` (iptables-nft's) when it holds nothing but empty builtins."""
    if shutil.which("nft") is None:
        return
    listed = _run("nft", "list", "table", "ip", "filter")
    if listed.returncode != 0:
        return
    lines = [line.strip() for line in listed.stdout.splitlines() if line.strip()]
    structural = ("table ", "chain ", "type filter hook", "}", "comment ", "#")
    if all(line.startswith(structural) for line in lines) and not any(
        line.startswith("chain ") and line.split()[1] not in BUILTIN_CHAINS for line in lines
    ):
        _run("nft", "delete", "table", "ip", "filter")


def install_rbac(api: Any) -> None:
    """Create (or keep) upstream's `kube-router` ClusterRole and bind user `kube-router`."""
    kubeconfig.bind_cluster_role(api, USER, CLUSTER_ROLE)


def command(binary: Path, kubeconfig: Path, node_name: str, service_cidr: str) -> list[str]:
    """Return kube-router's command line: its firewall alone, nothing listening."""
    return [
        str(binary),
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={node_name}",
        f"--service-cluster-ip-range={service_cidr}",
        "--health-port=0",
        "--metrics-port=0",
        "--v=1",
    ]


class NetworkPolicyEngine:
    """kube-router's NetworkPolicy controller for `node_name`; logs in `work_dir`."""

    def __init__(
        self,
        api: Any,
        binary: Path,
        kubeconfig: Path,
        node_name: str,
        service_cidr: str,
        work_dir: Path,
    ) -> None:
        self.api = api
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.node_name = node_name
        self.service_cidr = service_cidr
        self.work_dir = work_dir
        self.log = work_dir / "kube-router.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """kube-router's process id (0 when it is not running)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else 0

    def start(self, timeout: float = READY_TIMEOUT) -> NetworkPolicyEngine:
        """Start kube-router and return once its first full sync is in the filter table."""
        missing = tools_missing()
        if missing:
            raise NetworkPolicyError(
                f"the node's NetworkPolicy engine (kube-router) needs {', '.join(missing)}: "
                "apt-get install iptables ipset (make node-deps)"
            )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        remove_leftovers()  # a crashed node's: its pods are gone
        install_rbac(self.api)
        argv = command(self.binary, self.kubeconfig, self.node_name, self.service_cidr)
        cmd = ["setpriv", "--pdeathsig", "TERM", "--", *argv]
        env = {**os.environ, "NODE_NAME": self.node_name}
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout
        while not self.synced():
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise NetworkPolicyError(f"kube-router exited with code {code}: read {self.log}")
            if time.monotonic() > deadline:
                self.stop()
                raise NetworkPolicyError(
                    f"kube-router did not sync within {timeout:g}s: read {self.log}"
                )
            time.sleep(0.2)
        return self

    @staticmethod
    def synced() -> bool:
        """Tell whether kube-router's first full sync is in place (its explicit ACCEPT rule)."""
        listed = _run("iptables", "-t", "filter", "-S", "KUBE-ROUTER-FORWARD")
        return listed.returncode == 0 and SYNCED in listed.stdout

    def stop(self, timeout: float = 10.0) -> None:
        """End kube-router (SIGTERM, then SIGKILL) and remove its chains and ipsets."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
                self._proc.wait()
            self._proc = None
        remove_leftovers()
