"""drain_node and uncordon_node: which pods a drain evicts, PodDisruptionBudgets, the cordon
and its rollback, the arguments and the refusals (a fake API and a fake target; the real API
server's Eviction API in tests/integration/kube/real/test_real_drain.py, a real drain of the
lab's nodes in test_real_node_drain.py)."""

from __future__ import annotations

from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaosraysvc.activities import node_actions
from chaosraysvc.config import Settings
from chaosraysvc.errors import FaultNotEffectiveError, KubernetesApiError, RefusedError
from chaosraysvc.kube import drain
from chaosraysvc.model import Node, Pod
from chaosraysvc.report.faults import find_faults
from chaosraysvc.report.verdict import _fault_sentence
from chaosraysvc.targets.kubernetes import KubernetesTarget
from chaosraysvc.targets.sandbox import DRAIN_REFUSED

OWNER = "ns/rs"


def _pod(name: str, owner: str = "ReplicaSet", **meta: Any) -> client.V1Pod:
    ref = client.V1OwnerReference(api_version="v1", kind=owner, name="o", uid="u", controller=True)
    refs = [ref] if owner else None
    phase = meta.pop("phase", "Running")
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=name, namespace="ns", uid=f"uid-{name}", owner_references=refs, **meta
        ),
        status=client.V1PodStatus(phase=phase),
    )


class FakeApi:
    """The KubeApi calls of a drain: pods on one node, a budget that refuses `blocked` times."""

    def __init__(self, pods: list[client.V1Pod], blocked: int = 0, ends: bool = True) -> None:
        self.pods = {p.metadata.name: p for p in pods}
        self.blocked = blocked
        self.ends = ends  # False: an evicted pod is never deleted (no kubelet)
        self.evictions: list[str] = []
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.nodes = [
            client.V1Node(metadata=client.V1ObjectMeta(name="n1"), spec=client.V1NodeSpec()),
            client.V1Node(
                metadata=client.V1ObjectMeta(name="n2", annotations={drain.CORDONED_BY: OWNER}),
                spec=client.V1NodeSpec(unschedulable=True),
            ),
            client.V1Node(
                metadata=client.V1ObjectMeta(name="n3", annotations={drain.CORDONED_BY: "x/y"}),
                spec=client.V1NodeSpec(unschedulable=True),
            ),
        ]

    def list_pods_on_node(self, node: str) -> list[client.V1Pod]:
        return list(self.pods.values())

    def evict_pod(
        self, namespace: str, name: str, grace: int | None = None, dry_run: bool = False
    ) -> str:
        if name == "forbidden":
            raise KubernetesApiError("forbidden (403): pods/eviction", status=403)
        if name == "vanished":
            self.pods.pop(name, None)
            return "gone"
        if name == "guarded" and self.blocked:
            self.blocked -= 1
            return "Cannot evict pod as it would violate the pod's disruption budget."
        self.evictions.append(name)
        if self.ends:
            self.pods.pop(name, None)
        return ""

    def get_node(self, name: str) -> client.V1Node:
        return next(n for n in self.nodes if n.metadata.name == name)

    def patch_node(self, name: str, patch: dict[str, Any], dry_run: bool = False) -> None:
        self.patches.append((name, patch))
        node = self.get_node(name)
        node.spec.unschedulable = patch["spec"]["unschedulable"]
        notes = {**(node.metadata.annotations or {}), **patch["metadata"]["annotations"]}
        node.metadata.annotations = {k: v for k, v in notes.items() if v is not None}

    def list_nodes(self) -> list[client.V1Node]:
        return self.nodes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_drain_skips_daemonset_static_finished_and_terminating_pods() -> None:
    api = FakeApi([
        _pod("ray-head"),
        _pod("agent", owner="DaemonSet"),
        _pod("static", annotations={drain.MIRROR: "x"}),
        _pod("done", phase="Succeeded"),
        _pod("leaving", deletion_timestamp="2026-12-06T07:00:00Z"),
        _pod("bare", owner=""),
    ])  # fmt: skip

    planned = {p.name: p for p in drain.plan(api, "n1")}  # type: ignore[arg-type]

    assert not planned["ray-head"].skipped and not planned["ray-head"].unmanaged
    assert "DaemonSet" in planned["agent"].skipped
    assert "static" in planned["static"].skipped
    assert "Succeeded" in planned["done"].skipped
    assert "deleted" in planned["leaving"].skipped
    assert planned["bare"].unmanaged and not planned["bare"].skipped
    with pytest.raises(RefusedError, match=r"ns/bare has no controller .* force=true"):
        drain.refuse_unmanaged("n1", list(planned.values()))
    drain.refuse_unmanaged("n1", [planned["ray-head"], planned["agent"]])  # nothing bare


