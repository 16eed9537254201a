"""`chaosraysvc sandbox up | down | status | logs`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chaosraysvc.config import default_sandbox_dir, resolve_sandbox_dir
from chaosraysvc.errors import ConfigurationError, NotFoundError
from chaosraysvc.sandbox.manager import Sandbox
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.sandbox.status import SandboxStatus


def _say(message: str) -> None:
    print(message, flush=True)


def _state_dir(args: argparse.Namespace) -> Path:
    """--state-dir, else $RAYSVC_SANDBOX_DIR, else the default: the rule of every command."""
    return resolve_sandbox_dir(args.state_dir)


def cmd_up(args: argparse.Namespace) -> int:
    if args.kubernetes:
        raise ConfigurationError(f"sandbox up --kubernetes: {LAB_MOVED}")
    spec = SandboxSpec(
        state_dir=_state_dir(args),
        serve_port=args.serve_port,
        dashboard_port=args.dashboard_port,
        workers=args.workers,
        restart_delay=args.restart_delay,
        redis_storage=args.redis_storage,
        head_in_serve_svc=not args.exclude_head_from_serve_svc,
        endpoint_ports=args.endpoint_ports,
        redis_port=args.redis_port,
        gcs_port=args.gcs_port,
    )
    spec.validate()
    status = Sandbox(spec.state_dir).up(
        spec, timeout=args.timeout, progress=_say, keep_state=args.keep_state
    )
    print(render_status(status))
    return 0


LAB_MOVED = (
    "the one-machine Kubernetes node is the lab's, with its own command: "
    "`chaosraysvc-lab node up|status|down --state-dir DIR` (installed by `make`)"
)


# The file a lab node (`chaosraysvc-lab node up`) keeps its state in, and where, under a
# state directory, an older `sandbox up --kubernetes` put it. Detected by files: the
# extension never imports the lab (.importlinter).
LAB_NODE_FILE = "node.json"
LAB_NODE_PLACES = ("", "kube")


def lab_node_dir(state_dir: Path) -> Path | None:
    """Return the lab node's state directory in `state_dir` (itself or `kube/`), or None."""
    for place in LAB_NODE_PLACES:
        found = state_dir / place if place else state_dir
        if (found / LAB_NODE_FILE).is_file():
            return found
    return None


def lab_node_note(state_dir: Path, verb: str = "see it") -> str:
    """Return the line naming the lab node's state in `state_dir` and its command, or ""."""
    found = lab_node_dir(state_dir)
    if found is None:
        return ""
    command = "status" if verb == "see it" else "down"
    return (
        f"a lab node's state is in {found}: {verb} with "
        f"`chaosraysvc-lab node {command} --state-dir {state_dir}`"
    )


def _lab_state_note(state_dir: Path) -> None:
    """Say where a node started in this dir (by the lab, or an older `sandbox up
    --kubernetes`) is stopped."""
    note = lab_node_note(state_dir, verb="stop it")
    if note:
        _say(note)


def cmd_down(args: argparse.Namespace) -> int:
    _lab_state_note(_state_dir(args))
    result = Sandbox(_state_dir(args)).down()
    if not result.was_up and not result.pods_ended:
        _say(f"no sandbox is up in {_state_dir(args)}: nothing to do")
    else:
        _say(f"sandbox down in {result.seconds:.1f}s ({result.pods_ended} pod session(s) ended)")
    if result.leftovers:
        _say(f"warning: processes still alive: {result.leftovers}")
        return 1
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    status = Sandbox(state_dir).status()
    node = lab_node_dir(state_dir)
    if args.json:
        body = status.to_json()
        body["lab_node_state_dir"] = str(node) if node else ""
        print(json.dumps(body, indent=2))
    else:
        print(render_status(status))
        if node is not None:
            print(lab_node_note(state_dir))
    return 0 if status.state in ("up", "absent", "down") else 1


