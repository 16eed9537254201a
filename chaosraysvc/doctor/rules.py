"""HA rules: pure functions from `HaFacts` to the `Risk`s they show.

Each rule returns [] when its facts do not show the risk (or are unknown), else one `Risk`
naming what was seen (`evidence`), what a user would notice (`consequence`) and the `fix`.

| id | severity |
|---|---|
| gcs-ft-disabled | high |
| gcs-storage-ephemeral | high |
| gcs-storage-unknown | low |
| proxy-head-only | high |
| head-in-serve-svc | medium |
| single-replica | high |
| replicas-share-node | medium; high when live, all on one pod |
| replicas-on-head | medium; high when live, all on the head; low when the head has CPUs, unread |
| too-few-workers | high; medium when only the autoscaler's minReplicas is short |
| no-spare-worker | low |
| gcs-reconnect-timeout-short | high |
| ray-version-mismatch | medium |
| ray-image-versions-differ | high |
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from chaosraysvc.errors import ConfigurationError
from chaosraysvc.model.ha import (
    DRAIN_TIMEOUT_ENV,
    QUEUE_LENGTH_CACHE_DEFAULT_S,
    QUEUE_LENGTH_CACHE_ENV,
    RAY_RECONNECT_DEFAULT_S,
    RECONNECT_ENV,
    REDIS_CONNECT_RETRIES_DEFAULT,
    REDIS_CONNECT_RETRIES_ENV,
    DeploymentFacts,
    HaFacts,
)

__all__ = [
    "RISK_IDS",
    "RULES",
    "SEVERITIES",
    "Risk",
    "Severity",
    "at_least",
    "evaluate",
    "image_ray_version",
    "severity_rank",
]

Severity = Literal["low", "medium", "high"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high")

# What was measured on the project's machine, quoted in consequences.
HEAD_RECOVERY_MEASURED = "~15-30 s on the project's sandbox, longer with pod scheduling"
REDIS_LOSS_MEASURED = "~49 s to recover and ~11 s of failed requests in the sandbox"


@dataclass(frozen=True)
class Risk:
    """One HA risk found on a target."""

    id: str
    severity: Severity
    title: str
    evidence: tuple[str, ...]
    consequence: str
    fix: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "title": self.title,
            "evidence": list(self.evidence),
            "consequence": self.consequence,
            "fix": self.fix,
        }


def severity_rank(severity: str) -> int:
    """Return 0 for low, 1 for medium, 2 for high; raise `ConfigurationError` otherwise."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise ConfigurationError(
            f"unknown severity {severity!r}: use one of {', '.join(SEVERITIES)}"
        ) from None


def _worst(severities: Iterable[Severity]) -> Severity:
    return max(severities, key=severity_rank)


# -- GCS fault tolerance -----------------------------------------------------------------------


def gcs_ft_disabled(facts: HaFacts) -> list[Risk]:
    if facts.gcs_ft_enabled:
        return []
    return [
        Risk(
            "gcs-ft-disabled",
            "high",
            "GCS fault tolerance is off",
            (f"GCS fault tolerance not configured: {facts.gcs_ft_source or 'no setting found'}",),
            "Losing the head pod loses the GCS and all cluster state: the workers exit with it "
            "and the service stays down until a new cluster is up and Serve has redeployed.",
            "Set spec.rayClusterConfig.gcsFaultToleranceOptions (redisAddress and "
            "redisPassword) to a Redis whose data survives its pod.",
        )
    ]


