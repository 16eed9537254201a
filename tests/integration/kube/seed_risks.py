"""Variants of the seeded HA sample, each showing (or fixing) one HA risk, and dashboard answers.

`seed.ha_sample()` as it is has the sample's own risks: Redis without a volume and the head in
the serve Service, every pod on one node. `fixed()` removes every risk
(excludeHeadPodFromServeSvc, a PVC at Redis' /data, a third worker so a lost one has a spare,
the pods over three nodes); the other functions start from `fixed()` and break one thing.
`serve_details()` / `nodes_summary()` are what the Ray dashboard answers for a given replica
placement, keyed by the seeded pods' IPs.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from . import seed

Objects = list[dict[str, Any]]

THIRD_WORKER = f"{seed.CLUSTER}-worker-worker-q7zkw"
THIRD_WORKER_IP = "198.18.1.13"
DEPLOYMENTS = ("MangoStand", "OrangeStand", "PearStand", "FruitMarket")


def find(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    """Return the object of `kind` named `name` (to change it in place)."""
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise KeyError(f"{kind} {name} not seeded")


def rayservice(objects: Objects) -> dict[str, Any]:
    return find(objects, "RayService", seed.RAYSERVICE)


def cluster_config(objects: Objects) -> dict[str, Any]:
    config: dict[str, Any] = rayservice(objects)["spec"]["rayClusterConfig"]
    return config


def ray_pods(objects: Objects, node_type: str) -> list[dict[str, Any]]:
    """Return the active cluster's pods of `node_type` (head or worker)."""
    return [
        o
        for o in objects
        if o["kind"] == "Pod"
        and o["metadata"].get("labels", {}).get("ray.io/cluster") == seed.CLUSTER
        and o["metadata"]["labels"].get("ray.io/node-type") == node_type
    ]


def set_env(container: dict[str, Any], name: str, value: str) -> None:
    env = [e for e in container.get("env") or [] if e.get("name") != name]
    container["env"] = [*env, {"name": name, "value": value}]


def set_pod_env(objects: Objects, node_type: str, name: str, value: str) -> None:
    """Set `name=value` in the Ray container of every live pod of `node_type`."""
    for pod in ray_pods(objects, node_type):
        set_env(pod["spec"]["containers"][0], name, value)


def set_workers(objects: Objects, replicas: int, min_replicas: int | None = None) -> None:
    """Set the worker group's replicas (and minReplicas) in the RayService and its RayCluster."""
    for config in (cluster_config(objects), find(objects, "RayCluster", seed.CLUSTER)["spec"]):
        group = config["workerGroupSpecs"][0]
        group["replicas"] = replicas
        if min_replicas is not None:
            group["minReplicas"] = min_replicas


