"""A dead node is not a slow recovery (issue 25 item 5, first half).

The kubernetes target against a loopback server standing in for the API server (the
client is real; only the answers are the test's): a NotReady node is named with since when,
a wait that cannot end stops early, the rollback's wait does not wait again, and without
node read (403) the old message comes with a hint to grant it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client

from chaosraysvc import recovery
from chaosraysvc.config import Settings
from chaosraysvc.errors import KubernetesApiError, RecoveryTimeoutError
from chaosraysvc.kube.client import KubeApi
from chaosraysvc.targets.kubernetes import KubernetesTarget
from tests.support.loopback import LoopbackServer, QuietHandler

SETTINGS = Settings(
    target="kubernetes",
    rayservice_name="rayservice-ha",
    rayservice_namespace="ml",
    dashboard_url="http://127.0.0.1:9",  # nothing listens: the dashboard is down
)
RAYSERVICE = "/apis/ray.io/v1/namespaces/ml/rayservices/rayservice-ha"
PODS = "/api/v1/namespaces/ml/pods"
NODES = "/api/v1/nodes"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/ml/endpointslices"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, node: str, phase: str, ready: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "ray-worker"}]}
    if node:
        spec["nodeName"] = node
    return {
        "metadata": {
            "name": name,
            "uid": name,
            "creationTimestamp": _iso(time.time() - 60),
            "labels": {"ray.io/cluster": "rc", "ray.io/node-type": "worker"},
        },
        "spec": spec,
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def node(name: str, ready: str, seconds_ago: float) -> dict[str, Any]:
    condition = {
        "type": "Ready",
        "status": ready,
        "reason": "KubeletReady" if ready == "True" else "NodeStatusUnknown",
        "lastTransitionTime": _iso(time.time() - seconds_ago),
    }
    return {"metadata": {"name": name}, "spec": {}, "status": {"conditions": [condition]}}


class Cluster:
    """What the stand-in API server answers: (status, document) by path."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {
            RAYSERVICE: (200, {
                "metadata": {"name": "rayservice-ha", "namespace": "ml"},
                "spec": {},
                "status": {"activeServiceStatus": {"rayClusterName": "rc"}},
            }),
            SLICES: (200, {"items": []}),
        }  # fmt: skip
        self.seen: list[str] = []

    def pods(self, *pods: dict[str, Any]) -> None:
        self.answers[PODS] = (200, {"items": list(pods)})

    def nodes(self, *nodes: dict[str, Any]) -> None:
        self.answers[NODES] = (200, {"items": list(nodes)})

    def forbid_nodes(self) -> None:
        self.answers[NODES] = (403, {
            "kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": 'nodes is forbidden: User "system:serviceaccount:ml:chaosraysvc" cannot '
                       'list resource "nodes" in API group "" at the cluster scope',
        })  # fmt: skip


@pytest.fixture
def cluster() -> Iterator[tuple[Cluster, KubernetesTarget]]:
    state = Cluster()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # http.server's name
            path = urlsplit(self.path).path.rstrip("/")
            state.seen.append(path)
            self.answer(*state.answers.get(path, (404, {})))

    with LoopbackServer(Handler) as server:
        api = KubeApi(client.ApiClient(client.Configuration(host=server.url)), 2.0)
        target = KubernetesTarget(SETTINGS, api=api)
        yield state, target
        target.close()


DELETED = pod("rc-worker-old", "node-1", "Running", True)


