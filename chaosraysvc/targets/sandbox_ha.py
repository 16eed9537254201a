"""Gather `HaFacts` from a local sandbox: its spec.json, the env and Serve config it uses.

Works on a sandbox that is down too (only `<state dir>/spec.json` is needed): the spec says
how Redis keeps its data and whether the head is in the serve "Service"; `podspec` gives
the env every pod gets, `serve_config.serve_config` the Serve config the sandbox deploys. When the
sandbox's dashboard answers, the live replica placement is added; otherwise a note says it
was not read.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

from chaosraysvc.errors import ServeApiError
from chaosraysvc.model.ha import (
    QUEUE_LENGTH_CACHE_ENV,
    RECONNECT_ENV,
    HaFacts,
    WorkerGroupFacts,
)
from chaosraysvc.sandbox import podspec
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.serve.deployments import serve_deployments
from chaosraysvc.serve.live import apply_live, read_live

if TYPE_CHECKING:
    from chaosraysvc.targets.sandbox import SandboxTarget

__all__ = ["gather_sandbox_facts", "sandbox_env"]

SPEC_FILE = "spec.json"


def sandbox_env(role: str) -> dict[str, str]:
    """Return the Ray env the sandbox sets on a pod of `role` (head or worker), no secrets."""
    env = dict(podspec.SHARED_MACHINE_ENV) | podspec.KUBERAY_SERVE_ENV
    if role == "worker":
        env |= podspec.WORKER_GCS_FT_ENV
    return env


def _serve_config(spec: SandboxSpec) -> dict[str, Any]:
    from chaosraysvc.fruit.config import serve_config

    return serve_config(podspec.head_proxy_port(spec))


def _ray_version() -> str:
    try:
        return metadata.version("ray")
    except metadata.PackageNotFoundError:
        return ""


def gather_sandbox_facts(target: SandboxTarget, live: bool = True) -> HaFacts:
    """Return the HA facts of the sandbox `target` (which may be stopped).

    `live` reads the sandbox's dashboard too (`dashboard_url` or the spec's port); an
    unreachable one becomes a note.
    """
    box, spec = target.sandbox, target.spec
    where = str(box.state_dir / SPEC_FILE)
    facts = HaFacts(
        target=f"sandbox {spec.namespace}/{spec.rayservice_name} ({box.state_dir})",
        gcs_ft_enabled=True,
        gcs_ft_backend="redis",
        gcs_ft_source="sandbox head env RAY_REDIS_ADDRESS (GCS fault tolerance through Redis)",
        gcs_storage_persistent=spec.redis_storage == "persistent",
        gcs_storage_evidence=(
            f"redis_storage: {spec.redis_storage} in {where}"
            + (
                " (each Redis pod gets a fresh data dir, like the KubeRay sample's Redis "
                "without a volume)"
                if spec.redis_storage == "ephemeral"
                else " (the append-only file is kept across Redis pods)"
            )
        ),
        redis_topology="single",
        redis_topology_evidence="the sandbox runs one Redis process (no Sentinel)",
        head_in_serve_svc=spec.head_in_serve_svc,
        head_in_serve_svc_evidence=(
            f"head_in_serve_svc: {str(spec.head_in_serve_svc).lower()} in {where}"
            + (
                (
                    " (started without --exclude-head-from-serve-svc: the serve Service on "
                    f"port {spec.serve_port} balances to the head's proxy on port "
                    f"{spec.head_proxy_port})"
                    if spec.endpoint_ports
                    else " (started without --exclude-head-from-serve-svc: the head's proxy "
                    f"shares the serve port {spec.serve_port})"
                )
                if spec.head_in_serve_svc
                else " (--exclude-head-from-serve-svc)"
            )
        ),
        head_num_cpus="0",
        head_num_cpus_evidence="sandbox head `ray start --num-cpus=0`",
        ray_version=_ray_version(),
        ray_version_source="the ray package the sandbox runs (no image)",
    )
    if live and not spec.head_in_serve_svc and not spec.endpoint_ports and box.is_up():
        _check_head_off_the_serve_port(target, facts)
    head_env, worker_env = sandbox_env("head"), sandbox_env("worker")
    facts.queue_length_cache_timeout = {
        "head": head_env.get(QUEUE_LENGTH_CACHE_ENV, ""),
        "workers": worker_env.get(QUEUE_LENGTH_CACHE_ENV, ""),
    }
    reconnect = worker_env.get(RECONNECT_ENV)
    state = box.state()
    running = None
    if state is not None and box.is_up():
        running = sum(1 for p in state.pods if p.role == "worker" and p.phase == "Running")
    facts.worker_groups = [
        WorkerGroupFacts(
            name="worker",
            replicas=spec.workers,
            min_replicas=spec.workers,
            max_replicas=spec.workers,
            live_pods=running,
            reconnect_timeout_s=float(reconnect) if reconnect else None,
            reconnect_source=(
                "sandbox worker env (chaosraysvc.sandbox.podspec.WORKER_GCS_FT_ENV)"
                if reconnect
                else "not set by the sandbox: Ray's default"
            ),
        )
    ]
    if not reconnect:
        facts.worker_groups[0].reconnect_timeout_s = 60.0

    source = "the sandbox's Serve config (chaosraysvc.fruit.config)"
    try:
        config = _serve_config(spec)
    except ImportError as exc:
        facts.notes.append(f"Serve config not read: {exc} (install the sandbox extra)")
    else:
        location, deployments, notes = serve_deployments(config, source)
        facts.proxy_location, facts.deployments = location, deployments
        facts.notes += notes
        facts.deployments_source = source
    facts.head_proxy_running = facts.proxy_location != "Disabled"
    facts.head_proxy_evidence = (
        f"proxy_location: {facts.proxy_location} in {source}: Serve runs a proxy on the head"
    )
    if live:
        _read_dashboard(target, facts)
    return facts


def _check_head_off_the_serve_port(target: SandboxTarget, facts: HaFacts) -> None:
    """Make `head_in_serve_svc` true when the head's proxy listens on the serve port anyway.

    The spec can say the head is excluded while a cluster restored from Redis keeps the
    previous Serve config, whose HTTP port Serve does not change: the head's proxy then
    shares the serve port, and the serve Service (whoever listens there) balances to it.
    """
    port = target.spec.serve_port
    heads = [e.pod for e in target.sandbox.status(check_serve=False).endpoints if e.role == "head"]
    if heads:
        facts.head_in_serve_svc = True
        facts.head_in_serve_svc_evidence = (
            f"head_in_serve_svc: false in {target.sandbox.state_dir / SPEC_FILE}, but the "
            f"Serve proxy of the head pod {heads[0]} listens on the serve port {port}: the "
            "Service balances to it (a Ray cluster restored with the Serve config of a sandbox "
            "whose head was in the Service keeps that port)"
        )


def _read_dashboard(target: SandboxTarget, facts: HaFacts) -> None:
    try:
        apply_live(facts, read_live(target.dashboard(), target.pod_names))
    except ServeApiError as exc:
        up = "" if target.sandbox.is_up() else " (the sandbox is not up: `chaosraysvc sandbox up`)"
        facts.notes.append(f"live replica placement not inspected{up}: {exc}")
