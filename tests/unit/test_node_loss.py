"""lose_node and restore_node: the arguments and refusals, the user's node loss command, the
milestones followed after a loss, a loss that did not happen, and the report's sentence (a
fake target; the lab's nodes lost for real in tests/integration/kube/real/test_real_node_loss.py).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosraysvc import node_loss
from chaosraysvc.activities import node_actions
from chaosraysvc.errors import ConfigurationError, RefusedError
from chaosraysvc.kube.nodeloss import NodeLossCommandError, run_node_command
from chaosraysvc.model import Endpoint, Node, Pod
from chaosraysvc.report.faults import find_faults
from chaosraysvc.report.verdict import _fault_sentence

HEAD = Pod("rs-head-x1", "head", "Running", True, "u1", 1.0, node="n1")
WORKER = Pod("rs-worker-w1", "worker", "Running", True, "u2", 1.0, node="n2")
NEW_HEAD = Pod("rs-head-y2", "head", "Running", True, "u3", 2.0, node="n2")


class FakeTarget:
    """A cluster whose node `n1` (the head's) goes NotReady `not_ready_after` polls after the
    loss command ran (never, when None); its head is then evicted and replaced."""

    kind = "kubernetes"
    namespace = "ns"
    name = "rs"

    def __init__(self, nodes: list[Node], not_ready_after: int | None = 2) -> None:
        self._nodes = nodes
        self.not_ready_after = not_ready_after
        self.polls = 0
        self.lost: list[list[str]] = []
        self.restored: list[list[str]] = []
        self.deleted: list[str] = []
        self.fail_with: Exception | None = None

    @property
    def gone(self) -> bool:
        return bool(self.lost) and self.not_ready_after is not None and (
            self.polls >= self.not_ready_after
        )  # fmt: skip

    def nodes(self) -> list[Node]:
        if self.lost:
            self.polls += 1
        if self.gone:
            return [Node(n.name, "Unknown", 0.0, zone=n.zone) if n.name in self.lost[0] else n
                    for n in self._nodes]  # fmt: skip
        return self._nodes

    def pods(self) -> list[Pod]:
        if self.gone:
            evicted = Pod(HEAD.name, "head", "Terminating", False, "u1", 1.0, node="n1")
            return [evicted, WORKER, NEW_HEAD]
        return [HEAD, WORKER]

    def serve_endpoints(self) -> list[Endpoint]:
        ends = [Endpoint(WORKER.name, "http://w:8000", True)]
        return ends if self.gone else [Endpoint(HEAD.name, "http://h:8000", True), *ends]

    def lose_nodes(self, nodes: list[str], timeout: float = 120.0) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.lost.append(list(nodes))
        return "lost"

    def restore_nodes(self, nodes: list[str], timeout: float = 120.0) -> str:
        self.restored.append(list(nodes))
        return "back"

    def delete_node(self, name: str) -> bool:
        self.deleted.append(name)
        return True


NODES = [Node("n1", "True", 0.0, zone="z-a"), Node("n2", "True", 0.0, zone="z-b")]


@pytest.fixture
def marks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    written: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(node_actions, "mark", lambda event, **d: written.append((event, d)))
    baseline = node_actions.recovery.Baseline(endpoints=2, applications={"app"}, pods={
        HEAD.name, WORKER.name})  # fmt: skip
    monkeypatch.setattr(node_actions.recovery.Baseline, "capture", lambda *_: baseline)
    monkeypatch.setattr(node_actions, "setup_facts", lambda *_: {})
    monkeypatch.setattr(node_actions.recovery, "apps_running", lambda *_: True)
    monkeypatch.setattr(node_loss, "ready_endpoint_count", lambda *_: 2)
    monkeypatch.setattr(node_loss, "POLL_S", 0.01)
    node_actions._LOST.clear()
    return written


def _use(monkeypatch: pytest.MonkeyPatch, target: FakeTarget) -> FakeTarget:
    monkeypatch.setattr(node_actions, "target_for", lambda *_: target)
    return target


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"role": "proxy"}, "role must be one of head, worker, redis"),
        ({"not_ready_timeout": 0}, "not_ready_timeout must be > 0"),
        ({"recovery_timeout": "soon"}, "recovery_timeout"),
        ({"command_timeout": -1}, "command_timeout must be > 0"),
        ({"delete_node_after": -2}, "delete_node_after must be -1"),
    ],
)
def test_bad_arguments_fail_before_any_target_is_asked(
    arguments: dict[str, Any], said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node_actions, "target_for", lambda *_: pytest.fail("no target"))
    with pytest.raises(ActivityFailed, match=said):
        node_actions.lose_node(**arguments)


def test_losing_the_last_schedulable_node_is_refused_before_the_command(
    monkeypatch: pytest.MonkeyPatch, marks: list[Any]
) -> None:
    alone = [NODES[0], Node("n2", "True", 0.0, tainted=True), Node("n3", "False", 0.0)]
    target = _use(monkeypatch, FakeTarget(alone))
    with pytest.raises(ActivityFailed, match="no other node is Ready and schedulable"):
        node_actions.lose_node()
    assert target.lost == [] and marks == []
    planned = node_actions.lose_node(allow_last_node=True, dry_run=True)
    assert planned["would_lose"] == ["n1"] and planned["pods_there"] == [HEAD.name]
    assert target.lost == [] and marks == []


def test_a_zone_is_every_node_of_it_but_the_control_plane(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = [*NODES, Node("n3", "True", 0.0, zone="z-a"),
             Node("cp", "True", 0.0, zone="z-a", tainted=True, control_plane=True)]  # fmt: skip
    _use(monkeypatch, FakeTarget(nodes))
    planned = node_actions.lose_node(zone=True, dry_run=True)
    assert planned["would_lose"] == ["n1", "n3"]

    _use(monkeypatch, FakeTarget([Node("n1", "True", 0.0), NODES[1]]))
    with pytest.raises(ActivityFailed, match="no\\s+topology.kubernetes.io/zone label"):
        node_actions.lose_node(zone=True, dry_run=True)


def test_a_loss_is_followed_through_kubernetes_milestones_and_the_rollback_restores(
    monkeypatch: pytest.MonkeyPatch, marks: list[tuple[str, dict[str, Any]]]
) -> None:
    target = _use(monkeypatch, FakeTarget(NODES))

    result = node_actions.lose_node(delete_node_after=0, recovery_timeout=10)

    assert target.lost == [["n1"]] and target.deleted == ["n1"]
    assert result["lost"]["nodes"] == ["n1"] and result["lost"]["endpoints"] == [HEAD.name]
    assert result["missing"] == []
    reached = result["recovery"]["seconds_to"]
    for milestone in ("node_not_ready", "endpoints_dropped", "pods_evicted", "node_deleted",
                      "pod_ready", "endpoints_restored", "applications_running"):  # fmt: skip
        assert milestone in reached, milestone
    assert reached["node_deleted"] >= reached["node_not_ready"]  # never before NotReady
    assert [m for m, _ in marks][:2] == ["fault", "node_not_ready"]
    assert "fault_not_injected" not in [m for m, _ in marks]

    assert node_actions.restore_node() == {"restored": ["n1"], "command_output": "back"}
    assert target.restored == [["n1"]]
    assert node_actions.restore_node() == {"restored": []}  # once only


def test_a_node_that_stays_ready_is_no_fault(
    monkeypatch: pytest.MonkeyPatch, marks: list[tuple[str, dict[str, Any]]]
) -> None:
    target = _use(monkeypatch, FakeTarget(NODES, not_ready_after=None))
    with pytest.raises(ActivityFailed, match="n1 but it stayed Ready for 0.05 s: its kubelet"):
        node_actions.lose_node(not_ready_timeout=0.05, recovery_timeout=10)
    assert target.lost == [["n1"]] and target.deleted == []
    assert [m for m, _ in marks] == ["fault", "fault_not_injected"]


def test_a_failing_command_is_no_fault(
    monkeypatch: pytest.MonkeyPatch, marks: list[tuple[str, dict[str, Any]]]
) -> None:
    target = _use(monkeypatch, FakeTarget(NODES))
    target.fail_with = NodeLossCommandError("node_loss_command `x n1` exited with 3: no")
    with pytest.raises(ActivityFailed, match="exited with 3"):
        node_actions.lose_node()
    assert [m for m, _ in marks] == ["fault", "fault_not_injected"]
    assert node_actions.restore_node() == {"restored": []}  # nothing was lost


def test_the_command_gets_the_node_names_and_its_failures_are_named() -> None:
    echo = f"{sys.executable} -c 'import sys; print(\"lost\", *sys.argv[1:])'"
    assert run_node_command(echo, "node_loss_command", ["n1", "n2"], 10) == "lost n1 n2"

    fail = f"{sys.executable} -c 'import sys; print(\"no such instance\"); sys.exit(3)'"
    with pytest.raises(NodeLossCommandError, match="exited with 3: no such instance"):
        run_node_command(fail, "node_loss_command", ["n1"], 10)
    with pytest.raises(NodeLossCommandError, match="'/no/such/tool' not found"):
        run_node_command("/no/such/tool", "node_loss_command", ["n1"], 10)
    slow = f"{sys.executable} -c 'import time; time.sleep(5)'"
    with pytest.raises(NodeLossCommandError, match="did not end within 0.2 s"):
        run_node_command(slow, "node_restore_command", ["n1"], 0.2)
    with pytest.raises(ConfigurationError, match="RAYSVC_NODE_LOSS_COMMAND"):
        run_node_command(" ", "node_loss_command", ["n1"], 10)
    with pytest.raises(ConfigurationError, match="is not a command line"):
        run_node_command("lose 'n1", "node_loss_command", ["n1"], 10)


def test_the_sandbox_refuses_to_lose_a_node() -> None:
    from chaosraysvc.targets.sandbox import NODE_LOSS_REFUSED, SandboxTarget

    target = SandboxTarget.__new__(SandboxTarget)
    for call in (lambda: target.lose_nodes(["n1"]), lambda: target.restore_nodes(["n1"]),
                 lambda: target.delete_node("n1")):  # fmt: skip
        with pytest.raises(RefusedError) as refused:
            call()
        assert str(refused.value) == NODE_LOSS_REFUSED


def test_the_report_names_the_lost_node_and_its_milestones() -> None:
    output = {
        "target": "kubernetes",
        "lost": {"name": HEAD.name, "role": "head", "uid": "u1", "node": "n1", "nodes": ["n1"],
                 "pods": [HEAD.name], "endpoints": [HEAD.name]},
        "lost_at": 1000.0,
        "missing": [],
        "recovery": {"recovered": True, "new_pod": NEW_HEAD.name,
                     "at": {"endpoints_dropped": 1005.0, "node_not_ready": 1050.0,
                            "node_deleted": 1050.5, "pods_evicted": 1110.0,
                            "pod_ready": 1140.0, "endpoints_restored": 1150.0,
                            "applications_running": 1145.0}},
    }  # fmt: skip
    result = {"activity": {"name": "lose-head-node", "type": "action",
                           "provider": {"type": "python", "func": "lose_node"}},
              "status": "succeeded", "output": output}  # fmt: skip

    [fault] = find_faults({"run": [result], "rollbacks": []}, [], origin=990.0, logged=False)

    assert (fault.pod, fault.role, fault.at, fault.injected) == (HEAD.name, "head", 1000.0, True)
    assert fault.lost_nodes == ["n1"] and fault.recovery_s == 150.0
    assert fault.node_loss_s == {"node_not_ready": 50.0, "endpoints_dropped": 5.0,
                                 "pods_evicted": 110.0, "node_deleted": 50.5}  # fmt: skip
    sentence = _fault_sentence(fault)
    assert sentence.startswith(f"The node n1 of the head pod {HEAD.name} was lost 10.0 s into")
    assert ("Node loss: its pods out of the serve Service 5.0 s, NotReady 50.0 s, the Node "
            "deleted 50.5 s, its pods evicted 110.0 s after the loss.") in sentence  # fmt: skip


def test_a_forbidden_read_is_said_at_once_not_taken_for_a_node_still_ready(
    monkeypatch: pytest.MonkeyPatch, marks: list[tuple[str, dict[str, Any]]]
) -> None:
    from chaosraysvc.errors import KubernetesApiError

    target = _use(monkeypatch, FakeTarget(NODES))
    listed = target.nodes

    def nodes() -> list[Node]:
        if target.lost:
            raise KubernetesApiError("may not list nodes (403): deploy/...", status=403)
        return listed()

    monkeypatch.setattr(target, "nodes", nodes)
    with pytest.raises(ActivityFailed, match="may not list nodes"):
        node_actions.lose_node(not_ready_timeout=5, recovery_timeout=10)