def _deleted(target: KubernetesTarget, cluster: Cluster) -> Any:
    cluster.pods(DELETED)
    [old] = target.pods()
    return old


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read the nodes from the first poll (the default waits 30 s of slow recovery first)."""
    monkeypatch.setattr(recovery, "NODE_CHECK_AFTER_S", 0.0)


def test_the_target_reads_each_nodes_ready_condition_and_each_pods_node(
    cluster: tuple[Cluster, KubernetesTarget],
) -> None:
    state, target = cluster
    state.nodes(node("node-1", "Unknown", 90), node("node-2", "True", 3600))
    state.pods(pod("rc-worker-new", "node-1", "Pending", False))
    one, two = target.nodes()
    assert (one.name, one.ready, one.reason) == ("node-1", "Unknown", "NodeStatusUnknown")
    assert 85 <= time.time() - one.since <= 95 and two.ready == "True"
    assert [p.node for p in target.pods()] == ["node-1"]


def test_without_node_read_the_target_says_which_clusterrole_grants_it(
    cluster: tuple[Cluster, KubernetesTarget],
) -> None:
    state, target = cluster
    state.forbid_nodes()
    with pytest.raises(KubernetesApiError, match="node-reader-clusterrole.yaml") as caught:
        target.nodes()
    assert caught.value.status == 403


@pytest.mark.usefixtures("quick")
def test_every_node_notready_past_the_bound_stops_the_wait_early_naming_node_and_since(
    cluster: tuple[Cluster, KubernetesTarget],
) -> None:
    state, target = cluster
    old = _deleted(target, state)
    state.nodes(node("node-1", "Unknown", 120))
    state.pods(pod("rc-worker-new", "node-1", "Pending", False))
    baseline = recovery.Baseline(endpoints=3, applications={"fruit_app"}, pods={old.name})
    started = time.monotonic()
    with pytest.raises(RecoveryTimeoutError) as caught:
        recovery.wait_for_milestones(target, old, time.time(), baseline, recovery_timeout=180)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert "(on node node-1)" in message and "cannot recover" in message
    assert "node node-1 is NotReady (Ready=Unknown, NodeStatusUnknown) since " in message
    assert "pod rc-worker-new (Pending) is on NotReady node node-1" in message
    assert "stopped waiting after" in message and "of 180 s" in message


@pytest.mark.usefixtures("quick")
def test_the_rollbacks_wait_stops_at_once_for_the_same_dead_node(
    cluster: tuple[Cluster, KubernetesTarget],
) -> None:
    state, target = cluster
    state.nodes(node("node-1", "False", 300))
    state.pods(pod("rc-worker-new", "node-1", "Pending", False))
    started = time.monotonic()
    with pytest.raises(RecoveryTimeoutError, match="cannot become healthy: every schedulable"):
        recovery.wait_until_healthy(target, recovery_timeout=180)
    assert time.monotonic() - started < 10


@pytest.mark.usefixtures("quick")
def test_a_node_notready_for_less_than_the_bound_is_named_at_the_timeout(
    cluster: tuple[Cluster, KubernetesTarget],
) -> None:
    state, target = cluster
    old = _deleted(target, state)
    state.nodes(node("node-1", "Unknown", 5), node("node-2", "True", 3600))
    state.pods(pod("rc-worker-new", "", "Pending", False))
    baseline = recovery.Baseline(endpoints=3, applications=set(), pods={old.name})
    with pytest.raises(RecoveryTimeoutError) as caught:
        recovery.wait_for_milestones(target, old, time.time(), baseline, recovery_timeout=1)
    message = str(caught.value)
    assert "did not recover within 1 s" in message
    assert "node node-1 is NotReady (Ready=Unknown, NodeStatusUnknown) since " in message
    assert "pod rc-worker-new is Pending, not scheduled on any node" in message


@pytest.mark.usefixtures("quick")
def test_without_node_read_the_old_message_comes_with_a_hint_and_the_full_wait(
    cluster: tuple[Cluster, KubernetesTarget],
) -> None:
    state, target = cluster
    old = _deleted(target, state)
    state.forbid_nodes()
    state.pods(pod("rc-worker-new", "node-1", "Pending", False))
    baseline = recovery.Baseline(endpoints=3, applications=set(), pods={old.name})
    with pytest.raises(RecoveryTimeoutError) as caught:
        recovery.wait_for_milestones(target, old, time.time(), baseline, recovery_timeout=1.5)
    message = str(caught.value)
    assert "did not recover within 2 s" in message
    assert "check the pods and the Serve status, or raise `timeout`" in message
    assert "403: node read not granted" in message
    assert "kubectl apply -f deploy/node-reader-clusterrole.yaml" in message
    assert state.seen.count(NODES) == 1  # a 403 is not asked again


def test_a_recovery_within_the_first_30_s_reads_the_nodes_only_if_it_times_out(
    cluster: tuple[Cluster, KubernetesTarget],
) -> None:
    state, target = cluster
    old = _deleted(target, state)
    state.nodes(node("node-1", "True", 3600))
    state.pods(pod("rc-worker-new", "node-1", "Running", True))
    baseline = recovery.Baseline(endpoints=0, applications=set(), pods={old.name})
    with pytest.raises(RecoveryTimeoutError):  # the dashboard is down: apps never RUNNING
        recovery.wait_for_milestones(target, old, time.time(), baseline, recovery_timeout=1)
    assert state.seen.count(NODES) == 1  # once, for the message; never while polling
