"""Fixtures: one real control plane per session (etcd, kube-apiserver, controller-manager).

The binaries are built once per machine from the pinned Go modules (`make controlplane`;
the fixture builds them if missing). Each test gets a namespace of its own, seeded with the
KubeRay HA sample through `Loader`; a Node keeps its heartbeat so the node-lifecycle
controller leaves the seeded pods alone. The control plane is brought down at the end of the
session, even on failure, and the session fails if any of its processes is left.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from chaosraysvc.config import Settings
from chaosraysvc.targets.kubernetes import KubernetesTarget
from chaosraysvc_lab import kubeconfig
from chaosraysvc_lab.agent import try_lock
from chaosraysvc_lab.controlplane import ControlPlane
from chaosraysvc_lab.network import used_subnets
from chaosraysvc_lab.node import NodeHeartbeat
from chaosraysvc_lab.stack import KubeNode
from tests.support.polling import wait_for

from .. import seed
from .loader import Loaded, Loader
from .query_loop import QueryLoop, looping

NODE = seed.NODE  # the seed's pods are bound to it (the recorded node's name)
DEPLOY = Path(__file__).resolve().parents[4] / "deploy"
ACCOUNT = "chaosraysvc"


@dataclass
class RealPlane:
    """The session's control plane and an admin client to it."""

    plane: ControlPlane
    api: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)


@pytest.fixture(scope="session")
def real_plane() -> Iterator[RealPlane]:
    state_dir = Path(tempfile.mkdtemp(prefix="crs-cp-"))
    plane = ControlPlane(state_dir)
    heartbeat: NodeHeartbeat | None = None
    others: list[NodeHeartbeat] = []
    try:
        plane.up(progress=print)
        api = kubeconfig.api_client(plane.kubeconfig)
        # machines a cloud knows (spec.providerID): these samples' risks are their own
        heartbeat = NodeHeartbeat(
            api, NODE, "198.18.0.2", provider_id=seed.provider_id(NODE)
        ).start()
        others = [NodeHeartbeat(api, name, f"198.18.0.{3 + i}",
                                provider_id=seed.provider_id(name)).start()
                  for i, name in enumerate(seed.OTHER_NODES)]  # fmt: skip
        yield RealPlane(plane, api)
    finally:
        for other in others:
            other.stop()
        if heartbeat is not None:
            heartbeat.stop()
        result = plane.down()
        shutil.rmtree(state_dir, ignore_errors=True)
        assert not result.leftovers, f"control-plane processes left behind: {result.leftovers}"


_namespaces = itertools.count(1)


@dataclass
class RealCluster:
    """A namespace of the real API server seeded with objects, and targets on it."""

    plane: RealPlane
    namespace: str
    loader: Loader
    kubeconfig: Path

    @property
    def loaded(self) -> Loaded:
        return self.loader.loaded

    def target(self, request_timeout: float = 5.0, **settings: Any) -> KubernetesTarget:
        """Return a `KubernetesTarget` for the seeded RayService (override any setting)."""
        values: dict[str, Any] = {
            "target": "kubernetes",
            "rayservice_name": seed.RAYSERVICE,
            "rayservice_namespace": self.namespace,
        }
        values.update(settings)
        return KubernetesTarget(Settings(**values), request_timeout=request_timeout)

    @property
    def server(self) -> str:
        """Return the API server's URL."""
        state = self.plane.plane.state()
        assert state is not None
        return state.server

    def pod(self, name: str) -> client.V1Pod:
        return self.plane.core.read_namespaced_pod(name, self.namespace)

    def pod_names(self) -> set[str]:
        """Return the names of the pods in the namespace (terminating ones included)."""
        return {p.metadata.name for p in self.plane.core.list_namespaced_pod(self.namespace).items}

    def kubeconfig_with_token(self, path: Path, token: str, server: str = "") -> Path:
        """Write a kubeconfig for the server (or `server`) presenting bearer `token`."""
        return kubeconfig.write(
            path,
            server=server or self.server,
            ca=self.plane.plane.pki_dir / "ca.crt",
            token=token,
            namespace=self.namespace,
        )

    def serve_slice_addresses(self) -> dict[str, bool]:
        """Return {pod IP: ready} of the serve Service's EndpointSlices (the controller's)."""
        slices = client.DiscoveryV1Api(self.plane.api).list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={seed.SERVE_SVC}"
        )
        return {
            address: bool(endpoint.conditions and endpoint.conditions.ready)
            for item in slices.items
            for endpoint in item.endpoints or []
            for address in endpoint.addresses
        }


