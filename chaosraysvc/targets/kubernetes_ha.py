"""Gather `HaFacts` from a RayService in a Kubernetes cluster.

Reads, with the calls the shipped Role grants (get rayservices, list pods, get services,
get services/proxy for the dashboard):
the RayService spec (`excludeHeadPodFromServeSvc`, `serveConfigV2`, `rayClusterConfig`:
`rayVersion`, `enableInTreeAutoscaling`, the head and worker templates' image, env and
`rayStartParams`, `workerGroupSpecs[].replicas/minReplicas`), the active RayCluster's live
pods (their env, as KubeRay completed it, and the head's `ray.io/serve` label), the GCS
fault-tolerance set-up with the Redis pod's data volume, and, when the dashboard answers
(`dashboard_url`, the head Service in the cluster, or through the API server's service
proxy), the live replica placement.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import yaml
from kubernetes import client

from chaosraysvc.errors import (
    ConfigurationError,
    KubernetesApiError,
    NotFoundError,
    ServeApiError,
    TargetNotReadyError,
)
from chaosraysvc.kube.pods import cluster_selector, names_by_ip, role_of
from chaosraysvc.kube.rayservice import active_cluster_name, gcs_ft_config
from chaosraysvc.kube.redis import (
    data_dir,
    find_redis_pods,
    redis_container,
    runs_sentinel,
    volume_keeps_data,
)
from chaosraysvc.model import GcsFaultTolerance
from chaosraysvc.model.ha import (
    DRAIN_TIMEOUT_ENV,
    KUBERAY_FT_RECONNECT_S,
    POD_GRACE_DEFAULT_S,
    QUEUE_LENGTH_CACHE_ENV,
    RAY_DRAIN_TIMEOUT_DEFAULT_S,
    RAY_RECONNECT_DEFAULT_S,
    RECONNECT_ENV,
    REDIS_CONNECT_RETRIES_ENV,
    HaFacts,
    WorkerGroupFacts,
)
from chaosraysvc.serve.deployments import int_value, serve_deployments
from chaosraysvc.serve.live import apply_live, read_live
from chaosraysvc.serve.nodes import RayNode

if TYPE_CHECKING:
    from chaosraysvc.targets.kubernetes import KubernetesTarget

__all__ = ["gather_kubernetes_facts"]

logger = logging.getLogger("chaostoolkit")

SPEC = "spec.rayClusterConfig"
GROUP_LABEL = "ray.io/group"
SERVE_LABEL = "ray.io/serve"
ZONE_LABEL = "topology.kubernetes.io/zone"


def _dig(obj: Any, *keys: str | int) -> Any:
    for key in keys:
        if isinstance(key, int):
            if not isinstance(obj, list) or len(obj) <= key:
                return None
        elif not isinstance(obj, Mapping):
            return None
        obj = obj[key] if isinstance(key, int) else obj.get(key)
    return obj


def _serve_config(spec: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, str]:
    text = spec.get("serveConfigV2")
    if not text:
        return None, "spec.serveConfigV2 is empty: no Serve deployment to check in the spec"
    try:
        config = yaml.safe_load(str(text))
    except yaml.YAMLError as exc:
        return None, f"spec.serveConfigV2 is not valid YAML ({exc.__class__.__name__})"
    if not isinstance(config, Mapping):
        return None, "spec.serveConfigV2 is not a YAML mapping"
    return config, ""


# -- containers and pods -----------------------------------------------------------------------


def _template_container(group: Mapping[str, Any]) -> Mapping[str, Any]:
    container = _dig(group, "template", "spec", "containers", 0)
    return container if isinstance(container, Mapping) else {}


def _zone_spread_counts_tainted(group: Mapping[str, Any]) -> bool:
    """Whether the group's pod template requires a spread over zones (DoNotSchedule) and
    counts tainted nodes in it (nodeTaintsPolicy unset: Ignore)."""
    spread = _dig(group, "template", "spec", "topologySpreadConstraints")
    return any(
        isinstance(c, Mapping)
        and c.get("topologyKey") == ZONE_LABEL
        and c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule"
        and c.get("nodeTaintsPolicy", "Ignore") != "Honor"
        for c in (spread if isinstance(spread, list) else [])
    )


def _template_env(container: Mapping[str, Any], name: str) -> str | None:
    for item in container.get("env") or []:
        if isinstance(item, Mapping) and item.get("name") == name:
            if "value" in item:
                return str(item.get("value") or "")
            return "(from valueFrom, not read)"
    return None


def _pod_env(pod: client.V1Pod, name: str) -> str | None:
    containers = (pod.spec and pod.spec.containers) or []
    if not containers:
        return None
    for item in containers[0].env or []:
        if item.name == name:
            if item.value_from is not None:
                return "(from valueFrom, not read)"
            return str(item.value or "")
    return None


def _pod_name(pod: client.V1Pod) -> str:
    return str((pod.metadata and pod.metadata.name) or "")


def _labels(pod: client.V1Pod) -> dict[str, str]:
    return dict((pod.metadata and pod.metadata.labels) or {})


def _live(pod: client.V1Pod) -> bool:
    return not (pod.metadata and pod.metadata.deletion_timestamp) and (
        str((pod.status and pod.status.phase) or "") == "Running"
    )


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# -- GCS storage -------------------------------------------------------------------------------


def _redis_evidence(pod: client.V1Pod) -> str:
    name = _pod_name(pod)
    container = redis_container(pod)
    if container is None:
        return f"Redis pod {name}: no Redis container recognised"
    directory = data_dir(container)
    if directory is None:
        return f"Redis pod {name}: its data directory cannot be told (no --dir, unknown image)"
    volumes = {v.name: v for v in (pod.spec and pod.spec.volumes) or []}
    mounts = [
        m
        for m in container.volume_mounts or []
        if directory.rstrip("/") == str(m.mount_path).rstrip("/")
        or directory.startswith(str(m.mount_path).rstrip("/") + "/")
    ]
    if not mounts:
        return f"Redis pod {name}: no volume mounted at its data directory {directory}"
    mount = max(mounts, key=lambda m: len(str(m.mount_path)))
    volume = volumes.get(mount.name)
    if volume is None:
        return f"Redis pod {name}: {directory} mounts volume '{mount.name}', which is not declared"
    kinds = [k for k, v in volume.to_dict().items() if k != "name" and v]
    kind = kinds[0] if kinds else "unknown"
    lasting = "outlives the pod" if volume_keeps_data(volume) else "is lost with the pod"
    return f"Redis pod {name}: {directory} is on volume '{mount.name}' ({kind}), which {lasting}"


def _gcs_storage(target: KubernetesTarget, rayservice: Mapping[str, Any], facts: HaFacts) -> None:
    try:
        ft = target.gcs_fault_tolerance()
    except (NotFoundError, TargetNotReadyError) as exc:
        config = gcs_ft_config(rayservice)
        ft = GcsFaultTolerance(
            config.enabled, config.backend, config.redis_address, None, config.source
        )
        facts.gcs_storage_evidence = f"store not inspected: {exc}"
    facts.gcs_ft_enabled = ft.enabled
    facts.gcs_ft_backend = ft.backend
    facts.gcs_ft_source = ft.source + (f" = {ft.redis_address}" if ft.redis_address else "")
    facts.gcs_storage_persistent = ft.persistent
    if facts.gcs_storage_evidence or not ft.enabled:
        return
    if ft.backend == "embedded":
        state = {True: "on a lasting volume", False: "not on a lasting volume", None: "unknown"}
        facts.gcs_storage_evidence = f"head's GCS store (/data/gcs): {state[ft.persistent]}"
        return
    pods = find_redis_pods(
        target.api,
        target.namespace,
        gcs_ft_config(rayservice),
        target.settings.redis_label_selector,
    )
    if not pods:
        facts.gcs_storage_evidence = (
            f"no Redis pod found behind {ft.redis_address or 'the address'} (outside the "
            "cluster's Services?); set redis_label_selector to name its pods"
        )
        return
    shown = [(p, how) for p in pods if (how := runs_sentinel(p))]
    if shown:
        pod, how = shown[0]
        name = pod.metadata.name if pod.metadata else "?"
        facts.redis_topology = "sentinel"
        facts.redis_topology_evidence = (
            f"{len(shown)} of {len(pods)} pod(s) behind {ft.redis_address} run a Sentinel "
            f"(pod {name}: {how}): the GCS connects to the primary the Sentinel names"
        )
        facts.gcs_storage_persistent = None  # the data pods are behind the Sentinels
        facts.gcs_storage_evidence = (
            f"Redis behind Sentinels ({ft.redis_address}): its primary and replicas are not "
            "behind the GCS address, so their volumes were not inspected"
        )
        return
    facts.redis_topology = "single"
    facts.redis_topology_evidence = (
        f"{len(pods)} Redis pod(s) behind {ft.redis_address}, none running a Sentinel: one "
        "Redis, no failover"
    )
    facts.gcs_storage_evidence = "; ".join(_redis_evidence(p) for p in pods)
    facts.placement += [("redis", _pod_name(p), p.spec.node_name) for p in pods
                        if _live(p) and p.spec and p.spec.node_name]  # fmt: skip


# -- gathering ---------------------------------------------------------------------------------


def gather_kubernetes_facts(target: KubernetesTarget, live: bool = True) -> HaFacts:
    """Return the HA facts of `target`'s RayService.

    `live` reads the dashboard too (`target.dashboard()`: the configured URL, the head
    Service in the cluster, else through the API server); an unreachable or forbidden
    dashboard becomes a note. Raises a `ChaosRaySvcError` when the RayService
    cannot be read (missing, API unreachable or forbidden).
    """
    rayservice = target.rayservice()
    spec: Mapping[str, Any] = rayservice.get("spec") or {}
    cluster_spec: Mapping[str, Any] = spec.get("rayClusterConfig") or {}
    facts = HaFacts(target=f"RayService {target.namespace}/{target.name} (kubernetes)")

    pods: list[client.V1Pod] = []
    pods_read = False
    try:
        cluster = active_cluster_name(rayservice)
        pods = target.api.list_pods(target.namespace, cluster_selector(cluster))
        pods_read = True
    except TargetNotReadyError as exc:
        facts.notes.append(f"{exc}; live pods not inspected, the spec alone was read")
    heads = [p for p in pods if role_of(p) == "head"]
    workers = [p for p in pods if role_of(p) == "worker"]
    facts.placement = [
        (str(role_of(p)), _pod_name(p), str(p.spec.node_name))
        for p in heads + workers
        if _live(p) and p.spec and p.spec.node_name
    ]

    _gcs_storage(target, rayservice, facts)
    if len({node for role, _, node in facts.placement if role != "redis"}) > 1:
        _zones(target, facts)  # only a spread over nodes can still be in one zone

    # the serve Service and the head's proxy
    excluded = spec.get("excludeHeadPodFromServeSvc") is True
    facts.head_in_serve_svc = not excluded
    facts.head_in_serve_svc_evidence = (
        "spec.excludeHeadPodFromServeSvc: true"
        if excluded
        else "spec.excludeHeadPodFromServeSvc is not true: KubeRay puts the head in "
        f"{target.name}-serve-svc"
    )
    for head in heads:
        label = _labels(head).get(SERVE_LABEL)
        if label is not None:
            facts.head_in_serve_svc_evidence += (
                f"; head pod {_pod_name(head)} has {SERVE_LABEL}={label}"
            )

    head_group: Mapping[str, Any] = cluster_spec.get("headGroupSpec") or {}
    head_container = _template_container(head_group)
    facts.head_image = str(head_container.get("image") or "")
    start = head_group.get("rayStartParams") or {}
    facts.head_num_cpus = str(start.get("num-cpus", "")) if isinstance(start, Mapping) else ""
    facts.head_num_cpus_evidence = f"{SPEC}.headGroupSpec.rayStartParams"

    # env on the Ray containers: live pods first, then the templates
    groups: list[Mapping[str, Any]] = [
        g for g in cluster_spec.get("workerGroupSpecs") or [] if isinstance(g, Mapping)
    ]
    retries = next((v for p in heads if (v := _pod_env(p, REDIS_CONNECT_RETRIES_ENV))), None)
    if retries is not None:
        facts.head_redis_connect_retries = retries
        facts.head_redis_connect_retries_source = "env of the head pod"
    elif (retries := _template_env(head_container, REDIS_CONNECT_RETRIES_ENV)) is not None:
        facts.head_redis_connect_retries = retries
        facts.head_redis_connect_retries_source = f"{SPEC}.headGroupSpec container env"
    queue: dict[str, str] = {}
    head_value = next((v for p in heads if (v := _pod_env(p, QUEUE_LENGTH_CACHE_ENV))), None)
    queue["head"] = head_value or _template_env(head_container, QUEUE_LENGTH_CACHE_ENV) or ""

    facts.autoscaling = cluster_spec.get("enableInTreeAutoscaling") is True
    facts.zone_spread_counts_tainted = [
        where
        for where, group in [("headGroupSpec", head_group)]
        + [(f"worker group '{g.get('groupName') or f'group{i}'}'", g) for i, g in enumerate(groups)]
        if _zone_spread_counts_tainted(group)
    ]
    for index, group in enumerate(groups):
        name = str(group.get("groupName") or f"group{index}")
        container = _template_container(group)
        members = [p for p in workers if _labels(p).get(GROUP_LABEL) == name]
        where = f"worker group '{name}'"
        value = next((v for p in members if (v := _pod_env(p, QUEUE_LENGTH_CACHE_ENV))), None)
        queue[where] = value or _template_env(container, QUEUE_LENGTH_CACHE_ENV) or ""
        replicas = int_value(group.get("replicas"))
        min_replicas = int_value(group.get("minReplicas"))
        group_facts = WorkerGroupFacts(
            name=name,
            replicas=replicas if replicas is not None else min_replicas,
            min_replicas=min_replicas,
            max_replicas=int_value(group.get("maxReplicas")),
            live_pods=sum(1 for p in members if _live(p)) if pods_read else None,
            image=str(container.get("image") or ""),
        )
        _reconnect(group_facts, members, container, index, facts.gcs_ft_enabled)
        _grace(group_facts, group, container, index)
        facts.worker_groups.append(group_facts)
    facts.queue_length_cache_timeout = queue

    # versions
    facts.ray_version = str(cluster_spec.get("rayVersion") or "")
    facts.ray_version_source = f"{SPEC}.rayVersion"

    # Serve
    config, problem = _serve_config(spec)
    if problem:
        facts.notes.append(problem)
    if config is not None:
        location, deployments, notes = serve_deployments(config, "spec.serveConfigV2")
        facts.proxy_location = location
        facts.deployments = deployments
        facts.notes += notes
        facts.deployments_source = "spec.serveConfigV2"
    if facts.proxy_location != "Disabled":
        facts.head_proxy_running = True
        facts.head_proxy_evidence = (
            f"proxy_location: {facts.proxy_location} in spec.serveConfigV2"
            + ("" if config and config.get("proxy_location") else " (Serve's default)")
            + ": Serve runs a proxy on the head"
        )
    else:
        facts.head_proxy_running = False
        facts.head_proxy_evidence = "proxy_location: Disabled in spec.serveConfigV2"
    if live:
        _read_dashboard(target, pods, facts)
    return facts


def _zones(target: KubernetesTarget, facts: HaFacts) -> None:
    """The zone and provider ID of every node (needs node read:
    deploy/node-reader-clusterrole.yaml)."""
    try:
        nodes = target.api.list_nodes()
    except KubernetesApiError as exc:
        facts.notes.append(
            "nodes' zones not inspected: reading nodes is opt-in "
            "(deploy/node-reader-clusterrole.yaml)"
            if exc.status == 403
            else f"nodes' zones not inspected: {exc}"
        )
        return
    for node in nodes:
        meta = node.metadata or client.V1ObjectMeta()
        facts.node_zones[str(meta.name)] = (meta.labels or {}).get(ZONE_LABEL, "")
        facts.node_providers[str(meta.name)] = str((node.spec and node.spec.provider_id) or "")


def _reconnect(
    group: WorkerGroupFacts,
    members: list[client.V1Pod],
    container: Mapping[str, Any],
    index: int,
    gcs_ft: bool,
) -> None:
    for pod in members:
        value = _pod_env(pod, RECONNECT_ENV)
        if value is not None:
            group.reconnect_timeout_s = _float(value)
            group.reconnect_source = f"env of pod {_pod_name(pod)}"
            return
    value = _template_env(container, RECONNECT_ENV)
    if value is not None:
        group.reconnect_timeout_s = _float(value)
        group.reconnect_source = f"{SPEC}.workerGroupSpecs[{index}] container env"
    elif gcs_ft:
        group.reconnect_timeout_s = KUBERAY_FT_RECONNECT_S
        group.reconnect_source = "not set: KubeRay sets 600 under GCS fault tolerance"
    else:
        group.reconnect_timeout_s = RAY_RECONNECT_DEFAULT_S
        group.reconnect_source = "not set: Ray's default"


def _grace(
    group: WorkerGroupFacts, spec: Mapping[str, Any], container: Mapping[str, Any], index: int
) -> None:
    """The grace a deleted worker gets, Ray's drain within it, and whether a preStop runs."""
    where = f"{SPEC}.workerGroupSpecs[{index}].template.spec"
    grace = _dig(spec, "template", "spec", "terminationGracePeriodSeconds")
    group.termination_grace_s = POD_GRACE_DEFAULT_S if grace is None else _float(str(grace))
    drain = _template_env(container, DRAIN_TIMEOUT_ENV)
    group.drain_timeout_s = RAY_DRAIN_TIMEOUT_DEFAULT_S if drain is None else _float(drain)
    group.pre_stop = bool(_dig(container, "lifecycle", "preStop"))
    group.grace_source = (
        f"{where}.terminationGracePeriodSeconds"
        + (" (not set: Kubernetes' 30 s)" if grace is None else f" = {grace}")
        + f"; {DRAIN_TIMEOUT_ENV} "
        + ("not set (Ray's 30 s)" if drain is None else f"= {drain} in the container env")
    )


def _read_dashboard(target: KubernetesTarget, pods: list[client.V1Pod], facts: HaFacts) -> None:
    try:
        dashboard = target.dashboard()
    except ConfigurationError as exc:
        facts.notes.append(f"live replica placement not inspected: {exc}")
        return
    by_ip = names_by_ip(pods)

    def pod_names(nodes: Sequence[RayNode]) -> dict[str, str]:
        return {n.node_id: by_ip.get(n.ip, "") for n in nodes}

    try:
        apply_live(facts, read_live(dashboard, pod_names))
    except (ServeApiError, KubernetesApiError) as exc:
        facts.notes.append(f"live replica placement not inspected: {exc}")