def test_a_budget_that_refuses_is_asked_again_until_it_allows() -> None:
    api = FakeApi([_pod("ray-head"), _pod("guarded"), _pod("agent", owner="DaemonSet")], 2)
    clock = Clock()

    done = drain.evict(api, "n1", drain.plan(api, "n1"), 1060, None, clock, clock.sleep)  # type: ignore[arg-type]

    assert api.evictions == ["ray-head", "guarded"]  # the budget's pod on the third ask
    assert done.evicted["ns/guarded"] == 1000 + 2 * drain.RETRY_S
    assert set(done.gone) == {"ns/ray-head", "ns/guarded"} and not done.blocked
    # when the budget first held it stays on record: held for 2 retries
    assert done.held == {"ns/guarded": 1000} and done.to_json()["held"] == done.held
    assert done.skipped == {"ns/agent": "a DaemonSet's pod (its controller ignores the cordon)"}


def test_a_budget_that_never_allows_fails_the_drain_by_its_deadline_naming_it() -> None:
    api = FakeApi([_pod("ray-head"), _pod("guarded")], blocked=10**6)
    clock = Clock()

    with pytest.raises(RefusedError, match=r"ns/guarded: Cannot evict .* disruption budget"):
        drain.evict(api, "n1", drain.plan(api, "n1"), 1030, None, clock, clock.sleep)  # type: ignore[arg-type]

    assert api.evictions == ["ray-head"]
    assert 1025 <= clock.now <= 1030


def test_evicted_pods_that_never_end_fail_the_drain_as_not_effective() -> None:
    api = FakeApi([_pod("ray-head")], ends=False)
    clock = Clock()

    with pytest.raises(FaultNotEffectiveError, match="ns/ray-head still there"):
        drain.evict(api, "n1", drain.plan(api, "n1"), 1020, None, clock, clock.sleep)  # type: ignore[arg-type]
    assert clock.now > 1020


def test_cordon_notes_its_owner_and_uncordon_undoes_only_its_own() -> None:
    api = FakeApi([])

    assert drain.cordon(api, "n1", OWNER) is True  # type: ignore[arg-type]
    assert drain.cordon(api, "n3", OWNER) is False  # type: ignore[arg-type]  # cordoned before
    undone = drain.uncordon(api, OWNER)  # type: ignore[arg-type]

    assert api.patches[0] == (
        "n1",
        {"spec": {"unschedulable": True}, "metadata": {"annotations": {drain.CORDONED_BY: OWNER}}},
    )
    assert undone == ["n1", "n2"]  # annotated with this RayService; not n3 (someone else's)
    assert api.patches[-1] == (
        "n2",
        {"spec": {"unschedulable": None}, "metadata": {"annotations": {drain.CORDONED_BY: None}}},
    )
    assert [n.metadata.name for n in api.nodes if n.spec.unschedulable] == ["n3"]


def test_a_drain_that_evicted_nothing_leaves_the_node_as_it_was() -> None:
    api = FakeApi([_pod("forbidden")])
    target = KubernetesTarget(Settings(target="kubernetes", rayservice_namespace="ns",
                                       rayservice_name="rs"), api=api)  # type: ignore[arg-type]  # fmt: skip

    with pytest.raises(KubernetesApiError, match="403"):
        target.drain_node("n1", 10)

    assert [patch["spec"]["unschedulable"] for n, patch in api.patches if n == "n1"] == [True, None]
    assert not api.get_node("n1").spec.unschedulable
    assert drain.CORDONED_BY not in (api.get_node("n1").metadata.annotations or {})


