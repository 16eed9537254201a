"""`chaosraysvc-lab controlplane up | down | status`: the local Kubernetes control plane alone."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from chaosraysvc_lab.controlplane import STATE_FILE, ControlPlane

ENV_VAR = "RAYSVC_CONTROLPLANE_DIR"


def default_state_dir() -> Path:
    """`$RAYSVC_CONTROLPLANE_DIR`, else `~/.local/state/chaosraysvc/controlplane`."""
    explicit = os.environ.get(ENV_VAR, "")
    if explicit:
        return Path(explicit)
    return Path.home() / ".local" / "state" / "chaosraysvc" / "controlplane"


# Where, under a state directory, a control plane may keep its state: a node's
# (`chaosraysvc-lab node up --state-dir DIR`: DIR/cp) or a node under a sandbox's state
# directory (DIR/kube/cp).
PLANE_PLACES = ("cp", "kube/cp")


def plane_dir(state_dir: Path) -> Path:
    """The control plane's own directory: `state_dir` when its state is there, else the first
    of `state_dir/cp` and `state_dir/kube/cp` that holds one (or is a directory)."""
    if (state_dir / STATE_FILE).is_file():
        return state_dir
    for place in PLANE_PLACES:
        if (state_dir / place / STATE_FILE).is_file():
            return state_dir / place
    for place in PLANE_PLACES:
        if (state_dir / place).is_dir():
            return state_dir / place
    return state_dir


def _plane(args: argparse.Namespace) -> ControlPlane:
    return ControlPlane(plane_dir(Path(args.state_dir) if args.state_dir else default_state_dir()))


def _say(message: str) -> None:
    print(message, flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    plane = _plane(args)
    state = plane.up(
        scheduler=args.scheduler, operator=args.operator, timeout=args.timeout, progress=_say
    )
    _say(f"API server: {state.server}")
    _say(f"kubeconfig: export KUBECONFIG={plane.kubeconfig}")
    _say(f"stop it with: chaosraysvc-lab controlplane down --state-dir {plane.state_dir}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    plane = _plane(args)
    result = plane.down()
    if not result.was_up:
        _say(f"no control plane is up in {plane.state_dir}: nothing to do")
    else:
        _say(f"control plane down in {result.seconds:.1f}s ({', '.join(result.ended)})")
    if result.leftovers:
        _say(f"warning: still alive: {', '.join(result.leftovers)}")
        return 1
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    plane = _plane(args)
    state = plane.state()
    up = plane.running()
    components = {c.name: c.alive() for c in state.components} if state else {}
    body = {
        "state_dir": str(plane.state_dir),
        "up": up,
        "server": state.server if state else "",
        "kubeconfig": str(plane.kubeconfig) if up else "",
        "components": components,
        "ready_seconds": state.ready_seconds if state else 0.0,
    }
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        _say(f"control plane in {plane.state_dir}: {'up' if up else 'down'}")
        for name, alive in components.items():
            _say(f"  {name:<26} {'running' if alive else 'not running'}")
        if up:
            _say(f"  API server {body['server']}, KUBECONFIG={body['kubeconfig']}")
    return 0 if up else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "controlplane",
        help="a real local Kubernetes control plane (etcd, kube-apiserver, controller-manager)",
        description="Start, inspect or stop a real Kubernetes control plane on loopback, built "
        "from pinned Go modules (the first start builds them: minutes).",
    )
    commands = parser.add_subparsers(dest="controlplane_command", metavar="COMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        default="",
        help=f"where certificates, etcd data and logs live (default: ${ENV_VAR} or "
        "~/.local/state/chaosraysvc/controlplane)",
    )
    up = commands.add_parser("up", parents=[common], help="start it; returns once ready")
    up.add_argument("--scheduler", action="store_true", help="also run kube-scheduler")
    up.add_argument(
        "--operator", action="store_true", help="also run the real KubeRay operator (pinned)"
    )
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    up.set_defaults(func=cmd_up)
    down = commands.add_parser("down", parents=[common], help="end every process it started")
    down.set_defaults(func=cmd_down)
    status = commands.add_parser("status", parents=[common], help="which components run")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_status)
