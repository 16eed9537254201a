"""Losing one of the lab's nodes as a machine is lost: power gone, no goodbye.

`lose(worker)` does to a node that runs pods (`chaosraysvc-worker-*`) what a dead machine
does to Kubernetes, and nothing more:

- its kubelet ends at once (SIGKILL to the agent's session): the Node's Lease stops being
  renewed and no pod status is written again; nothing is written to the API server for it;
- every container it ran dies at once (SIGKILL to each session it recorded), as the
  machine's processes die with it;
- its network goes silent: an nftables table (`ip chaosraysvc-lost-crsbrN`) drops every
  packet to and from its pod CIDR on the host (output, input and forward hooks, after
  kube-proxy's DNAT), so a connection to one of its pods, new or established, gets no
  answer at all (no reset, no ICMP), as a powered-off machine behind a flat pod network.

What follows is the real control plane's: the node-lifecycle controller marks the Node
NotReady once its Lease is older than the grace period (50 s), taints it
`node.kubernetes.io/unreachable`, marks its pods not ready (the EndpointSlice controller
then drops them from Services), and the taint-eviction controller deletes them after their
tolerations (300 s by default). A deleted pod of a node nobody runs stays Terminating until
the Node object is deleted (a cloud's node controller does that when the instance is gone)
and the pod garbage collector removes it.

`restore(worker, start)` is the machine coming back: the drop table removed, the pod
namespaces the dead kubelet left removed, and a new kubelet started by `start` (the node's
stack) with the same name, network and state directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaosraysvc.runtime import sessions as procs
from chaosraysvc_lab import network

__all__ = ["drop_table", "is_lost", "lose", "restore_network"]
LOST_PREFIX = "chaosraysvc-lost-"


def drop_table(net: network.NodeNetwork) -> str:
    """The nftables table (family ip) that silences node `net`."""
    return f"{LOST_PREFIX}{net.bridge}"


def _drop_rules(net: network.NodeNetwork) -> str:
    cidr = str(net.pod_cidr)
    table = drop_table(net)
    return (
        f"table ip {table}\n"
        f"delete table ip {table}\n"
        f"table ip {table} {{\n"
        "  chain output {\n"
        "    type filter hook output priority filter - 20; policy accept;\n"
        f'    ip daddr {cidr} drop comment "the host to the lost node"\n'
        "  }\n"
        "  chain input {\n"
        "    type filter hook input priority filter - 20; policy accept;\n"
        f"    ip saddr {cidr} drop\n"
        "  }\n"
        "  chain forward {\n"
        "    type filter hook forward priority filter - 20; policy accept;\n"
        f'    ip daddr {cidr} drop comment "other nodes\' pods to the lost node"\n'
        f"    ip saddr {cidr} drop\n"
        "  }\n"
        "}\n"
    )


def is_lost(net: network.NodeNetwork) -> bool:
    """Tell whether node `net`'s network is silenced."""
    return f"ip {drop_table(net)}" in network.nft_tables()


def lose(worker: dict[str, Any]) -> list[int]:
    """Silence the network of the node `worker` (a record of the stack's state), then kill
    its kubelet and every container it started; return the container sessions that could
    not be ended ([] normally)."""
    net = network.NodeNetwork(worker["node_index"])
    # the network first: nothing the dying processes send reaches anyone
    network.nft(_drop_rules(net))
    if procs.running(worker["sid"], worker["ticks"]):
        procs.kill_session(worker["sid"])
        procs.reap(worker["sid"])
    return procs.end_recorded(Path(worker["state_dir"]) / "sessions", timeout=5.0)


def restore_network(worker: dict[str, Any]) -> None:
    """Remove what `lose` left of node `worker`'s network: the drop table and the pod
    namespaces of the kubelet that died (a new kubelet makes its pods' anew)."""
    net = network.NodeNetwork(worker["node_index"])
    net.remove_pods()
    if is_lost(net):
        network.nft(f"delete table ip {drop_table(net)}\n")