def test_a_drain_that_evicted_a_pod_before_failing_says_so_and_stays_cordoned() -> None:
    api = FakeApi([_pod("ray-head"), _pod("guarded")], blocked=10**6)
    clock = Clock()

    with pytest.raises(RefusedError) as failed:
        drain.evict(api, "n1", drain.plan(api, "n1"), 1020, None, clock, clock.sleep)  # type: ignore[arg-type]

    assert list(drain.partial(failed.value)["evicted"]) == ["ns/ray-head"]
    assert drain.partial(ValueError()) == {}


def test_a_pod_gone_before_its_eviction_is_not_counted_as_evicted() -> None:
    api = FakeApi([_pod("vanished")])
    clock = Clock()

    done = drain.evict(api, "n1", drain.plan(api, "n1"), 1020, None, clock, clock.sleep)  # type: ignore[arg-type]

    assert done.evicted == {} and done.vanished == ["ns/vanished"]


# -- the activity ---------------------------------------------------------------------------

HEAD = Pod("rs-head-x1", "head", "Running", True, "u1", 1.0, node="n1")


class FakeTarget:
    kind = "kubernetes"
    namespace = "ns"

    def __init__(self, nodes: list[Node], pods: list[Pod], drained: Any = None) -> None:
        self._nodes, self._pods = nodes, pods
        self.result = drained  # what a real drain returns (a dict) or raises
        self.drained: list[tuple[Any, ...]] = []

    def nodes(self) -> list[Node]:
        return self._nodes

    def pods(self) -> list[Pod]:
        return self._pods

    def drain_node(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.drained.append((*args, kwargs))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result or {"node": args[0], "dry_run": kwargs.get("dry_run", False)}


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"role": "proxy"}, "role must be one of head, worker, redis"),
        ({"grace_period": -2}, "grace_period must be -1"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"recovery_timeout": "soon"}, "recovery_timeout"),
    ],
)
def test_bad_arguments_fail_before_any_target_is_asked(
    arguments: dict[str, Any], said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node_actions, "target_for", lambda *_: pytest.fail("no target"))
    with pytest.raises(ActivityFailed, match=said):
        node_actions.drain_node(**arguments)


def test_the_last_schedulable_node_is_refused_unless_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nodes = [Node("n1", "True", 0.0), Node("n2", "True", 0.0, schedulable=False),
             Node("n3", "False", 0.0)]  # fmt: skip
    target = FakeTarget(nodes, [HEAD])
    monkeypatch.setattr(node_actions, "target_for", lambda *_: target)

    with pytest.raises(ActivityFailed, match="no other node is Ready and schedulable"):
        node_actions.drain_node(dry_run=True)
    assert target.drained == []
    planned = node_actions.drain_node(dry_run=True, allow_last_node=True)
    assert planned["node"] == "n1" and planned["dry_run"] is True and planned["pod"] == HEAD.name
    assert target.drained == [("n1", 120.0, None, False, {"dry_run": True})]


def test_the_control_planes_tainted_node_is_no_place_for_the_evicted_pods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nodes = [Node("n1", "True", 0.0), Node("cp", "True", 0.0, tainted=True)]
    monkeypatch.setattr(node_actions, "target_for", lambda *_: FakeTarget(nodes, [HEAD]))
    with pytest.raises(ActivityFailed, match="no other node is Ready and schedulable"):
        node_actions.drain_node(dry_run=True)


def _run_drain(monkeypatch: pytest.MonkeyPatch, drained: Any) -> list[tuple[str, dict[str, Any]]]:
    """Run drain_node on a target whose drain gives `drained`; return the marks written."""
    marks: list[tuple[str, dict[str, Any]]] = []
    nodes = [Node("n1", "True", 0.0), Node("n2", "True", 0.0)]
    target = FakeTarget(nodes, [HEAD], drained)
    monkeypatch.setattr(node_actions, "target_for", lambda *_: target)
    monkeypatch.setattr(node_actions, "mark", lambda event, **d: marks.append((event, d)))
    monkeypatch.setattr(node_actions.recovery.Baseline, "capture", lambda *_: None)
    monkeypatch.setattr(node_actions, "setup_facts", lambda *_: {})
    with pytest.raises(ActivityFailed) as failed:
        node_actions.drain_node(wait_for_recovery=False)
    marks.append(("raised", {"message": str(failed.value)}))
    return marks


