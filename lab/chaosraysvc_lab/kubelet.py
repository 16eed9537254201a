"""A process kubelet: registers a Node, binds pending pods to it and runs them (`PodRun`).

Every 0.5 s it lists the pods of all namespaces: a pod with no node (default scheduler) is
bound here when this is the only node (`bind_pending`; with several nodes the real
kube-scheduler binds, `chaosraysvc_lab.stack`); a pod bound here gets a `PodRun`;
a pod marked for deletion is terminated with its grace period, then removed from the API
server (the kubelet's final delete, grace 0 with a UID precondition); a pod that vanished is
killed at once. The node's network (bridge, one netns per pod) and its Service path, the
real kube-proxy (`kubeproxy.py`) and CoreDNS (`coredns.py`), and the NetworkPolicy engine,
kube-router's firewall (`netpol.py`), come up with it and go down with it; pods' resolv.conf
names the `kube-dns` ClusterIP. So does the kubelet API
(`chaosraysvc_lab.kubeletapi`: logs, exec, port-forward through the API server) on the
bridge address, the Node's InternalIP, port 10250, with a serving certificate the cluster
CA signed for that address; pod events are written as the kubelet writes them
(`chaosraysvc_lab.events`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

from chaosraysvc_lab import (
    binaries,
    controlplane,
    coredns,
    images,
    kubeletapi,
    netpol,
    network,
    pki,
    podenv,
    podvolumes,
)
from chaosraysvc_lab.events import EventRecorder
from chaosraysvc_lab.kubeproxy import KubeProxy
from chaosraysvc_lab.node import NodeHeartbeat
from chaosraysvc_lab.podrun import ConfigError, ContainerPlan, PodPlan, PodRun

logger = logging.getLogger("chaosraysvc.kubelet")
CLUSTER_DOMAIN = "cluster.local"
API_SERVICE_IP = "198.19.0.1"  # the `kubernetes` Service (controlplane.API_SERVICE_IP)


VOLUME_SYNC_S = 5.0


def resolv_conf(pod: dict[str, Any], dns_ip: str) -> str:
    """A pod's /etc/resolv.conf as the kubelet writes it: `dnsPolicy` ClusterFirst (the
    default: the cluster DNS, the namespace's search path, ndots:5), Default (the node's own
    resolv.conf) or None (only `dnsConfig`); then `dnsConfig`'s nameservers (3 at most) and
    searches appended, its options merged by name."""
    namespace = str(pod["metadata"].get("namespace") or "default")
    policy = pod["spec"].get("dnsPolicy") or "ClusterFirst"
    config = pod["spec"].get("dnsConfig") or {}
    servers: list[str] = []
    searches: list[str] = []
    options: dict[str, str | None] = {}
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        servers = [dns_ip]
        searches = [f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]
        options = {"ndots": "5"}
    elif policy == "Default":
        with contextlib.suppress(OSError):
            for line in Path("/etc/resolv.conf").read_text().splitlines():
                words = line.split()
                if words and words[0] == "nameserver":
                    servers += words[1:2]
                elif words and words[0] == "search":
                    searches += words[1:]
    for server in config.get("nameservers") or []:
        if server not in servers:
            servers.append(server)
    for domain in config.get("searches") or []:
        if domain not in searches:
            searches.append(domain)
    for option in config.get("options") or []:
        options[option["name"]] = option.get("value")
    lines = [f"nameserver {server}" for server in servers[:3]]
    if searches:
        lines.append("search " + " ".join(searches))
    if options:
        lines.append(
            "options " + " ".join(k if v is None else f"{k}:{v}" for k, v in options.items())
        )
    return "\n".join(lines) + "\n"


class Kubelet:
    """Run the pods bound to `node_name` as local processes; `stop()` ends all of them."""

    def __init__(
        self,
        api_client: Any,
        state_dir: Path,
        node_name: str = "chaosraysvc-node",
        net: network.NodeNetwork | None = None,
        proxy_kubeconfig: Path | None = None,
        dns_kubeconfig: Path | None = None,
        netpol_kubeconfig: Path | None = None,
        *,
        bind_pending: bool = True,
        zone: str = "",
        control_plane: bool = False,
        service_path: bool = True,
    ) -> None:
        from kubernetes import client

        self.api = api_client
        self.core = client.CoreV1Api(api_client)
        self.node_name = node_name
        self.state_dir = state_dir
        self.net = net or network.NodeNetwork.pick()
        self.host_ip = self.net.gateway
        self.dns_ip = coredns.DNS_SERVICE_IP
        self.proxy_kubeconfig = proxy_kubeconfig
        self.dns_kubeconfig = dns_kubeconfig
        self.netpol_kubeconfig = netpol_kubeconfig  # None: no NetworkPolicy engine
        self.bind_pending = bind_pending  # False: kube-scheduler binds (several nodes)
        self.zone = zone
        self.control_plane = control_plane
        self.service_path = service_path  # False: another node's agent runs it for the host
        self.pods: dict[str, PodRun] = {}
        self.slots: dict[str, int] = {}
        self.last_slot = 0  # the slot (pod IP) handed out last: the next pod gets a later one
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._services: list[Any] = []
        self._own_network = True
        self._heartbeat: NodeHeartbeat | None = None
        self.errors: list[str] = []
        self.mountpoints: set[Path] = set()
        self.events = EventRecorder(self.core, node_name)
        self.kubelet_api: kubeletapi.KubeletApi | None = None

    # -- node lifecycle -----------------------------------------------------------------------

    def start(self) -> Kubelet:
        """Create the network, register the Node, start the Service path, then run pods."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # The node's stack makes the bridge first (the API server listens on its address) and
        # removes it after the control plane; a kubelet started alone owns it.
        self._own_network = not self.net.exists()
        self.net.create(service_route=self.service_path)
        self.events.start()
        self.kubelet_api = self._start_kubelet_api()
        self._heartbeat = NodeHeartbeat(
            self.api, self.node_name, self.host_ip, kubelet_port=self.kubelet_api.port,
            zone=self.zone, control_plane=self.control_plane,
        ).start()  # fmt: skip
        if self.service_path:
            self._start_service_path()
        self._thread = threading.Thread(target=self._loop, name="kubelet", daemon=True)
        self._thread.start()
        return self

    def _start_service_path(self) -> None:
        """kube-proxy (it reads the Node's address), then CoreDNS behind the kube-dns Service,
        then (with its kubeconfig) kube-router's NetworkPolicy controller (`netpol.py`)."""
        if self.proxy_kubeconfig is None or self.dns_kubeconfig is None:
            raise ValueError("the kubelet needs kubeconfigs for kube-proxy and CoreDNS")
        proxy = KubeProxy(
            binaries.binary_dir(build=False) / "kube-proxy",
            self.proxy_kubeconfig, self.node_name, self.host_ip, self.state_dir,
        )  # fmt: skip
        self._services.append(proxy.start())
        dns = coredns.CoreDns(
            self.api, binaries.coredns_binary(build=False), self.dns_kubeconfig, self.host_ip,
            self.node_name, self.state_dir,
        )  # fmt: skip
        self._services.append(dns.start())
        if self.netpol_kubeconfig is not None:
            engine = netpol.NetworkPolicyEngine(
                self.api, binaries.kube_router_binary(build=False), self.netpol_kubeconfig,
                self.node_name, controlplane.SERVICE_CIDR, self.state_dir,
            )  # fmt: skip
            self._services.append(engine.start())

    def _start_kubelet_api(self) -> kubeletapi.KubeletApi:
        """Get a serving certificate for the node's address and serve the kubelet API there."""
        pair = pki.request_serving_certificate(
            self.api, self.node_name, (self.host_ip, self.node_name), self.state_dir / "pki"
        )
        client_ca = Path(self.api.configuration.ssl_ca_cert)  # the cluster CA (--client-ca-file)
        return kubeletapi.KubeletApi(
            self, self.api, self.node_name, self.host_ip, pair.cert, pair.key, client_ca
        ).start()

    def pod_objects(self) -> list[dict[str, Any]]:
        """The pods this kubelet runs as it last listed them (the kubelet API's `/pods`):
        a deletion it observed shows as the pod's `deletionTimestamp`."""
        return [run.seen for run in list(self.pods.values())]

    def find_pod(self, namespace: str, name: str) -> PodRun | None:
        """The pod `namespace/name` this kubelet runs (the newest, if a replacement has the
        name of one still terminating), or None."""
        runs = list(self.pods.values())  # the API's thread; the dict changes under it
        found = [r for r in runs if (r.namespace, r.name) == (namespace, name)]
        return max(found, key=lambda r: r.start_time) if found else None

    @property
    def service_env(self) -> dict[str, str]:
        """What every container gets for the `kubernetes` Service (in-cluster config)."""
        return {
            "KUBERNETES_SERVICE_HOST": API_SERVICE_IP,
            "KUBERNETES_SERVICE_PORT": "443",
            "KUBERNETES_SERVICE_PORT_HTTPS": "443",
            "KUBERNETES_PORT": f"tcp://{API_SERVICE_IP}:443",
            "KUBERNETES_PORT_443_TCP": f"tcp://{API_SERVICE_IP}:443",
            "KUBERNETES_PORT_443_TCP_ADDR": API_SERVICE_IP,
            "KUBERNETES_PORT_443_TCP_PORT": "443",
            "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        }

    def service_links(self, pod: dict[str, Any]) -> dict[str, str]:
        """The service variables the kubelet gives a container: the `kubernetes` Service's,
        and with `enableServiceLinks` (the default) those of every Service of the pod's
        namespace that has a ClusterIP (`<NAME>_SERVICE_HOST`, `<NAME>_PORT_<port>_TCP`...,
        Docker links' form), as they are when the container starts."""
        env = dict(self.service_env)
        if pod["spec"].get("enableServiceLinks", True) is False:
            return env
        try:
            listed = self.core.list_namespaced_service(pod["metadata"]["namespace"])
        except Exception as exc:  # noqa: BLE001 - the kubelet starts the container anyway
            logger.warning("service links of %s not read: %s", pod["metadata"]["name"], exc)
            return env
        for service in self.api.sanitize_for_serialization(listed).get("items", []):
            ip, ports = service["spec"].get("clusterIP"), service["spec"].get("ports") or []
            if not ip or ip == "None" or not ports:
                continue
            name = str(service["metadata"]["name"]).upper().replace("-", "_")
            first = ports[0]
            env[f"{name}_SERVICE_HOST"] = ip
            env[f"{name}_SERVICE_PORT"] = str(first["port"])
            env[f"{name}_PORT"] = f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}"
            for port in ports:
                proto = str(port.get("protocol", "TCP")).upper()
                if port.get("name"):
                    key = str(port["name"]).upper().replace("-", "_")
                    env[f"{name}_SERVICE_PORT_{key}"] = str(port["port"])
                prefix = f"{name}_PORT_{port['port']}_{proto}"
                env[prefix] = f"{proto.lower()}://{ip}:{port['port']}"
                env[f"{prefix}_PROTO"] = proto.lower()
                env[f"{prefix}_PORT"] = str(port["port"])
                env[f"{prefix}_ADDR"] = ip
        return env

    def stop(self) -> None:
        """Kill every pod (no grace: the node goes away), end the Service path, free the network."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for run in list(self.pods.values()):
            run.terminate(0)
        self.pods.clear()
        if self._heartbeat is not None:
            self._heartbeat.stop()
        if self.kubelet_api is not None:
            self.kubelet_api.stop()
        self.events.stop()
        for service in reversed(self._services):
            service.stop()
        self._services.clear()
        if self._own_network:
            self.net.destroy()
        else:
            self.net.remove_pods()
        self._remove_mountpoints()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                logger.exception("kubelet sync failed")
            self._stop.wait(0.5)

    # -- reconcile ----------------------------------------------------------------------------

    def sync(self) -> None:
        """One pass: bind, start, terminate."""
        listed = self.api.sanitize_for_serialization(self.core.list_pod_for_all_namespaces())
        seen: set[str] = set()
        for pod in listed.get("items", []):
            meta, spec = pod["metadata"], pod["spec"]
            uid = meta["uid"]
            node = spec.get("nodeName") or ""
            if not node:
                default = spec.get("schedulerName", "default-scheduler") == "default-scheduler"
                if default and self.bind_pending:
                    self._bind(pod)
                continue
            if node != self.node_name:
                continue
            seen.add(uid)
            run = self.pods.get(uid)
            if run is not None:
                run.seen = pod
            if meta.get("deletionTimestamp"):
                if run is not None and not run.stop.is_set():
                    grace = float(meta.get("deletionGracePeriodSeconds") or 0)
                    threading.Thread(
                        target=self._finish_deletion, args=(run, grace), daemon=True
                    ).start()
                elif run is None:
                    self._final_delete(meta["namespace"], meta["name"], uid)
                continue
            if run is None and pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
                run = PodRun(self, pod)
                self.pods[uid] = run
                run.start()
            elif run is not None and run.phase == "Running":
                self._sync_volumes(run, pod)
        for uid in list(self.pods):
            if uid not in seen:
                run = self.pods.pop(uid)
                threading.Thread(target=run.terminate, args=(0,), daemon=True).start()

    def _sync_volumes(self, run: PodRun, pod: dict[str, Any]) -> None:
        """Every `VOLUME_SYNC_S`, write a running pod's configMap, secret, projected and
        downwardAPI volumes again from the API server (the kubelet's periodic sync: an update
        reaches the containers in place; the real kubelet's delay is up to its sync period plus
        its cache's TTL, about a minute)."""
        now = time.monotonic()
        if now - run.volumes_synced < VOLUME_SYNC_S:
            return
        run.volumes_synced = now
        for failure in podvolumes.refresh(pod, podenv.ApiLookup(self.core), run.pod_dir):
            logger.warning("pod %s/%s: volume not refreshed: %s", run.namespace, run.name, failure)

    def _bind(self, pod: dict[str, Any]) -> None:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        body: Any = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            self.core.create_namespaced_pod_binding(name, namespace, body, _preload_content=False)
        except Exception as exc:  # noqa: BLE001 - bound meanwhile or deleted: next pass
            logger.debug("binding %s/%s: %s", namespace, name, exc)
            return
        self.events.scheduled(pod, self.node_name)  # the scheduler's event: none runs here

    def _finish_deletion(self, run: PodRun, grace: float) -> None:
        run.terminate(grace)
        self.pods.pop(run.uid, None)
        self._final_delete(run.namespace, run.name, run.uid)

    def _final_delete(self, namespace: str, name: str, uid: str) -> None:
        from kubernetes import client

        options = client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)
        )
        try:
            self.core.delete_namespaced_pod(name, namespace, body=options)
        except Exception as exc:  # noqa: BLE001 - already gone
            logger.debug("final delete of %s/%s: %s", namespace, name, exc)

    # -- what a pod needs from its node (podrun.NodeContext) ----------------------------------

    def add_pod_network(self, pod_uid: str) -> tuple[str, str]:
        slot = next_slot(self.last_slot, set(self.slots.values()))
        self.slots[pod_uid] = self.last_slot = slot
        netns, pod_ip = self.net.add_pod(slot)
        etc = Path("/etc/netns") / netns
        etc.mkdir(parents=True, exist_ok=True)
        pod = next((run.seen for run in self.pods.values() if run.uid == pod_uid), None)
        body = pod or {"metadata": {"namespace": "default"}, "spec": {}}
        (etc / "resolv.conf").write_text(resolv_conf(body, self.dns_ip))
        return netns, pod_ip

    def remove_pod_network(self, pod_uid: str) -> None:
        slot = self.slots.pop(pod_uid, None)
        if slot is None:
            return
        netns = self.net.pod_netns(slot)
        self.net.remove_pod(slot)
        for name in ("resolv.conf", "hosts"):
            (Path("/etc/netns") / netns / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (Path("/etc/netns") / netns).rmdir()

    def resolve(self, pod: dict[str, Any], pod_ip: str, pod_dir: Path) -> PodPlan:
        lookup = podenv.ApiLookup(self.core)
        try:
            token = podvolumes.token_source(self.core, pod)
            volumes = podvolumes.materialize(pod, lookup, token, pod_dir, self.state_dir)
            plans = []
            for key in ("initContainers", "containers"):
                for spec in pod["spec"].get(key, []):
                    plans.append(self._container(pod, spec, lookup, pod_ip, volumes))
        except podenv.PodConfigError as exc:
            raise ConfigError(exc.reason, str(exc)) from exc
        inits = len(pod["spec"].get("initContainers", []))
        return PodPlan(plans[:inits], plans[inits:])

    def _container(
        self,
        pod: dict[str, Any],
        spec: dict[str, Any],
        lookup: podenv.Lookup,
        pod_ip: str,
        volumes: dict[str, Path],
    ) -> ContainerPlan:
        runtime = images.runtime_for(spec["image"])
        env = dict(runtime.env)
        env.update(
            podenv.resolve_env(
                pod, spec, lookup, pod_ip, self.host_ip, service_env=self.service_links(pod)
            )
        )
        argv = podenv.expand(runtime.argv(spec.get("command") or [], spec.get("args") or []), env)
        env.setdefault("PATH", runtime.path())
        env.setdefault("HOME", "/root")
        env.setdefault("HOSTNAME", str(pod["metadata"]["name"]))
        mounts = [
            (str(m.source), m.target, m.read_only) for m in podvolumes.mounts(spec, volumes, env)
        ]
        pod_dir = self.state_dir / "pods" / str(pod["metadata"]["uid"])
        for path in runtime.volumes:
            if all(target != path for _, target, _ in mounts):
                source = pod_dir / "image-volumes" / path.strip("/").replace("/", "_")
                source.mkdir(parents=True, exist_ok=True)
                mounts.append((str(source), path, False))
        mounts += [(host, path, True) for host, path in runtime.binds]
        # terminationMessagePath: a file of the pod's the container may write, read at its exit
        message = pod_dir / "termination" / str(spec["name"])
        message.parent.mkdir(parents=True, exist_ok=True)
        message.write_bytes(b"")
        message.chmod(0o666)
        mounts.append((str(message), str(spec.get("terminationMessagePath")
                                         or "/dev/termination-log"), False))  # fmt: skip
        # Parents before children, as containerd's CRI orders a container's mounts (by the
        # destination's path depth): the image's VOLUME /home/ray must not hide a configMap
        # mounted at /home/ray/samples (the HA sample's ray-pod).
        mounts.sort(key=lambda m: len(Path(m[1]).parts))
        workdir = str(spec.get("workingDir") or runtime.workdir)
        for target in [t for _, t, _ in mounts] + [workdir]:
            self._note_mountpoint(Path(target))
        return ContainerPlan(spec, argv, env, mounts, workdir)

    def _note_mountpoint(self, target: Path) -> None:
        """Remember the host paths a container's mount will create (removed on stop)."""
        while not target.exists() and target != target.parent:
            self.mountpoints.add(target)
            target = target.parent

    def _remove_mountpoints(self) -> None:
        for path in sorted(self.mountpoints, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                if path.is_dir():
                    path.rmdir()  # only if empty: something else may have written there
                elif path.is_file() and path.stat().st_size == 0:
                    path.unlink()
        self.mountpoints.clear()


SLOTS = range(1, 240)


def next_slot(last: int, used: set[int]) -> int:
    """The first free slot after `last`, wrapping round: pod IPs in rotation.

    As the host-local IPAM of a real node hands out addresses (after the last one reserved), a
    deleted pod's IP is not given to the next pod at once. With the lowest free slot, a new head
    got its predecessor's IP about a second after it went, on a new veth with a new MAC, and in
    6 of 20 grace-30 head restarts `ray start` spent 70-90 s before starting gcs_server, in its
    first (blocking, untimed) connection to Redis; stale neighbour or conntrack entries for the
    reused IP are the likely cause, not proven (docs/findings.md).
    """
    order = [n for n in SLOTS if n > last] + [n for n in SLOTS if n <= last]
    return next(n for n in order if n not in used)
