"""The objects a kind cluster holds after `kubectl apply -f ray-service.high-availability.yaml`.

Shaped as KubeRay 1.x creates them for the sample: the RayService `rayservice-ha` (status
with `activeServiceStatus`), its RayCluster `rayservice-ha-k8xq2`, that cluster's head and two
workers (KubeRay's labels, env and annotations), the serve and head Services with their
EndpointSlices and Endpoints, the sample's Redis Deployment pod and Service, and the `ray-pod`
query client. A second, unrelated RayCluster (`raycluster-kuberay`, with its own head and
worker) sits in the same namespace and must never be touched.

Pod addresses are in 198.18.0.0/15 and Service addresses in 198.19.0.0/20 (the benchmarking range;
nothing is sent to them). `ha_sample()` varies the GCS fault-tolerance form,
the Redis volume and which objects exist.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any, Literal

NAMESPACE = "default"
RAYSERVICE = "rayservice-ha"
CLUSTER = "rayservice-ha-k8xq2"
CLUSTER_UID = "0b8e6c1e-3c35-4f5a-9d43-8e1f3b7a2c10"
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
RAY_IMAGE = "rayproject/ray:2.52.0"
CREATED = "2025-06-02T09:00:00Z"

FtForm = Literal["options", "annotation", "embedded", "none"]
RedisVolume = Literal["none", "pvc", "emptyDir", "hostPath"]


def _uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"seed/{name}"))


def _meta(name: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "uid": _uid(name),
        "resourceVersion": "1000",
        "creationTimestamp": CREATED,
    }
    meta.update(extra)
    return meta


SERVE_CONFIG = """applications:
  - name: fruit_app
    import_path: fruit.deployment_graph
    route_prefix: /fruit
    runtime_env:
      working_dir: "https://github.com/ray-project/test_dag/archive/4d2c9a59d9eabfd4c8a9e04a7aae44fc8f5b416f.zip"
    deployments:
      - name: MangoStand
        num_replicas: 2
        max_replicas_per_node: 1
        user_config:
          price: 3
        ray_actor_options:
          num_cpus: 0.1
      - name: OrangeStand
        num_replicas: 2
        max_replicas_per_node: 1
        user_config:
          price: 2
        ray_actor_options:
          num_cpus: 0.1
      - name: PearStand
        num_replicas: 2
        max_replicas_per_node: 1
        user_config:
          price: 1
        ray_actor_options:
          num_cpus: 0.1
      - name: FruitMarket
        num_replicas: 2
        max_replicas_per_node: 1
        ray_actor_options:
          num_cpus: 0.1
