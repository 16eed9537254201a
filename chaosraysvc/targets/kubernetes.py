"""The `kubernetes` target: a RayService managed by KubeRay in a real cluster.

Selected with `"raysvc_target": "kubernetes"` (or `RAYSVC_TARGET=kubernetes`)::

    "configuration": {
        "raysvc_target": "kubernetes",
        "rayservice_name": "rayservice-ha",
        "rayservice_namespace": "default",
        "serve_url": {"type": "env", "key": "RAYSVC_SERVE_URL", "default": ""},
        "dashboard_url": {"type": "env", "key": "RAYSVC_DASHBOARD_URL", "default": ""}
    }

With no `dashboard_url` outside the cluster the dashboard is read through the API server's
service proxy of `<name>-head-svc` (`kube.urls` has the order); `serve_url` has no such
fallback.

Every answer is read fresh from the API: the RayService, its active RayCluster
(`status.activeServiceStatus.rayClusterName`), that cluster's head and worker pods (and no
other cluster's), the Redis pod behind the GCS fault-tolerance address, and the serve
Service's endpoints. Only those pods may be deleted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client

from chaosraysvc.config import Settings
from chaosraysvc.errors import (
    ChaosRaySvcError,
    ConfigurationError,
    KubernetesApiError,
    NotFoundError,
    RefusedError,
)
from chaosraysvc.kube import drain, nodeloss, urls
from chaosraysvc.kube.client import DEFAULT_REQUEST_TIMEOUT, KubeApi
from chaosraysvc.kube.endpoints import read_serve_endpoints, serve_service_name
from chaosraysvc.kube.networkpolicy import egress_policy, ingress_policy, policy_names
from chaosraysvc.kube.pods import cluster_selector, names_by_ip, role_of, to_node, to_pod
from chaosraysvc.kube.rayservice import (
    GcsFtConfig,
    active_cluster_name,
    gcs_ft_config,
    redis_service_ref,
)
from chaosraysvc.kube.redis import (
    embedded_storage_persistent,
    find_redis_pods,
    redis_labels,
    storage_persistent,
)
from chaosraysvc.model import (
    Endpoint,
    GcsFaultTolerance,
    Node,
    Pod,
    RedisPartition,
    RedisReply,
    Role,
)
from chaosraysvc.model.ha import HaFacts
from chaosraysvc.serve.dashboard import Dashboard
from chaosraysvc.serve.nodes import RayNode
from chaosraysvc.targets.kubernetes_ha import gather_kubernetes_facts

__all__ = ["KubernetesTarget"]

logger = logging.getLogger("chaostoolkit")

_ROLE_ORDER: dict[Role, int] = {"head": 0, "worker": 1, "redis": 2}

# Runs `redis-cli` in the Redis pod: the password comes on stdin (never in argv, which API
# servers and kubelets log), as redis-cli's REDISCLI_AUTH; argv: port, seconds, command...
# `timeout` (coreutils or busybox) ends a command Redis does not answer: exit code 124.
REDIS_CLI = """IFS= read -r REDISCLI_AUTH || true
if [ -n "$REDISCLI_AUTH" ]; then export REDISCLI_AUTH; else unset REDISCLI_AUTH; fi
host=$1 port=$2 wait=$3
shift 3
set -- redis-cli -h "$host" -p "$port" "$@"
if command -v timeout >/dev/null 2>&1; then exec timeout "$wait" "$@"; fi
exec "$@"
"""
NO_ANSWER = 124  # `timeout`'s exit code
# The first word of a Redis error reply, as redis-cli prints it without a tty.
REDIS_ERRORS = ("ERR", "WRONGPASS", "NOAUTH", "NOPERM", "WRONGTYPE", "LOADING", "BUSY",
                "MISCONF", "READONLY", "MASTERDOWN", "UNBLOCKED")  # fmt: skip


class KubernetesTarget:
    """A RayService in a Kubernetes cluster, reached through the Kubernetes API.

    `secrets` configure the client as for chaostoolkit-kubernetes (`KUBERNETES_CONTEXT`,
    `KUBERNETES_HOST`, `KUBERNETES_API_KEY`, ...); `request_timeout` bounds each API call
    in seconds; `api` replaces the client (for callers that already hold one).
    """

    kind = "kubernetes"

    def __init__(
        self,
        settings: Settings,
        secrets: Mapping[str, Any] | None = None,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        api: KubeApi | None = None,
    ) -> None:
        self.settings = settings
        self._secrets = dict(secrets or {})
        self._request_timeout = request_timeout
        self._api = api
        self._prefetched: dict[str, Any] | None = None
        self._dashboard: Dashboard | None = None
        self._password: str | None = None  # the GCS's Redis password, once read

    @property
    def api(self) -> KubeApi:
        """Return the API wrapper, configuring the client on first use."""
        if self._api is None:
            self._api = KubeApi.from_secrets(self._secrets, self._request_timeout)
        return self._api

    @property
    def name(self) -> str:
        return self.settings.rayservice_name

    @property
    def namespace(self) -> str:
        return self.settings.rayservice_namespace

    def close(self) -> None:
        """Release the API client's connections (a later call opens new ones)."""
        if self._dashboard is not None:
            self._dashboard.close()
            self._dashboard = None
        if self._api is not None:
            self._api.close()
            self._api = None

    # -- what is targeted --------------------------------------------------------------------

    def validate(self) -> None:
        """Read the RayService once: the kubeconfig loads and the RayService exists.

        Raises `ConfigurationError` (no usable kubeconfig), `NotFoundError` naming the
        RayService and namespace, or `KubernetesApiError`. The object read is kept for the
        next `rayservice()` call only, so validating before a read costs no extra call.
        """
        self._prefetched = self.api.get_rayservice(self.namespace, self.name)

    def rayservice(self) -> dict[str, Any]:
        """Return the RayService object (raises `NotFoundError` naming name and namespace)."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            return prefetched
        return self.api.get_rayservice(self.namespace, self.name)

    def describe(self) -> dict[str, Any]:
        """Return what is targeted; when the API cannot tell, `error` says why (no secrets)."""
        info: dict[str, Any] = {
            "target": self.kind,
            "rayservice": self.name,
            "namespace": self.namespace,
            "cluster": "",
            "api": "",
        }
        try:
            info["api"] = self.api.host
            info["cluster"] = active_cluster_name(self.rayservice())
        except ChaosRaySvcError as exc:
            info["error"] = str(exc)
        return info

    # -- pods --------------------------------------------------------------------------------

    def _ray_pods(self, cluster: str) -> list[tuple[client.V1Pod, Role]]:
        found: list[tuple[client.V1Pod, Role]] = []
        for pod in self.api.list_pods(self.namespace, cluster_selector(cluster)):
            role = role_of(pod)
            if role is not None:
                found.append((pod, role))
        return found

    def _redis_pods(self, ft: GcsFtConfig) -> list[client.V1Pod]:
        return find_redis_pods(self.api, self.namespace, ft, self.settings.redis_label_selector)

    def _all_pods(self) -> tuple[str, list[tuple[client.V1Pod, Role]]]:
        rayservice = self.rayservice()
        cluster = active_cluster_name(rayservice)
        found = self._ray_pods(cluster)
        found += [(pod, "redis") for pod in self._redis_pods(gcs_ft_config(rayservice))]
        return cluster, found

    def find_pod(self, host: str) -> Pod | None:
        """Return the pod of the RayService's namespace named by `host`: its IP, its name,
        or the name a headless Service gives it (`<hostname>.<subdomain>[.<namespace>...]`),
        as a Redis pod; None when there is none."""
        first, _, rest = host.partition(".")
        for pod in self.api.list_pods(self.namespace, ""):
            spec = pod.spec or client.V1PodSpec(containers=[])
            ip = pod.status.pod_ip if pod.status else None
            name = pod.metadata.name if pod.metadata else None
            dns = spec.hostname == first and spec.subdomain == rest.split(".")[0]
            if host in (ip, name) or (rest and dns):
                return to_pod(pod, "redis")
        return None

    def pods(self) -> list[Pod]:
        """Return the active cluster's head and worker pods and the resolved Redis pods."""
        _, found = self._all_pods()
        pods = [to_pod(pod, role) for pod, role in found]
        return sorted(pods, key=lambda p: (_ROLE_ORDER[p.role], p.created_at, p.name))

    def nodes(self) -> list[Node]:
        """Return the cluster's nodes with their Ready condition (a cluster-scoped read:
        deploy/node-reader-clusterrole.yaml grants it; a 403 raises `KubernetesApiError`)."""
        return [to_node(node) for node in self.api.list_nodes()]

    def serve_endpoints(self) -> list[Endpoint]:
        """Return every endpoint behind `<name>-serve-svc`, ready or not.

        Reads the RayService first, so a wrong name fails (`NotFoundError`) rather than
        counting the endpoints of a Service nobody created.
        """
        self.rayservice()
        return read_serve_endpoints(self.api, self.namespace, serve_service_name(self.name))

    def pod_names(self, nodes: Sequence[RayNode]) -> dict[str, str]:
        """Return the pod of each Ray node, matched by pod IP among the head and workers."""
        cluster = active_cluster_name(self.rayservice())
        by_ip = names_by_ip(pod for pod, _ in self._ray_pods(cluster))
        return {n.node_id: by_ip.get(n.ip, "") for n in nodes}

    def ha_facts(self, live: bool = True) -> HaFacts:
        """Return the RayService's HA facts (spec, live pods, GCS store, live placement)."""
        return gather_kubernetes_facts(self, live=live)

    # -- GCS fault tolerance -----------------------------------------------------------------

    def gcs_fault_tolerance(self) -> GcsFaultTolerance:
        """Return the GCS fault-tolerance set-up, with whether its store survives a pod loss.

        `persistent` is about the Redis pod's data directory for the redis backend, and about
        the head's store volume (KubeRay mounts it at /data/gcs) for the embedded backend.
        """
        rayservice = self.rayservice()
        ft = gcs_ft_config(rayservice)
        persistent: bool | None = None
        if ft.backend == "redis":
            persistent = _all_persistent(self._redis_pods(ft))
        elif ft.backend == "embedded":
            heads = [
                pod
                for pod, role in self._ray_pods(active_cluster_name(rayservice))
                if role == "head"
            ]
            persistent = _combine([embedded_storage_persistent(pod) for pod in heads])
        return GcsFaultTolerance(
            enabled=ft.enabled,
            backend=ft.backend,
            redis_address=ft.redis_address,
            persistent=persistent,
            source=ft.source,
        )

    # -- faults ------------------------------------------------------------------------------

    def delete_pod(self, pod: Pod, grace_period: int = 0, dry_run: bool = False) -> None:
        """Delete `pod` after checking it is still one of the RayService's own pods.

        `grace_period` is in seconds; `dry_run` asks the API server to validate the deletion
        without doing it. Raises `RefusedError` for a pod outside the active RayCluster and its
        resolved Redis, or one replaced since it was listed.
        """
        if grace_period < 0:
            raise ConfigurationError(f"grace_period must be 0 or more seconds, got {grace_period}")
        cluster, found = self._all_pods()
        match = next(
            (p.metadata for p, _ in found if p.metadata and p.metadata.name == pod.name), None
        )
        if match is None:
            raise RefusedError(
                f"refusing to delete pod '{pod.name}': it is not a pod of RayService "
                f"'{self.name}' in namespace '{self.namespace}' (its active RayCluster "
                f"'{cluster}' has pods labelled ray.io/cluster={cluster}) nor its resolved Redis"
            )
        live_uid = str(match.uid or "")
        if pod.uid and live_uid and pod.uid != live_uid:
            raise RefusedError(
                f"refusing to delete pod '{pod.name}': it was replaced since it was listed "
                f"(uid {pod.uid} is now {live_uid}); list the pods again"
            )
        namespace = str(match.namespace or self.namespace)
        logger.info(
            "%s pod %s/%s (%s) with a grace period of %ss",
            "Dry-run deleting" if dry_run else "Deleting",
            namespace,
            pod.name,
            pod.role,
            grace_period,
        )
        self.api.delete_pod(namespace, pod.name, pod.uid or live_uid, grace_period, dry_run)

    def delete_redis_primary(self, pod: Pod, host: str, grace_period: int = 0) -> None:
        """Delete `pod`, the Redis primary the GCS's Sentinel named at `host`, once it is
        still the pod there (same uid): the one Redis pod that is not behind the GCS address
        itself (the Sentinels are), hence a check of its own."""
        live = self.find_pod(host)
        if live is None or live.uid != pod.uid:
            raise RefusedError(
                f"refusing to delete pod '{pod.name}': it is no longer the pod at {host}, the "
                "address the Sentinel named as primary (replaced or moved meanwhile); ask again"
            )
        logger.info("Deleting Redis primary %s/%s (%s) with a grace period of %ss",
                    self.namespace, pod.name, host, grace_period)  # fmt: skip
        self.api.delete_pod(self.namespace, pod.name, pod.uid, grace_period, False)

    def _own_container(self, pod: Pod) -> str:
        """Return the first container of `pod`, refusing a pod that is not the RayService's."""
        _, listed = self._all_pods()
        found = [p for p, _ in listed if p.metadata and p.metadata.name == pod.name]
        if not found or not found[0].spec:
            raise RefusedError(
                f"refusing to exec in pod '{pod.name}': it is not a pod of RayService "
                f"'{self.name}' in namespace '{self.namespace}'"
            )
        return str(found[0].spec.containers[0].name)  # KubeRay's ray-head / ray-worker

    def exec_in_pod(
        self, pod: Pod, argv: Sequence[str], timeout: float = 30.0, stdin: str = ""
    ) -> tuple[int, str]:
        """Run `argv` in `pod`'s first container through `pods/exec`; return (exit code, output).

        `stdin` is written to its standard input. Needs the opt-in deploy/exec-role.yaml (a
        403 names it)."""
        container = self._own_container(pod)
        return self.api.exec_in_pod(
            self.namespace, pod.name, container, list(argv), timeout, stdin=stdin
        )

    def kill_process(self, pod: Pod, process: str) -> None:
        """SIGKILL `process` in `pod` through `pods/exec` (`pkill -KILL -x <process>` in its
        first container, as KubeRay's HA test runs `pkill gcs_server`). Needs the opt-in
        deploy/exec-role.yaml: chaosraysvc's Role does not grant `pods/exec`."""
        container = self._own_container(pod)
        logger.info("Killing %s in pod %s/%s through pods/exec", process, self.namespace,
                    pod.name)  # fmt: skip
        code, output = self.api.exec_in_pod(
            self.namespace, pod.name, container, ["pkill", "-KILL", "-x", process]
        )
        if code == 1:
            raise NotFoundError(f"no process named {process!r} runs in pod '{pod.name}'")
        if code != 0:
            raise KubernetesApiError(
                f"`pkill -KILL -x {process}` in pod '{pod.name}' exited with {code}: "
                f"{output.strip()[:300]}"
            )

    def partition_redis(self, dry_run: bool = False) -> RedisPartition:
        """Create the NetworkPolicies of `kube.networkpolicy`: the active RayCluster's pods may
        not reach the Redis pods, nor the Redis pods be reached by them.

        `dry_run` has the API server validate both (schema and RBAC) without storing them.
        Raises `RefusedError` without a Redis backend (or with one of the policies left by an
        earlier partition), `NotFoundError` when no Redis pod runs, `KubernetesApiError` naming
        deploy/networkpolicy-role.yaml when the account may not create NetworkPolicies.
        Whether a policy is enforced is the network plugin's business: see `partition_redis`
        the action, which checks.
        """
        rayservice = self.rayservice()
        cluster = active_cluster_name(rayservice)
        ft = gcs_ft_config(rayservice)
        if ft.backend != "redis":
            raise RefusedError(
                f"refusing to cut the Ray pods off from Redis: the GCS fault-tolerance backend "
                f"is {ft.backend!r}, so there is no Redis ({ft.source or 'no GCS FT settings'})"
            )
        pods = self._redis_pods(ft)
        if not pods:
            raise NotFoundError(
                f"no Redis pod found behind the GCS fault-tolerance address "
                f"{ft.redis_address!r} of RayService '{self.name}' in namespace "
                f"'{self.namespace}': set redis_label_selector to name its pods"
            )
        meta = [p.metadata or client.V1ObjectMeta() for p in pods]
        redis_namespace = str(meta[0].namespace or self.namespace)
        labels = redis_labels(
            self.api, self.namespace, ft, self.settings.redis_label_selector, pods
        )
        if not labels:
            raise RefusedError(
                "refusing to cut the Ray pods off from Redis: no label selects the Redis pods "
                "(its Service has no selector and they share no label); set "
                "redis_label_selector"
            )
        ips = [str(p.status.pod_ip) for p in pods if p.status and p.status.pod_ip]
        egress = egress_policy(self.name, cluster, labels, ips)
        ingress = ingress_policy(self.name, cluster, labels)
        made = [(self.namespace, egress), (redis_namespace, ingress)]
        logger.info(
            "%s NetworkPolicies %s cutting RayCluster %s off from Redis %s",
            "Dry-run creating" if dry_run else "Creating",
            ", ".join(f"{ns}/{body['metadata']['name']}" for ns, body in made),
            cluster,
            ", ".join(str(m.name) for m in meta),
        )
        created: list[tuple[str, str]] = []
        try:
            for namespace, body in made:
                self.api.create_network_policy(namespace, body, dry_run)
                created.append((namespace, str(body["metadata"]["name"])))
        except ChaosRaySvcError:
            if not dry_run:  # no half partition left behind
                for namespace, name in created:
                    self.api.delete_network_policy(namespace, name)
            raise
        return RedisPartition(
            cluster=cluster,
            policies=tuple(f"{ns}/{body['metadata']['name']}" for ns, body in made),
            redis_pods=tuple(str(m.name) for m in meta),
            redis_address=ft.redis_address,
        )

    def heal_redis_partition(self) -> list[str]:
        """Delete the NetworkPolicies of `partition_redis` (by name, in the RayService's and
        the Redis Service's namespaces); return the "namespace/name" of those deleted."""
        egress, ingress = policy_names(self.name)
        namespaces = [self.namespace]
        try:
            ft = gcs_ft_config(self.rayservice())
        except NotFoundError:  # the RayService is gone: its namespace still holds them
            ft = None
        ref = redis_service_ref(ft.redis_address, self.namespace) if ft else None
        if ref is not None and ref[1] not in namespaces:
            namespaces.append(ref[1])
        deleted = []
        for namespace in namespaces:
            for name in (egress, ingress):
                if self.api.delete_network_policy(namespace, name):
                    deleted.append(f"{namespace}/{name}")
        logger.info("Deleted NetworkPolicies %s", ", ".join(deleted) or "(none were there)")
        return deleted

    def drain_node(
        self,
        node: str,
        timeout: float,
        grace_period: int | None = None,
        force: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Cordon `node` (noting this RayService as the one that did), list its pods, evict
        them and wait until they are gone (`chaosraysvc.kube.drain`)."""
        owner = f"{self.namespace}/{self.name}"
        started = time.time()
        if not force:  # before the cordon: a refused drain changes nothing
            drain.refuse_unmanaged(node, drain.plan(self.api, node))
        if dry_run:
            drain.cordon(self.api, node, owner, dry_run=True)
            pods = drain.plan(self.api, node)
            refused = {
                p.key: self.api.evict_pod(p.namespace, p.name, grace_period, dry_run=True)
                for p in pods
                if not p.skipped
            }
            return {
                "node": node, "dry_run": True,
                "would_evict": sorted(k for k, why in refused.items() if not why),
                "blocked": {k: why for k, why in refused.items() if why and why != "gone"},
                "skipped": {p.key: p.skipped for p in pods if p.skipped},
            }  # fmt: skip
        cordoned = drain.cordon(self.api, node, owner)
        result = drain.Drained(node, cordoned, time.time())
        logger.info("Cordoned node %s%s", node, "" if cordoned else " (it was already)")
        try:
            pods = drain.plan(self.api, node)
            if not force:  # a bare pod bound meanwhile
                drain.refuse_unmanaged(node, pods)
            drain.evict(self.api, node, pods, started + timeout, grace_period, drained=result)
        except Exception:
            if cordoned and not result.evicted:  # nothing happened yet: leave it as it was
                drain.uncordon(self.api, owner)
                logger.info("Uncordoned node %s again: no pod was evicted", node)
            raise
        logger.info("Drained node %s: %d pod(s) evicted", node, len(result.evicted))
        return result.to_json()

    def uncordon_nodes(self) -> list[str]:
        done = drain.uncordon(self.api, f"{self.namespace}/{self.name}")
        logger.info("Uncordoned %s", ", ".join(done) or "no node (none was cordoned by us)")
        return done

    def lose_nodes(self, nodes: Sequence[str], timeout: float = 120.0) -> str:
        command = self.settings.node_loss_command
        output = nodeloss.run_node_command(command, "node_loss_command", nodes, timeout)
        logger.info("Lost node(s) %s with `%s`", ", ".join(nodes), command)
        return output

    def restore_nodes(self, nodes: Sequence[str], timeout: float = 120.0) -> str:
        command = self.settings.node_restore_command
        output = nodeloss.run_node_command(command, "node_restore_command", nodes, timeout)
        logger.info("Restored node(s) %s with `%s`", ", ".join(nodes), command)
        return output

    def delete_node(self, name: str) -> bool:
        return self.api.delete_node(name)

    def _redis_password(self) -> str:
        """Return the password the GCS authenticates to Redis with: the head container's
        `REDIS_PASSWORD` (KubeRay sets it from gcsFaultToleranceOptions.redisPassword, value or
        Secret; the older form sets it by hand), read through `pods/exec` ("" when unset)."""
        if self._password is None:
            cluster = active_cluster_name(self.rayservice())
            heads = [to_pod(p, r) for p, r in self._ray_pods(cluster) if r == "head"]
            running = [p for p in heads if p.phase == "Running"]
            if not running:
                raise NotFoundError(
                    f"no running head pod in RayCluster '{cluster}' to read the GCS's Redis "
                    "password from (its REDIS_PASSWORD): is the RayService up?"
                )
            argv = ["sh", "-c", 'printf "%s" "${REDIS_PASSWORD:-}"']
            code, output = self.exec_in_pod(running[0], argv, timeout=15)
            if code != 0:
                raise KubernetesApiError(
                    f"reading REDIS_PASSWORD in the head pod '{running[0].name}' exited with "
                    f"{code}"
                )
            self._password = output
        return self._password

    def redis_command(
        self, argv: Sequence[str], timeout: float = 10.0, address: str = ""
    ) -> RedisReply | None:
        """Run `redis-cli <argv>` in the Redis pod behind the GCS fault-tolerance address
        through `pods/exec` (deploy/exec-role.yaml), authenticated with the GCS's password
        (the head's REDIS_PASSWORD, sent on stdin); None when Redis did not answer within
        `timeout` seconds (`timeout` in the pod ended redis-cli). With `address` ("host:port",
        e.g. the primary a Sentinel names) redis-cli in that pod connects there instead."""
        ft = gcs_ft_config(self.rayservice())
        if ft.backend != "redis" or not ft.redis_address:
            raise RefusedError(
                f"there is no Redis to send `{argv[0]}` to: the GCS fault-tolerance backend is "
                f"{ft.backend!r} ({ft.source or 'no GCS FT settings'})"
            )
        pods = [to_pod(p, "redis") for p in self._redis_pods(ft)]
        running = [p for p in pods if p.phase == "Running"]
        if not running:
            where = "no pod" if not pods else "no running pod"
            raise (NotFoundError if pods else RefusedError)(
                f"{where} behind the GCS fault-tolerance address {ft.redis_address!r} of "
                f"RayService '{self.name}' in namespace '{self.namespace}' to run redis-cli "
                "in (an address outside the cluster's Services has none: set "
                "redis_label_selector to name the Redis pods)"
            )
        password = self._redis_password()
        host, port = "127.0.0.1", _port_of(ft.redis_address)
        if address:
            host, port = address.rsplit(":", 1)[0], _port_of(address)
        code, output = self.exec_in_pod(
            running[0],
            ["sh", "-c", REDIS_CLI, "sh", host, str(port), f"{timeout:g}", *argv],
            timeout=timeout + 15,
            stdin=password + "\n",
        )
        return _redis_cli_reply(running[0].name, argv[0], code, output)

    # -- upgrades ----------------------------------------------------------------------------

    def ray_clusters(self) -> tuple[str, str]:
        """Return the (active, pending) RayCluster names from the RayService's status."""
        status = self.rayservice().get("status") or {}
        names = []
        for key in ("activeServiceStatus", "pendingServiceStatus"):
            part = status.get(key) or {}
            names.append(str(part.get("rayClusterName") or "") if isinstance(part, dict) else "")
        return names[0], names[1]

    def cluster_pods(self, cluster: str) -> list[Pod]:
        """Return the head and worker pods of RayCluster `cluster`, oldest first."""
        pods = [to_pod(pod, role) for pod, role in self._ray_pods(cluster)]
        return sorted(pods, key=lambda p: (_ROLE_ORDER[p.role], p.created_at, p.name))

    def upgrade(self, patch: Mapping[str, Any], dry_run: bool = False) -> None:
        """Merge-patch the RayService's `spec` (KubeRay rolls out a new cluster on a change).

        The API server validates the patched object against the RayService CRD: an invalid
        change fails with `KubernetesApiError` (status 422) and nothing is stored.
        """
        logger.info(
            "%s RayService %s/%s",
            "Dry-run patching" if dry_run else "Patching",
            self.namespace,
            self.name,
        )
        self.api.patch_rayservice(self.namespace, self.name, {"spec": dict(patch)}, dry_run)

    # -- URLs --------------------------------------------------------------------------------

    def serve_url(self) -> str:
        """Return the serve Service's base URL (`serve_url`, or its in-cluster DNS name)."""
        return urls.serve_url(self.settings)

    def dashboard(self) -> Dashboard:
        """Return the dashboard: `dashboard_url`, the head Service in the cluster, or else the
        head Service through the API server's service proxy (see `kube.urls`)."""
        if self._dashboard is None:
            self._dashboard = urls.dashboard(self.settings, lambda: self.api)
        return self._dashboard


def _port_of(address: str) -> int:
    """Return the port of "host:port" (6379 when there is none or it is not a number)."""
    try:
        return int(address.rsplit(":", 1)[1]) if ":" in address else 6379
    except ValueError:
        return 6379


def _redis_cli_reply(pod: str, command: str, code: int, output: str) -> RedisReply | None:
    """Return redis-cli's answer: None when `timeout` ended it, else the reply (an error
    when it starts with an error code: redis-cli without a tty prints errors bare, exit 0)."""
    if code == NO_ANSWER:
        return None
    # Empty lines stay: redis-cli prints an empty string in an array (a Sentinel's `runid`
    # for a replica it never reached) as one, and the field/value pairs after it need it.
    lines = [line for line in output.splitlines() if not line.startswith("Warning:")]
    said = [line for line in lines if line.strip()]
    if code == 0 and not said:  # an empty answer (a plain Redis' `INFO SENTINEL`)
        return RedisReply("")
    if code != 0:
        raise ChaosRaySvcError(
            f"redis-cli `{command}` in pod '{pod}' exited with {code}: "
            f"{' '.join(said)[-300:] or 'no output'} (is redis-cli on the pod's PATH?)"
        )
    text = said[0].strip()
    return RedisReply(
        text,
        error=text.split(" ", 1)[0] in REDIS_ERRORS,
        lines=tuple(line.strip() for line in lines),
    )


def _combine(values: list[bool | None]) -> bool | None:
    if not values:
        return None
    if any(v is False for v in values):
        return False
    if all(v is True for v in values):
        return True
    return None


def _all_persistent(pods: list[client.V1Pod]) -> bool | None:
    live = [p for p in pods if not (p.metadata and p.metadata.deletion_timestamp)]
    return _combine([storage_persistent(p) for p in live or pods])
