"""The lab's changes to KubeRay's HA sample: the Serve app imported locally, the head out of
the serve Service on request, and Ray settings for a measured comparison."""

from __future__ import annotations

import pytest
import yaml

from chaosraysvc.errors import ConfigurationError
from chaosraysvc_lab.sample import IMPORT_PATH, adapt_sample

SAMPLE = """
apiVersion: ray.io/v1
kind: RayService
metadata: {name: rayservice-ha}
spec:
  serveConfigV2: |
    applications:
      - name: fruit_app
        import_path: fruit.deployment_graph
        runtime_env: {working_dir: "https://example.invalid/x.zip"}
  rayClusterConfig:
    headGroupSpec:
      template:
        spec:
          containers:
            - name: ray-head
              env: [{name: RAY_gcs_rpc_server_reconnect_timeout_s, value: "60"}]
    workerGroupSpecs:
      - template:
          spec:
            containers:
              - name: ray-worker
---
apiVersion: v1
kind: Service
metadata: {name: redis}
"""


def _env(doc: dict, group: str) -> list[dict[str, str]]:  # type: ignore[type-arg]
    cluster = doc["spec"]["rayClusterConfig"]
    spec = cluster["headGroupSpec"] if group == "head" else cluster["workerGroupSpecs"][0]
    return spec["template"]["spec"]["containers"][0].get("env", [])


def test_the_sample_as_published_but_its_serve_app() -> None:
    service, redis = adapt_sample(SAMPLE)
    [app] = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    assert app == {"name": "fruit_app", "import_path": IMPORT_PATH}
    assert "excludeHeadPodFromServeSvc" not in service["spec"]
    assert _env(service, "head") == [{"name": "RAY_gcs_rpc_server_reconnect_timeout_s",
                                      "value": "60"}]  # fmt: skip
    assert _env(service, "worker") == [] and redis["kind"] == "Service"


def test_ray_env_reaches_every_ray_container_and_replaces_a_variable_of_its_name() -> None:
    service, _ = adapt_sample(
        SAMPLE,
        exclude_head=True,
        ray_env={"RAY_gcs_grpc_max_reconnect_backoff_ms": "200",
                 "RAY_gcs_rpc_server_reconnect_timeout_s": "120"},
    )  # fmt: skip
    assert service["spec"]["excludeHeadPodFromServeSvc"] is True
    for group in ("head", "worker"):
        assert {e["name"]: e["value"] for e in _env(service, group)} == {
            "RAY_gcs_grpc_max_reconnect_backoff_ms": "200",
            "RAY_gcs_rpc_server_reconnect_timeout_s": "120",
        }


REDIS_PART = """
kind: ConfigMap
apiVersion: v1
metadata: {name: redis-config}
data:
  redis.conf: |-
    dir /data
    requirepass 5241590000000000
---
apiVersion: v1
kind: Service
metadata: {name: redis}
spec: {selector: {app: redis}, ports: [{port: 6379}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: redis}
"""


def _sample_with_redis() -> list[dict]:  # type: ignore[type-arg]
    docs = [d for d in yaml.safe_load_all(SAMPLE) if d and d["kind"] == "RayService"]
    docs[0]["spec"]["rayClusterConfig"]["gcsFaultToleranceOptions"] = {"redisAddress": "redis:6379"}
    return docs + [d for d in yaml.safe_load_all(REDIS_PART) if d]


