"""The objects a cluster holds after `kubectl apply -f ray-service.high-availability.yaml`.

Recorded (`recorded/ha-sample.json`, written by `scripts/record_operator_objects.py` from what a
real KubeRay operator made on a lab node; its header names the operator version and date): the
RayService `rayservice-ha` (spec and status), its RayCluster `rayservice-ha-k8xq2`, that
cluster's head and two workers (KubeRay's labels, env, annotations, probes, ports, owner
references), the serve and head Services with their EndpointSlices' metadata, the sample's Redis
Deployment pod and Service, and the `ray-pod` query client. Generated names and addresses were
replaced by the stable ones below when recording. Kept as the lab ran them: `serveConfigV2`
(the lab imports the fruit app locally, no `runtime_env`). Recorded but not seeded: the lab's
`rayservice-ha-dashboard` Service and the cluster's own head Service.

Derived here by small explicit transformations of the recorded objects: the GCS FT forms
other than the recorded `gcsFaultToleranceOptions` (the `ray.io/ft-enabled` annotation,
embedded `rocksdb`, none), the head back in the serve Service (the lab ran the sample with
`excludeHeadPodFromServeSvc: true`; the published sample has no such field, so the head's
`ray.io/serve` is "true" here), the Redis volumes, a RayService with no active cluster yet,
worker restart counts, the unrelated second RayCluster `raycluster-kuberay` (its head and
worker are ours renamed, without the RayService's labels) and its head Service, the core
Endpoints (KubeRay does not make them) and emptied EndpointSlices (the stand-in fills both).

Pod addresses are in 198.18.0.0/15 and Service addresses in 198.19.0.0/20 (the benchmarking range;
nothing is sent to them).
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any, Literal

NAMESPACE = "default"
RAYSERVICE = "rayservice-ha"
CLUSTER = "rayservice-ha-k8xq2"
HEAD = f"{CLUSTER}-head-7vqbn"
WORKERS = (f"{CLUSTER}-worker-worker-2m9xd", f"{CLUSTER}-worker-worker-c4tlp")
REDIS = "redis-6d9b7c5f8-x7k2p"
OTHER_CLUSTER = "raycluster-kuberay"
OTHER_HEAD = f"{OTHER_CLUSTER}-head-q8z5w"
OTHER_WORKER = f"{OTHER_CLUSTER}-small-group-worker-h6n4r"
QUERY_POD = "ray-pod"
SERVE_SVC = f"{RAYSERVICE}-serve-svc"
HEAD_SVC = f"{RAYSERVICE}-head-svc"

IPS = {
    HEAD: "198.18.1.10",
    WORKERS[0]: "198.18.1.11",
    WORKERS[1]: "198.18.1.12",
    REDIS: "198.18.1.20",
    OTHER_HEAD: "198.18.1.30",
    OTHER_WORKER: "198.18.1.31",
    QUERY_POD: "198.18.1.40",
}

FtForm = Literal["options", "annotation", "embedded", "none"]
RedisVolume = Literal["none", "pvc", "emptyDir", "hostPath"]

RECORDED_PATH = Path(__file__).with_name("recorded") / "ha-sample.json"
_FIXTURE = json.loads(RECORDED_PATH.read_text())
HEADER: dict[str, str] = _FIXTURE["header"]
_RECORDED: dict[tuple[str, str], dict[str, Any]] = {
    (o["kind"], o["metadata"]["name"]): o for o in _FIXTURE["objects"]
}


def recorded(kind: str, name: str) -> dict[str, Any]:
    """Return a copy of the recorded object `kind`/`name`."""
    return copy.deepcopy(_RECORDED[(kind, name)])


CLUSTER_UID: str = _RECORDED[("RayCluster", CLUSTER)]["metadata"]["uid"]
RAY_IMAGE: str = _RECORDED[("Pod", HEAD)]["spec"]["containers"][0]["image"]
CREATED: str = _RECORDED[("RayCluster", CLUSTER)]["metadata"]["creationTimestamp"]
NODE: str = _RECORDED[("Pod", HEAD)]["spec"]["nodeName"]  # the Node the pods are bound to
# two more Nodes of the session's control plane (registered with heartbeats, so the pod
# garbage collector keeps the pods bound to them): `seed_risks.fixed()` spreads the pods there
OTHER_NODES = ("seed-node-b", "seed-node-c")


def provider_id(node: str) -> str:
    """The seeded nodes' spec.providerID, as a cloud's node controller would set it."""
    return f"seed:///zone/{node}"


SERVE_CONFIG: str = _RECORDED[("RayService", RAYSERVICE)]["spec"]["serveConfigV2"]
_PASSWORD_REF = {"secretKeyRef": {"name": "redis-password-secret", "key": "password"}}
_REDIS_ENV = ("RAY_REDIS_ADDRESS", "REDIS_PASSWORD", "RAY_external_storage_namespace")


def _uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"seed/{name}"))


def _renamed(obj: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """Return `obj` with every occurrence of `old` in its strings replaced by `new`."""
    renamed: dict[str, Any] = json.loads(json.dumps(obj).replace(old, new))
    return renamed


def _cluster_config(config: dict[str, Any], ft: FtForm) -> dict[str, Any]:
    """Turn the recorded `rayClusterConfig` (GCS FT options form) into form `ft`."""
    options = config.pop("gcsFaultToleranceOptions", None)
    head = config["headGroupSpec"]
    if ft == "options":
        config["gcsFaultToleranceOptions"] = options
    elif ft == "annotation":
        head["template"]["spec"]["containers"][0]["env"] = [
            {"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"},
            {"name": "REDIS_PASSWORD", "valueFrom": copy.deepcopy(_PASSWORD_REF)},
        ]
        head["rayStartParams"]["redis-password"] = "$REDIS_PASSWORD"
    elif ft == "embedded":
        config["gcsFaultToleranceOptions"] = {
            "backend": "rocksdb",
            "storage": {"storageClassName": "standard", "size": "1Gi"},
        }
    return config


def rayservice(ft: FtForm = "options", active: bool = True) -> dict[str, Any]:
    """Return RayService `rayservice-ha` as KubeRay reports it once running."""
    service = recorded("RayService", RAYSERVICE)
    # The lab node recorded ran the sample with the head out of the serve Service; the
    # published sample keeps it in (the head's proxy serves too).
    service["spec"].pop("excludeHeadPodFromServeSvc", None)
    service["status"]["numServeEndpoints"] = 1 + len(WORKERS)
    service["spec"]["rayClusterConfig"] = _cluster_config(service["spec"]["rayClusterConfig"], ft)
    if ft == "annotation":
        service["metadata"]["annotations"] = {"ray.io/ft-enabled": "true"}
    if not active:
        status = service["status"]
        status.update(
            serviceStatus="",
            numServeEndpoints=0,
            activeServiceStatus={},
            pendingServiceStatus={"rayClusterName": CLUSTER},
        )
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        ready.update(status="False", reason="Initializing", message="RayService is initializing")
    return service


def raycluster(ft: FtForm = "options") -> dict[str, Any]:
    """Return the RayService's RayCluster."""
    cluster = recorded("RayCluster", CLUSTER)
    cluster["spec"] = _cluster_config(cluster["spec"], ft)
    return cluster