SeedCluster = Callable[..., RealCluster]


@pytest.fixture
def seed_cluster(
    real_plane: RealPlane, kube_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SeedCluster]:
    """Return a function seeding a fresh namespace (the HA sample by default)."""
    created: list[str] = []

    def start(
        objects: list[dict[str, Any]] | None = None, *, wait_slices: bool = True
    ) -> RealCluster:
        namespace = f"t{next(_namespaces)}-{seed.NAMESPACE}"
        core = real_plane.core
        core.create_namespace({"metadata": {"name": namespace}})
        created.append(namespace)
        # The ServiceAccount admission plugin refuses pods until the controller made `default`.
        wait_for(
            lambda: core.list_namespaced_service_account(
                namespace, field_selector="metadata.name=default"
            ).items,
            10,
            what=f"ServiceAccount default in namespace {namespace}",
        )
        loader = Loader(real_plane.api, namespace)
        loader.load(seed.ha_sample() if objects is None else objects)
        cluster = RealCluster(real_plane, namespace, loader, real_plane.plane.kubeconfig)
        if wait_slices:
            serving = {seed.IPS[w] for w in seed.WORKERS}
            wait_for(
                lambda: serving <= set(cluster.serve_slice_addresses()),
                15,
                what="the endpointslice controller to list the serving workers",
                state=cluster.serve_slice_addresses,
            )
        monkeypatch.setenv("KUBECONFIG", str(real_plane.plane.kubeconfig))
        return cluster

    yield start
    for namespace in created:
        real_plane.core.delete_namespace(namespace, grace_period_seconds=0)


def _namespaces_refused() -> str:
    """Try what the node needs (a network namespace, a mount inside it, a local route);
    return why it is refused, or "" when it works."""
    name = f"crs-probe-{os.getpid()}"
    steps = [
        ["ip", "netns", "add", name],
        ["ip", "netns", "exec", name, "sh", "-c", "mount -t tmpfs none /mnt && umount /mnt"],
        ["ip", "-n", name, "route", "add", "local", "198.19.255.0/24", "dev", "lo", "table",
         "local"],
    ]  # fmt: skip
    try:
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                return f"`{' '.join(step)}` failed: {done.stderr.strip() or done.returncode}"
        return ""
    except OSError as exc:
        return f"{exc}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


NAMESPACES_REFUSED = _namespaces_refused()
# The node (and the proxy's local routes) need root with network and mount namespaces; where
# the machine refuses them the tests say exactly what failed instead of running.
requires_namespaces = pytest.mark.skipif(
    bool(NAMESPACES_REFUSED), reason=f"network/mount namespaces refused: {NAMESPACES_REFUSED}"
)


def deploy_manifest(name: str) -> dict[str, Any]:
    """Return deploy/<name>, the one object it holds."""
    [doc] = [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]
    return dict(doc)


def _install_rbac(cluster: RealCluster, tmp_path: Path) -> Path:
    """Apply deploy/'s ServiceAccount, Role and RoleBinding; return the account's kubeconfig."""
    ns = cluster.namespace
    core = cluster.plane.core
    rbac = client.RbacAuthorizationV1Api(cluster.plane.api)
    core.create_namespaced_service_account(ns, deploy_manifest("serviceaccount.yaml"))
    rbac.create_namespaced_role(ns, deploy_manifest("role.yaml"))
    binding = deploy_manifest("rolebinding.yaml")
    for subject in binding["subjects"]:
        subject["namespace"] = ns  # what kustomize's `namespace:` does
    rbac.create_namespaced_role_binding(ns, binding)
    answer = core.create_namespaced_service_account_token(
        ACCOUNT, ns, {"spec": {"expirationSeconds": 3600}}
    )
    state = cluster.plane.plane.state()
    assert state is not None
    return kubeconfig.write(
        tmp_path / "sa.kubeconfig",
        server=state.server,
        ca=cluster.plane.plane.pki_dir / "ca.crt",
        token=answer.status.token,
        namespace=ns,
    )


