"""KubeRay's HA sample (`ray-service.high-availability.yaml`, as KubeRay publishes it) as the
node applies it: the Serve app imported from this project, and the set-ups the tests and
campaigns ask for (the head out of the serve Service, Ray settings, Redis behind Sentinels, a
head-only service, a late head), plus a ClusterIP Service in front of the head's dashboard.
"""

from __future__ import annotations

from typing import Any

import yaml

from chaosraysvc.errors import ConfigurationError
from chaosraysvc.fruit.config import IMPORT_PATH
from chaosraysvc_lab import binaries, redis_ha

NAME = "rayservice-ha"
NAMESPACE = "default"
ZONE_KEY = "topology.kubernetes.io/zone"
# every Ray pod of the namespace (KubeRay labels them so), head and workers counted together;
# tainted nodes (a lost zone's NotReady ones, a control plane's) out of the count: with the
# default ("Ignore") a zone whose only node left was tainted still counted, as a zone with no
# Ray pod, and a new head could go nowhere while it lasted (seen on the lab's node)
ZONE_SPREAD = {
    "maxSkew": 1,
    "topologyKey": ZONE_KEY,
    "whenUnsatisfiable": "DoNotSchedule",
    "nodeTaintsPolicy": "Honor",
    "labelSelector": {"matchLabels": {"ray.io/is-ray-node": "yes"}},
}
# required, so the scheduler keeps a new head out of Redis' zone as well (it is symmetric)
REDIS_AWAY = {
    "requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"ray.io/node-type": "head"}}, "topologyKey": ZONE_KEY}
    ]
}


def published_sample(
    exclude_head: bool = False,
    ray_env: dict[str, str] | None = None,
    redis: str = "single",
    head_only: bool = False,
    head_start_delay: float = 0,
    spread_zones: bool = False,
    sentinel_down_after_ms: int = redis_ha.DOWN_AFTER_MS,
) -> list[dict[str, Any]]:
    """KubeRay's HA sample, its Serve app imported locally; `exclude_head` sets KubeRay's field;
    `redis="sentinel"` replaces its Redis by a Sentinel-backed pair (`redis_ha.py`, its
    Sentinels' down-after-milliseconds `sentinel_down_after_ms`);
    `head_only`, `head_start_delay`, `spread_zones`: see `adapt_sample`."""
    path = binaries.binary_dir() / "samples" / "ray-service.high-availability.yaml"
    docs = adapt_sample(
        path.read_text(), exclude_head, ray_env, head_only, head_start_delay, spread_zones
    )
    if redis != "sentinel":
        return docs
    return redis_ha.with_sentinel(docs, NAMESPACE, sentinel_down_after_ms)


def adapt_sample(
    text: str,
    exclude_head: bool = False,
    ray_env: dict[str, str] | None = None,
    head_only: bool = False,
    head_start_delay: float = 0,
    spread_zones: bool = False,
) -> list[dict[str, Any]]:
    """The sample's documents with our changes; `ray_env` is added to every Ray container's
    environment (head and worker groups), replacing a variable of the same name: for a
    measured comparison of a Ray setting (e.g. `RAY_gcs_grpc_max_reconnect_backoff_ms`).

    `head_only`: a deliberately fragile layout, every Serve replica and the only proxy on the
    head (the worker group at 0 replicas, the head given 1 CPU, one replica per deployment):
    deleting the head stops the service until a new head has run the application again.
    `head_start_delay` (seconds): the head pod gets an init container that sleeps that long
    before Ray starts, as a new node's pull of Ray's multi-GB image delays it on a cluster.
    `spread_zones`: the zone-aware set-up the sample lacks (`ZONE_SPREAD`, `REDIS_AWAY`): the
    Ray pods spread over zones (at most one more in a zone than in another, or Pending), and
    Redis never in the head's zone (so losing the head's zone never loses Redis too).
    """
    if head_only and exclude_head:
        raise ConfigurationError(
            "a head-only RayService cannot exclude its head from the serve Service"
        )
    docs = [doc for doc in yaml.safe_load_all(text) if doc]
    for doc in docs:
        if doc["kind"] != "RayService":
            continue
        config = yaml.safe_load(doc["spec"]["serveConfigV2"])
        for app in config["applications"]:
            app.pop("runtime_env", None)
            app["import_path"] = IMPORT_PATH
            for deployment in app.get("deployments", []) if head_only else []:
                deployment["num_replicas"] = 1
        doc["spec"]["serveConfigV2"] = yaml.safe_dump(config, sort_keys=False)
        if exclude_head:
            doc["spec"]["excludeHeadPodFromServeSvc"] = True
        cluster = doc["spec"]["rayClusterConfig"]
        if head_start_delay:
            head = cluster["headGroupSpec"]["template"]["spec"]
            image = head["containers"][0].get("image", "rayproject/ray")
            head.setdefault("initContainers", []).append(
                {
                    "name": "slow-start",
                    "image": image,
                    "command": ["sleep", f"{head_start_delay:g}"],
                }
            )
        if head_only:
            cluster["headGroupSpec"].setdefault("rayStartParams", {})["num-cpus"] = "1"
            for group in cluster.get("workerGroupSpecs", []):
                group["replicas"] = group["minReplicas"] = 0
        groups = [cluster["headGroupSpec"], *cluster.get("workerGroupSpecs", [])]
        for group in groups if spread_zones else []:
            group["template"]["spec"]["topologySpreadConstraints"] = [dict(ZONE_SPREAD)]
        added = [{"name": k, "value": v} for k, v in (ray_env or {}).items()]
        for group in groups if added else []:
            for container in group["template"]["spec"]["containers"]:
                names = {e["name"] for e in added}
                kept = [e for e in container.get("env", []) if e["name"] not in names]
                container["env"] = kept + [dict(e) for e in added]
    for doc in docs if spread_zones else []:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "redis":
            doc["spec"]["template"]["spec"]["affinity"] = {"podAntiAffinity": REDIS_AWAY}
    return docs


def dashboard_service(name: str = NAME) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{name}-dashboard"},
        "spec": {
            "selector": {"ray.io/node-type": "head", "ray.io/is-ray-node": "yes"},
            "ports": [{"name": "dashboard", "port": 8265, "targetPort": 8265}],
        },
    }