def head_pod(ft: FtForm = "options", cluster: str = CLUSTER, name: str = HEAD) -> dict[str, Any]:
    """Return a head pod as KubeRay builds it (GCS FT env and annotations included)."""
    pod = recorded("Pod", HEAD)
    ours = cluster == CLUSTER
    if not ours:
        ft = "none"
    container = pod["spec"]["containers"][0]
    annotations = pod["metadata"]["annotations"]
    if ft in ("embedded", "none"):
        container["env"] = [e for e in container["env"] if e["name"] not in _REDIS_ENV]
        annotations.pop("ray.io/external-storage-namespace", None)
        annotations["ray.io/ft-enabled"] = "false"
    if ft == "embedded":
        annotations["ray.io/ft-enabled"] = "true"
        container["env"] += [
            {"name": "RAY_gcs_storage", "value": "rocksdb"},
            {"name": "RAY_GCS_STORAGE_PATH", "value": "/data/gcs"},
        ]
        container["volumeMounts"].append({"name": "gcs-storage", "mountPath": "/data/gcs"})
        pod["spec"]["volumes"].append(
            {"name": "gcs-storage", "persistentVolumeClaim": {"claimName": f"{CLUSTER}-gcs-pvc"}}
        )
    pod["metadata"]["labels"]["ray.io/serve"] = "true"  # in the serve Service, as published
    if not ours:
        pod = _other(pod)
    pod = _renamed(pod, HEAD.replace(CLUSTER, cluster), name)
    pod["metadata"]["uid"] = _uid(f"Pod/{name}")
    pod["status"]["podIP"] = pod["status"]["podIPs"][0]["ip"] = IPS[name]
    return pod


def _other(pod: dict[str, Any]) -> dict[str, Any]:
    """Move a pod of ours to the unrelated RayCluster (no RayService labels, no Serve)."""
    pod = _renamed(pod, CLUSTER, OTHER_CLUSTER)
    labels = pod["metadata"]["labels"]
    for key in ("ray.io/serve", "ray.io/originated-from-cr-name", "ray.io/originated-from-crd"):
        labels.pop(key, None)
    pod["metadata"]["ownerReferences"][0]["uid"] = _uid(f"RayCluster/{OTHER_CLUSTER}")
    return pod