"""


def _cluster_config(ft: FtForm) -> dict[str, Any]:
    head_env: list[dict[str, Any]] = []
    config: dict[str, Any] = {"rayVersion": "2.52.0"}
    if ft == "options":
        config["gcsFaultToleranceOptions"] = {
            "redisAddress": "redis:6379",
            "redisPassword": {
                "valueFrom": {"secretKeyRef": {"name": "redis-password-secret", "key": "password"}}
            },
        }
    elif ft == "annotation":
        head_env = [
            {"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"},
            {
                "name": "REDIS_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "redis-password-secret", "key": "password"}},
            },
        ]
    elif ft == "embedded":
        config["gcsFaultToleranceOptions"] = {
            "backend": "rocksdb",
            "storage": {"storageClassName": "standard", "size": "1Gi"},
        }
    head_container: dict[str, Any] = {
        "name": "ray-head",
        "image": RAY_IMAGE,
        "resources": {
            "limits": {"cpu": "1", "memory": "5Gi"},
            "requests": {"cpu": "1", "memory": "2Gi"},
        },
    }
    if head_env:
        head_container["env"] = head_env
    rayStartParams = {"num-cpus": "0"}
    if ft == "annotation":
        rayStartParams["redis-password"] = "$REDIS_PASSWORD"
    config["headGroupSpec"] = {
        "rayStartParams": rayStartParams,
        "template": {"spec": {"containers": [head_container]}},
    }
    config["workerGroupSpecs"] = [
        {
            "replicas": 2,
            "minReplicas": 1,
            "maxReplicas": 5,
            "groupName": "worker",
            "rayStartParams": {},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "ray-worker",
                            "image": RAY_IMAGE,
                            "resources": {
                                "limits": {"cpu": "1", "memory": "2Gi"},
                                "requests": {"cpu": "1", "memory": "2Gi"},
                            },
                        }
                    ]
                }
            },
        }
    ]
    return config


def rayservice(ft: FtForm = "options", active: bool = True) -> dict[str, Any]:
    """Return RayService `rayservice-ha` as KubeRay reports it once running."""
    annotations = {"ray.io/ft-enabled": "true"} if ft == "annotation" else {}
    meta = _meta(RAYSERVICE, generation=1)
    if annotations:
        meta["annotations"] = annotations
    deployments = ("MangoStand", "OrangeStand", "PearStand", "FruitMarket")
    status: dict[str, Any] = {
        "observedGeneration": 1,
        "serviceStatus": "Running",
        "numServeEndpoints": 3,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "NonZeroServeEndpoints",
                "message": "Number of serve endpoints is greater than 0",
                "lastTransitionTime": CREATED,
                "observedGeneration": 1,
            },
            {
                "type": "UpgradeInProgress",
                "status": "False",
                "reason": "NoPendingCluster",
                "message": "Active Ray cluster exists and no pending Ray cluster",
                "lastTransitionTime": CREATED,
                "observedGeneration": 1,
            },
        ],
        "activeServiceStatus": {
            "rayClusterName": CLUSTER,
            "applicationStatuses": {
                "fruit_app": {
                    "status": "RUNNING",
                    "serveDeploymentStatuses": {d: {"status": "HEALTHY"} for d in deployments},
                }
            },
            "rayClusterStatus": {
                "state": "ready",
                "readyWorkerReplicas": 2,
                "availableWorkerReplicas": 2,
                "desiredWorkerReplicas": 2,
                "head": {"podIP": IPS[HEAD], "serviceIP": "198.19.0.11", "podName": HEAD},
            },
        },
        "pendingServiceStatus": {},
    }
    if not active:
        status.update(
            serviceStatus="",
            numServeEndpoints=0,
            activeServiceStatus={},
            pendingServiceStatus={"rayClusterName": CLUSTER},
        )
        status["conditions"][0].update(
            status="False", reason="Initializing", message="RayService is initializing"
        )
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": meta,
        "spec": {
            "serveConfigV2": SERVE_CONFIG,
            "rayClusterConfig": _cluster_config(ft),
        },
        "status": status,
    }


def raycluster(ft: FtForm = "options") -> dict[str, Any]:
    """Return the RayService's RayCluster."""
    meta = _meta(
        CLUSTER,
        uid=CLUSTER_UID,
        labels={
            "ray.io/originated-from-cr-name": RAYSERVICE,
            "ray.io/originated-from-crd": "RayService",
        },
        annotations={"ray.io/ft-enabled": "true"}
        if ft in ("options", "annotation", "embedded")
        else {},
        ownerReferences=[
            {
                "apiVersion": "ray.io/v1",
                "kind": "RayService",
                "name": RAYSERVICE,
                "uid": _uid(RAYSERVICE),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    )
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": meta,
        "spec": _cluster_config(ft),
        "status": {"state": "ready", "readyWorkerReplicas": 2, "desiredWorkerReplicas": 2},
    }


def _ray_labels(cluster: str, node_type: str, group: str, serve: str) -> dict[str, str]:
    labels = {
        "ray.io/cluster": cluster,
        "ray.io/node-type": node_type,
        "ray.io/group": group,
        "ray.io/identifier": f"{cluster}-{node_type}",
        "ray.io/is-ray-node": "yes",
        "app.kubernetes.io/name": "kuberay",
        "app.kubernetes.io/created-by": "kuberay-operator",
    }
    if serve:
        labels["ray.io/serve"] = serve
        labels["ray.io/originated-from-cr-name"] = RAYSERVICE
        labels["ray.io/originated-from-crd"] = "RayService"
    return labels


def _running_status(name: str, containers: list[str], restarts: int = 0) -> dict[str, Any]:
    ip = IPS[name]
    return {
        "phase": "Running",
        "hostIP": "198.18.0.2",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": CREATED,
        "conditions": [
            {"type": kind, "status": "True", "lastTransitionTime": CREATED}
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
        "containerStatuses": [
            {
                "name": container,
                "image": RAY_IMAGE if container.startswith("ray-") else "redis:7.4.0",
                "imageID": "",
                "ready": True,
                "started": True,
                "restartCount": restarts,
                "state": {"running": {"startedAt": CREATED}},
            }
            for container in containers
        ],
    }


def _owner(kind: str, name: str, uid: str, api_version: str = "ray.io/v1") -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def head_pod(ft: FtForm = "options", cluster: str = CLUSTER, name: str = HEAD) -> dict[str, Any]:
    """Return a head pod as KubeRay builds it (GCS FT env and annotations included)."""
    ours = cluster == CLUSTER
    env: list[dict[str, Any]] = [
        {
            "name": "RAY_CLUSTER_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['ray.io/cluster']"}},
        },
        {
            "name": "RAY_CLOUD_INSTANCE_ID",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
        },
        {
            "name": "RAY_NODE_TYPE_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['ray.io/group']"}},
        },
        {
            "name": "KUBERAY_GEN_RAY_START_CMD",
            "value": (
                "ray start --head  --block  --dashboard-agent-listen-port=52365  "
                "--dashboard-host=0.0.0.0  --metrics-export-port=8080  --num-cpus=0  "
                "--redis-password=$REDIS_PASSWORD"
            ),
        },
        {"name": "RAY_PORT", "value": "6379"},
        {"name": "RAY_ADDRESS", "value": "127.0.0.1:6379"},
        {"name": "RAY_USAGE_STATS_KUBERAY_IN_USE", "value": "1"},
        {
            "name": "RAY_USAGE_STATS_EXTRA_TAGS",
            "value": "kuberay_version=v1.4.0;kuberay_crd=RayService",
        },
        {"name": "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE", "value": "1"},
    ]
    annotations = {"ray.io/ft-enabled": "false"}
    mounts: list[dict[str, Any]] = [{"name": "shared-mem", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, Any]] = [
        {"name": "shared-mem", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}
    ]
    if ours and ft in ("options", "annotation"):
        annotations = {
            "ray.io/ft-enabled": "true",
            "ray.io/external-storage-namespace": CLUSTER_UID,
        }
        env += [
            {"name": "RAY_external_storage_namespace", "value": CLUSTER_UID},
            {"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"},
            {
                "name": "REDIS_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "redis-password-secret", "key": "password"}},
            },
        ]
    elif ours and ft == "embedded":
        annotations = {"ray.io/ft-enabled": "true"}
        env += [
            {"name": "RAY_gcs_storage", "value": "rocksdb"},
            {"name": "RAY_GCS_STORAGE_PATH", "value": "/data/gcs"},
        ]
        mounts.append({"name": "gcs-storage", "mountPath": "/data/gcs"})
        volumes.append(
            {"name": "gcs-storage", "persistentVolumeClaim": {"claimName": f"{CLUSTER}-gcs-pvc"}}
        )
    if ours:
        env += [
            {"name": "RAY_timeout_ms_task_wait_for_death_info", "value": "0"},
            {"name": "RAY_gcs_server_request_timeout_seconds", "value": "5"},
            {"name": "RAY_SERVE_KV_TIMEOUT_S", "value": "5"},
            {"name": "RAY_SERVE_ENABLE_EXPERIMENTAL_STREAMING", "value": "1"},
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(
            name,
            generateName=f"{cluster}-head-",
            labels=_ray_labels(cluster, "head", "headgroup", "true" if ours else ""),
            annotations=annotations,
            ownerReferences=[_owner("RayCluster", cluster, CLUSTER_UID if ours else _uid(cluster))],
        ),
        "spec": {
            "containers": [
                {
                    "name": "ray-head",
                    "image": RAY_IMAGE,
                    "command": ["/bin/bash", "-lc", "--"],
                    "args": ["ulimit -n 65536; $KUBERAY_GEN_RAY_START_CMD"],
                    "env": env,
                    "ports": [
                        {"name": "gcs-server", "containerPort": 6379, "protocol": "TCP"},
                        {"name": "dashboard", "containerPort": 8265, "protocol": "TCP"},
                        {"name": "client", "containerPort": 10001, "protocol": "TCP"},
                        {"name": "serve", "containerPort": 8000, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 8080, "protocol": "TCP"},
                    ],
                    "resources": {
                        "limits": {"cpu": "1", "memory": "5Gi"},
                        "requests": {"cpu": "1", "memory": "2Gi"},
                    },
                    "volumeMounts": mounts,
                }
            ],
            "volumes": volumes,
            "restartPolicy": "Always",
            "nodeName": "kind-worker",
            "terminationGracePeriodSeconds": 30,
        },
        "status": _running_status(name, ["ray-head"]),
    }


