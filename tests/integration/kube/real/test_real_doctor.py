"""`chaosraysvc doctor` and the `ha_risks` probe on the Kubernetes target, on the real API server.

One seeded scenario per risk (see `seed_risks`), the HA sample as seeded, and a variant with
everything fixed, each loaded into a namespace of its own (so each passes KubeRay's CRD
schemas); the live placement comes from a Ray dashboard double on loopback (no Ray runs
behind the seed). Where a test gives no dashboard, it is a closed loopback port: without
one the target would read it through the API server's service proxy, which would dial the
seed's head address (a made-up one: nothing may be sent there); that route is tested in
`test_real_dashboard_proxy.py`. The doctor on an API server that is down is in
`test_real_controlplane.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed
from chaoslib.hypothesis import ensure_hypothesis_tolerance_is_valid, within_tolerance

from chaosraysvc.activities.doctor_probes import ha_risks
from chaosraysvc.cli import main
from chaosraysvc.doctor.rules import Risk, evaluate
from chaosraysvc.model.ha import HaFacts
from chaosraysvc.runtime.ports import free_port
from tests.support.loopback import LoopbackServer, documents_handler

from .. import seed, seed_risks
from .conftest import RealCluster, SeedCluster

pytestmark = pytest.mark.apiserver


class Dashboard:
    """A Ray dashboard double: answers the Serve details and node summary it is given."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.server = LoopbackServer(documents_handler(self.documents))
        self.url = self.server.url

    def show(self, placement: dict[str, list[str]], **kwargs: Any) -> None:
        """Serve `placement` (deployment -> pods holding a replica) on every Ray pod."""
        pods = [seed.HEAD, *seed.WORKERS, seed_risks.THIRD_WORKER]
        self.documents["/api/serve/applications"] = seed_risks.serve_details(
            placement, proxies=pods, **kwargs
        )
        self.documents["/nodes"] = seed_risks.nodes_summary(pods)

    def close(self) -> None:
        self.server.close()


CLOSED_DASHBOARD = f"http://127.0.0.1:{free_port()}"


