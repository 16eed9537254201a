"""The one-machine Kubernetes node: control plane, real KubeRay operator, process kubelet.

`up()` creates the node network (the API server listens on its address), starts the control
plane with the operator and the node agent (kubelet, kube-proxy, CoreDNS), applies KubeRay's
`ray-service.high-availability.yaml` as published except for its Serve application (its
`working_dir` is a GitHub archive and nothing here reaches the internet: the same fruit app is
imported from this project) and returns once the RayService is Ready with ready serve
endpoints. It also creates `<name>-dashboard`, a ClusterIP Service in front of the head's
dashboard (what `kubectl port-forward svc/<name>-head-svc` gives a user: the head Service is
headless), and writes `kube.env` with the settings the kubernetes target needs from the host.
`down()` ends everything, even after a crash of `up`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.runtime import sessions as procs
from chaosraysvc_lab import (
    binaries,
    coredns,
    images,
    kubeconfig,
    kubeproxy,
    netpol,
    network,
    nodeloss,
    prometheus,
    redis_ha,
)
from chaosraysvc_lab.agent import try_lock
from chaosraysvc_lab.controlplane import ControlPlane
from chaosraysvc_lab.sample import NAME, NAMESPACE, dashboard_service, published_sample

logger = logging.getLogger("chaosraysvc.lab")
STATE_FILE = "node.json"
ZONES = ("zone-a", "zone-b", "zone-c", "zone-d", "zone-e")  # `up(nodes=..., zones=...)`
WORKER_PREFIX = "chaosraysvc-worker-"
Progress = Callable[[str], None]


class NodeError(ChaosRaySvcError):
    """The node could not be brought up (names what was awaited and the log to read)."""


def worker_names(count: int, zones: int = 0) -> list[tuple[str, str]]:
    """(name, zone) of each node that runs pods: `chaosraysvc-worker-a`, `-b`... in zones
    `zone-a`, `zone-b`... in turn, `zones` of them (0: one per node, each named for its own)."""
    letters = [zone.removeprefix("zone-") for zone in ZONES]
    return [(f"{WORKER_PREFIX}{letters[i]}", ZONES[i % (zones or count)]) for i in range(count)]


def _check_up(
    nodes: int,
    zones: int,
    redis: str,
    sample: bool,
    spread: bool = False,
    down_after: int = redis_ha.DOWN_AFTER_MS,
) -> None:
    """Raise `NodeError` for arguments `up` cannot bring up, before anything starts."""
    if not 1 <= nodes <= len(ZONES):
        raise NodeError(f"nodes must be 1 to {len(ZONES)} (got {nodes})")
    if not 0 <= zones <= nodes or (zones and nodes == 1):
        raise NodeError(f"zones must be 0 (one per node) or 1 to nodes={nodes} (got {zones})")
    if redis not in ("single", "sentinel"):
        raise NodeError(f"redis must be 'single' or 'sentinel' (got {redis!r})")
    if down_after < 100:
        raise NodeError(f"sentinel down-after-milliseconds must be 100 or more (got {down_after})")
    spread_over = {zone for _, zone in worker_names(nodes, zones)} if nodes > 1 else set()
    if spread and (not sample or redis != "single" or len(spread_over) < 3):
        raise NodeError(
            "--spread-zones needs the sample with its one Redis and at least 3 zones (Redis "
            "is kept out of the head's zone: with 2, a new head would have nowhere to go "
            f"while one is lost); got nodes={nodes}, zones={zones}, redis={redis}"
        )
    if sample and redis == "sentinel":  # its pods' image
        try:
            images.runtime_for(redis_ha.IMAGE)
        except images.ImagePullError as exc:
            raise NodeError(f"--redis sentinel: {exc}") from None


class KubeNode:
    """The node kept in `state_dir` (control plane under `cp/`, pods under `node/`)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()
        self.plane = ControlPlane(self.state_dir / "cp")
        self.env_file = self.state_dir / "kube.env"

    def _state(self) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads((self.state_dir / STATE_FILE).read_text())
            return loaded
        except (OSError, ValueError):
            return {}

    def _save(self, state: dict[str, Any]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=1))

    def running(self) -> bool:
        state = self._state()
        agent = state.get("agent")
        return bool(agent and procs.running(agent["sid"], agent["ticks"]) and self.plane.running())

    def up(
        self,
        *,
        exclude_head: bool = False,
        timeout: float = 300,
        progress: Progress = print,
        sample: bool = True,
        network_policy: bool = True,
        ray_env: dict[str, str] | None = None,
        redis: str = "single",
        scrape_interval: float = 15.0,
        head_only: bool = False,
        head_start_delay: float = 0,
        nodes: int = 1,
        zones: int = 0,
        spread_zones: bool = False,
        sentinel_down_after_ms: int = redis_ha.DOWN_AFTER_MS,
    ) -> dict[str, str]:
        """Bring everything up; return the settings for the kubernetes target.

        `nodes` > 1: that many Kubernetes nodes run the pods (`chaosraysvc-worker-a`, `-b`...,
        each its own agent, bridge and pod CIDR), placed by the real kube-scheduler, beside
        the node that holds the control plane and the Service path (`chaosraysvc-node`,
        tainted NoSchedule as kubeadm taints a control-plane node). They are spread over
        `zones` zones in turn (`zone-a`, `zone-b`...; 0: one zone per node), so that with
        fewer zones than nodes a zone holds several (a zone loss loses them all).
        `spread_zones`: the sample's Ray pods spread over the zones and its Redis kept out of
        the head's zone (`adapt_sample`; 3 zones or more).

        With a `scrape_interval` (seconds; 0: none) Prometheus runs beside the control plane,
        scraping the Ray pods, the operator and a Pushgateway (`prometheus.py`); their URLs are
        in the settings (RAYSVC_PROMETHEUS_URL, RAYSVC_METRICS_PUSHGATEWAY) once it scrapes
        every Ray pod and the Pushgateway.

        `redis="sentinel"`: the GCS's Redis is a primary, a replica and three Sentinels
        (`redis_ha.py`; down-after-milliseconds `sentinel_down_after_ms`) instead of the
        sample's one Redis. `head_only`: every Serve replica on
        the head, no worker; `head_start_delay`: a head pod that starts Ray that many seconds
        late (together, a deliberately failing set-up: `adapt_sample`).

        With `network_policy` the node enforces NetworkPolicy (kube-router's firewall,
        `netpol.py`), as a cluster whose CNI does; without it a NetworkPolicy does nothing.

        Without `sample`, returns once the node is Ready, with no RayService applied (the
        settings then hold only KUBECONFIG): a node for tests that run pods of their own.
        """
        if self.running():
            raise NodeError(f"a Kubernetes node is already up in {self.state_dir}: down it first")
        # The machine's lock first: what this directory's stale state names (its network index)
        # may be another node's now, and only the lock's holder may remove it.
        probe = try_lock()
        if probe is None:
            raise NodeError(
                "another chaosraysvc Kubernetes node runs on this machine (one per machine: the "
                "Service CIDR route and ClusterIPs are the host's): bring it down first "
                "(`chaosraysvc-lab node down --state-dir <its dir>`)"
            )
        self.down(lock_held=True)
        started = time.monotonic()
        try:
            _check_up(nodes, zones, redis, sample, spread_zones, sentinel_down_after_ms)
        except NodeError:
            probe.close()
            raise
        if nodes > 1 and network_policy:
            # kube-router's firewall filters the pods of its own node only (their hostIP), and
            # one runs for the host: with several nodes nothing would be enforced
            progress("NetworkPolicy is not enforced with several nodes (docs/lab.md)")
            network_policy = False
        try:
            binaries.coredns_binary()  # built now if missing (the agent only looks it up)
            if network_policy:
                binaries.kube_router_binary()
            if not sample:  # nothing to scrape
                scrape_interval = 0
            if scrape_interval:
                binaries.prometheus_binary()
                binaries.pushgateway_binary()
            # The node's address (the bridge's) comes first: the API server listens on it.
            net = network.NodeNetwork.pick()
            self._save({"node_index": net.index})
            net.create()
            self.plane.up(
                operator=True, progress=progress, address=net.gateway, scheduler=nodes > 1
            )
            api = kubeconfig.api_client(self.plane.kubeconfig)
            scraper = self._start_prometheus(api, net.gateway, scrape_interval)
            log = self.state_dir / "node" / "kubelet.log"
            cmd = [
                sys.executable, "-m", "chaosraysvc_lab.agent",
                f"--kubeconfig={self.plane.kubeconfig}",
                f"--state-dir={self.state_dir / 'node'}",
                f"--node-index={net.index}",
                "--proxy-kubeconfig="
                + str(self.plane.client_kubeconfig("kube-proxy", "system:kube-proxy")),
                f"--dns-kubeconfig={self.plane.client_kubeconfig('coredns', coredns.USER)}",
            ]  # fmt: skip
            if network_policy:
                path = self.plane.client_kubeconfig("kube-router", netpol.USER)
                cmd.append(f"--netpol-kubeconfig={path}")
            if nodes > 1:  # the control plane's node: no workload pod, the scheduler binds
                cmd += ["--control-plane", "--no-bind", f"--zone={ZONES[0]}"]
            probe.close()  # held until now; the agent takes it for its lifetime
            proc = procs.spawn(cmd, dict(os.environ), log, self.state_dir)
            agent = {"sid": proc.pid, "ticks": procs.start_time_of(proc.pid) or 0}
            state = {"agent": agent, "node_index": net.index, "log": str(log), **scraper}
            self._save(state)
            self._wait(lambda: _nodes_ready(api, 1), "the node to register Ready", 60, log)
            progress(f"process kubelet up: pods on {net.pod_cidr} ({_since(started)})")
            if nodes > 1:
                state["workers"] = self._start_workers(nodes, zones, net.index, state)
                self._wait(
                    lambda: _nodes_ready(api, nodes + 1), f"{nodes} more nodes to be Ready",
                    60, Path(state["workers"][-1]["log"]),
                )  # fmt: skip
                spread = sorted({w["zone"] for w in state["workers"]})
                progress(
                    f"{nodes} nodes for the pods, in zones {', '.join(spread)}, placed "
                    f"by kube-scheduler ({_since(started)})"
                )
            if not sample:
                return {"KUBECONFIG": str(self.plane.kubeconfig)}
            sample_docs = published_sample(
                exclude_head, ray_env, redis, head_only, head_start_delay, spread_zones,
                sentinel_down_after_ms,
            )  # fmt: skip
            _apply(api, [*sample_docs, dashboard_service()])
            progress(
                "applied KubeRay's ray-service.high-availability.yaml"
                + (" (Redis behind Sentinels)" if redis == "sentinel" else "")
                + (" (Ray pods spread over zones, Redis out of the head's)" if spread_zones else "")
            )
            _pod_logs[0] = self.state_dir / "node" / "pods"
            try:
                self._wait(
                    lambda: _rayservice_ready(api, progress),
                    "RayService rayservice-ha to be Ready with every serve endpoint",
                    timeout,
                    log,
                )
            except NodeError as exc:
                if _last_troubles[0]:  # the pods' own words first, not the kubelet's log
                    raise NodeError(f"{exc}; failing: {_last_troubles[0]}") from exc
                raise
            settings = _settings(api, self.plane.kubeconfig)
            if exclude_head:  # the experiments expect every endpoint: the workers only
                settings["RAYSVC_EXPECTED_ENDPOINTS"] = "2"
            if head_only:
                settings["RAYSVC_EXPECTED_ENDPOINTS"] = "1"
            if nodes > 1:  # lose_node's commands: `chaosraysvc-lab node lose|restore`
                settings |= self.node_loss_settings()
            if scraper:
                self._await_scrapes(api, net.gateway, scrape_interval, scraper, settings, progress)
            self._write_env(settings)
            progress(f"RayService Ready in {_since(started)}; settings in {self.env_file}")
            return settings
        except BaseException:
            self.down(lock_held=not probe.closed)
            probe.close()
            raise

    def _start_workers(
        self, count: int, zones: int, first_index: int, state: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Start `count` agents, one per node that runs pods (`--secondary`), in `zones`
        zones in turn (0: one each): recorded in `state` (saved) as each starts, so `down()`
        ends them even after a failed `up`."""
        workers: list[dict[str, Any]] = []
        state["workers"] = workers
        taken = {first_index}
        for name, zone in worker_names(count, zones):
            net = network.NodeNetwork.pick(frozenset(taken))
            taken.add(net.index)
            workers.append(self._spawn_worker(name, zone, net.index))
            self._save(state)
        return workers

    def node_loss_settings(self) -> dict[str, str]:
        """The kubernetes target's node loss and restore commands for this lab's nodes."""
        lab = f"{shlex.quote(sys.executable)} -m chaosraysvc_lab.cli node"
        where = f"--state-dir {shlex.quote(str(self.state_dir))}"
        return {
            "RAYSVC_NODE_LOSS_COMMAND": f"{lab} lose {where}",
            "RAYSVC_NODE_RESTORE_COMMAND": f"{lab} restore {where}",
        }

    def _spawn_worker(self, name: str, zone: str, index: int) -> dict[str, Any]:
        """Start the agent of node `name` (network `index`); return its record."""
        where = self.state_dir / "workers" / name
        log = where / "kubelet.log"
        cmd = [
            sys.executable, "-m", "chaosraysvc_lab.agent",
            f"--kubeconfig={self.plane.kubeconfig}", f"--state-dir={where}",
            f"--node-index={index}", f"--node-name={name}", f"--zone={zone}",
            "--no-bind", "--secondary",
        ]  # fmt: skip
        where.mkdir(parents=True, exist_ok=True)
        proc = procs.spawn(cmd, dict(os.environ), log, self.state_dir)
        return {
            "sid": proc.pid, "ticks": procs.start_time_of(proc.pid) or 0, "name": name,
            "zone": zone, "node_index": index, "log": str(log), "state_dir": str(where),
        }  # fmt: skip

    def _worker(self, state: dict[str, Any], name: str) -> dict[str, Any]:
        workers = state.get("workers") or []
        for worker in workers:
            if worker["name"] == name:
                return dict(worker)
        known = ", ".join(w["name"] for w in workers) or "none: it was brought up with one node"
        raise NodeError(
            f"{name!r} is not a node of the lab in {self.state_dir} that can be lost (nodes "
            f"that run pods: {known}; the control plane's node cannot)"
        )

    def lose_nodes(self, names: list[str]) -> list[str]:
        """Lose the nodes `names` as machines are lost (`nodeloss.lose`): their kubelets and
        containers killed, their networks silenced. Returns the names lost; raises
        `NodeError` before any change when a name is not a worker of this running lab."""
        if not self.running():
            raise NodeError(f"no node runs in {self.state_dir}: bring one up first")
        state = self._state()
        chosen = [self._worker(state, name) for name in names]
        for worker in chosen:
            left = nodeloss.lose(worker)
            if left:
                raise NodeError(f"node {worker['name']}: container sessions {left} survived")
        state["lost"] = sorted({*state.get("lost", []), *names})
        self._save(state)
        return names

    def restore_nodes(self, names: list[str]) -> list[str]:
        """Bring back lost nodes `names`: their network unsilenced and a new kubelet each,
        with the same name, zone and network. Returns the names restored."""
        if not self.running():
            raise NodeError(f"no node runs in {self.state_dir}: bring one up first")
        state = self._state()
        chosen = [self._worker(state, name) for name in names]
        for worker in chosen:
            if procs.running(worker["sid"], worker["ticks"]):
                raise NodeError(f"node {worker['name']} is not lost: its kubelet runs")
        for worker in chosen:
            nodeloss.restore_network(worker)
            zone = worker.get("zone") or f"zone-{worker['name'].removeprefix(WORKER_PREFIX)}"
            fresh = self._spawn_worker(worker["name"], zone, worker["node_index"])
            state["workers"] = [fresh if w["name"] == worker["name"] else w
                                for w in state["workers"]]  # fmt: skip
            state["lost"] = [n for n in state.get("lost", []) if n != worker["name"]]
            self._save(state)
        return names

    def start_metrics(
        self, scrape_interval: float = 15.0, progress: Progress = print
    ) -> dict[str, str]:
        """Start Prometheus and the Pushgateway beside this running node, brought up without
        them (`scrape_interval=0`); add their URLs to its settings (kube.env); return them.
        `down()` ends them with the node."""
        if not self.running():
            raise NodeError(f"no node runs in {self.state_dir}: bring one up first")
        state = self._state()
        for name in ("prometheus", "pushgateway"):
            record = state.get(name)
            if record and procs.running(record["sid"], record["ticks"]):
                raise NodeError(f"{name} already runs beside the node in {self.state_dir}")
        if scrape_interval <= 0:
            raise NodeError(f"the scrape interval must be >= 1 s (got {scrape_interval:g})")
        api = kubeconfig.api_client(self.plane.kubeconfig)
        address = network.NodeNetwork(state["node_index"]).gateway
        records = self._start_prometheus(api, address, scrape_interval)
        settings = _read_env(self.env_file)
        self._await_scrapes(api, address, scrape_interval, records, settings, progress)
        self._write_env(settings)
        return settings

    def _await_scrapes(
        self,
        api: Any,
        address: str,
        interval: float,
        records: dict[str, Any],
        settings: dict[str, str],
        progress: Progress,
    ) -> None:
        """Wait until Prometheus scrapes every Ray pod and the Pushgateway; name both in
        `settings`."""
        url = prometheus.url_of(address)
        self._wait(
            lambda: prometheus.ray_targets_up(url, _ray_pods(api))
            and prometheus.target_up(url, "pushgateway"),
            f"Prometheus ({url}) to scrape every Ray pod and the Pushgateway",
            max(60.0, 4 * interval),
            Path(records["prometheus"]["log"]),
        )
        settings["RAYSVC_PROMETHEUS_URL"] = url
        settings["RAYSVC_METRICS_PUSHGATEWAY"] = prometheus.pushgateway_url_of(address)
        progress(f"Prometheus scrapes the Ray pods every {interval:g}s: {url}")

    def _write_env(self, settings: dict[str, str]) -> None:
        # quoted as a shell reads it (`source kube.env`): the commands hold spaces
        self.env_file.write_text(
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in settings.items())
        )

    def _start_prometheus(self, api: Any, address: str, interval: float) -> dict[str, Any]:
        """Start the Pushgateway and Prometheus on `address` (none without an `interval`);
        return their records."""
        if not interval:
            return {}
        if interval < 1:
            raise NodeError(f"the scrape interval must be 0 (none) or >= 1 s (got {interval:g})")
        prometheus.install_rbac(api)
        folder = self.state_dir / "prometheus"
        folder.mkdir(parents=True, exist_ok=True)
        gateway_cmd = prometheus.pushgateway_command(binaries.pushgateway_binary(), folder, address)
        gateway = self._spawn("pushgateway", gateway_cmd, folder / "pushgateway.log")
        self._until_ready("the Pushgateway", prometheus.pushgateway_url_of(address), gateway)
        state = self.plane.state()
        operator = f"127.0.0.1:{state.operator_metrics_port}" if state else ""
        settings = prometheus.config(
            self.plane.client_kubeconfig("prometheus", prometheus.USER),
            interval,
            operator,
            f"{address}:{prometheus.PUSHGATEWAY_PORT}",
        )
        config = prometheus.write_config(folder / "prometheus.yml", settings)
        cmd = prometheus.command(binaries.prometheus_binary(), config, folder / "data", address)
        record = self._spawn("prometheus", cmd, folder / "prometheus.log")
        self._until_ready("Prometheus", prometheus.url_of(address), record)
        return {"pushgateway": gateway, "prometheus": record}

    def _spawn(self, name: str, cmd: list[str], log: Path) -> dict[str, Any]:
        """Start `cmd` in a session of its own; record it in the node's state as `name`."""
        proc = procs.spawn(cmd, dict(os.environ), log, self.state_dir)
        record = {"sid": proc.pid, "ticks": procs.start_time_of(proc.pid) or 0, "log": str(log)}
        self._save({**self._state(), name: record})
        return record

    def _until_ready(self, what: str, url: str, record: dict[str, Any]) -> None:
        deadline = time.monotonic() + 30
        while not prometheus.ready(url):
            if not procs.running(record["sid"], record["ticks"]) or time.monotonic() > deadline:
                raise NodeError(f"{what} did not become ready on {url}: read {record['log']}")
            time.sleep(0.5)

    def _wait(self, check: Callable[[], bool], what: str, timeout: float, log: Path) -> None:
        deadline = time.monotonic() + timeout
        agent = self._state().get("agent") or {}
        while not check():
            if agent and not procs.running(agent["sid"], agent["ticks"]):
                if "is locked" in log.read_text(errors="replace"):
                    raise NodeError(
                        "another chaosraysvc Kubernetes node runs on this machine (one per "
                        "machine: the Service CIDR route and ClusterIPs are the host's): bring "
                        "it down first (`chaosraysvc-lab node down --state-dir <its dir>`)"
                    )
                raise NodeError(f"the kubelet exited while waiting for {what}: read {log}")
            if time.monotonic() > deadline:
                raise NodeError(f"timed out after {timeout:g}s waiting for {what}: read {log}")
            time.sleep(1)

    def down(self, timeout: float = 30, *, lock_held: bool = False) -> list[str]:
        """End the kubelet (pods, kube-proxy, CoreDNS, kube-router), the control plane, then the
        network.

        In that order: the API server's shutdown waits for its watchers (kube-proxy, CoreDNS)
        and removes its own endpoint through its address, the bridge's, so the bridge goes
        last. Returns what was left behind (processes; kube-router's chains and ipsets). The
        network this directory's state names (and the host's kube-router rules) are removed only
        by the holder of the machine's node lock (`lock_held`, or taken here once this node's
        agent is gone): when another node holds it, the index may be that node's
        now, and is left alone.
        """
        state = self._state()
        agent, scraper = state.get("agent"), state.get("prometheus")
        gateway = state.get("pushgateway")
        workers = list(state.get("workers") or [])
        for record in (*workers, agent, scraper, gateway):
            _end_session(record, timeout)
        # Containers the kubelet did not end (it was killed: a kubelet's death leaves its
        # containers running, as on Kubernetes), found by the sessions it recorded.
        pods_left = procs.end_recorded(self.state_dir / "node" / "sessions")
        for worker in workers:
            pods_left += procs.end_recorded(Path(worker["state_dir"]) / "sessions")
        result = self.plane.down()
        cleaned = False  # this node's network and host rules removed here
        if "node_index" in state:  # if the kubelet could not (or never started)
            lock = None if lock_held else try_lock()
            if lock_held or lock is not None:  # no other node runs: what is left is this one's
                kubeproxy.remove_tables()
                netpol.remove_leftovers()
                for worker in workers:  # their agents remove them; unless they were killed
                    nodeloss.restore_network(worker)  # a lost node's drop table
                    network.NodeNetwork(worker["node_index"]).destroy()
                network.NodeNetwork(state["node_index"]).destroy()
                cleaned = True
            else:
                logger.warning(
                    "another node holds the machine's lock: network %s (named by the stale "
                    "state in %s) is left to it",
                    state["node_index"],
                    self.state_dir,
                )
            if lock is not None:
                lock.close()
        leftovers = list(result.leftovers)
        if agent and procs.session_pids(agent["sid"]):
            leftovers.append("kubelet")
        leftovers += [f"kubelet of {w['name']}" for w in workers if procs.session_pids(w["sid"])]
        if scraper and procs.session_pids(scraper["sid"]):
            leftovers.append("prometheus")
        if gateway and procs.session_pids(gateway["sid"]):
            leftovers.append("pushgateway")
        leftovers += [f"container session {sid}" for sid in pods_left]
        if cleaned:
            leftovers += netpol.leftovers()  # kube-router's chains and ipsets
        if not leftovers:
            (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        return leftovers


def _end_session(record: dict[str, Any] | None, timeout: float) -> None:
    """SIGTERM the recorded session (still the same process), then SIGKILL what is left."""
    if not record or not procs.running(record["sid"], record["ticks"]):
        return
    procs.signal_session(record["sid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while procs.session_pids(record["sid"]) and time.monotonic() < deadline:
        procs.reap(record["sid"])
        time.sleep(0.2)
    procs.kill_session(record["sid"])
    procs.reap(record["sid"])


def _read_env(path: Path) -> dict[str, str]:
    """The settings of a kube.env (`export K=V` lines); {} when there is none."""
    found: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, sep, value = line.removeprefix("export ").partition("=")
            if sep:
                words = shlex.split(value)
                found[key.strip()] = words[0] if words else ""
    return found


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.0f}s"


def _ray_pods(api: Any) -> int:
    from kubernetes import client

    core: Any = client.CoreV1Api(api)
    pods = core.list_namespaced_pod(NAMESPACE, label_selector="ray.io/is-ray-node=yes").items
    return sum(1 for p in pods if p.status.phase == "Running")


def _nodes_ready(api: Any, count: int) -> bool:
    """Whether `count` nodes (at least) are Ready."""
    from kubernetes import client

    core: Any = client.CoreV1Api(api)
    nodes = core.list_node().items
    ready = [
        n for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    ]  # fmt: skip
    return len(ready) >= count


def _apply(api: Any, docs: list[dict[str, Any]]) -> None:
    from kubernetes import client, utils

    for doc in docs:
        if doc["kind"] == "RayService":
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                "ray.io", "v1", NAMESPACE, "rayservices", doc
            )
        else:
            utils.create_from_dict(api, doc, namespace=NAMESPACE)


_last: list[str] = [""]


def _rayservice_ready(api: Any, progress: Progress) -> bool:
    from kubernetes import client

    custom: Any = client.CustomObjectsApi(api)
    service = custom.get_namespaced_custom_object("ray.io", "v1", NAMESPACE, "rayservices", NAME)
    status = service.get("status") or {}
    core: Any = client.CoreV1Api(api)
    pods = core.list_namespaced_pod(NAMESPACE).items
    running = sum(1 for p in pods if p.status.phase == "Running")
    line = (
        f"  {running}/{len(pods)} pods running, RayService "
        f"{status.get('serviceStatus') or 'not ready'}, "
        f"{status.get('numServeEndpoints', 0)} serve endpoint(s)"
    )
    troubles = [t for pod in pods for t in _troubles(pod)]
    _last_troubles[0] = "; ".join(troubles)
    if troubles:
        line += "; " + _last_troubles[0]
    if line != _last[0]:
        progress(line)
        _last[0] = line
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return ready and int(status.get("numServeEndpoints") or 0) >= _expected_endpoints(service)


_pod_logs = [Path()]  # the node's pods directory (set by `up`)
_last_troubles = [""]  # what kept pods from running at the last look


def _troubles(pod: Any) -> list[str]:
    """What keeps a pod's containers from running, as a user should see it during `up`:
    container, reason (CrashLoopBackOff, ErrImagePull, ...) or last exit code, the last line
    of its log, and where that log is (the pod's, not the kubelet's)."""
    found = []
    statuses = [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]
    for status in statuses:
        waiting = status.state.waiting if status.state else None
        last = status.last_state.terminated if status.last_state else None
        if waiting and waiting.reason not in (None, "ContainerCreating", "PodInitializing"):
            reason = str(waiting.reason)
        elif last is not None and last.exit_code not in (0, None) and status.restart_count:
            reason = f"exit code {last.exit_code}"
        else:
            continue
        logs = _pod_logs[0] / str(pod.metadata.uid) / "logs" / status.name
        newest = max(logs.glob("*.log"), key=lambda p: p.stat().st_mtime, default=None)
        text = _last_line(newest) if newest else ""
        where = f" (log: {newest})" if newest else ""
        found.append(f"{pod.metadata.name}/{status.name} {reason}: {text!r}{where}")
    return found


def _last_line(path: Path) -> str:
    """The last non-empty line a container wrote (a CRI log line: time, stream, tag, text)."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    if not lines:
        return ""
    parts = lines[-1].split(" ", 3)
    return (parts[3] if len(parts) == 4 else lines[-1])[:160]


def _expected_endpoints(service: dict[str, Any]) -> int:
    """Every worker, and the head unless excluded: what the experiments' hypothesis expects."""
    spec = service.get("spec") or {}
    groups = (spec.get("rayClusterConfig") or {}).get("workerGroupSpecs") or []
    workers = sum(int(group.get("replicas") or 0) for group in groups)
    return workers + (0 if spec.get("excludeHeadPodFromServeSvc") else 1)


def _settings(api: Any, config: Path) -> dict[str, str]:
    from kubernetes import client

    core: Any = client.CoreV1Api(api)
    serve = core.read_namespaced_service(f"{NAME}-serve-svc", NAMESPACE).spec.cluster_ip
    dashboard = core.read_namespaced_service(f"{NAME}-dashboard", NAMESPACE).spec.cluster_ip
    return {
        "KUBECONFIG": str(config),
        "RAYSVC_TARGET": "kubernetes",
        "RAYSVC_NAME": NAME,
        "RAYSVC_NAMESPACE": NAMESPACE,
        "RAYSVC_SERVE_URL": f"http://{serve}:8000",
        "RAYSVC_DASHBOARD_URL": f"http://{dashboard}:8265",
    }
