"""The node agent process: the kubelet (with kube-proxy and CoreDNS) until SIGTERM.

    python -m chaosraysvc_lab.agent --kubeconfig K --state-dir D --node-index N \
        [--proxy-kubeconfig P] [--dns-kubeconfig C] [--netpol-kubeconfig R] \
        [--node-name NAME] [--zone Z] [--control-plane] [--no-bind] [--secondary]

Started by `chaosraysvc_lab.stack` in a session of its own (kube-proxy and CoreDNS are its
children, in that session); on SIGTERM (or SIGINT) it kills the pods it runs, ends kube-proxy
(removing its nftables tables) and CoreDNS, and removes the node's network before exiting.
kube-proxy and CoreDNS use the admin kubeconfig unless given their own; kube-router's
NetworkPolicy controller runs (and is ended, its chains and ipsets removed) when given one.
A `--secondary` agent is another node of the same lab (`stack.KubeNode.up(nodes=...)`): its
own kubelet, bridge and pods, no lock and no Service path (the first node's serve the host).
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import signal
import threading
from pathlib import Path
from typing import IO

from chaosraysvc_lab import kubeconfig, network
from chaosraysvc_lab.kubelet import Kubelet

LOCK = Path("/run/lock/chaosraysvc-kubenode.lock")
EXIT_LOCKED = 3


def try_lock() -> IO[str] | None:
    """Take the machine's node lock; return its file (keep it open to hold it) or None."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    lock = open(LOCK, "a")  # noqa: SIM115 - held as long as the file stays open
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    return lock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaosraysvc-kubelet")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--node-index", type=int, required=True)
    parser.add_argument("--node-name", default="chaosraysvc-node")
    parser.add_argument("--proxy-kubeconfig", default="")
    parser.add_argument("--dns-kubeconfig", default="")
    parser.add_argument("--netpol-kubeconfig", default="", help="run kube-router's firewall")
    parser.add_argument("--zone", default="", help="topology.kubernetes.io/zone of the Node")
    parser.add_argument("--control-plane", action="store_true", help="taint it NoSchedule")
    parser.add_argument("--no-bind", action="store_true", help="kube-scheduler binds the pods")
    parser.add_argument(
        "--secondary", action="store_true",
        help="another node of the machine's lab: no lock, no Service path (the first node's)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # One node per machine: the Service CIDR's route, kube-proxy's nftables table and the
    # ClusterIPs are the host's. The lock is held for the agent's lifetime (released by the
    # kernel on exit).
    lock = None if args.secondary else try_lock()
    if lock is None and not args.secondary:
        logging.error(
            "another chaosraysvc Kubernetes node runs on this machine (%s is locked)", LOCK
        )
        return EXIT_LOCKED
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    kubelet = Kubelet(
        kubeconfig.api_client(Path(args.kubeconfig)),
        Path(args.state_dir),
        args.node_name,
        network.NodeNetwork(args.node_index),
        proxy_kubeconfig=Path(args.proxy_kubeconfig or args.kubeconfig),
        dns_kubeconfig=Path(args.dns_kubeconfig or args.kubeconfig),
        netpol_kubeconfig=Path(args.netpol_kubeconfig) if args.netpol_kubeconfig else None,
        bind_pending=not args.no_bind,
        zone=args.zone,
        control_plane=args.control_plane,
        service_path=not args.secondary,
    )
    try:
        kubelet.start()
        logging.info("kubelet up: node %s, pods on %s", args.node_name, kubelet.net.pod_cidr)
        done.wait()
    finally:
        kubelet.stop()
        logging.info("kubelet down")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