def change_serve_config(objects: Objects, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to the parsed serveConfigV2 and store it back as YAML."""
    spec = rayservice(objects)["spec"]
    config = yaml.safe_load(spec["serveConfigV2"])
    change(config)
    spec["serveConfigV2"] = yaml.safe_dump(config, sort_keys=False)


def deployment(config: dict[str, Any], name: str) -> dict[str, Any]:
    for dep in config["applications"][0]["deployments"]:
        if dep["name"] == name:
            result: dict[str, Any] = dep
            return result
    raise KeyError(name)


def _third_worker() -> dict[str, Any]:
    pod = seed.worker_pod(seed.WORKERS[1])
    pod["metadata"].update(
        name=THIRD_WORKER,
        uid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"seed/{THIRD_WORKER}")),
        resourceVersion="1001",
    )
    pod["status"].update(podIP=THIRD_WORKER_IP, podIPs=[{"ip": THIRD_WORKER_IP}])
    pod["status"]["containerStatuses"][0]["restartCount"] = 0
    return pod


def fixed() -> Objects:
    """Return the HA sample with every HA risk fixed."""
    objects = seed.ha_sample("options", redis_volume="pvc")
    rayservice(objects)["spec"]["excludeHeadPodFromServeSvc"] = True
    for head in ray_pods(objects, "head"):
        head["metadata"]["labels"]["ray.io/serve"] = "false"  # KubeRay's label when excluded
    set_workers(objects, 3)
    objects.append(_third_worker())
    # one node per worker, Redis away from the head (the recording ran all on one node)
    b, c = seed.OTHER_NODES
    for name, node in ((seed.WORKERS[0], b), (seed.WORKERS[1], c), (THIRD_WORKER, c),
                       (seed.REDIS, b)):  # fmt: skip
        find(objects, "Pod", name)["spec"]["nodeName"] = node
    return copy.deepcopy(objects)


# -- one risk each -----------------------------------------------------------------------------


def gcs_ft_disabled() -> Objects:
    objects = fixed()
    del cluster_config(objects)["gcsFaultToleranceOptions"]
    return objects


def redis_volume(volume: seed.RedisVolume) -> Objects:
    """The fixed sample with `volume` at Redis' /data instead of a PVC."""
    objects = fixed()
    index = next(i for i, o in enumerate(objects) if o["metadata"]["name"] == seed.REDIS)
    objects[index] = seed.redis_pod(volume)
    objects[index]["spec"]["nodeName"] = seed.OTHER_NODES[0]  # where fixed() puts it
    return objects


def head_in_serve_svc(queue_cache_timeout: str = "") -> Objects:
    """The fixed sample with the head back in the serve Service (and the env on every pod)."""
    objects = fixed()
    del rayservice(objects)["spec"]["excludeHeadPodFromServeSvc"]
    for head in ray_pods(objects, "head"):
        head["metadata"]["labels"]["ray.io/serve"] = "true"
    if queue_cache_timeout:
        for node_type in ("head", "worker"):
            set_pod_env(
                objects, node_type, "RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S", queue_cache_timeout
            )
    return objects


def two_workers() -> Objects:
    """The fixed sample with the HA sample's two workers: no spare."""
    objects = [o for o in fixed() if o["metadata"]["name"] != THIRD_WORKER]
    set_workers(objects, 2)
    return objects


def workers_lost(count: int = 2) -> Objects:
    """The fixed sample with `count` worker pods gone (not replaced yet)."""
    gone = {THIRD_WORKER, *seed.WORKERS[: max(0, count - 1)]}
    return [o for o in fixed() if o["metadata"]["name"] not in gone]


def redis_outside_cluster() -> Objects:
    """GCS fault tolerance through a Redis at an IP: its storage cannot be told."""
    objects = fixed()
    cluster_config(objects)["gcsFaultToleranceOptions"]["redisAddress"] = "192.0.2.10:6379"
    return objects


def head_only_proxy() -> Objects:
    objects = fixed()
    change_serve_config(objects, lambda c: c.update(proxy_location="HeadOnly"))
    return objects


def single_replica(name: str = "PearStand") -> Objects:
    objects = fixed()
    change_serve_config(objects, lambda c: deployment(c, name).update(num_replicas=1))
    return objects


def no_max_replicas_per_node(name: str = "OrangeStand") -> Objects:
    objects = fixed()
    change_serve_config(objects, lambda c: deployment(c, name).pop("max_replicas_per_node"))
    return objects


def head_with_cpus() -> Objects:
    """The head's rayStartParams without num-cpus: "0"."""
    objects = fixed()
    cluster_config(objects)["headGroupSpec"]["rayStartParams"] = {}
    return objects


def one_worker_wanted() -> Objects:
    objects = fixed()
    set_workers(objects, 1)
    return objects


def autoscaling_down_to_one() -> Objects:
    objects = fixed()
    cluster_config(objects)["enableInTreeAutoscaling"] = True
    set_workers(objects, 3, min_replicas=1)
    return objects


def short_reconnect_timeout(seconds: str = "30") -> Objects:
    objects = fixed()
    set_pod_env(objects, "worker", "RAY_gcs_rpc_server_reconnect_timeout_s", seconds)
    return objects


def ray_version(declared: str = "2.9.0", worker_image: str = "") -> Objects:
    objects = fixed()
    config = cluster_config(objects)
    config["rayVersion"] = declared
    if worker_image:
        container = config["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
        container["image"] = worker_image
    return objects


def zone_spread(taints_policy: str = "") -> Objects:
    """Every Ray template spread over zones, DoNotSchedule (nodeTaintsPolicy: `taints_policy`,
    "" unset)."""
    objects = fixed()
    config = cluster_config(objects)
    spread: dict[str, Any] = {
        "maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"ray.io/is-ray-node": "yes"}},
    }
    if taints_policy:
        spread["nodeTaintsPolicy"] = taints_policy
    for group in [config["headGroupSpec"], *config["workerGroupSpecs"]]:
        group["template"]["spec"]["topologySpreadConstraints"] = [dict(spread)]
    return objects


# -- the Ray dashboard's answers ---------------------------------------------------------------

POD_IPS = {**seed.IPS, THIRD_WORKER: THIRD_WORKER_IP}


def node_id(pod: str) -> str:
    return hashlib.sha1(pod.encode()).hexdigest() * 2  # 80 hex chars, like a Ray node id


def nodes_summary(pods: Sequence[str]) -> dict[str, Any]:
    """Return `GET /nodes?view=summary` for Ray nodes in `pods` (the head first)."""
    return {
        "result": True,
        "data": {
            "summary": [
                {
                    "ip": POD_IPS[pod],
                    "raylet": {
                        "nodeId": node_id(pod),
                        "nodeManagerAddress": POD_IPS[pod],
                        "nodeManagerPort": 0,
                        "isHeadNode": pod == seed.HEAD,
                        "state": "ALIVE",
                    },
                }
                for pod in pods
            ]
        },
    }


def serve_details(
    placement: Mapping[str, Sequence[str]],
    proxies: Sequence[str],
    max_replicas_per_node: int | None = 1,
) -> dict[str, Any]:
    """Return `GET /api/serve/applications/`: replicas of each deployment on the named pods."""
    deployments: dict[str, Any] = {}
    for name in DEPLOYMENTS:
        on = list(placement.get(name, ()))
        config: dict[str, Any] = {"name": name, "num_replicas": len(on) or 2}
        if max_replicas_per_node is not None:
            config["max_replicas_per_node"] = max_replicas_per_node
        deployments[name] = {
            "name": name,
            "status": "HEALTHY",
            "target_num_replicas": len(on) or 2,
            "deployment_config": config,
            "replicas": [
                {
                    "replica_id": f"{name}-{index}",
                    "state": "RUNNING",
                    "node_id": node_id(pod),
                    "node_ip": POD_IPS[pod],
                }
                for index, pod in enumerate(on)
            ],
        }
    return {
        "proxy_location": "EveryNode",
        "proxies": {
            node_id(pod): {"node_id": node_id(pod), "node_ip": POD_IPS[pod], "status": "HEALTHY"}
            for pod in proxies
        },
        "applications": {
            "fruit_app": {"status": "RUNNING", "route_prefix": "/fruit", "deployments": deployments}
        },
    }


def spread(pods: Sequence[str] = seed.WORKERS) -> dict[str, list[str]]:
    """Return each deployment with one replica on each of `pods`."""
    return {name: list(pods) for name in DEPLOYMENTS}
