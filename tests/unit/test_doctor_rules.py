"""The HA rules: every risk is reported when its facts show it, and not when they lack it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chaosraysvc.doctor.rules import (
    RISK_IDS,
    at_least,
    evaluate,
    image_ray_version,
    severity_rank,
)
from chaosraysvc.errors import ConfigurationError
from chaosraysvc.model.ha import DeploymentFacts, HaFacts, Placement, WorkerGroupFacts

IMAGE = "rayproject/ray:2.52.0"
HEAD = "svc-head-abcde"
W1, W2, W3 = "svc-worker-1", "svc-worker-2", "svc-worker-3"


def good() -> HaFacts:
    """Facts of a RayService with every HA risk fixed."""
    return HaFacts(
        target="RayService default/rayservice-ha (test)",
        gcs_ft_enabled=True,
        gcs_ft_backend="redis",
        gcs_ft_source="gcsFaultToleranceOptions.redisAddress = redis:6379",
        gcs_storage_persistent=True,
        gcs_storage_evidence="Redis pod redis-x: /data is on volume 'data' (pvc)",
        head_in_serve_svc=False,
        head_in_serve_svc_evidence="spec.excludeHeadPodFromServeSvc: true",
        proxy_location="EveryNode",
        head_proxy_running=True,
        head_proxy_evidence="proxy_location: EveryNode",
        queue_length_cache_timeout={"head": "", "worker group 'worker'": ""},
        deployments=[
            DeploymentFacts("fruit_app", name, 2, max_replicas_per_node=1, source="config")
            for name in ("FruitMarket", "MangoStand", "OrangeStand", "PearStand")
        ],
        deployments_source="config",
        head_num_cpus="0",
        head_num_cpus_evidence="rayStartParams",
        worker_groups=[
            WorkerGroupFacts(
                "worker",
                replicas=3,
                min_replicas=3,
                max_replicas=5,
                live_pods=3,
                reconnect_timeout_s=600,
                reconnect_source="KubeRay",
                image=IMAGE,
            )
        ],
        ray_version="2.52.0",
        ray_version_source="rayVersion",
        head_image=IMAGE,
        placement=[
            ("head", HEAD, "n-a"),
            ("worker", W1, "n-b"),
            ("worker", W2, "n-c"),
            ("redis", "redis-x", "n-b"),
        ],  # fmt: skip
        node_zones={"n-a": "zone-a", "n-b": "zone-b", "n-c": "zone-c"},
        node_providers={"n-a": "aws:///a/i-1", "n-b": "aws:///b/i-2", "n-c": "aws:///c/i-3"},
    )


def dep(facts: HaFacts, name: str = "PearStand") -> DeploymentFacts:
    return next(d for d in facts.deployments if d.name == name)


def live(facts: HaFacts, **placements: Placement) -> None:
    """Give every deployment a spread placement, then the ones named."""
    facts.placement_source = "dashboard http://dash"
    for d in facts.deployments:
        d.placement = placements.get(d.name, Placement({W1: 1, W2: 1}))


def ids(facts: HaFacts) -> dict[str, str]:
    return {r.id: r.severity for r in evaluate(facts)}


def test_a_fixed_rayservice_has_no_risk() -> None:
    facts = good()
    assert evaluate(facts) == []
    live(facts)
    assert evaluate(facts) == []


Change = Callable[[HaFacts], None]


def _set(**values: object) -> Change:
    def change(facts: HaFacts) -> None:
        for key, value in values.items():
            setattr(facts, key, value)

    return change


def _dep(name: str = "PearStand", **values: object) -> Change:
    def change(facts: HaFacts) -> None:
        for key, value in values.items():
            setattr(dep(facts, name), key, value)

    return change


def _group(**values: object) -> Change:
    def change(facts: HaFacts) -> None:
        for key, value in values.items():
            setattr(facts.worker_groups[0], key, value)

    return change


def _both(*changes: Change) -> Change:
    def change(facts: HaFacts) -> None:
        for one in changes:
            one(facts)

    return change


def _placed(**placements: Placement) -> Change:
    def change(facts: HaFacts) -> None:
        live(facts, **placements)

    return change


POSITIVE: list[tuple[str, Change, dict[str, str]]] = [
    ("gcs ft off", _set(gcs_ft_enabled=False, gcs_ft_backend="none"), {"gcs-ft-disabled": "high"}),
    (
        "gcs ft off, store unknown: reported once",
        _set(gcs_ft_enabled=False, gcs_storage_persistent=None),
        {"gcs-ft-disabled": "high"},
    ),
    ("redis ephemeral", _set(gcs_storage_persistent=False), {"gcs-storage-ephemeral": "high"}),
    (
        "embedded store ephemeral",
        _set(gcs_ft_backend="embedded", gcs_storage_persistent=False),
        {"gcs-storage-ephemeral": "high"},
    ),
    ("store unknown", _set(gcs_storage_persistent=None), {"gcs-storage-unknown": "low"}),
    ("head in serve svc", _set(head_in_serve_svc=True), {"head-in-serve-svc": "medium"}),
    (
        "head proxy unknown",
        _set(head_in_serve_svc=True, head_proxy_running=None),
        {"head-in-serve-svc": "medium"},
    ),
    ("head-only proxy", _set(proxy_location="HeadOnly"), {"proxy-head-only": "high"}),
    ("one replica", _dep(num_replicas=1), {"single-replica": "high"}),
    (
        "one replica, no max per node: reported once",
        _dep(num_replicas=1, max_replicas_per_node=None),
        {"single-replica": "high"},
    ),
    (
        "autoscaling down to one",
        _dep(num_replicas=None, autoscaling=True, min_replicas=1),
        {"single-replica": "high"},
    ),
    ("no max per node", _dep(max_replicas_per_node=None), {"replicas-share-node": "medium"}),
    ("max per node too high", _dep(max_replicas_per_node=2), {"replicas-share-node": "medium"}),
    (
        "packed on one worker, live",
        _both(_dep(max_replicas_per_node=None), _placed(PearStand=Placement({W1: 2}))),
        {"replicas-share-node": "high"},
    ),
    (
        "all replicas on the head, live",
        _placed(PearStand=Placement({HEAD: 2}, on_head=2)),
        {"replicas-on-head": "high"},
    ),
    (
        "one replica on the head, live",
        _placed(PearStand=Placement({HEAD: 1, W1: 1}, on_head=1)),
        {"replicas-on-head": "medium"},
    ),
    ("head has cpus, not live", _set(head_num_cpus=""), {"replicas-on-head": "low"}),
    ("head has 2 cpus, not live", _set(head_num_cpus="2"), {"replicas-on-head": "low"}),
    ("one worker wanted", _group(replicas=1), {"too-few-workers": "high"}),
    ("one worker running", _group(live_pods=1), {"too-few-workers": "high"}),
    (
        "autoscaler may go down to one",
        _both(_set(autoscaling=True), _group(min_replicas=1)),
        {"too-few-workers": "medium"},
    ),
    ("no spare worker", _group(replicas=2, live_pods=2), {"no-spare-worker": "low"}),
    ("reconnect 30 s", _group(reconnect_timeout_s=30.0), {"gcs-reconnect-timeout-short": "high"}),
    ("reconnect 59 s", _group(reconnect_timeout_s=59.0), {"gcs-reconnect-timeout-short": "high"}),
    (
        "grace 0 < drain 30",
        _group(termination_grace_s=0.0, drain_timeout_s=30.0),
        {"worker-drain-cut-short": "medium"},
    ),
    (
        "grace 30 < drain 60",
        _group(termination_grace_s=30.0, drain_timeout_s=60.0),
        {"worker-drain-cut-short": "medium"},
    ),
    ("rayVersion differs", _set(ray_version="2.9.0"), {"ray-version-mismatch": "medium"}),
    (
        "every Ray pod on one node",
        _set(placement=[("head", HEAD, "n-a"), ("worker", W1, "n-a"), ("redis", "r", "n-b")]),
        {"ray-pods-one-node": "high"},
    ),
    (
        "every Ray pod in one zone",
        _set(node_zones={"n-a": "zone-a", "n-b": "zone-a", "n-c": "zone-a", "n-d": "zone-b"}),
        {"ray-pods-one-zone": "medium"},
    ),
    (
        "the head beside an ephemeral Redis",
        _set(
            gcs_storage_persistent=False,
            placement=[("head", HEAD, "n-a"), ("worker", W1, "n-b"), ("redis", "r", "n-a")],
        ),
        {"head-redis-share-node": "high", "gcs-storage-ephemeral": "high"},
    ),
    (
        "the head beside a Redis that keeps its data",
        _set(placement=[("head", HEAD, "n-a"), ("worker", W1, "n-b"), ("redis", "r", "n-a")]),
        {"head-redis-share-node": "medium"},
    ),
    (
        "a deployment's replicas on two pods of one node",
        _both(
            _set(
                placement=[
                    ("head", HEAD, "n-a"),
                    ("worker", W1, "n-b"),
                    ("worker", W2, "n-b"),
                    ("redis", "r", "n-c"),
                ]
            ),  # fmt: skip
            _placed(),
        ),
        {"replicas-one-node": "high"},
    ),
    (
        "Sentinel-backed Redis, the head retrying Ray's 120 times",
        _set(redis_topology="sentinel", redis_topology_evidence="3 pods run a Sentinel"),
        {"sentinel-stale-primary": "medium"},
    ),
    (
        "Sentinel-backed Redis, the head told to retry 60 times",
        _set(
            redis_topology="sentinel",
            head_redis_connect_retries="60",
            head_redis_connect_retries_source="env of the head pod",
        ),  # fmt: skip
        {"sentinel-stale-primary": "medium"},
    ),
    (
        "a required zone spread counting tainted nodes",
        _set(zone_spread_counts_tainted=["headGroupSpec", "worker group 'worker'"]),
        {"zone-spread-counts-tainted": "medium"},
    ),
    (
        "no node known to a cloud's node controller",
        _set(node_providers={"n-a": "", "n-b": "", "n-c": ""}),
        {"lost-node-not-deleted": "medium"},
    ),
    (
        "worker image differs",
        _group(image="rayproject/ray:2.51.0-py310-gpu"),
        {"ray-image-versions-differ": "high", "ray-version-mismatch": "medium"},
    ),
]


@pytest.mark.parametrize(("change", "expected"), [pytest.param(c, e, id=n) for n, c, e in POSITIVE])
def test_each_risk_is_reported_when_its_facts_show_it(
    change: Change, expected: dict[str, str]
) -> None:
    facts = good()
    change(facts)
    assert ids(facts) == expected


def test_every_risk_id_has_a_scenario() -> None:
    seen = {rid for _, _, expected in POSITIVE for rid in expected}
    assert seen == set(RISK_IDS)


NEGATIVE: list[tuple[str, Change]] = [
    (
        "Sentinels, the head failing fast",
        _set(redis_topology="sentinel", head_redis_connect_retries="10"),
    ),  # fmt: skip
    ("one Redis, Ray's retries", _set(redis_topology="single")),
    ("grace 30 = drain 30 (the defaults)", _group(termination_grace_s=30.0, drain_timeout_s=30.0)),
    ("grace not inspected", _group(termination_grace_s=None, drain_timeout_s=30.0)),
    ("head in svc without a proxy", _set(head_in_serve_svc=True, head_proxy_running=False)),
    ("head in svc, proxies disabled", _set(head_in_serve_svc=True, proxy_location="Disabled")),
    ("num_replicas unknown", _dep(num_replicas=None)),
    ("3 replicas at most 2 per node", _dep(num_replicas=3, max_replicas_per_node=2)),
    ("head has cpus but the live placement is clean", _both(_set(head_num_cpus=""), _placed())),
    ("reconnect exactly 60 s", _group(reconnect_timeout_s=60.0)),
    ("reconnect unknown", _group(reconnect_timeout_s=None)),
    ("worker count unknown", _group(replicas=None, live_pods=None)),
    ("minReplicas 1 without the autoscaler", _group(min_replicas=1)),
    ("image tag without a version", _group(image="rayproject/ray:nightly")),
    ("rayVersion given as major.minor", _set(ray_version="2.52")),
    ("no rayVersion", _set(ray_version="")),
    ("placement not inspected (the sandbox, or pods unread)", _set(placement=[], node_zones={})),
    ("zones unknown (nodes not readable)", _set(node_zones={})),
    ("a cluster of one zone", _set(node_zones={"n-a": "z", "n-b": "z", "n-c": "z"})),
    ("one Ray pod only", _set(placement=[("head", HEAD, "n-a")])),
    ("nodes not readable", _set(node_providers={})),
    ("replicas on two pods of two nodes", _placed()),
    ("one node with a provider ID", _set(node_providers={"n-a": "", "n-b": "gce://p/z/b"})),
    (
        "no head placed",
        _both(_set(placement=[("worker", W1, "n-b")]), _set(node_providers={"n-b": ""})),
    ),
]


@pytest.mark.parametrize("change", [pytest.param(c, id=n) for n, c in NEGATIVE])
def test_no_risk_is_reported_when_the_facts_lack_it(change: Change) -> None:
    facts = good()
    change(facts)
    assert ids(facts) == {}


def test_evidence_names_what_was_seen() -> None:
    facts = good()
    facts.head_in_serve_svc = True
    facts.queue_length_cache_timeout = {"head": "1", "worker group 'worker'": ""}
    dep(facts).max_replicas_per_node = None
    live(facts, PearStand=Placement({W1: 2}, unplaced=1))

    risks = {r.id: r for r in evaluate(facts)}

    queue = risks["head-in-serve-svc"].evidence[2]
    assert "RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S=1 on head (lower than the default" in queue
    assert "not set on worker group 'worker' (Serve's default: 10 s)" in queue
    share = risks["replicas-share-node"].evidence
    assert share[0] == "fruit_app/PearStand: num_replicas: 2, no max_replicas_per_node (config)"
    assert share[1] == f"fruit_app/PearStand live: 2 on {W1}, 1 unplaced (dashboard http://dash)"


def test_the_reconnect_risk_quotes_the_measured_recovery() -> None:
    facts = good()
    facts.worker_groups[0].reconnect_timeout_s = 30
    [risk] = evaluate(facts)
    assert risk.evidence == (
        "worker group 'worker': RAY_gcs_rpc_server_reconnect_timeout_s=30 s (KubeRay)",
    )
    assert "~15-30 s" in risk.consequence


def test_risks_come_most_severe_first_and_filter_by_severity() -> None:
    facts = good()
    facts.gcs_storage_persistent = None
    facts.head_in_serve_svc = True
    facts.gcs_ft_enabled = True
    dep(facts).num_replicas = 1

    risks = evaluate(facts)

    assert [(r.severity, r.id) for r in risks] == [
        ("high", "single-replica"),
        ("medium", "head-in-serve-svc"),
        ("low", "gcs-storage-unknown"),
    ]
    assert [r.id for r in at_least(risks, "medium")] == ["single-replica", "head-in-serve-svc"]
    assert [r.id for r in at_least(risks, "high")] == ["single-replica"]
    assert risks[0].to_json()["evidence"] == list(risks[0].evidence)


def test_an_unknown_severity_is_a_configuration_error() -> None:
    assert [severity_rank(s) for s in ("low", "medium", "high")] == [0, 1, 2]
    with pytest.raises(ConfigurationError, match="unknown severity 'urgent'"):
        at_least([], "urgent")


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("rayproject/ray:2.9.0", "2.9.0"),
        ("rayproject/ray:2.9.0-py310", "2.9.0"),
        ("rayproject/ray-ml:2.52.0-py311-gpu", "2.52.0"),
        ("registry.local:5000/team/ray:2.41.0", "2.41.0"),
        ("rayproject/ray:2.9", "2.9"),
        ("rayproject/ray:2.9.0@sha256:abc", "2.9.0"),
        ("rayproject/ray:latest", ""),
        ("rayproject/ray:nightly-py310", ""),
        ("registry.local:5000/ray", ""),
        ("rayproject/ray", ""),
    ],
)
def test_the_ray_version_is_read_from_the_image_tag(image: str, version: str) -> None:
    assert image_ray_version(image) == version
