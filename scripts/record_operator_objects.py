"""Record what the real KubeRay operator made for the HA sample, as the test seed's fixture.

Reads (get/list only: nothing is created, patched, deleted or exec'd) from the cluster given by
`--kubeconfig` the RayService `rayservice-ha`, its active RayCluster, that cluster's head and
worker pods, the Services and EndpointSlices of the namespace (not `kubernetes`), the Redis pod
and `ray-pod`. It waits until every pod is Running and Ready, none is being deleted and the
RayService is Ready, and keeps a snapshot only when two reads in a row saw the same objects
(one consistent moment). Volatile fields are stripped or made stable: managedFields,
resourceVersion, timestamps (one fixed time), uids (uuid5 of the stable name), generated name
suffixes (the seed's names), addresses (the seed's IPs), restart counts and container ids.

    python scripts/record_operator_objects.py --kubeconfig /path/admin.kubeconfig \\
        --out tests/integration/kube/recorded/ha-sample.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config

Obj = dict[str, Any]

FIXED_TIME = "2025-06-02T09:00:00Z"
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
# The seed's stable names for what the operator and the Deployment controller generate.
CLUSTER_SUFFIX = "k8xq2"
HEAD_SUFFIX = "7vqbn"
WORKER_SUFFIXES = ("2m9xd", "c4tlp")
REDIS_HASH, REDIS_SUFFIX = "6d9b7c5f8", "x7k2p"
POD_IPS = ("198.18.1.10", "198.18.1.11", "198.18.1.12", "198.18.1.20", "198.18.1.40")
SERVICE_IP_BASE = "198.19.0."
HOST_IP = "198.18.0.2"


def _named(api: client.ApiClient, ns: str, plural: str, name: str) -> Obj:
    data: Obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "ray.io", "v1", ns, plural, name, _request_timeout=20
    )
    return data


def _list(api: client.ApiClient, ns: str, kind: str) -> list[Obj]:
    calls = {
        "Pod": client.CoreV1Api(api).list_namespaced_pod,
        "Service": client.CoreV1Api(api).list_namespaced_service,
        "EndpointSlice": client.DiscoveryV1Api(api).list_namespaced_endpoint_slice,
    }
    response = calls[kind](ns, _preload_content=False, _request_timeout=20)
    items: list[Obj] = json.loads(response.data)["items"]
    for item in items:
        item["kind"] = kind
        item["apiVersion"] = "discovery.k8s.io/v1" if kind == "EndpointSlice" else "v1"
    return items


def _ready(pod: Obj) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return (
        pod.get("status", {}).get("phase") == "Running"
        and "deletionTimestamp" not in pod["metadata"]
        and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    )


def read_once(api: client.ApiClient, ns: str, rayservice: str) -> list[Obj] | str:
    """Read the objects once; return them, or why this moment is not a steady one."""
    service = _named(api, ns, "rayservices", rayservice)
    service["kind"], service["apiVersion"] = "RayService", "ray.io/v1"
    cluster_name = service.get("status", {}).get("activeServiceStatus", {}).get("rayClusterName")
    if not cluster_name or service["status"].get("pendingServiceStatus", {}).get("rayClusterName"):
        return "no single active RayCluster"
    ready = [c for c in service["status"].get("conditions", []) if c["type"] == "Ready"]
    if not ready or ready[0]["status"] != "True":
        return "RayService not Ready"
    apps = service["status"]["activeServiceStatus"].get("applicationStatuses", {})
    if not apps or any(a.get("status") != "RUNNING" for a in apps.values()):
        return "a Serve application is not RUNNING"
    cluster = _named(api, ns, "rayclusters", cluster_name)
    cluster["kind"], cluster["apiVersion"] = "RayCluster", "ray.io/v1"
    listed = {kind: _list(api, ns, kind) for kind in ("Pod", "Service", "EndpointSlice")}
    pods = [
        p
        for p in listed["Pod"]
        if p["metadata"].get("labels", {}).get("ray.io/cluster") == cluster_name
        or p["metadata"].get("labels", {}).get("app") == "redis"
        or p["metadata"]["name"] == "ray-pod"
    ]
    if not all(_ready(p) for p in pods):
        return "a pod is not Running and Ready, or is being deleted"
    types = [p["metadata"].get("labels", {}).get("ray.io/node-type") for p in pods]
    heads, workers = types.count("head"), types.count("worker")
    if heads != 1 or workers != len(WORKER_SUFFIXES):
        return f"{heads} head(s) and {workers} worker(s)"
    services = [s for s in listed["Service"] if s["metadata"]["name"] != "kubernetes"]
    names = {s["metadata"]["name"] for s in services}
    slices = [
        s
        for s in listed["EndpointSlice"]
        if s["metadata"].get("labels", {}).get("kubernetes.io/service-name") in names
    ]
    return [service, cluster, *pods, *services, *slices]


def _fingerprint(objects: list[Obj]) -> list[tuple[str, str, str]]:
    return sorted(
        (o["kind"], o["metadata"]["name"], o["metadata"].get("resourceVersion", ""))
        for o in objects
    )


def _renames(objects: list[Obj]) -> tuple[dict[str, str], dict[str, str]]:
    """Map generated names to the seed's and live addresses to the seed's."""
    pods = [o for o in objects if o["kind"] == "Pod"]
    cluster = next(o for o in objects if o["kind"] == "RayCluster")["metadata"]["name"]
    stable_cluster = re.sub(r"-[a-z0-9]{5}$", f"-{CLUSTER_SUFFIX}", cluster)
    names: dict[str, str] = {}
    ips: dict[str, str] = {}
    ordered: list[tuple[Obj, str]] = []
    for pod in pods:
        labels = pod["metadata"].get("labels", {})
        if labels.get("ray.io/node-type") == "head":
            ordered.append((pod, f"{stable_cluster}-head-{HEAD_SUFFIX}"))
    workers = sorted(
        (p for p in pods if p["metadata"].get("labels", {}).get("ray.io/node-type") == "worker"),
        key=lambda p: p["metadata"]["name"],
    )
    for pod, suffix in zip(workers, WORKER_SUFFIXES, strict=True):
        group = pod["metadata"]["labels"]["ray.io/group"]
        ordered.append((pod, f"{stable_cluster}-{group}-worker-{suffix}"))
    for pod in pods:
        if pod["metadata"].get("labels", {}).get("app") == "redis":
            rs_hash = pod["metadata"]["labels"]["pod-template-hash"]
            names[f"redis-{rs_hash}"] = f"redis-{REDIS_HASH}"
            names[rs_hash] = REDIS_HASH
            ordered.append((pod, f"redis-{REDIS_HASH}-{REDIS_SUFFIX}"))
    ordered += [(p, "ray-pod") for p in pods if p["metadata"]["name"] == "ray-pod"]
    for (pod, stable), ip in zip(ordered, POD_IPS, strict=True):
        names[pod["metadata"]["name"]] = stable
        ips[pod["status"]["podIP"]] = ip
        ips[pod["status"]["hostIP"]] = HOST_IP
    # The serve Service first, then the RayService's head Service (the seed's order).
    rank = {"rayservice-ha-serve-svc": 0, "rayservice-ha-head-svc": 1}
    services = sorted(
        (o for o in objects if o["kind"] == "Service"),
        key=lambda s: (rank.get(s["metadata"]["name"], 2), s["metadata"]["name"]),
    )
    for index, svc in enumerate(services):
        if svc["spec"].get("clusterIP", "None") != "None":
            ips[svc["spec"]["clusterIP"]] = f"{SERVICE_IP_BASE}{10 + index}"
    slices = sorted(
        (o for o in objects if o["kind"] == "EndpointSlice"), key=lambda s: s["metadata"]["name"]
    )
    for index, eps in enumerate(slices):
        service = eps["metadata"]["labels"]["kubernetes.io/service-name"]
        stable_service = service.replace(cluster, stable_cluster)
        names[eps["metadata"]["name"]] = f"{stable_service}-x{index}k2q"
    names[cluster] = stable_cluster
    return names, ips


def normalize(objects: list[Obj]) -> list[Obj]:
    """Strip volatile fields and give generated names and addresses the seed's stable values."""
    names, ips = _renames(objects)
    uids = {o["metadata"]["uid"]: o for o in objects}
    # Longest first, so a pod name is replaced before the cluster name inside it.
    pattern = re.compile("|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)))

    def rename(text: str) -> str:
        return pattern.sub(lambda m: names[m.group(0)], text)

    def stable_uid(old: str) -> str:
        owner = uids.get(old)
        key = f"{owner['kind']}/{rename(owner['metadata']['name'])}" if owner else old
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"seed/{key}"))

    uid_pattern = re.compile("|".join(re.escape(u) for u in uids))

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {
                k: walk(v, k)
                for k, v in value.items()
                if k not in ("managedFields", "resourceVersion", "containerID", "lastState")
            }
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, str):
            if ISO_TIME.match(value):
                return FIXED_TIME
            if value in ips:
                return ips[value]
            value = uid_pattern.sub(lambda m: stable_uid(m.group(0)), value)
            return rename(value)
        if key == "restartCount":
            return 0
        return value

    normalized = [walk(o) for o in objects]
    for obj in normalized:
        _without_api_access(obj)
        for status in obj.get("status", {}).get("containerStatuses", []):
            status["imageID"] = ""
        for owner in obj["metadata"].get("ownerReferences", []):
            key = f"seed/{owner['kind']}/{owner['name']}"
            owner["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
    return normalized


def _without_api_access(obj: Obj) -> None:
    """Drop the ServiceAccount admission plugin's volume: the operator does not make it."""
    spec = obj.get("spec", {})
    if obj["kind"] != "Pod":
        return
    spec["volumes"] = [v for v in spec.get("volumes", []) if not _api_access(v["name"])]
    for container in spec.get("initContainers", []) + spec["containers"]:
        mounts = [m for m in container.get("volumeMounts", []) if not _api_access(m["name"])]
        container["volumeMounts"] = mounts


def _api_access(name: str) -> bool:
    return name.startswith("kube-api-access-")


def operator_version(objects: list[Obj]) -> str:
    """Return the KubeRay version the operator stamped into the head's env."""
    for pod in objects:
        for container in pod.get("spec", {}).get("containers", []) if pod["kind"] == "Pod" else []:
            for env in container.get("env", []):
                if env["name"] == "RAY_USAGE_STATS_EXTRA_TAGS":
                    match = re.search(r"kuberay_version=([^;]+)", env.get("value", ""))
                    if match:
                        return match.group(1)
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--rayservice", default="rayservice-ha")
    parser.add_argument("--out", default="tests/integration/kube/recorded/ha-sample.json")
    parser.add_argument("--source", default="ray-service.high-availability.yaml (KubeRay sample)")
    parser.add_argument("--attempts", type=int, default=120, help="reads, 5 s apart")
    args = parser.parse_args(argv)

    api = config.new_client_from_config(config_file=args.kubeconfig)
    previous: list[tuple[str, str, str]] | None = None
    for attempt in range(args.attempts):
        try:
            result = read_once(api, args.namespace, args.rayservice)
        except (client.ApiException, urllib3.exceptions.HTTPError) as error:
            result = f"API not answering ({type(error).__name__}); the node may be down"
        if isinstance(result, str):
            print(f"attempt {attempt}: {result}; retrying", file=sys.stderr)
            previous = None
        elif previous == _fingerprint(result):
            break
        else:
            previous = _fingerprint(result)
        time.sleep(5)
    else:
        print("no steady moment seen; nothing written", file=sys.stderr)
        return 1
    assert not isinstance(result, str)
    fixture = {
        "header": {
            "operator": f"KubeRay {operator_version(result)}",
            "source": args.source,
            "recorded": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
            "by": "scripts/record_operator_objects.py",
            "note": (
                "Read-only snapshot; managedFields, resourceVersion, container ids and the "
                "ServiceAccount admission plugin's kube-api-access volume dropped; "
                f"times set to {FIXED_TIME}; uids uuid5('seed/<Kind>/<name>'); generated "
                "suffixes, pod and Service IPs replaced by the seed's."
            ),
        },
        "objects": normalize(result),
    }
    spec = result[0]["spec"]
    if spec.get("excludeHeadPodFromServeSvc"):
        fixture["header"]["lab_changes"] = (
            "spec.excludeHeadPodFromServeSvc: true (not in the published sample)"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fixture, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(fixture['objects'])} objects to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