def worker_pod(
    name: str, cluster: str = CLUSTER, group: str = "worker", restarts: int = 0
) -> dict[str, Any]:
    """Return a worker pod as KubeRay builds it (readiness on the Serve proxy's /-/healthz)."""
    pod = recorded("Pod", WORKERS[0])
    if cluster != CLUSTER:
        pod = _other(pod)
    pod = _renamed(pod, WORKERS[0].replace(CLUSTER, cluster), name)
    pod["metadata"]["labels"]["ray.io/group"] = group
    pod["metadata"]["uid"] = _uid(f"Pod/{name}")
    pod["metadata"]["generateName"] = f"{cluster}-{group}-worker-"
    pod["status"]["podIP"] = pod["status"]["podIPs"][0]["ip"] = IPS[name]
    pod["status"]["containerStatuses"][0]["restartCount"] = restarts
    return pod


def redis_pod(volume: RedisVolume = "none") -> dict[str, Any]:
    """Return the sample's Redis Deployment pod; `volume` adds storage at /data."""
    pod = recorded("Pod", REDIS)
    if volume != "none":
        pod["spec"]["containers"][0]["volumeMounts"].append({"name": "data", "mountPath": "/data"})
        source: dict[str, Any] = {
            "pvc": {"persistentVolumeClaim": {"claimName": "redis-data"}},
            "emptyDir": {"emptyDir": {}},
            "hostPath": {"hostPath": {"path": "/var/lib/redis", "type": "DirectoryOrCreate"}},
        }[volume]
        pod["spec"]["volumes"].append({"name": "data", **source})
    return pod


def query_pod() -> dict[str, Any]:
    """Return the sample's `ray-pod` (runs the query loop; belongs to no cluster)."""
    return recorded("Pod", QUERY_POD)


def services() -> list[dict[str, Any]]:
    """Return the serve and head Services of the RayService, the other cluster's and Redis'."""
    other = _renamed(recorded("Service", f"{CLUSTER}-head-svc"), CLUSTER, OTHER_CLUSTER)
    other["metadata"]["ownerReferences"][0]["uid"] = _uid(f"RayCluster/{OTHER_CLUSTER}")
    return [recorded("Service", n) for n in (SERVE_SVC, HEAD_SVC)] + [
        other,
        recorded("Service", "redis"),
    ]


def endpoint_slice(service: str, suffix: str) -> dict[str, Any]:
    """Return an (empty) EndpointSlice of `service`; the stand-in fills it from the pods."""
    by_service = {
        o["metadata"]["labels"]["kubernetes.io/service-name"]: o
        for (kind, _), o in _RECORDED.items()
        if kind == "EndpointSlice"
    }
    template = by_service.get(service) or _renamed(
        by_service[f"{CLUSTER}-head-svc"], CLUSTER, OTHER_CLUSTER
    )
    eps = copy.deepcopy(template)
    eps["metadata"]["name"] = f"{service}-{suffix}"
    eps["metadata"]["uid"] = _uid(f"EndpointSlice/{service}-{suffix}")
    eps.update(endpoints=[], ports=[])
    return eps


def endpoints(service: str) -> dict[str, Any]:
    """Return the (empty) core Endpoints of `service`; the stand-in fills it."""
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": service,
            "namespace": NAMESPACE,
            "uid": _uid(f"Endpoints/{service}"),
            "creationTimestamp": CREATED,
            "labels": {"app.kubernetes.io/managed-by": "kuberay"},
        },
        "subsets": [],
    }


def ha_sample(
    ft: FtForm = "options",
    redis_volume: RedisVolume = "none",
    *,
    active: bool = True,
    slices: bool = True,
    other_cluster: bool = True,
) -> list[dict[str, Any]]:
    """Return every object of the seeded namespace.

    `ft` picks the GCS fault-tolerance form ("none" and "embedded" have no Redis);
    `active=False` gives a RayService with no active cluster yet; `slices=False` a cluster
    serving no EndpointSlice API (only core Endpoints).
    """
    objects: list[dict[str, Any]] = [rayservice(ft, active), raycluster(ft)]
    objects += [head_pod(ft), *(worker_pod(w, restarts=i) for i, w in enumerate(WORKERS))]
    objects.append(query_pod())
    svcs = services()
    if ft in ("embedded", "none"):
        svcs = [s for s in svcs if s["metadata"]["name"] != "redis"]
    else:
        objects.append(redis_pod(redis_volume))
    if other_cluster:
        other = _renamed(raycluster("none"), CLUSTER, OTHER_CLUSTER)
        other["metadata"].pop("ownerReferences", None)
        other["metadata"].pop("labels", None)
        other["metadata"]["uid"] = _uid(f"RayCluster/{OTHER_CLUSTER}")
        objects += [
            other,
            head_pod("none", cluster=OTHER_CLUSTER, name=OTHER_HEAD),
            worker_pod(OTHER_WORKER, cluster=OTHER_CLUSTER, group="small-group"),
        ]
    objects += svcs
    for index, svc in enumerate(svcs):
        name = svc["metadata"]["name"]
        if slices:
            objects.append(endpoint_slice(name, f"x{index}k2q"))
        objects.append(endpoints(name))
    return copy.deepcopy(objects)
