"""The `chaosraysvc-lab` command: the lab's one-machine Kubernetes, apart from the extension.

chaosraysvc-lab node up [--exclude-head-from-serve-svc] [--no-network-policy] [--state-dir DIR]
                        [--redis single|sentinel] [--prometheus-scrape-interval SECONDS]
                        [--head-only] [--head-start-delay SECONDS] [--sentinel-down-after-ms MS]
                        [--nodes N [--zones Z [--spread-zones]]]
    a whole node: control plane, the real KubeRay operator, the process kubelet (with
    kube-proxy, CoreDNS and kube-router's NetworkPolicy firewall), Prometheus scraping the
    Ray pods and a Pushgateway, and KubeRay's HA sample applied; writes DIR/kube.env for the
    kubernetes target; with --nodes N (2-5), N nodes in zones zone-a... run the pods, placed
    by the real kube-scheduler, beside the control plane's node (--zones Z: over Z zones;
    --spread-zones: the Ray pods spread over them, Redis out of the head's)
chaosraysvc-lab node metrics [--state-dir DIR] [--prometheus-scrape-interval SECONDS]
    Prometheus and the Pushgateway beside a running node brought up without them; adds their
    URLs to DIR/kube.env
chaosraysvc-lab node lose|restore NODE [NODE ...] [--state-dir DIR]
    lose nodes that run pods as machines are lost (their kubelet and containers killed,
    their network silent; the control plane decides the rest), or bring them back
chaosraysvc-lab node down|status [--state-dir DIR]
chaosraysvc-lab controlplane up|down|status [--operator] [--scheduler] [--state-dir DIR]
    the API server and controllers alone (no kubelet, no pods)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc_lab import controlplane_cli, redis_ha

NODE_DIR_VAR = "RAYSVC_LAB_DIR"


def default_node_dir() -> Path:
    """`$RAYSVC_LAB_DIR`, else `~/.local/state/chaosraysvc/lab`."""
    explicit = os.environ.get(NODE_DIR_VAR, "")
    return Path(explicit) if explicit else Path.home() / ".local" / "state" / "chaosraysvc" / "lab"


def _say(message: str) -> None:
    print(message, flush=True)


def node_dir(state_dir: Path) -> Path:
    """The node's own directory: `state_dir`, or `state_dir/kube` when the node's state is
    there (where `chaosraysvc sandbox up --kubernetes` put it under a sandbox state dir)."""
    from chaosraysvc_lab.stack import STATE_FILE

    if not (state_dir / STATE_FILE).is_file() and (state_dir / "kube" / STATE_FILE).is_file():
        return state_dir / "kube"
    return state_dir


def _node_dir(args: argparse.Namespace) -> Path:
    """The directory `node up` starts a node in: --state-dir as given, else the default."""
    return Path(args.state_dir) if args.state_dir else default_node_dir()


def _existing_node_dir(args: argparse.Namespace) -> Path:
    """The directory of the node `node status|down` reads: --state-dir, or its `kube/`."""
    return node_dir(_node_dir(args))


def cmd_node_up(args: argparse.Namespace) -> int:
    from chaosraysvc_lab.stack import KubeNode

    node = KubeNode(_node_dir(args))
    node.up(
        exclude_head=args.exclude_head_from_serve_svc,
        timeout=args.timeout,
        progress=_say,
        network_policy=not args.no_network_policy,
        redis=args.redis,
        scrape_interval=args.prometheus_scrape_interval,
        head_only=args.head_only,
        head_start_delay=args.head_start_delay,
        nodes=args.nodes,
        zones=args.zones,
        spread_zones=args.spread_zones,
        sentinel_down_after_ms=args.sentinel_down_after_ms,
    )
    _say(f"the kubernetes target's settings: source {node.env_file}")
    _say(f"stop it with: chaosraysvc-lab node down --state-dir {node.state_dir}")
    return 0


def cmd_node_metrics(args: argparse.Namespace) -> int:
    from chaosraysvc_lab.stack import KubeNode

    node = KubeNode(_node_dir(args))
    settings = node.start_metrics(args.prometheus_scrape_interval, progress=_say)
    _say(f"Prometheus {settings['RAYSVC_PROMETHEUS_URL']}, Pushgateway "
         f"{settings['RAYSVC_METRICS_PUSHGATEWAY']}: source {node.env_file}")  # fmt: skip
    return 0


def cmd_node_down(args: argparse.Namespace) -> int:
    from chaosraysvc_lab.stack import KubeNode

    node = KubeNode(_existing_node_dir(args))
    was_up = node.running() or (node.state_dir / "node.json").exists()
    leftovers = node.down()
    if leftovers:
        _say(f"Kubernetes node down; still alive: {', '.join(leftovers)}")
        return 1
    _say("Kubernetes node down" if was_up else f"no node is up in {node.state_dir}: nothing to do")
    return 0


def cmd_node_lose(args: argparse.Namespace) -> int:
    from chaosraysvc_lab.stack import KubeNode

    node = KubeNode(_existing_node_dir(args))
    lost = node.lose_nodes(args.nodes)
    _say(f"lost {', '.join(lost)}: kubelet and containers killed, network silent; "
         f"bring back with: chaosraysvc-lab node restore {' '.join(lost)} "
         f"--state-dir {node.state_dir}")  # fmt: skip
    return 0


def cmd_node_restore(args: argparse.Namespace) -> int:
    from chaosraysvc_lab.stack import KubeNode

    node = KubeNode(_existing_node_dir(args))
    restored = node.restore_nodes(args.nodes)
    _say(f"restored {', '.join(restored)}: network back, a new kubelet each")
    return 0


def cmd_node_status(args: argparse.Namespace) -> int:
    from chaosraysvc_lab.stack import KubeNode

    node = KubeNode(_existing_node_dir(args))
    up = node.running()
    body = {"state_dir": str(node.state_dir), "up": up, "env_file": str(node.env_file)}
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        _say(f"Kubernetes node in {node.state_dir}: {'up' if up else 'down'}")
        if up:
            _say(f"  the kubernetes target's settings: source {node.env_file}")
    return 0 if up else 1


def _register_node(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "node",
        help="a one-machine Kubernetes node running KubeRay's HA sample",
        description="Start, inspect or stop a one-machine Kubernetes node: the real control "
        "plane and KubeRay operator (built from pinned Go modules: make controlplane), a process "
        "kubelet (needs root: network namespaces), and KubeRay's ray-service.high-availability "
        "sample applied.",
    )
    commands = parser.add_subparsers(dest="node_command", metavar="COMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        default="",
        help=f"the node's directory (default: ${NODE_DIR_VAR} or ~/.local/state/chaosraysvc/lab)",
    )
    up = commands.add_parser("up", parents=[common], help="start it; returns once Ready")
    up.add_argument(
        "--exclude-head-from-serve-svc",
        action="store_true",
        help="set KubeRay's excludeHeadPodFromServeSvc on the sample's RayService",
    )
    up.add_argument(
        "--no-network-policy",
        action="store_true",
        help="do not run kube-router's firewall: NetworkPolicies are then stored, not enforced "
        "(as on a cluster whose network plugin ignores them)",
    )
    up.add_argument(
        "--redis",
        choices=("single", "sentinel"),
        default="single",
        help="the GCS's Redis: the sample's single instance (default), or a primary, a replica "
        "and three Sentinels, the GCS connecting through the Sentinels (redis_ha.py)",
    )
    up.add_argument(
        "--prometheus-scrape-interval",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="Prometheus scrapes the Ray pods' metrics and the operator's this often (15; "
        "0: no Prometheus and no Pushgateway); their URLs go into kube.env as "
        "RAYSVC_PROMETHEUS_URL and RAYSVC_METRICS_PUSHGATEWAY",
    )
    up.add_argument(
        "--head-only",
        action="store_true",
        help="a deliberately fragile RayService: no worker, every Serve replica and the only "
        "proxy on the head (a head-kill then stops the service until a new head serves)",
    )
    up.add_argument(
        "--head-start-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="the head pod sleeps this long in an init container before Ray starts (as a pull "
        "of Ray's image on a new node delays it); 0: none",
    )
    up.add_argument(
        "--nodes",
        type=int,
        default=1,
        metavar="N",
        help="nodes that run the pods (1: one node does everything; 2-5: that many, in zones "
        "zone-a..., placed by kube-scheduler, beside the control plane's tainted node)",
    )
    up.add_argument(
        "--zones",
        type=int,
        default=0,
        metavar="Z",
        help="with --nodes N: spread the N nodes over Z zones in turn (0: one zone per node); "
        "fewer zones than nodes put several nodes in a zone, for a zone loss",
    )
    up.add_argument(
        "--sentinel-down-after-ms",
        type=int,
        default=redis_ha.DOWN_AFTER_MS,
        metavar="MS",
        help=f"with --redis sentinel: the Sentinels' down-after-milliseconds "
        f"({redis_ha.DOWN_AFTER_MS}; Redis' own default is 30000)",
    )
    up.add_argument(
        "--spread-zones",
        action="store_true",
        help="with 3 zones or more: the sample's Ray pods spread over the zones "
        "(topologySpreadConstraints) and its Redis kept out of the head's zone",
    )
    up.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (300)")
    up.set_defaults(func=cmd_node_up)
    metrics = commands.add_parser(
        "metrics",
        parents=[common],
        help="start Prometheus and the Pushgateway beside a running node brought up without "
        "them (--prometheus-scrape-interval 0)",
    )
    metrics.add_argument(
        "--prometheus-scrape-interval",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how often Prometheus scrapes the Ray pods, the operator and the Pushgateway (15)",
    )
    metrics.set_defaults(func=cmd_node_metrics)
    for verb, func, what in (
        ("lose", cmd_node_lose, "lose nodes that run pods as a machine is lost"),
        ("restore", cmd_node_restore, "bring lost nodes back"),
    ):
        command = commands.add_parser(verb, parents=[common], help=what)
        command.add_argument("nodes", nargs="+", metavar="NODE",
                             help="a node that runs pods, e.g. chaosraysvc-worker-a")  # fmt: skip
        command.set_defaults(func=func)
    down = commands.add_parser("down", parents=[common], help="end every process it started")
    down.set_defaults(func=cmd_node_down)
    status = commands.add_parser("status", parents=[common], help="is it up")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_node_status)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaosraysvc-lab",
        description="The chaosraysvc lab: a one-machine Kubernetes with the real control plane "
        "and KubeRay operator, where chaosraysvc's tests and findings are measured.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _register_node(sub)
    controlplane_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args))
    except ChaosRaySvcError as exc:
        print(f"chaosraysvc-lab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("chaosraysvc-lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