def test_sentinel_redis_replaces_the_one_redis_and_the_gcs_asks_the_sentinels() -> None:
    import pytest

    from chaosraysvc_lab.redis_ha import SENTINEL_ADDRESS, with_sentinel

    docs = with_sentinel(_sample_with_redis(), "ns1")

    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert kinds == [
        ("ConfigMap", "redis-config"),  # its redis.conf and password kept
        ("Deployment", "redis-sentinel"),
        ("RayService", "rayservice-ha"),
        ("Service", "redis-headless"),
        ("Service", "redis-sentinel"),
        ("StatefulSet", "redis"),
    ]
    rayservice = next(d for d in docs if d["kind"] == "RayService")
    options = rayservice["spec"]["rayClusterConfig"]["gcsFaultToleranceOptions"]
    assert options["redisAddress"] == SENTINEL_ADDRESS == "redis-sentinel:26379"
    headless = next(d for d in docs if d["metadata"]["name"] == "redis-headless")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"]
    pair = next(d for d in docs if d["kind"] == "StatefulSet")
    assert (pair["spec"]["replicas"], pair["spec"]["serviceName"]) == (2, "redis-headless")
    script = pair["spec"]["template"]["spec"]["containers"][0]["command"][2]
    # a primary that comes back before the failover waits for it instead of rejoining as before
    assert 'while [ "$primary" = "$me" ]' in script
    assert "me=$(hostname).redis-headless.ns1.svc.cluster.local" in script
    sentinels = next(d for d in docs if d["metadata"]["name"] == "redis-sentinel"
                     and d["kind"] == "Deployment")  # fmt: skip
    assert sentinels["spec"]["replicas"] == 3
    conf = sentinels["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "primary=redis-0.redis-headless.ns1.svc.cluster.local" in conf
    assert "sentinel monitor mymaster $primary 6379 2" in conf
    assert "requirepass $pw" in conf  # the GCS authenticates to the Sentinel with its password
    assert "sentinel down-after-milliseconds mymaster 5000" in conf

    slow = with_sentinel(_sample_with_redis(), "ns1", down_after_ms=30000)
    slow_sentinels = next(d for d in slow if d["metadata"]["name"] == "redis-sentinel"
                          and d["kind"] == "Deployment")  # fmt: skip
    slow_conf = slow_sentinels["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "sentinel down-after-milliseconds mymaster 30000" in slow_conf
    with pytest.raises(ValueError, match="down-after-milliseconds must be 100 or more"):
        with_sentinel(_sample_with_redis(), down_after_ms=0)

    without = [d for d in _sample_with_redis() if d["kind"] != "ConfigMap"]
    with pytest.raises(ValueError, match="no ConfigMap redis-config"):
        with_sentinel(without)


def _sample_with_deployments() -> str:
    """SAMPLE with two deployments of 2 replicas and a worker group of 2."""
    service, redis = [d for d in yaml.safe_load_all(SAMPLE) if d]
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    config["applications"][0]["deployments"] = [
        {"name": "A", "num_replicas": 2},
        {"name": "B", "num_replicas": 2},
    ]
    service["spec"]["serveConfigV2"] = yaml.safe_dump(config)
    [group] = service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    group.update(replicas=2, minReplicas=1, groupName="worker")
    return yaml.safe_dump_all([service, redis])


def test_head_only_puts_one_replica_of_each_deployment_and_nothing_else_on_the_head() -> None:
    text = _sample_with_deployments()
    service, _ = adapt_sample(text, head_only=True)
    [app] = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    assert [d["num_replicas"] for d in app["deployments"]] == [1, 1]
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["headGroupSpec"]["rayStartParams"] == {"num-cpus": "1"}
    [workers] = cluster["workerGroupSpecs"]
    assert (workers["replicas"], workers["minReplicas"]) == (0, 0)
    assert "excludeHeadPodFromServeSvc" not in service["spec"]
    untouched, _ = adapt_sample(text)
    [app] = yaml.safe_load(untouched["spec"]["serveConfigV2"])["applications"]
    assert [d["num_replicas"] for d in app["deployments"]] == [2, 2]
    assert untouched["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] == 2


def test_head_only_refuses_a_head_out_of_the_serve_service() -> None:
    with pytest.raises(ConfigurationError, match="cannot exclude its head"):
        adapt_sample(SAMPLE, exclude_head=True, head_only=True)


def test_a_head_start_delay_is_an_init_container_of_the_head_only() -> None:
    service, _ = adapt_sample(SAMPLE, head_start_delay=45)
    cluster = service["spec"]["rayClusterConfig"]
    [init] = cluster["headGroupSpec"]["template"]["spec"]["initContainers"]
    assert init["command"] == ["sleep", "45"] and init["name"] == "slow-start"
    assert "initContainers" not in cluster["workerGroupSpecs"][0]["template"]["spec"]
    plain, _ = adapt_sample(SAMPLE)
    assert (
        "initContainers"
        not in plain["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    )


def test_spread_zones_spreads_every_ray_pod_and_keeps_redis_out_of_the_heads_zone() -> None:
    text = (
        SAMPLE
        + """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: redis}
spec:
  template:
    metadata: {labels: {app: redis}}
    spec:
      containers: [{name: redis}]
"""
    )
    service, _, redis = adapt_sample(text, spread_zones=True)

    cluster = service["spec"]["rayClusterConfig"]
    for group in (cluster["headGroupSpec"], cluster["workerGroupSpecs"][0]):
        [spread] = group["template"]["spec"]["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
        assert spread["maxSkew"] == 1 and spread["whenUnsatisfiable"] == "DoNotSchedule"
        assert spread["nodeTaintsPolicy"] == "Honor"  # a tainted node's zone not counted
        assert spread["labelSelector"] == {"matchLabels": {"ray.io/is-ray-node": "yes"}}
    [away] = redis["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert away["labelSelector"] == {"matchLabels": {"ray.io/node-type": "head"}}
    assert away["topologyKey"] == "topology.kubernetes.io/zone"

    plain, _, plain_redis = adapt_sample(text)
    assert "topologySpreadConstraints" not in str(plain) and "affinity" not in str(plain_redis)
