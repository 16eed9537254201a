"""The node's network: a bridge, one network namespace per pod, and the route to ClusterIPs.

Every address comes from 198.18.0.0/15 (reserved for benchmarking, never a real network):
a node takes a free /24 for its pods (`198.18.N.0/24`, the bridge `crsbrN` holds `.1`, the
node's address: the API server, CoreDNS and the pods' gateway). With several nodes, each has
its bridge and /24 (its pod CIDR); the host routes between them (each forward filter lets
packets between the lab's bridges pass), as a flat pod network of a CNI does. A pod's namespace has
loopback, `eth0` (a veth on the bridge, hairpin on) and a default route to the bridge: pods
reach each other directly, Services through the host, where kube-proxy's nftables rules DNAT
them (`kubeproxy.py`).

What the host gets, all of it removed by `destroy()`:

- the Service CIDR (`SERVICE_ROUTE`, 198.19.0.0/20) routed to the bridge, so the host's own
  connections to a ClusterIP take kube-proxy's nat `output` hook and leave towards the pods,
  never through the uplink (a ClusterIP without rules is answered by nobody on the bridge);
- IP forwarding for packets received on the bridge only (`net.ipv4.conf.crsbrN.forwarding`,
  which goes with the link; the global switch and the uplink's stay as they were);
- the nftables table `ip chaosraysvc-crsbrN` whose forward hook drops whatever the bridge would
  route elsewhere (pods to the uplink) and whatever would be routed into it from elsewhere;
- `net.bridge.bridge-nf-call-iptables` = 1 (bridged packets through the ip hooks: a pod
  reaching a Service whose endpoint is on the same bridge, or itself, needs kube-proxy's
  DNAT undone on the way back); the kernel's default, set and restored only if it was 0.

Only names and routes this module created are removed, by name, on teardown.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from chaosraysvc.errors import ChaosRaySvcError

POD_SUPERNET = ipaddress.ip_network("198.18.0.0/16")
SERVICE_ROUTE = "198.19.0.0/20"  # the control plane's Service CIDR, routed to the bridge
SERVICE_SUPERNET = ipaddress.ip_network("198.19.0.0/16")
BRIDGES = "crsbr*"  # every node's bridge (`NodeNetwork.bridge`): the lab's nodes' network
LINK_GONE_S = 10.0  # how long a deleted veth may take to disappear
BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
BRIDGE_NF_SAVED = Path("/run/chaosraysvc-kubenode.bridge-nf-call-iptables")  # its old value


class NetworkError(ChaosRaySvcError):
    """A namespace, link or route could not be set up (names the command and its error)."""


def ip(*args: str, netns: str = "", check: bool = True) -> str:
    """Run `ip [-n netns] args`; return stdout, raise `NetworkError` naming the command."""
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetworkError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()}")
    return done.stdout


def nft(script: str, check: bool = True) -> str:
    """Run `nft -f -` with `script`; return stdout, raise `NetworkError` naming the error."""
    try:
        done = subprocess.run(
            ["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise NetworkError(
            "nft not found: the node needs nftables (apt-get install nftables)"
        ) from exc
    if check and done.returncode != 0:
        raise NetworkError(f"nft failed on `{script.strip()}`: {done.stderr.strip()}")
    return done.stdout


def nft_tables() -> list[str]:
    """Return the nftables tables on the host as "family name" (e.g. "ip kube-proxy")."""
    done = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    return [line.removeprefix("table ").strip() for line in done.stdout.splitlines() if line]


def used_subnets() -> set[int]:
    """Return the third octets N of 198.18.N.0/24 routes present on the host."""
    used = set()
    for line in ip("-4", "route", "show", "table", "all").splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("local", "broadcast") and len(line.split()) > 1:
            word = line.split()[1]
        if word.startswith(("198.18.", "198.19.")):
            used.add(int(word.split(".")[2]))
    return used


@dataclass(frozen=True)
class NodeNetwork:
    """Addresses and names of one node's network (`index` picks the /24s and names)."""

    index: int

    @property
    def bridge(self) -> str:
        return f"crsbr{self.index}"

    @property
    def pod_cidr(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"198.18.{self.index}.0/24")

    @property
    def gateway(self) -> str:
        return str(self.pod_cidr.network_address + 1)

    @classmethod
    def pick(cls, taken: frozenset[int] = frozenset()) -> NodeNetwork:
        """Choose an index whose /24s no route uses yet (nor one of `taken`)."""
        used = used_subnets() | taken
        for index in range(10, 250):
            if index not in used:
                return cls(index)
        raise NetworkError("no free 198.18.N.0/24 left for a node network")

    def create(self, service_route: bool = True) -> None:
        """Create the bridge, the Service route, forwarding and its filter (idempotent).

        One node's network holds the Service route (the node with the control plane and the
        Service path); the others' (`service_route=False`) reach ClusterIPs through the host
        as their pods do."""
        if not ip("link", "show", self.bridge, check=False):
            ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "replace", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        if service_route:
            ip("route", "replace", SERVICE_ROUTE, "dev", self.bridge, "src", self.gateway)
        nft(self.filter_rules())
        Path(f"/proc/sys/net/ipv4/conf/{self.bridge}/forwarding").write_text("1")
        if BRIDGE_NF.exists() and BRIDGE_NF.read_text().strip() == "0":
            BRIDGE_NF_SAVED.write_text("0")
            BRIDGE_NF.write_text("1")

    @property
    def filter_table(self) -> str:
        """The nftables table (family ip) of this node's forward filter."""
        return f"chaosraysvc-{self.bridge}"

    def filter_rules(self) -> str:
        """The forward filter: the bridge's packets stay on the lab's bridges (pods and
        Services, on this node or another node of the lab)."""
        return (
            f"table ip {self.filter_table}\n"
            f"delete table ip {self.filter_table}\n"
            f"table ip {self.filter_table} {{\n"
            "  chain forward {\n"
            "    type filter hook forward priority filter - 10; policy accept;\n"
            f'    iifname "{self.bridge}" oifname "{self.bridge}" accept\n'
            f'    iifname "{BRIDGES}" oifname "{BRIDGES}" accept comment "between the nodes"\n'
            f'    iifname "{self.bridge}" drop comment "never from the pods to the uplink"\n'
            f'    oifname "{self.bridge}" drop comment "nothing routed into the pods"\n'
            "  }\n"
            "}\n"
        )

    def exists(self) -> bool:
        """Tell whether the bridge is there (created by someone else, e.g. the node's stack)."""
        return bool(ip("link", "show", self.bridge, check=False))

    def remove_pods(self) -> None:
        """Remove every pod namespace of this node (and its veth)."""
        for name in ip("netns", "list", check=False).split("\n"):
            name = name.split(" ")[0]
            if name.startswith(self.netns_prefix):
                slot = name.removeprefix(self.netns_prefix)
                if slot.isdigit():
                    self.remove_pod(int(slot))
                ip("netns", "delete", name, check=False)
        # the pods' resolv.conf (`ip netns exec` binds /etc/netns/<ns>/), which a kubelet that
        # died without removing its pods left behind
        for leftover in Path("/etc/netns").glob(f"{self.netns_prefix}*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def destroy(self) -> None:
        """Remove every pod namespace of this node, the bridge, its route and filter."""
        self.remove_pods()
        ip("link", "delete", self.bridge, check=False)  # its address, route and forwarding
        if f"ip {self.filter_table}" in nft_tables():
            nft(f"delete table ip {self.filter_table}\n")
        others = [w for w in ip("-o", "link", "show", "type", "bridge", check=False).split()
                  if w.startswith(BRIDGES.rstrip("*"))]  # fmt: skip
        if BRIDGE_NF_SAVED.exists() and not others:  # the lab's last node's network
            BRIDGE_NF.write_text(BRIDGE_NF_SAVED.read_text().strip())
            BRIDGE_NF_SAVED.unlink()

    @property
    def netns_prefix(self) -> str:
        return f"crs{self.index}-"

    def pod_netns(self, slot: int) -> str:
        return f"{self.netns_prefix}{slot}"

    def pod_ip(self, slot: int) -> str:
        return str(self.pod_cidr.network_address + 10 + slot)

    def add_pod(self, slot: int) -> tuple[str, str]:
        """Create pod namespace `slot` on the bridge; return (namespace name, pod IP)."""
        netns = self.pod_netns(slot)
        pod_ip = self.pod_ip(slot)
        host_if = self.host_if(slot)
        self.remove_pod(slot)
        ip("netns", "add", netns)
        ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", netns)
        ip("link", "set", host_if, "master", self.bridge)
        ip("link", "set", host_if, "type", "bridge_slave", "hairpin", "on")
        ip("link", "set", host_if, "up")
        ip("link", "set", "lo", "up", netns=netns)
        ip("addr", "add", f"{pod_ip}/24", "dev", "eth0", netns=netns)
        ip("link", "set", "eth0", "up", netns=netns)
        ip("route", "add", "default", "via", self.gateway, netns=netns)
        return netns, pod_ip

    def host_if(self, slot: int) -> str:
        """The host end of pod `slot`'s veth pair (on the bridge)."""
        return f"crsv{self.index}x{slot}"

    def remove_pod(self, slot: int) -> None:
        """Delete pod `slot`'s veth and namespace; idempotent.

        The veth is deleted first, and waited for: `ip netns delete` returns before the kernel
        destroys the namespace's devices, and a pod started meanwhile in the same slot (a
        replacement, or the next node's) found the name still taken ("File exists").
        """
        host_if = self.host_if(slot)
        ip("link", "delete", host_if, check=False)
        ip("netns", "delete", self.pod_netns(slot), check=False)
        deadline = time.monotonic() + LINK_GONE_S
        while ip("link", "show", host_if, check=False) and time.monotonic() < deadline:
            time.sleep(0.05)
