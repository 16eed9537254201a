"""partition_redis and heal_redis_partition: their policies, arguments, refusals and checks.

The checks run for real: the in-pod scripts of `chaosraysvc.partition` run as local processes
(the fake target's `exec_in_pod`), against a Redis double on loopback that answers `PING`.
The fake target's partition stops the double from accepting new connections, and may also
close the established ones, or do nothing at all: what a network plugin that keeps
established flows, one that cuts them, and one that does not enforce NetworkPolicy do.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosraysvc import partition
from chaosraysvc.activities import network_actions
from chaosraysvc.errors import RefusedError
from chaosraysvc.kube.networkpolicy import egress_policy, ingress_policy, policy_names
from chaosraysvc.model import GcsFaultTolerance, Pod, RedisPartition
from chaosraysvc.targets.sandbox import PARTITION_REFUSED

HEAD = Pod("rs-raycluster-abc-head-x1", "head", "Running", True, "u1", 1.0)
REDIS = Pod("redis-7c9f8d6b5-q4wzt", "redis", "Running", True, "u2", 2.0)


# -- the policies ---------------------------------------------------------------------------


def test_the_ray_pods_may_reach_anything_but_the_redis_pods() -> None:
    policy = egress_policy("rs", "rs-raycluster-abc", {"app": "redis"}, ["198.18.10.14"])

    spec = policy["spec"]
    assert policy["metadata"]["name"] == "rs-redis-partition-ray"
    assert policy["metadata"]["labels"]["chaosraysvc.io/fault"] == "redis-partition"
    assert spec["podSelector"] == {"matchLabels": {"ray.io/cluster": "rs-raycluster-abc"}}
    assert spec["policyTypes"] == ["Egress"]
    [rule] = spec["egress"]
    pods, addresses = rule["to"]
    assert pods == {
        "namespaceSelector": {},
        "podSelector": {
            "matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["redis"]}]
        },
    }
    assert addresses == {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["198.18.10.14/32"]}}
    assert "ports" not in rule  # every port of everything else stays open


def test_the_redis_pods_admit_any_pod_but_the_ray_clusters() -> None:
    policy = ingress_policy("rs", "rs-raycluster-abc", {"app": "redis", "tier": "gcs"})

    spec = policy["spec"]
    assert policy["metadata"]["name"] == "rs-redis-partition-redis"
    assert spec["podSelector"] == {"matchLabels": {"app": "redis", "tier": "gcs"}}
    assert spec["policyTypes"] == ["Ingress"]
    [rule] = spec["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {},
            "podSelector": {
                "matchExpressions": [
                    {"key": "ray.io/cluster", "operator": "NotIn", "values": ["rs-raycluster-abc"]}
                ]
            },
        }
    ]
    assert policy_names("rs") == ("rs-redis-partition-ray", "rs-redis-partition-redis")


def test_the_policies_need_labels_that_select_redis() -> None:
    with pytest.raises(ValueError, match="labels"):
        egress_policy("rs", "c", {}, [])
    with pytest.raises(ValueError, match="labels"):
        ingress_policy("rs", "c", {})


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("redis:6379", ("redis", 6379)),
        ("redis", ("redis", 6379)),
        ("redis://redis.ns.svc:6380", ("redis.ns.svc", 6380)),
        ("198.18.10.14:7000", ("198.18.10.14", 7000)),
    ],
)
def test_the_redis_address_gives_host_and_port(address: str, expected: tuple[str, int]) -> None:
    assert partition.redis_endpoint(address) == expected


def test_the_held_connection_is_judged_on_what_came_after_the_cut() -> None:
    lines = ["10.0 ok", "10.5 ok", "11.0 noreply", "11.5 ok"]
    # the cut was made at 10.2 and seen to hold (a new connection failed) at 10.9
    assert partition.classify_held(lines, 10.2, 10.9) == ("kept", {"noreply": 1, "ok": 1})
    lost = ["10.0 ok", "11.0 noreply", "12.0 noreply"]
    assert partition.classify_held(lost, 10.2, 10.5) == ("cut", {"noreply": 2})
    # closed before the new connection failed: cut all the same
    assert partition.classify_held(["10.0 ok", "10.4 closed"], 10.2, 10.9) == ("cut", {})
    assert partition.classify_held(["10.0 ok"], 10.2, 10.5) == ("unknown", {})


# -- the action, against a Redis double and a fake target -----------------------------------


class RedisDouble:
    """Answers "+PONG" to each line on loopback; `refuse_new()` closes the listening socket
    (new connections are refused), `cut_established()` closes every open connection."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while data := conn.recv(256):
                conn.sendall(b"+PONG\r\n" * data.count(b"\n"))
        except OSError:
            pass

    def refuse_new(self) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):  # wakes the accept() and stops listening at once
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()

    def cut_established(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self.conns.clear()


class FakeTarget:
    """A kubernetes-like target whose pods' commands run here and whose partition is the
    Redis double's (`enforce`: "keep" established flows, "cut" them, or "none")."""

    kind = "kubernetes"

    def __init__(self, redis: RedisDouble, enforce: str = "keep", backend: str = "redis") -> None:
        self.redis = redis
        self.enforce = enforce
        self.backend = backend
        self.partitioned = False
        self.healed: list[str] = []
        self.dry_runs = 0

    def gcs_fault_tolerance(self) -> GcsFaultTolerance:
        address = f"127.0.0.1:{self.redis.port}" if self.backend == "redis" else ""
        return GcsFaultTolerance(self.backend != "none", self.backend, address)  # type: ignore[arg-type]

    def pods(self) -> list[Pod]:
        return [HEAD, REDIS]

    def serve_endpoints(self) -> list[Any]:
        return []

    def exec_in_pod(self, pod: Pod, argv: Sequence[str], timeout: float = 30.0) -> tuple[int, str]:
        assert pod == HEAD
        cmd = [sys.executable if argv[0] == partition.PYTHON else argv[0], *argv[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        return done.returncode, done.stdout + done.stderr

    def partition_redis(self, dry_run: bool = False) -> RedisPartition:
        if dry_run:
            self.dry_runs += 1
        elif self.enforce != "none":
            self.partitioned = True
            if self.enforce == "cut":  # before new connections fail: nothing answers after that
                self.redis.cut_established()
            self.redis.refuse_new()
        return RedisPartition("rs-raycluster-abc", ("default/a", "default/b"), (REDIS.name,),
                              f"127.0.0.1:{self.redis.port}")  # fmt: skip

    def heal_redis_partition(self) -> list[str]:
        self.healed = ["default/a", "default/b"]
        return self.healed


@pytest.fixture
def redis() -> Iterator[RedisDouble]:
    double = RedisDouble()
    yield double
    double.refuse_new()
    double.cut_established()


@pytest.fixture
def marks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(network_actions, "mark", lambda event, **d: seen.append((event, d)))
    return seen


def _use(monkeypatch: pytest.MonkeyPatch, target: Any) -> None:
    monkeypatch.setattr(network_actions, "target_for", lambda *_: target)


def test_a_partition_that_keeps_established_flows_is_reported_so(
    redis: RedisDouble, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = FakeTarget(redis, "keep")
    _use(monkeypatch, target)

    result = network_actions.partition_redis(timeout=10, established_window=3)

    assert target.partitioned and target.dry_runs == 1  # validated first
    assert result["partitioned"]["pod"] == REDIS.name and result["partitioned"]["role"] == "redis"
    assert result["new_connection"]["error"] == "refused"
    assert result["new_connection"]["seen_after_s"] < 10
    assert result["established_connection"]["outcome"] == "kept"
    assert result["established_connection"]["answers"]["ok"] >= 2
    assert result["policies"] == ["default/a", "default/b"]
    assert [event for event, _ in marks] == ["fault"]
    assert marks[0][1]["pod"] == REDIS.name and marks[0][1]["action"] == "partition_redis"


def test_a_partition_that_cuts_established_flows_is_reported_so(
    redis: RedisDouble, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, FakeTarget(redis, "cut"))

    result = network_actions.partition_redis(timeout=10, established_window=3)

    assert result["new_connection"]["error"] == "refused"
    assert result["established_connection"]["outcome"] == "cut", result
    assert "ok" not in result["established_connection"]["answers"]


def test_a_partition_nobody_enforces_is_undone_and_fails_the_action(
    redis: RedisDouble, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = FakeTarget(redis, "none")
    _use(monkeypatch, target)

    with pytest.raises(ActivityFailed, match="does not enforce NetworkPolicy") as failed:
        network_actions.partition_redis(timeout=1.5, established_window=1)

    assert "no partition happened" in str(failed.value)
    assert target.healed == ["default/a", "default/b"]  # the inert policies are gone again
    assert [event for event, _ in marks] == ["fault", "fault_not_injected"]
    assert marks[1][1] == {"pod": REDIS.name, "error": "FaultNotEffectiveError"}


def test_the_sandbox_refuses_before_anything_is_marked(
    redis: RedisDouble, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = FakeTarget(redis)

    def refuse(dry_run: bool = False) -> RedisPartition:
        raise RefusedError(PARTITION_REFUSED)

    target.partition_redis = refuse  # type: ignore[method-assign]
    _use(monkeypatch, target)

    with pytest.raises(ActivityFailed, match="a NetworkPolicy is a Kubernetes object"):
        network_actions.partition_redis()

    assert marks == []


def test_without_a_redis_backend_it_is_refused(
    redis: RedisDouble, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, FakeTarget(redis, backend="embedded"))

    with pytest.raises(ActivityFailed, match="backend is 'embedded', so there is no Redis"):
        network_actions.partition_redis()
    assert marks == []


def test_redis_that_does_not_answer_before_the_fault_is_refused(
    redis: RedisDouble, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = FakeTarget(redis)
    _use(monkeypatch, target)
    redis.refuse_new()

    with pytest.raises(ActivityFailed, match="does not answer pod .* before the fault"):
        network_actions.partition_redis()
    assert marks == [] and not target.partitioned


def test_a_dry_run_validates_and_changes_nothing(
    redis: RedisDouble, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = FakeTarget(redis)
    _use(monkeypatch, target)

    result = network_actions.partition_redis(dry_run=True)

    assert result["dry_run"] is True and result["policies"] == ["default/a", "default/b"]
    assert target.dry_runs == 1 and not target.partitioned and marks == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"timeout": 0}, "timeout must be > 0"),
        ({"timeout": "soon"}, "partition_redis `timeout` must be a number"),
        ({"established_window": -1}, "established_window must be > 0"),
        ({"established_window": "3 s"}, "`established_window` must be a number"),
    ],
)
def test_bad_arguments_are_refused_before_anything(
    arguments: dict[str, Any], message: str, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(network_actions, "target_for", lambda *_: pytest.fail("no target"))

    with pytest.raises(ActivityFailed, match=message):
        network_actions.partition_redis(**arguments)


def test_healing_checks_redis_answers_new_connections_again(
    redis: RedisDouble, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, FakeTarget(redis))

    result = network_actions.heal_redis_partition(timeout=5)

    assert result["deleted"] == ["default/a", "default/b"]
    assert result["reconnected"]["pod"] == HEAD.name
    assert [event for event, _ in marks] == ["partition_healed"]


def test_healing_fails_when_redis_stays_unreachable(
    redis: RedisDouble, marks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, FakeTarget(redis))
    redis.refuse_new()

    with pytest.raises(ActivityFailed, match="still unreachable from the head pod"):
        network_actions.heal_redis_partition(timeout=1)


def test_healing_nothing_is_no_error(redis: RedisDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    target = FakeTarget(redis)
    target.heal_redis_partition = lambda: []  # type: ignore[method-assign]
    _use(monkeypatch, target)

    assert network_actions.heal_redis_partition()["deleted"] == []


def test_the_held_connection_dates_each_answer_to_the_microsecond(redis: RedisDouble) -> None:
    # Its first ping can be answered "closed" in the very millisecond the cut is made: dated
    # to the millisecond it rounded to before the cut, and the cut read as "unknown".
    target = FakeTarget(redis)
    held = partition.hold(target, HEAD, "127.0.0.1", redis.port, 0.8)
    time.sleep(1.2)
    lines = partition.release(target, held).split()

    stamps, words = lines[0::2], lines[1::2]
    assert words and set(words) == {"ok"}, lines
    assert all(len(stamp.split(".")[1]) == 6 for stamp in stamps), lines