@pytest.fixture(autouse=True)
def closed_dashboard(kube_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the doctor's CLI and probe read a closed dashboard unless a test gives one."""
    monkeypatch.setenv("RAYSVC_DASHBOARD_URL", CLOSED_DASHBOARD)


@pytest.fixture
def dashboard() -> Iterator[Dashboard]:
    double = Dashboard()
    try:
        yield double
    finally:
        double.close()


def _facts(cluster: RealCluster, dashboard_url: str = CLOSED_DASHBOARD) -> HaFacts:
    return cluster.target(dashboard_url=dashboard_url).ha_facts()


def _risks(cluster: RealCluster, dashboard_url: str = CLOSED_DASHBOARD) -> dict[str, Risk]:
    return {r.id: r for r in evaluate(_facts(cluster, dashboard_url))}


def _severities(risks: dict[str, Risk]) -> dict[str, str]:
    return {rid: r.severity for rid, r in risks.items()}


# -- the sample and its fix --------------------------------------------------------------------


def test_the_ha_sample_as_seeded_has_ephemeral_redis_the_head_in_the_service_one_node(
    seed_cluster: SeedCluster,
) -> None:
    facts = _facts(seed_cluster(wait_slices=False))
    risks = {r.id: r for r in evaluate(facts)}

    assert _severities(risks) == {
        "gcs-storage-ephemeral": "high",
        "head-in-serve-svc": "medium",
        "no-spare-worker": "low",
        "ray-pods-one-node": "high",  # the recording ran on one node
        "head-redis-share-node": "high",
    }
    shared = " ".join(risks["head-redis-share-node"].evidence)
    assert f"head pod {seed.HEAD} on node {seed.NODE}" in shared
    assert f"redis pod {seed.REDIS} on node {seed.NODE}" in shared
    storage = " ".join(risks["gcs-storage-ephemeral"].evidence)
    assert "redisAddress = redis:6379" in storage
    assert f"Redis pod {seed.REDIS}: no volume mounted at its data directory /data" in storage
    head = " ".join(risks["head-in-serve-svc"].evidence)
    assert "spec.excludeHeadPodFromServeSvc is not true" in head
    assert f"head pod {seed.HEAD} has ray.io/serve=true" in head
    assert "RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S not set on head, worker group 'worker'" in head
    assert any(
        f"live replica placement not inspected: Ray dashboard at {CLOSED_DASHBOARD} is "
        "unreachable" in note
        for note in facts.notes
    )


def test_the_fixed_sample_has_no_risk_with_or_without_the_live_placement(
    seed_cluster: SeedCluster, dashboard: Dashboard
) -> None:
    cluster = seed_cluster(seed_risks.fixed(), wait_slices=False)
    assert _risks(cluster) == {}

    dashboard.show(seed_risks.spread())
    facts = _facts(cluster, dashboard.url)

    assert evaluate(facts) == []
    assert facts.placement_source == f"dashboard {dashboard.url}"
    # read from the Nodes: the lost-node rule's fact (no provider ID anywhere: a risk)
    assert facts.node_providers[seed.OTHER_NODES[0]] == seed.provider_id(seed.OTHER_NODES[0])
    pear = next(d for d in facts.deployments if d.name == "PearStand")
    assert pear.placement is not None
    assert pear.placement.per_pod == {w: 1 for w in seed.WORKERS}
    assert facts.head_proxy_running is True
    assert seed.HEAD in facts.head_proxy_evidence


def test_a_redis_behind_sentinels_is_told_from_one_redis(seed_cluster: SeedCluster) -> None:
    objects = seed_risks.fixed()
    assert _facts(seed_cluster(objects, wait_slices=False)).redis_topology == "single"
    redis = seed_risks.find(objects, "Pod", seed.REDIS)
    redis["spec"]["containers"][0]["command"] = ["redis-server", "/data/s.conf", "--sentinel"]

    facts = _facts(seed_cluster(objects, wait_slices=False))

    assert facts.redis_topology == "sentinel"
    assert f"pod {seed.REDIS}: container 'redis' runs `... --sentinel`" in (
        facts.redis_topology_evidence
    )
    # its primary and replicas are not behind the GCS address: their storage is not known;
    # the head retries a primary it was given for Ray's 120 times
    assert _severities({r.id: r for r in evaluate(facts)}) == {
        "gcs-storage-unknown": "low", "sentinel-stale-primary": "medium",
    }  # fmt: skip
    head = seed_risks.find(objects, "Pod", seed.HEAD)["spec"]["containers"][0]
    head.setdefault("env", []).append({"name": "RAY_redis_db_connect_retries", "value": "10"})

    fast = _facts(seed_cluster(objects, wait_slices=False))

    assert (fast.head_redis_connect_retries, fast.head_redis_connect_retries_source) == (
        "10", "env of the head pod",
    )  # fmt: skip
    assert _severities({r.id: r for r in evaluate(fast)}) == {"gcs-storage-unknown": "low"}


# -- one scenario per risk ---------------------------------------------------------------------


SCENARIOS: list[tuple[str, Callable[[], list[dict[str, Any]]], dict[str, str], str]] = [
    (
        "gcs-ft-off",
        seed_risks.gcs_ft_disabled,
        {"gcs-ft-disabled": "high"},
        "no gcsFaultToleranceOptions nor ft-enabled annotation",
    ),
    (
        "redis-emptydir",
        lambda: seed_risks.redis_volume("emptyDir"),
        {"gcs-storage-ephemeral": "high"},
        "/data is on volume 'data' (empty_dir), which is lost with the pod",
    ),
    (
        "redis-outside",
        seed_risks.redis_outside_cluster,
        {"gcs-storage-unknown": "low"},
        "no Redis pod found behind 192.0.2.10:6379",
    ),
    (
        "head-in-svc",
        seed_risks.head_in_serve_svc,
        {"head-in-serve-svc": "medium"},
        "RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S not set on head",
    ),
    (
        "head-in-svc-with-short-cache",
        lambda: seed_risks.head_in_serve_svc(queue_cache_timeout="1"),
        {"head-in-serve-svc": "medium"},
        "RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S=1 on head (lower than the default",
    ),
    (
        "proxy-head-only",
        seed_risks.head_only_proxy,
        {"proxy-head-only": "high"},
        "proxy_location: HeadOnly",
    ),
    (
        "single-replica",
        seed_risks.single_replica,
        {"single-replica": "high"},
        "fruit_app/PearStand: num_replicas: 1",
    ),
    (
        "no-max-replicas-per-node",
        seed_risks.no_max_replicas_per_node,
        {"replicas-share-node": "medium"},
        "fruit_app/OrangeStand: num_replicas: 2, no max_replicas_per_node",
    ),
    (
        "head-with-cpus",
        seed_risks.head_with_cpus,
        {"replicas-on-head": "low"},
        "head num-cpus: not set",
    ),
    (
        "one-worker-wanted",
        seed_risks.one_worker_wanted,
        {"too-few-workers": "high"},
        "1 worker pod(s) wanted in total",
    ),
    (
        "workers-lost",
        seed_risks.workers_lost,
        {"too-few-workers": "high"},
        "only 1 worker pod(s) running",
    ),
    (
        "autoscaler-min-one",
        seed_risks.autoscaling_down_to_one,
        {"too-few-workers": "medium"},
        "enableInTreeAutoscaling: true and minReplicas total 1",
    ),
    (
        "no-spare-worker",
        seed_risks.two_workers,
        {"no-spare-worker": "low"},
        "2 worker pod(s) wanted in total",
    ),
    (
        "reconnect-timeout-30s",
        seed_risks.short_reconnect_timeout,
        {"gcs-reconnect-timeout-short": "high"},
        "RAY_gcs_rpc_server_reconnect_timeout_s=30 s (env of pod",
    ),
    (
        "ray-version",
        seed_risks.ray_version,
        {"ray-version-mismatch": "medium"},
        "rayVersion: 2.9.0 (spec.rayClusterConfig.rayVersion)",
    ),
    (
        "worker-image-differs",
        lambda: seed_risks.ray_version("2.52.0", "rayproject/ray:2.51.0-py310"),
        {"ray-image-versions-differ": "high", "ray-version-mismatch": "medium"},
        "worker group 'worker' image rayproject/ray:2.51.0-py310",
    ),
    (
        "zone-spread-counting-taints",
        seed_risks.zone_spread,
        {"zone-spread-counts-tainted": "medium"},
        "worker group 'worker': topologySpreadConstraints over topology.kubernetes.io/zone",
    ),
]


@pytest.mark.parametrize(
    ("objects", "expected", "evidence"),
    [
        pytest.param(objects, expected, evidence, id=name)
        for name, objects, expected, evidence in SCENARIOS
    ],
)
def test_each_risk_is_reported_from_the_spec_and_pods(
    seed_cluster: SeedCluster,
    objects: Callable[[], list[dict[str, Any]]],
    expected: dict[str, str],
    evidence: str,
) -> None:
    risks = _risks(seed_cluster(objects(), wait_slices=False))

    assert _severities(risks) == expected
    seen = [item for risk in risks.values() for item in risk.evidence]
    assert any(evidence in item for item in seen), seen


def test_a_zone_spread_that_leaves_tainted_nodes_out_is_no_risk(
    seed_cluster: SeedCluster,
) -> None:
    facts = _facts(seed_cluster(seed_risks.zone_spread("Honor"), wait_slices=False))

    assert facts.zone_spread_counts_tainted == []
    assert evaluate(facts) == []


def test_replicas_on_the_head_are_read_from_the_live_placement(
    seed_cluster: SeedCluster, dashboard: Dashboard
) -> None:
    cluster = seed_cluster(seed_risks.fixed(), wait_slices=False)
    placement = seed_risks.spread()
    placement["PearStand"] = [seed.HEAD, seed.HEAD]
    placement["MangoStand"] = [seed.HEAD, seed.WORKERS[0]]
    dashboard.show(placement)

    risk = _risks(cluster, dashboard.url)["replicas-on-head"]

    assert risk.severity == "high"  # every PearStand replica is on the head
    assert f"fruit_app/PearStand live: 2 on {seed.HEAD}" in risk.evidence[1]
    assert any(f"1 on {seed.HEAD}, 1 on {seed.WORKERS[0]}" in e for e in risk.evidence)


def test_replicas_packed_on_one_worker_are_read_from_the_live_placement(
    seed_cluster: SeedCluster, dashboard: Dashboard
) -> None:
    cluster = seed_cluster(seed_risks.no_max_replicas_per_node("OrangeStand"), wait_slices=False)
    placement = seed_risks.spread()
    placement["OrangeStand"] = [seed.WORKERS[0], seed.WORKERS[0]]
    dashboard.show(placement)

    risk = _risks(cluster, dashboard.url)["replicas-share-node"]

    assert risk.severity == "high"
    assert risk.evidence[1].startswith(f"fruit_app/OrangeStand live: 2 on {seed.WORKERS[0]}")


def test_an_unreachable_dashboard_is_a_note_not_a_failure(seed_cluster: SeedCluster) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    facts = _facts(seed_cluster(seed_risks.fixed(), wait_slices=False), url)

    assert evaluate(facts) == []
    assert facts.placement_source == ""
    assert any(f"Ray dashboard at {url} is unreachable" in n for n in facts.notes), facts.notes


def test_a_rayservice_without_an_active_cluster_is_checked_from_its_spec(
    seed_cluster: SeedCluster,
) -> None:
    facts = _facts(seed_cluster(seed.ha_sample(active=False), wait_slices=False))

    assert {r.id for r in evaluate(facts)} == {
        "gcs-storage-ephemeral",
        "head-in-serve-svc",
        "no-spare-worker",
    }
    assert any("has no active RayCluster yet" in n for n in facts.notes)
    assert facts.worker_groups[0].live_pods is None


# -- the command -------------------------------------------------------------------------------


def test_doctor_prints_a_table_and_exits_1_on_a_high_risk(
    seed_cluster: SeedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = seed_cluster(wait_slices=False)

    code = main(["doctor", "--target", "kubernetes", "--namespace", cluster.namespace])

    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith(
        f"HA check of RayService {cluster.namespace}/rayservice-ha (kubernetes)\n"
    )
    assert "5 risk(s): 3 high, 1 medium, 1 low" in out
    assert "high      gcs-storage-ephemeral" in out
    assert "[medium] head-in-serve-svc:" in out
    assert "consequence:" in out and "fix:" in out


def test_doctor_json_lists_risks_and_facts_and_exits_0_without_a_high_risk(
    seed_cluster: SeedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = seed_cluster(seed_risks.head_in_serve_svc(), wait_slices=False)

    code = main(["doctor", "--target", "kubernetes", "--namespace", cluster.namespace, "--json"])

    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["exit_code"] == 0
    assert [r["id"] for r in document["risks"]] == ["head-in-serve-svc"]
    assert document["counts"] == {"high": 0, "medium": 1, "low": 0}
    assert document["facts"]["head_in_serve_svc"] is True
    assert set(document["risks"][0]) == {
        "id",
        "severity",
        "title",
        "evidence",
        "consequence",
        "fix",
    }


def test_doctor_on_a_fixed_rayservice_says_so(
    seed_cluster: SeedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = seed_cluster(seed_risks.fixed(), wait_slices=False)

    code = main(["doctor", "--target", "kubernetes", "--namespace", cluster.namespace])

    assert code == 0
    assert "no HA risk found" in capsys.readouterr().out


def test_doctor_exits_3_with_one_line_when_the_rayservice_is_missing(
    seed_cluster: SeedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = seed_cluster(wait_slices=False).namespace

    code = main(["doctor", "--target", "kubernetes", "--name", "nope", "--namespace", ns])

    captured = capsys.readouterr()
    assert code == 3
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"chaosraysvc doctor: could not inspect RayService {ns}/nope: ")
    assert f"RayService 'nope' not found in namespace '{ns}'" in line


# -- the probe ---------------------------------------------------------------------------------


def test_ha_risks_probe_filters_by_severity_and_fits_the_documented_tolerance(
    seed_cluster: SeedCluster,
) -> None:
    no_high_risk: list[Any] = [[]]  # the tolerance in the probe module's docstring
    ensure_hypothesis_tolerance_is_valid(no_high_risk)
    cluster = seed_cluster(wait_slices=False)
    configuration = {"raysvc_target": "kubernetes", "rayservice_namespace": cluster.namespace}

    high = ha_risks("high", configuration)
    every = ha_risks(configuration=configuration)

    assert [r["id"] for r in high] == [
        "gcs-storage-ephemeral", "ray-pods-one-node", "head-redis-share-node"
    ]  # fmt: skip
    assert [r["severity"] for r in every] == ["high", "high", "high", "medium", "low"]
    assert within_tolerance(no_high_risk, high) is False

    cluster = seed_cluster(seed_risks.two_workers(), wait_slices=False)
    configuration["rayservice_namespace"] = cluster.namespace
    assert [r["id"] for r in ha_risks(configuration=configuration)] == ["no-spare-worker"]
    assert within_tolerance(no_high_risk, ha_risks("high", configuration)) is True


def test_ha_risks_probe_fails_the_activity_on_a_missing_rayservice(
    seed_cluster: SeedCluster,
) -> None:
    ns = seed_cluster(wait_slices=False).namespace
    configuration = {"raysvc_target": "kubernetes", "rayservice_namespace": ns}

    with pytest.raises(ActivityFailed, match=f"RayService 'nope' not found in namespace '{ns}'"):
        ha_risks(configuration={**configuration, "rayservice_name": "nope"})
    with pytest.raises(ActivityFailed, match="unknown severity 'urgent'"):
        ha_risks("urgent", configuration)