@pytest.fixture
def as_account(
    seed_cluster: SeedCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> RealCluster:
    """The HA sample, with KUBECONFIG set to deploy/'s ServiceAccount's token."""
    cluster = seed_cluster()
    monkeypatch.setenv("KUBECONFIG", str(_install_rbac(cluster, tmp_path)))
    return cluster


@pytest.fixture
def as_account_with_dashboard(
    seed_cluster: SeedCluster,
    dashboard_heads: DashboardHeads,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> RealCluster:
    """`as_account`, the head pod on a dashboard double's address (the API server can proxy
    to it: with no dashboard_url the target reads the dashboard through the proxy)."""
    head = dashboard_heads("head-a")
    cluster = seed_cluster(with_head_at(seed.ha_sample(), head.address))
    wait_for(
        lambda: head.address in head_endpoint_addresses(cluster, seed.HEAD_SVC),
        15,
        what="the endpoints controller to list the head",
    )
    monkeypatch.setenv("KUBECONFIG", str(_install_rbac(cluster, tmp_path)))
    return cluster


# -- Ray dashboard doubles the API server can proxy to ---------------------------------------

DASHBOARD_HEAD = Path(__file__).resolve().parents[3] / "support" / "dashboard_head.py"


@dataclass
class DashboardHead:
    """A dashboard double on `address`, in a network namespace with a veth to the host."""

    node_id: str
    address: str
    process: subprocess.Popen[str]
    netns: str
    host_if: str

    def stop(self) -> None:
        """Stop the server and remove its veth and namespace (the script does, on SIGTERM)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for step in (["ip", "link", "delete", self.host_if], ["ip", "netns", "delete", self.netns]):
            subprocess.run(step, capture_output=True, check=False)


DashboardHeads = Callable[[str], DashboardHead]


@pytest.fixture
def dashboard_heads() -> Iterator[DashboardHeads]:
    """Return a function starting a dashboard double on a new address (a new "head").

    Each double gets a /30 of a 198.18.N.0/24 no route uses yet (N from 249 down, away from
    the lab's nodes, which take N from 10 up): the host end of its veth holds .4k+1, the
    double .4k+2. Everything is removed after the test.
    """
    if NAMESPACES_REFUSED:
        pytest.skip(f"network namespaces refused: {NAMESPACES_REFUSED}")
    used = used_subnets()
    third = next(n for n in range(249, 100, -1) if n not in used)
    started: list[DashboardHead] = []
    tag = os.getpid() % 100000

    def start(node_id: str) -> DashboardHead:
        k = len(started)
        netns, host_if = f"crs-dash-{tag}-{k}", f"crsdh{tag}x{k}"
        host, own = f"198.18.{third}.{4 * k + 1}/30", f"198.18.{third}.{4 * k + 2}/30"
        cmd = [sys.executable, str(DASHBOARD_HEAD), "--netns", netns, "--host-if", host_if,
               "--host-address", host, "--address", own, "--node-id", node_id]  # fmt: skip
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        head = DashboardHead(node_id, own.split("/")[0], process, netns, host_if)
        started.append(head)
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line == f"ready {head.address}", f"dashboard double {node_id}: {line!r}"
        return head

    try:
        yield start
    finally:
        for head in started:
            head.stop()


def with_head_at(objects: list[dict[str, Any]], address: str) -> list[dict[str, Any]]:
    """Return the seed's `objects` with the RayService's head pod at `address`."""
    for obj in objects:
        if obj["kind"] == "Pod" and obj["metadata"]["name"] == seed.HEAD:
            obj["status"]["podIP"] = address
            obj["status"]["podIPs"] = [{"ip": address}]
    return objects


def head_endpoint_addresses(cluster: RealCluster, service: str) -> set[str]:
    """Return the ready addresses of `service`'s core Endpoints (what the API server proxies to)."""
    try:
        endpoints = cluster.plane.core.read_namespaced_endpoints(service, cluster.namespace)
    except client.ApiException:
        return set()
    return {a.ip for s in endpoints.subsets or [] for a in s.addresses or []}


NODE_LOCK_WAIT_S = 900.0  # one lab node per machine: a module waits this long for the lock


def wait_for_node_lock(wait_s: float = NODE_LOCK_WAIT_S) -> None:
    """Wait until no other lab node holds the machine's node lock, or skip the module."""
    deadline = time.monotonic() + wait_s
    while (lock := try_lock()) is None:
        if time.monotonic() > deadline:
            pytest.skip(f"another lab node held the node lock for {wait_s:g} s")
        time.sleep(5)
    lock.close()


@contextlib.contextmanager
def own_node(prefix: str, **up: Any) -> Iterator[tuple[KubeNode, dict[str, str]]]:
    """Bring up a lab node of the module's own in a new state directory (`up` goes to
    `KubeNode.up`; no Prometheus unless `scrape_interval` is given: only the metric tests
    read it), yield it and its settings, and take it down: nothing may be left."""
    state_dir = Path(tempfile.mkdtemp(prefix=prefix))
    kube = KubeNode(state_dir)
    try:
        wait_for_node_lock()
        settings = kube.up(**{"progress": print, "timeout": 600, "scrape_interval": 0, **up})
        yield kube, settings
    finally:
        leftovers = kube.down()
        shutil.rmtree(state_dir, ignore_errors=True)
        assert not leftovers, leftovers


def core_api(settings: dict[str, str]) -> client.CoreV1Api:
    """The core API of the lab node whose settings (kube.env) are given."""
    return client.CoreV1Api(kubeconfig.api_client(Path(settings["KUBECONFIG"])))


def running_head(core: client.CoreV1Api) -> Any:
    """The RayService's one running head pod that is not being deleted."""
    pods = core.list_namespaced_pod("default", label_selector="ray.io/node-type=head").items
    [head] = [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    return head


def chaos_run(
    experiment: str | Path,
    settings: dict[str, str],
    run_dir: Path,
    chaos_settings: Path | None = None,
    **env: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run `chaos run experiments/<experiment>.json` (or the experiment file at a Path)
    against the node whose `settings` are given (its kube.env), with `env` added and, when
    given, Chaos Toolkit's `--settings chaos_settings`; return the journal and chaosraysvc's
    verdict in it. The run's journal and traffic log are left in `run_dir`."""
    chaos = Path(sys.executable).parent / "chaos"
    repo = Path(__file__).resolve().parents[4]
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | settings | env
    journal_path = run_dir / "journal.json"
    options = ["--settings", str(chaos_settings)] if chaos_settings else []
    done = subprocess.run(
        [str(chaos), *options, "run", "--journal-path", str(journal_path),
         str(experiment if isinstance(experiment, Path)
             else repo / "experiments" / f"{experiment}.json")],
        cwd=run_dir, env=environ, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert journal_path.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    journal: dict[str, Any] = json.loads(journal_path.read_text())
    verdict = next(e for e in journal["extensions"] if e.get("name") == "chaosraysvc")["verdict"]
    print(f"status {journal['status']}, verdict {verdict['outcome']}: {verdict['headline']}")
    for phase in ("before", "after"):  # a hypothesis that did not hold: which probe, what it saw
        for probe in ((journal.get("steady_states") or {}).get(phase) or {}).get("probes", []):
            if not probe.get("tolerance_met", True):
                print(f"steady state {phase}: {probe['activity']['name']} not met:",
                      str(probe.get("output") or probe.get("exception"))[:600])  # fmt: skip
    return journal, verdict


@pytest.fixture
def query_loop(node: tuple[Any, dict[str, str]], tmp_path: Path) -> Iterator[QueryLoop]:
    """The sample's query.py in the ray-pod of the requesting module's `node` (its settings):
    the traffic that is not ours, for the tests judged by Serve's metrics."""
    yield from looping(node[1], tmp_path / "query.out")