def gcs_storage(facts: HaFacts) -> list[Risk]:
    if not facts.gcs_ft_enabled or facts.gcs_storage_persistent is True:
        return []
    embedded = facts.gcs_ft_backend == "embedded"
    store = "the head's embedded GCS store" if embedded else "Redis"
    evidence = (f"{facts.gcs_ft_source}", facts.gcs_storage_evidence or "no storage evidence")
    if facts.gcs_storage_persistent is None:
        return [
            Risk(
                "gcs-storage-unknown",
                "low",
                f"Cannot tell whether {store} keeps the GCS state when its pod is lost",
                evidence,
                "If it does not, losing that pod wipes the GCS state and the cluster restarts "
                f"from scratch with serving broken meanwhile ({REDIS_LOSS_MEASURED}).",
                "Check that the store's data lives on a lasting volume (or a managed Redis with "
                "persistence); set redis_label_selector ($RAYSVC_REDIS_LABEL_SELECTOR) so "
                "chaosraysvc can find the Redis pods.",
            )
        ]
    fix = (
        "Mount a PersistentVolumeClaim at the head's GCS store path (/data/gcs)."
        if embedded
        else "Mount a PersistentVolumeClaim at Redis' data directory (/data for the redis "
        "image) with appendonly yes, or use a managed Redis with persistence."
    )
    return [
        Risk(
            "gcs-storage-ephemeral",
            "high",
            f"{store[0].upper()}{store[1:]} keeps the GCS state without persistent storage",
            evidence,
            "Deleting that pod wipes the GCS state: the head starts a brand-new cluster, the old "
            f"workers exit and Serve redeploys from nothing ({REDIS_LOSS_MEASURED}).",
            fix,
        )
    ]


# Measured on the lab's node, Redis 7.0 Sentinels (docs/findings.md, "Redis failover").
STALE_PRIMARY_MEASURED = (
    "on the lab's node, 2026-12-06: with down-after-milliseconds 5000, once in 10 failovers "
    "(the GCS back after 7 min 45 s); with Redis' default 30000, in 5 of 5 the restarted head "
    "was given the dead primary, and 3 of them had no GCS for over 7 minutes (8 min 5 s and "
    "8 min 39 s in the two seen to end) "
    "(campaign-node-redis7-failover-down-after-30s.json)"
)
STALE_PRIMARY_RETRIES = 20  # measured: the GCS back after 132-169 s instead (down-after 30 s)


def sentinel_stale_primary(facts: HaFacts) -> list[Risk]:
    if facts.redis_topology != "sentinel":
        return []
    raw = facts.head_redis_connect_retries
    try:
        retries = int(raw) if raw else REDIS_CONNECT_RETRIES_DEFAULT
    except ValueError:
        retries = REDIS_CONNECT_RETRIES_DEFAULT
    if retries <= STALE_PRIMARY_RETRIES:
        return []
    setting = (
        f"{REDIS_CONNECT_RETRIES_ENV}={raw} ({facts.head_redis_connect_retries_source})"
        if raw
        else f"{REDIS_CONNECT_RETRIES_ENV} not set on the head: Ray's "
        f"{REDIS_CONNECT_RETRIES_DEFAULT}"
    )
    return [
        Risk(
            "sentinel-stale-primary",
            "medium",
            "A head restarted before the Sentinels elect a new primary waits minutes on the "
            "old one",
            (facts.redis_topology_evidence, setting),
            "The GCS exits ~4 s after losing the primary and its container restarts at once; "
            "a Sentinel names the new primary only after down-after-milliseconds and the "
            "election. Ray resolves the Sentinel's answer once and retries that address: a "
            "`ray start` that asked too early retries the dead primary until its retries run "
            f"out, the service without a GCS meanwhile ({STALE_PRIMARY_MEASURED}).",
            f"Set {REDIS_CONNECT_RETRIES_ENV} to {STALE_PRIMARY_RETRIES} or fewer in the head's "
            "container env, so that a head given a dead primary gives up and the kubelet's "
            "restart asks the Sentinel again (measured with 20 and down-after 30 s: the GCS "
            "back after 132-169 s in 4 of 5 failovers, 34 s in 1, where Ray's 120 left it "
            "without one for over 7 minutes in 3 of 5; an unanswered attempt costs ~5-7 s, "
            "so fewer retries give up sooner; it also shortens how long the GCS waits for a "
            "Redis that is briefly away); a shorter down-after-milliseconds (5 s: once in 10) "
            "narrows the window.",
        )
    ]