def worker_pod(
    name: str, cluster: str = CLUSTER, group: str = "worker", restarts: int = 0
) -> dict[str, Any]:
    """Return a worker pod as KubeRay builds it (readiness on the Serve proxy's /-/healthz)."""
    ours = cluster == CLUSTER
    fq_ip = f"{cluster}-head-svc.{NAMESPACE}.svc.cluster.local"
    env = [
        {"name": "FQ_RAY_IP", "value": fq_ip},
        {"name": "RAY_IP", "value": f"{cluster}-head-svc"},
        {
            "name": "RAY_CLUSTER_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['ray.io/cluster']"}},
        },
        {
            "name": "KUBERAY_GEN_RAY_START_CMD",
            "value": (
                f"ray start  --address={fq_ip}:6379  --block  "
                "--dashboard-agent-listen-port=52365  --metrics-export-port=8080"
            ),
        },
        {"name": "RAY_PORT", "value": "6379"},
    ]
    if ours:
        env.append({"name": "RAY_gcs_rpc_server_reconnect_timeout_s", "value": "600"})
    readiness = {
        "exec": {
            "command": [
                "bash",
                "-c",
                "wget -T 2 -q -O- http://localhost:52365/api/local_raylet_healthz | grep success "
                "&& wget -T 2 -q -O- http://localhost:8000/-/healthz | grep success",
            ]
        },
        "initialDelaySeconds": 10,
        "timeoutSeconds": 2,
        "periodSeconds": 5,
        "successThreshold": 1,
        "failureThreshold": 1,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(
            name,
            generateName=f"{cluster}-{group}-worker-",
            labels=_ray_labels(cluster, "worker", group, "true" if ours else ""),
            annotations={},
            ownerReferences=[_owner("RayCluster", cluster, CLUSTER_UID if ours else _uid(cluster))],
        ),
        "spec": {
            "initContainers": [
                {
                    "name": "wait-gcs-ready",
                    "image": RAY_IMAGE,
                    "command": ["/bin/bash", "-lc", "--"],
                    "args": [
                        f"until ray health-check --address {fq_ip}:6379 > /dev/null 2>&1; "
                        "do sleep 5; done"
                    ],
                }
            ],
            "containers": [
                {
                    "name": "ray-worker",
                    "image": RAY_IMAGE,
                    "command": ["/bin/bash", "-lc", "--"],
                    "args": ["ulimit -n 65536; $KUBERAY_GEN_RAY_START_CMD"],
                    "env": env,
                    "ports": [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}],
                    "readinessProbe": readiness,
                    "volumeMounts": [{"name": "shared-mem", "mountPath": "/dev/shm"}],
                }
            ],
            "volumes": [
                {"name": "shared-mem", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}
            ],
            "restartPolicy": "Always",
            "nodeName": "kind-worker",
            "terminationGracePeriodSeconds": 30,
        },
        "status": _running_status(name, ["ray-worker"], restarts),
    }