def test_a_drain_that_never_evicted_its_pod_is_no_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"ns/{HEAD.name}"
    skipped = {"node": "n1", "evicted": {}, "gone": {}, "vanished": [],
               "skipped": {key: "already being deleted"}}  # fmt: skip
    marks = _run_drain(monkeypatch, skipped)
    assert [m for m, _ in marks] == ["fault", "fault_not_injected", "raised"]
    assert "was not evicted by it (skipped: already being deleted" in marks[-1][1]["message"]

    refused = RefusedError("a budget forbids it")
    refused.drained = {"evicted": {}}  # type: ignore[attr-defined]
    assert [m for m, _ in _run_drain(monkeypatch, refused)] == [
        "fault", "fault_not_injected", "raised"
    ]  # fmt: skip


def test_a_drain_that_failed_after_evicting_its_pod_is_a_fault(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = RefusedError("a budget still forbids evicting ns/other")
    refused.drained = {"evicted": {f"ns/{HEAD.name}": 1.0}}  # type: ignore[attr-defined]
    marks = _run_drain(monkeypatch, refused)
    assert [m for m, _ in marks] == ["fault", "raised"]  # the fault stands: its pod went


def test_a_head_bound_to_no_node_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    unbound = Pod("rs-head-x1", "head", "Running", True, "u1", 1.0)
    monkeypatch.setattr(node_actions, "target_for", lambda *_: FakeTarget([], [unbound]))
    with pytest.raises(ActivityFailed, match="bound to no node"):
        node_actions.drain_node()


def test_the_sandbox_refuses_a_drain_and_its_rollback_is_a_no_op() -> None:
    from chaosraysvc.targets.sandbox import SandboxTarget

    target = SandboxTarget.__new__(SandboxTarget)
    with pytest.raises(RefusedError) as refused:
        target.drain_node("n1", 10)
    assert str(refused.value) == DRAIN_REFUSED
    assert target.uncordon_nodes() == []


def _drain_journal(drain: dict[str, Any]) -> dict[str, Any]:
    """A journal whose one action is a drain of the head's node `n1` (its `drain` output
    given), recovered 15 s after it."""
    output = {
        "target": "kubernetes",
        "drained": {"name": HEAD.name, "role": "head", "uid": "u1", "node": "n1"},
        "drain": drain,
        "drained_at": 1000.0,
        "grace_period": None,
        "recovery": {"recovered": True, "new_pod": "rs-head-y2",
                     "at": {"pod_ready": 1010.0, "endpoints_restored": 1012.0,
                            "applications_running": 1015.0}},
    }  # fmt: skip
    result = {"activity": {"name": "drain-head-node", "type": "action",
                           "provider": {"type": "python", "func": "drain_node"}},
              "status": "succeeded", "output": output}  # fmt: skip
    return {"run": [result], "rollbacks": []}


def test_the_report_names_a_drain_as_its_fault() -> None:
    [fault] = find_faults(_drain_journal({"node": "n1"}), [], origin=990.0, logged=False)

    assert (fault.pod, fault.role, fault.at, fault.injected) == (HEAD.name, "head", 1000.0, True)
    assert fault.recovery_s == 15.0 and fault.new_pod == "rs-head-y2"


def test_the_report_says_how_long_a_budget_held_each_eviction() -> None:
    """`drain_node`'s `held` (a pod's first 429) and `evicted` (its eviction accepted) give
    the seconds a PodDisruptionBudget paced the drain, in the fault and its sentence; a pod
    evicted at once (no `held`) has none."""
    worker = "default/rs-worker-z1"
    held = {"node": "n1", "evicted": {f"default/{HEAD.name}": 1000.5, worker: 1063.2},
            "held": {worker: 1000.6}, "blocked": {}}  # fmt: skip

    [fault] = find_faults(_drain_journal(held), [], origin=990.0, logged=False)

    assert fault.budget_held_s == {worker: 62.6}
    assert fault.to_json()["budget_held_s"] == {worker: 62.6}
    assert "A PodDisruptionBudget held the eviction of default/rs-worker-z1 for 62.6 s." in (
        _fault_sentence(fault)
    )
    plain = {"node": "n1", "evicted": {f"default/{HEAD.name}": 1000.5}}
    [unheld] = find_faults(_drain_journal(plain), [], origin=990.0, logged=False)
    assert unheld.budget_held_s == {} and "budget_held_s" not in unheld.to_json()
    assert "PodDisruptionBudget" not in _fault_sentence(unheld)