# -- the serve Service and proxies -------------------------------------------------------------


def _seconds(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _queue_cache_evidence(facts: HaFacts) -> str:
    values = facts.queue_length_cache_timeout
    default = f"Serve's default: {QUEUE_LENGTH_CACHE_DEFAULT_S:g} s"
    if not values:
        return f"{QUEUE_LENGTH_CACHE_ENV} not inspected ({default})"
    unset = [where for where, value in values.items() if not value]
    parts = [
        f"{QUEUE_LENGTH_CACHE_ENV}={value} on {where}"
        + (
            " (lower than the default: shortens worker-proxy stalls)"
            if (s := _seconds(value)) is not None and s < QUEUE_LENGTH_CACHE_DEFAULT_S
            else ""
        )
        for where, value in values.items()
        if value
    ]
    if unset:
        parts.append(f"{QUEUE_LENGTH_CACHE_ENV} not set on {', '.join(unset)} ({default})")
    return "; ".join(parts)


def head_in_serve_svc(facts: HaFacts) -> list[Risk]:
    if not facts.head_in_serve_svc or facts.head_proxy_running is False:
        return []
    if facts.proxy_location in ("Disabled", "HeadOnly"):
        return []  # no proxy at all, or `proxy-head-only` says worse
    return [
        Risk(
            "head-in-serve-svc",
            "medium",
            "The head pod is in the serve Service and runs a Serve proxy",
            (
                facts.head_in_serve_svc_evidence,
                facts.head_proxy_evidence or "head proxy: not inspected",
                _queue_cache_evidence(facts),
            ),
            "Requests the Service routes to the head fail for the whole head outage, and worker "
            f"proxies can stall for seconds afterwards while {QUEUE_LENGTH_CACHE_ENV} "
            f"({QUEUE_LENGTH_CACHE_DEFAULT_S:g} s by default) keeps trusting a route through the "
            "dead head.",
            "Set spec.excludeHeadPodFromServeSvc: true; if the head must serve, set "
            f"{QUEUE_LENGTH_CACHE_ENV}=1 on every Ray container, head and workers.",
        )
    ]


def proxy_head_only(facts: HaFacts) -> list[Risk]:
    if facts.proxy_location != "HeadOnly":
        return []
    return [
        Risk(
            "proxy-head-only",
            "high",
            "Serve runs its only HTTP proxy on the head",
            (f"proxy_location: HeadOnly ({facts.deployments_source})",),
            "Every request goes through the head, so the service is down for the whole head "
            "outage.",
            "Set proxy_location: EveryNode in the Serve config and "
            "spec.excludeHeadPodFromServeSvc: true.",
        )
    ]


# -- Serve replicas ----------------------------------------------------------------------------


def _declared(dep: DeploymentFacts) -> str:
    if dep.autoscaling:
        replicas = f"autoscaling min_replicas: {dep.min_replicas}"
    else:
        replicas = f"num_replicas: {dep.num_replicas}"
    limit = (
        f"max_replicas_per_node: {dep.max_replicas_per_node}"
        if dep.max_replicas_per_node is not None
        else "no max_replicas_per_node"
    )
    return f"{dep.key}: {replicas}, {limit} ({dep.source})"


def _live(dep: DeploymentFacts, source: str) -> str:
    assert dep.placement is not None
    spots = ", ".join(f"{n} on {pod}" for pod, n in sorted(dep.placement.per_pod.items()))
    unplaced = f", {dep.placement.unplaced} unplaced" if dep.placement.unplaced else ""
    return f"{dep.key} live: {spots or 'no replica placed'}{unplaced} ({source})"


def single_replica(facts: HaFacts) -> list[Risk]:
    few = [d for d in facts.deployments if d.least_replicas is not None and d.least_replicas < 2]
    if not few:
        return []
    return [
        Risk(
            "single-replica",
            "high",
            "A Serve deployment runs fewer than 2 replicas",
            tuple(_declared(d) for d in few),
            "Losing the one pod that holds its replica takes the deployment, and every request "
            "that needs it, down until Serve has placed a new replica.",
            "Set num_replicas: 2 or more (or autoscaling_config.min_replicas: 2) with "
            "max_replicas_per_node: 1 for each deployment in the Serve config.",
        )
    ]


def replicas_share_node(facts: HaFacts) -> list[Risk]:
    evidence: list[str] = []
    severities: list[Severity] = []
    for dep in facts.deployments:
        least = dep.least_replicas
        if least is None or least < 2:
            continue  # single-replica says it
        limit = dep.max_replicas_per_node
        if limit is not None and limit < least:
            continue
        evidence.append(_declared(dep))
        severity: Severity = "medium"
        placement = dep.placement
        if placement is not None and placement.placed >= 2 and len(placement.per_pod) == 1:
            evidence.append(_live(dep, facts.placement_source))
            severity = "high"
        severities.append(severity)
    if not evidence:
        return []
    return [
        Risk(
            "replicas-share-node",
            _worst(severities),
            "Replicas of a Serve deployment can all run on one pod",
            tuple(evidence),
            "Nothing keeps Serve from packing the replicas onto one pod (replacements for a lost "
            "pod's replicas land on the survivors and stay there), so one pod loss can take the "
            "whole deployment down.",
            "Set max_replicas_per_node: 1 on each deployment in the Serve config, with at least "
            "num_replicas worker pods.",
        )
    ]


def replicas_on_head(facts: HaFacts) -> list[Risk]:
    if not facts.deployments:
        return []
    evidence: list[str] = []
    severities: list[Severity] = []
    if facts.placement_source:
        for dep in facts.deployments:
            placement = dep.placement
            if placement is None or placement.on_head == 0:
                continue
            evidence.append(_live(dep, facts.placement_source))
            severities.append("high" if placement.on_head >= placement.placed else "medium")
    elif facts.head_num_cpus is not None and facts.head_num_cpus.strip() not in ("0", "0.0"):
        cpus = facts.head_num_cpus or "not set (Ray counts the container's CPUs)"
        evidence.append(f"head num-cpus: {cpus} ({facts.head_num_cpus_evidence})")
        evidence.append("live placement not inspected (dashboard not read)")
        severities.append("low")
    if not evidence:
        return []
    return [
        Risk(
            "replicas-on-head",
            _worst(severities),
            "Serve replicas run (or can run) on the head pod",
            tuple(evidence),
            "A head loss takes those replicas down with it, and they come back only once the "
            "head and its Serve controller have recovered.",
            'Give the head rayStartParams num-cpus: "0" (as KubeRay\'s HA sample does) so '
            "replicas are scheduled on workers only.",
        )
    ]


# -- worker capacity ---------------------------------------------------------------------------


def _nodes_needed(facts: HaFacts) -> tuple[int, DeploymentFacts | None]:
    needed, which = 0, None
    for dep in facts.deployments:
        least, limit = dep.least_replicas, dep.max_replicas_per_node
        if least is None or limit is None or limit < 1:
            continue
        nodes = math.ceil(least / limit)
        if nodes > needed:
            needed, which = nodes, dep
    return needed, which


def _total(values: list[int | None]) -> int | None:
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def worker_capacity(facts: HaFacts) -> list[Risk]:
    needed, dep = _nodes_needed(facts)
    if dep is None or not facts.worker_groups:
        return []
    groups = facts.worker_groups
    desired = _total([g.replicas for g in groups])
    least = _total([g.min_replicas if g.min_replicas is not None else 0 for g in groups])
    live = _total([g.live_pods for g in groups])
    need = f"{dep.key} needs {needed} worker pod(s): {_declared(dep)}"
    sizes = "; ".join(
        f"worker group '{g.name}': replicas {g.replicas}, minReplicas {g.min_replicas}"
        + (f", {g.live_pods} pod(s) running" if g.live_pods is not None else "")
        for g in groups
    )
    short: list[tuple[Severity, str]] = []
    if desired is not None and desired < needed:
        short.append(("high", f"{desired} worker pod(s) wanted in total ({sizes})"))
    elif live is not None and live < needed:
        short.append(("high", f"only {live} worker pod(s) running ({sizes})"))
    elif facts.autoscaling and least is not None and least < needed:
        short.append(
            (
                "medium",
                f"enableInTreeAutoscaling: true and minReplicas total {least} ({sizes})",
            )
        )
    if short:
        return [
            Risk(
                "too-few-workers",
                _worst(s for s, _ in short),
                "Fewer worker pods than a deployment's replicas need, one per node",
                (need, *(text for _, text in short)),
                "Replicas beyond the worker count cannot be placed, so the deployment stays "
                "short of its target (application DEPLOYING or UNHEALTHY) with its live "
                "replicas crowded on too few pods.",
                "Run at least num_replicas / max_replicas_per_node worker pods, plus one spare: "
                "raise workerGroupSpecs[].replicas (and minReplicas when autoscaling).",
            )
        ]
    if desired is not None and desired == needed:
        return [
            Risk(
                "no-spare-worker",
                "low",
                "No spare worker pod for replicas spread one per node",
                (need, f"{desired} worker pod(s) wanted in total ({sizes})"),
                "While a lost worker is replaced its replica has nowhere to go: the application "
                "reports UNHEALTHY (after ~4 s in the sandbox) and serves at reduced capacity.",
                "Run one worker pod more than num_replicas / max_replicas_per_node needs.",
            )
        ]
    return []


# -- workers' GCS reconnect timeout ------------------------------------------------------------


def gcs_reconnect_timeout(facts: HaFacts) -> list[Risk]:
    short = [
        g
        for g in facts.worker_groups
        if g.reconnect_timeout_s is not None and g.reconnect_timeout_s < RAY_RECONNECT_DEFAULT_S
    ]
    if not short:
        return []
    return [
        Risk(
            "gcs-reconnect-timeout-short",
            "high",
            "Workers give up on the GCS sooner than a head recovery can take",
            tuple(
                f"worker group '{g.name}': {RECONNECT_ENV}={g.reconnect_timeout_s:g} s "
                f"({g.reconnect_source})"
                for g in short
            ),
            "If the head is not back within that time the worker raylets exit with their "
            "replicas and proxies, turning a head loss into a full outage (head recovery "
            f"measured {HEAD_RECOVERY_MEASURED}).",
            f"Remove the override or set {RECONNECT_ENV}=600 (KubeRay's value under GCS fault "
            "tolerance) on every worker group; anything under "
            f"{RAY_RECONNECT_DEFAULT_S:g} s is too short.",
        )
    ]


# -- deletion: the kubelet's grace period against Ray's drain -------------------------------------

GRACE_EVIDENCE = (
    "worker-kill signalled as the kubelet signals a pod (SIGTERM to PID 1, `ray start --block`): "
    "on the sandbox grace 0 lost 1-2 requests in 7 of 10 runs, grace 30 s (= Ray's drain "
    "timeout) none in 10; on the lab's node, with pods on new IPs as on Kubernetes, grace 30 s "
    "still lost the request on the keep-alive connection kube-proxy kept on the draining pod, "
    "at the SIGKILL, in 7 of 20 runs with the head in the serve Service and 11 of 20 with it out "
    "(and a request as the new worker joined in 13 of 20 and 16 of 20), grace 0 lost the "
    "requests in flight at once in 9 of 20 and 12 of 20 "
    "(benchmarks/results/campaign-sandbox-pid1-worker-grace{0,30}.json, "
    "campaign-node-new-ips-head-{in,excluded}-grace{0,30}{,-2,-3}.json)"
)


def drain_cut_short(facts: HaFacts) -> list[Risk]:
    short = [
        g
        for g in facts.worker_groups
        if g.termination_grace_s is not None
        and g.drain_timeout_s is not None
        and g.termination_grace_s < g.drain_timeout_s
    ]
    if not short:
        return []
    return [
        Risk(
            "worker-drain-cut-short",
            "medium",
            "A deleted worker is killed before Ray has drained it",
            tuple(
                f"worker group '{g.name}': grace {g.termination_grace_s:g} s < drain "
                f"{g.drain_timeout_s:g} s"
                + (" (its preStop runs first, inside the grace)" if g.pre_stop else "")
                + f" ({g.grace_source})"
                for g in short
            ),
            "On SIGTERM `ray start --block` marks its node draining so its Serve proxy finishes "
            "the requests in flight; the kubelet's SIGKILL at the end of the pod's grace period "
            f"cuts that short and the requests still on the node fail. Measured: {GRACE_EVIDENCE}.",
            f"Give worker pods a terminationGracePeriodSeconds at least {DRAIN_TIMEOUT_ENV} "
            "(30 s by default, Kubernetes' default grace too), plus the time of any preStop "
            "hook; or lower the drain timeout to what the grace allows. Even then a request in "
            "flight on a keep-alive connection still held by the draining proxy at the end can "
            "fail (measured on the lab's node): clients should retry idempotent requests.",
        )
    ]


# -- Ray versions ------------------------------------------------------------------------------

_TAG_VERSION = re.compile(r"^(\d+\.\d+(?:\.\d+)?)(?:$|[-_.+])")


def image_ray_version(image: str) -> str:
    """Return the Ray version an image's tag names ("rayproject/ray:2.9.0-py310" -> "2.9.0").

    Returns "" when the tag does not start with a version (latest, nightly, a digest).
    """
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return ""
    match = _TAG_VERSION.match(last.rsplit(":", 1)[1])
    return match.group(1) if match else ""


def _same_version(declared: str, seen: str) -> bool:
    a, b = declared.split("."), seen.split(".")
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def ray_versions(facts: HaFacts) -> list[Risk]:
    images = {"head": facts.head_image} | {
        f"worker group '{g.name}'": g.image for g in facts.worker_groups
    }
    versions = {where: image_ray_version(image) for where, image in images.items() if image}
    seen = {where: v for where, v in versions.items() if v}
    risks: list[Risk] = []
    described = tuple(f"{where} image {images[where]}" for where in seen)
    if len(set(seen.values())) > 1:
        risks.append(
            Risk(
                "ray-image-versions-differ",
                "high",
                "Head and worker images run different Ray versions",
                described,
                "Ray refuses nodes of another version, so workers (or a replaced pod) cannot "
                "join the head.",
                "Use one Ray image tag for the head and every worker group.",
            )
        )
    declared = facts.ray_version.strip()
    wrong = {w: v for w, v in seen.items() if declared and not _same_version(declared, v)}
    if wrong:
        risks.append(
            Risk(
                "ray-version-mismatch",
                "medium",
                "rayVersion does not match the Ray version of the image",
                (f"rayVersion: {declared} ({facts.ray_version_source})", *described),
                "KubeRay picks version-dependent behaviour (start options, autoscaler, Serve "
                "API calls) from rayVersion, so pods or the Serve deployment can fail in ways "
                "the declared version would not.",
                "Set spec.rayClusterConfig.rayVersion to the Ray version of the image tag.",
            )
        )
    return risks


def one_node_or_zone(facts: HaFacts) -> list[Risk]:
    """The Ray pods all on one node (or zone), or the head on the node of its GCS Redis: what
    one drain, node loss or zone loss takes at once (live placement; kubernetes)."""
    ray = [(role, pod, node) for role, pod, node in facts.placement if role != "redis"]
    where = [f"{role} pod {pod} on node {node}" for role, pod, node in facts.placement]
    risks: list[Risk] = []
    nodes = {node for _, _, node in ray}
    if len(ray) >= 2 and len(nodes) == 1:
        risks.append(Risk(
            "ray-pods-one-node", "high", "Every Ray pod of the RayService runs on one node",
            tuple(where),
            f"A drain or the loss of node {next(iter(nodes))} stops every proxy and replica at "
            "once: the service is down until pods start on another node.",
            "Spread the Ray pods: topologySpreadConstraints (or a preferred podAntiAffinity on "
            "ray.io/cluster) over kubernetes.io/hostname in the head and worker templates, and "
            "enough nodes to schedule them.",
        ))  # fmt: skip
    zones = {facts.node_zones.get(node, "") for _, _, node in ray}
    known = {z for z in facts.node_zones.values() if z}
    if len(ray) >= 2 and len(nodes) > 1 and len(zones) == 1 and "" not in zones and len(known) > 1:
        risks.append(Risk(
            "ray-pods-one-zone", "medium", "Every Ray pod of the RayService runs in one zone",
            (*where, f"the cluster's nodes are in zones {', '.join(sorted(known))}"),
            f"The loss of zone {next(iter(zones))} stops every proxy and replica at once.",
            "Spread the Ray pods over topology.kubernetes.io/zone too "
            "(topologySpreadConstraints in the head and worker templates).",
        ))  # fmt: skip
    heads = {node for role, _, node in ray if role == "head"}
    shared = sorted(heads & {node for role, _, node in facts.placement if role == "redis"})
    if shared:
        kept = facts.gcs_storage_persistent
        risks.append(Risk(
            "head-redis-share-node", "high" if kept is False else "medium",
            "The head runs on the node of the GCS's Redis",
            tuple(where) + ((f"Redis' data: {facts.gcs_storage_evidence}",)
                            if facts.gcs_storage_evidence else ()),
            f"A drain or the loss of node {shared[0]} takes the head and the Redis its "
            "successor recovers from at once"
            + (": Redis' data is not kept, so the new head starts with an empty GCS and every "
               "Serve application is deployed again from scratch." if kept is False else
               ": the new head waits for Redis to come back on another node."),
            "Keep Redis off the Ray head's node (a podAntiAffinity between them), keep its "
            "data on a volume, or run Redis highly available (Sentinels).",
        ))  # fmt: skip
    if len(nodes) > 1:  # on one node, ray-pods-one-node says it for every deployment
        risks += _replicas_one_node(facts)
    providers = facts.node_providers
    if heads and providers and not any(providers.values()):
        risks.append(Risk(
            "lost-node-not-deleted", "medium", "No node is known to a cloud's node controller",
            (f"none of the {len(providers)} nodes has a spec.providerID", *where),
            "Nothing deletes the Node of a machine that is gone: the pods of a lost node stay "
            "Terminating after their eviction, and KubeRay makes no new head while the old "
            "head pod is there, so a lost head's node stops the recovery until someone "
            "deletes the Node (lose_node with delete_node_after -1 shows it).",
            "Have lost nodes deleted (a cloud's cloud-controller-manager does it; on bare metal "
            "a runbook or automation that deletes the Node, or taints it "
            "node.kubernetes.io/out-of-service once the machine is known to be off).",
        ))  # fmt: skip
    return risks


def _replicas_one_node(facts: HaFacts) -> list[Risk]:
    """Deployments whose live replicas are on several pods of one Kubernetes node: Serve
    spreads over Ray nodes (pods), not machines, so one node loss still takes them all."""
    node_of = {pod: node for _, pod, node in facts.placement}
    evidence: list[str] = []
    lost_by: set[str] = set()
    for dep in facts.deployments:
        placement = dep.placement
        if placement is None or placement.placed < 2 or len(placement.per_pod) < 2:
            continue  # one pod: replicas-share-node says it
        machines = {node_of.get(pod, "") for pod in placement.per_pod}
        if len(machines) == 1 and "" not in machines:
            lost_by |= machines
            pods = ", ".join(sorted(placement.per_pod))
            evidence.append(f"{_live(dep, facts.placement_source)}; pods {pods} all on node "
                            f"{next(iter(machines))}")  # fmt: skip
    if not evidence:
        return []
    return [Risk(
        "replicas-one-node", "high",
        "Every replica of a Serve deployment runs on one Kubernetes node",
        tuple(evidence),
        f"Serve spreads replicas over Ray pods, not machines: a drain or loss of node "
        f"{', '.join(sorted(lost_by))} takes every replica of these deployments at once, and "
        "their requests fail or wait until new replicas start elsewhere (after a new head, "
        "when the Serve controller was on that node too).",
        "Spread the Ray pods over nodes (topologySpreadConstraints or a preferred "
        "podAntiAffinity over kubernetes.io/hostname in the head and worker templates), and "
        "keep replicas off the head (num_cpus: 0 on the head) or exclude it.",
    )]  # fmt: skip


# Measured on the lab's node (docs/findings.md, "Spread over three zones").
SPREAD_TAINTS_MEASURED = (
    "on the lab's node (2026-12-06) a zone whose only node left was the tainted control plane's "
    "kept counting, with no Ray pod, and the new head stayed Pending until the lost nodes came "
    "back (campaign-node-lose-head-zone-spread-taints-ignored.json)"
)


def zone_spread_counts_tainted(facts: HaFacts) -> list[Risk]:
    """A required spread over zones that counts nodes the Ray pods cannot use."""
    if not facts.zone_spread_counts_tainted:
        return []
    return [Risk(
        "zone-spread-counts-tainted", "medium",
        "A required zone spread counts nodes the Ray pods cannot run on",
        tuple(f"spec.rayClusterConfig {where}: topologySpreadConstraints over "
              "topology.kubernetes.io/zone, whenUnsatisfiable DoNotSchedule, nodeTaintsPolicy "
              "not Honor" for where in facts.zone_spread_counts_tainted),
        "With nodeTaintsPolicy Ignore (the default) a zone whose nodes are all tainted (NotReady "
        "while lost, cordoned, or a control plane's) still counts as a zone with no Ray pod, so "
        "placing one more anywhere else exceeds maxSkew: after a zone loss the new head or "
        f"worker stays Pending while the zone is away ({SPREAD_TAINTS_MEASURED}).",
        "Add nodeTaintsPolicy: Honor to the constraint (tainted nodes the pod does not tolerate "
        "are left out of the count), or make it whenUnsatisfiable: ScheduleAnyway.",
    )]  # fmt: skip


Rule = Callable[[HaFacts], list[Risk]]

RULES: tuple[Rule, ...] = (
    gcs_ft_disabled,
    gcs_storage,
    sentinel_stale_primary,
    proxy_head_only,
    head_in_serve_svc,
    single_replica,
    replicas_share_node,
    replicas_on_head,
    worker_capacity,
    gcs_reconnect_timeout,
    drain_cut_short,
    ray_versions,
    one_node_or_zone,
    zone_spread_counts_tainted,
)

RISK_IDS = (
    "gcs-ft-disabled",
    "gcs-storage-ephemeral",
    "gcs-storage-unknown",
    "sentinel-stale-primary",
    "proxy-head-only",
    "head-in-serve-svc",
    "single-replica",
    "replicas-share-node",
    "replicas-on-head",
    "too-few-workers",
    "no-spare-worker",
    "gcs-reconnect-timeout-short",
    "worker-drain-cut-short",
    "ray-version-mismatch",
    "ray-image-versions-differ",
    "ray-pods-one-node",
    "ray-pods-one-zone",
    "zone-spread-counts-tainted",
    "replicas-one-node",
    "head-redis-share-node",
    "lost-node-not-deleted",
)


def evaluate(facts: HaFacts) -> list[Risk]:
    """Return every risk `facts` show, most severe first."""
    risks = [risk for rule in RULES for risk in rule(facts)]
    return sorted(risks, key=lambda r: (-severity_rank(r.severity), RISK_IDS.index(r.id)))


def at_least(risks: Iterable[Risk], min_severity: str) -> list[Risk]:
    """Return the risks of `min_severity` or worse (raises `ConfigurationError` if unknown)."""
    floor = severity_rank(min_severity)
    return [r for r in risks if severity_rank(r.severity) >= floor]