def redis_pod(volume: RedisVolume = "none") -> dict[str, Any]:
    """Return the sample's Redis Deployment pod; `volume` adds storage at /data."""
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": "/usr/local/etc/redis/redis.conf", "subPath": "redis.conf"}
    ]
    volumes: list[dict[str, Any]] = [{"name": "config", "configMap": {"name": "redis-config"}}]
    if volume != "none":
        mounts.append({"name": "data", "mountPath": "/data"})
        source: dict[str, Any] = {
            "pvc": {"persistentVolumeClaim": {"claimName": "redis-data"}},
            "emptyDir": {"emptyDir": {}},
            "hostPath": {"hostPath": {"path": "/var/lib/redis", "type": "DirectoryOrCreate"}},
        }[volume]
        volumes.append({"name": "data", **source})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(
            REDIS,
            generateName="redis-6d9b7c5f8-",
            labels={"app": "redis", "pod-template-hash": "6d9b7c5f8"},
            ownerReferences=[_owner("ReplicaSet", "redis-6d9b7c5f8", _uid("rs"), "apps/v1")],
        ),
        "spec": {
            "containers": [
                {
                    "name": "redis",
                    "image": "redis:7.4.0",
                    "command": ["sh", "-c", "redis-server /usr/local/etc/redis/redis.conf"],
                    "ports": [{"containerPort": 6379, "protocol": "TCP"}],
                    "volumeMounts": mounts,
                }
            ],
            "volumes": volumes,
            "restartPolicy": "Always",
            "nodeName": "kind-worker",
            "terminationGracePeriodSeconds": 30,
        },
        "status": _running_status(REDIS, ["redis"]),
    }