def cmd_logs(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    try:
        print(Sandbox(state_dir).logs(args.pod, args.lines))
    except NotFoundError as exc:
        note = lab_node_note(state_dir)
        if not note:
            raise
        raise NotFoundError(
            f"{exc}; {note} (its pods' logs: `kubectl logs` with its kube.env sourced)"
        ) from exc
    return 0


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _table(rows: list[list[Any]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(line.rstrip() for line in lines)


def render_status(status: SandboxStatus) -> str:
    """Render a status as the readable table `sandbox status` prints."""
    if status.state in ("absent", "down"):
        return (
            f"sandbox: {status.state} ({status.state_dir}); start it with `chaosraysvc sandbox up`"
        )
    lines = [f"sandbox: {status.state}  ({status.state_dir})", ""]
    rows: list[list[Any]] = [["POD", "TYPE", "PHASE", "READY", "AGE", "RESTARTS"]]
    for p in status.pods:
        kind = p.labels.get("ray.io/node-type", p.role)
        rows.append([p.name, kind, p.phase, "1/1" if p.ready else "0/1", _age(p.age_s), p.restarts])
    lines += [_table(rows), ""]
    lines.append(f"serve endpoints: {status.endpoints_ready}/{len(status.endpoints)} ready")
    for e in status.endpoints:
        if e.url != status.serve_url:  # each proxy on a port of its own
            where = e.url or "(no address yet)"
            lines.append(f"  {e.pod}  {where}  {'ready' if e.ready else 'not ready'}")
    apps = ", ".join(f"{n}: {s}" for n, s in status.applications.items()) or "unknown"
    lines.append(f"applications:    {apps}")
    for name, message in status.application_messages.items():
        lines.append(f"  {name}: {message.splitlines()[0][:160]}")
    lines.append(f"serve URL:       {status.serve_url}/fruit/")
    lines.append(f"dashboard URL:   {status.dashboard_url}")
    if status.message:
        lines.append(f"note: {status.message}")
    return "\n".join(lines)


def register(sub: Any) -> None:
    sandbox = sub.add_parser("sandbox", help="run the local RayService HA sandbox")
    actions = sandbox.add_subparsers(dest="action", metavar="ACTION", required=True)

    def with_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--state-dir",
            default="",
            help="sandbox state directory "
            f"(default $RAYSVC_SANDBOX_DIR or {default_sandbox_dir()})",
        )
        return p

    up = with_dir(
        actions.add_parser(
            "up",
            help="start Redis, a Ray head, workers and the fruit app (a new Ray cluster)",
            description="Start a sandbox in the state directory. It starts a new Ray cluster: "
            "what a previous sandbox left there that would carry its cluster over (the GCS "
            "Redis data in STATE_DIR/redis-data and the Redis configs in STATE_DIR/redis) is "
            "removed first, unless --keep-state. Logs (STATE_DIR/logs) are kept and appended "
            "to; spec.json, state.json and redis-password are rewritten.",
        )
    )
    up.add_argument("--workers", type=int, default=2, help="worker pods (default 2)")
    up.add_argument(
        "--serve-port", type=int, default=8000, help="serve Service port (default 8000)"
    )
    up.add_argument(
        "--dashboard-port", type=int, default=8265, help="dashboard port (default 8265)"
    )
    up.add_argument("--redis-port", type=int, default=0, help="Redis port (default: a free one)")
    up.add_argument("--gcs-port", type=int, default=0, help="head GCS port (default: a free one)")
    up.add_argument(
        "--restart-delay",
        type=float,
        default=5.0,
        help="seconds before a lost pod is recreated (5)",
    )
    up.add_argument(
        "--redis-storage",
        choices=("persistent", "ephemeral"),
        default="persistent",
        help="persistent: Redis keeps its append-only file across its pods (not across `up`s, "
        "see --keep-state); ephemeral: like the "
        "KubeRay sample's Redis without a volume, a deleted Redis pod loses all GCS data",
    )
    up.add_argument(
        "--exclude-head-from-serve-svc",
        action="store_true",
        help="keep the head's proxy out of the serve Service (KubeRay excludeHeadPodFromServeSvc)",
    )
    up.add_argument(
        "--endpoint-ports",
        action="store_true",
        help="give every node's proxy a port of its own (an endpoint, as a pod IP is) and serve "
        "the serve port through a balancer over the ready ones, as kube-proxy does; lets "
        "traffic target each endpoint (endpoints: serve_endpoints)",
    )
    up.add_argument(
        "--keep-state",
        action="store_true",
        help="keep the previous sandbox's GCS Redis data (STATE_DIR/redis-data): the new head "
        "restores its Ray session, jobs and Serve applications instead of starting clean "
        "(persistent Redis, and the same serve and dashboard ports, only)",
    )
    up.add_argument(
        "--kubernetes",
        action="store_true",
        help=argparse.SUPPRESS,  # moved to the lab: `chaosraysvc-lab node up` (says so)
    )
    up.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for ready (240)")
    up.set_defaults(func=cmd_up)

    down = with_dir(actions.add_parser("down", help="stop the sandbox, leaving no process"))
    down.set_defaults(func=cmd_down)

    status = with_dir(actions.add_parser("status", help="show pods, endpoints and applications"))
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_status)

    logs = with_dir(actions.add_parser("logs", help="show the supervisor's or a pod's log"))
    logs.add_argument("pod", nargs="?", default="", help="pod name (default: the supervisor)")
    logs.add_argument("-n", "--lines", type=int, default=40, help="lines to show (40)")
    logs.set_defaults(func=cmd_logs)