def query_pod() -> dict[str, Any]:
    """Return the sample's `ray-pod` (runs the query loop; belongs to no cluster)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(QUERY_POD),
        "spec": {
            "containers": [
                {
                    "name": "ray-container",
                    "image": RAY_IMAGE,
                    "command": ["/bin/bash", "-c", "--"],
                    "args": ["while true; do sleep 30; done;"],
                }
            ]
        },
        "status": _running_status(QUERY_POD, ["ray-container"]),
    }


def _service(
    name: str, selector: dict[str, str], ports: list[tuple[str, int]], ip: str, **labels: str
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, labels=dict(labels)),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "clusterIPs": [ip],
            "selector": selector,
            "ports": [{"name": n, "port": p, "targetPort": p, "protocol": "TCP"} for n, p in ports],
        },
    }


def services() -> list[dict[str, Any]]:
    """Return the serve and head Services of the RayService, the cluster's own and Redis'."""
    head_ports = [
        ("client", 10001),
        ("dashboard", 8265),
        ("gcs-server", 6379),
        ("metrics", 8080),
        ("serve", 8000),
    ]
    return [
        _service(
            SERVE_SVC,
            {"ray.io/cluster": CLUSTER, "ray.io/serve": "true"},
            [("serve", 8000)],
            "198.19.0.10",
            **{
                "ray.io/originated-from-cr-name": RAYSERVICE,
                "ray.io/originated-from-crd": "RayService",
                "ray.io/serve": f"{RAYSERVICE}-serve",
            },
        ),
        _service(
            HEAD_SVC,
            {"ray.io/cluster": CLUSTER, "ray.io/node-type": "head"},
            head_ports,
            "198.19.0.11",
            **{
                "ray.io/originated-from-cr-name": RAYSERVICE,
                "ray.io/originated-from-crd": "RayService",
                "ray.io/node-type": "head",
            },
        ),
        _service(
            f"{OTHER_CLUSTER}-head-svc",
            {"ray.io/cluster": OTHER_CLUSTER, "ray.io/node-type": "head"},
            head_ports,
            "198.19.0.12",
            **{"ray.io/cluster": OTHER_CLUSTER, "ray.io/node-type": "head"},
        ),
        _service("redis", {"app": "redis"}, [("redis", 6379)], "198.19.0.13", app="redis"),
    ]


def endpoint_slice(service: str, suffix: str) -> dict[str, Any]:
    """Return an (empty) EndpointSlice of `service`; the stand-in fills it from the pods."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": _meta(
            f"{service}-{suffix}",
            generateName=f"{service}-",
            labels={
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
            ownerReferences=[_owner("Service", service, _uid(service), "v1")],
        ),
        "addressType": "IPv4",
        "endpoints": [],
        "ports": [],
    }


def endpoints(service: str) -> dict[str, Any]:
    """Return the (empty) core Endpoints of `service`; the stand-in fills it."""
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": _meta(service, labels={"app.kubernetes.io/managed-by": "kuberay"}),
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
        objects += [
            {
                "apiVersion": "ray.io/v1",
                "kind": "RayCluster",
                "metadata": _meta(OTHER_CLUSTER),
                "spec": _cluster_config("none"),
                "status": {"state": "ready"},
            },
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
