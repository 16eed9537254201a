"""experiments/redis-failover.json through `chaos run` on the lab's node: the primary lost.

`KubeNode.up(redis="sentinel")` brings up the node with KubeRay's HA sample whose Redis is a
primary (`redis-0`), a replica (`redis-1`) and three Sentinels, the GCS connecting through
`redis-sentinel:26379` (lab/chaosraysvc_lab/redis_ha.py). `chaos run` then uses the
kubernetes target with the node's admin kubeconfig (`pods/exec`: deploy/exec-role.yaml).

What must hold, seen apart from the code under test: a connection this test holds to the
primary from the node's host is closed (its pod died). When a Sentinel, asked from the host
afterwards, names `redis-1`, `redis-0` is a new pod (a new uid) that follows it and the
action's milestones agree with the new primary's clients; when the Sentinels still name
`redis-0` (no failover: the lab's Redis 6.2 Sentinel once did not fail over in CI), the action
must report no new primary and the run must not pass. Either way the run is judged on an
injected fault (not inconclusive). What the GCS, the head and the requests did is printed
(docs/findings.md). Needs root and the machine's node lock (marked `node`).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaosraysvc.runtime.executables import redis_executable
from chaosraysvc.traffic.log import read_traffic_log
from chaosraysvc.traffic.stats import summarize
from chaosraysvc_lab import kubeconfig
from chaosraysvc_lab.stack import KubeNode
from tests.support.polling import wait_for
from tests.support.redis_watch import RedisWatch

from .conftest import chaos_run, own_node, requires_namespaces

pytestmark = [pytest.mark.node, requires_namespaces]
RECOVERY_BUDGET_S = 240


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[KubeNode, dict[str, str]]]:
    with own_node("crs-failover-", redis="sentinel") as started:
        yield started


def _cli(host: str, port: int, password: str, *argv: str) -> list[str]:
    done = subprocess.run(
        [str(redis_executable().parent / "redis-cli"), "-h", host, "-p", str(port), *argv],
        env=dict(os.environ, REDISCLI_AUTH=password),
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    return [line for line in done.stdout.splitlines() if line]


def _head_client_since(core: client.CoreV1Api, password: str) -> float | None:
    """When the longest-held client of the new primary (`redis-1`) from the head pod's IP
    connected (epoch seconds, from `CLIENT LIST`'s age), None when it has none."""
    head = core.list_namespaced_pod("default", label_selector="ray.io/node-type=head").items[0]
    primary = core.read_namespaced_pod("redis-1", "default").status.pod_ip
    ages = []
    for line in _cli(primary, 6379, password, "CLIENT", "LIST"):
        fields = dict(part.partition("=")[::2] for part in line.split())
        if fields.get("addr", "").rpartition(":")[0] == head.status.pod_ip:
            ages.append(int(fields.get("age", "0")))
    return time.time() - max(ages) if ages else None


def _print_evidence(kube: KubeNode, core: client.CoreV1Api, sentinel: str, password: str) -> None:
    """Print what a failover that did not complete left: the head's containers, the
    Sentinel's view, the new primary's clients, the GCS's and `ray start`'s last lines."""
    for pod in core.list_namespaced_pod("default").items:
        states = [(s.name, s.restart_count, s.ready, str(s.state.waiting or s.state.terminated
                   or "running").replace("\n", " ")[:200])
                  for s in pod.status.container_statuses or []]  # fmt: skip
        print(f"pod {pod.metadata.name} {pod.status.pod_ip} {pod.status.phase} {states}")
    for ask in ("MASTERS", "REPLICAS mymaster", "SENTINELS mymaster"):
        print(f"sentinel {ask}:", _cli(sentinel, 26379, password, "SENTINEL", *ask.split()))
    for name in ("redis-0", "redis-1"):
        ip = core.read_namespaced_pod(name, "default").status.pod_ip
        if ip:
            print(f"{name} replication:", _cli(ip, 6379, password, "INFO", "replication")[:4])
            print(f"{name} clients:", _cli(ip, 6379, password, "CLIENT", "LIST"))
    pods = kube.state_dir / "node" / "pods"
    for log in sorted(pods.glob("*/tmp/ray/session_*/logs/gcs_server.out")):
        print(f"--- {log.relative_to(pods)} (last 15 lines)")
        print("\n".join(log.read_text(errors="replace").splitlines()[-15:]))
    shown = [
        *core.list_namespaced_pod("default", label_selector="ray.io/node-type=head").items,
        *core.list_namespaced_pod("default", label_selector="app=redis-sentinel").items,
    ]
    for pod in shown:  # `ray start`'s lines; the Sentinels' +sdown, +odown, +failover-*
        for container in sorted((pods / str(pod.metadata.uid) / "logs").glob("*/*.log")):
            print(f"--- {pod.metadata.name} {container.relative_to(pods)} (last 25 lines)")
            print("\n".join(container.read_text(errors="replace").splitlines()[-25:]))


def _check_promoted(
    core: client.CoreV1Api,
    old_uid: str,
    password: str,
    output: dict[str, Any],
    verdict: dict[str, Any],
    connected_at: float | None,
) -> None:
    """The Sentinels promoted `redis-1`: the old primary is a new pod that follows it, and the
    action's milestones agree with what the host sees on the new primary."""
    again = core.read_namespaced_pod("redis-0", "default")
    assert again.metadata.uid != old_uid
    wait_for(
        lambda: "role:slave" in _cli(again.status.pod_ip, 6379, password, "INFO", "replication"),
        60,
        what="the old primary, back, to be a replica of the new one",
    )
    assert output["new_primary"].startswith("redis-1."), output["new_primary"]
    # The GCS on the new primary, seen from the host: a client from the head pod's IP, and
    # since when. Connected well within the action's budget, the action must have seen it;
    # never connected, the action must say so and the run must not pass.
    deleted_at = output["deleted_at"]
    since = "never" if connected_at is None else f"{connected_at - deleted_at:.0f} s"
    print(f"GCS on the new primary, seen from the host: {since}")
    if connected_at is not None and connected_at < deleted_at + RECOVERY_BUDGET_S - 10:
        assert "gcs_reconnected" not in output["missing"], output["missing"]
        seconds = output["recovery"]["seconds_to"]
        assert 0 < seconds["primary_elected"] <= seconds["gcs_reconnected"] + 1  # age: whole s
        # no later than the connection held now (an earlier one may have ended with its GCS)
        assert deleted_at + seconds["gcs_reconnected"] < connected_at + 3
    if connected_at is None:
        assert "gcs_reconnected" in output["missing"], output
        assert verdict["outcome"] != "passed", verdict
    if verdict["outcome"] == "passed":  # the service was back: every milestone was seen
        assert output["missing"] == [], output["missing"]


def test_redis_failover_experiment_kills_the_primary_and_the_replica_takes_over(
    node: tuple[KubeNode, dict[str, str]], tmp_path: Path
) -> None:
    kube, settings = node
    core = client.CoreV1Api(kubeconfig.api_client(Path(settings["KUBECONFIG"])))
    secret = core.read_namespaced_secret("redis-password-secret", "default")
    password = base64.b64decode(secret.data["password"]).decode()
    primary = core.read_namespaced_pod("redis-0", "default")
    sentinel = core.list_namespaced_pod("default", label_selector="app=redis-sentinel").items[0]
    heads = core.list_namespaced_pod("default", label_selector="ray.io/node-type=head").items
    head_restarts = sum(s.restart_count for s in heads[0].status.container_statuses or [])
    watch = RedisWatch(primary.status.pod_ip, 6379, password)
    try:
        journal, verdict = chaos_run("redis-failover", settings, tmp_path,
                                     RAYSVC_RECOVERY_TIMEOUT=str(RECOVERY_BUDGET_S))  # fmt: skip
    finally:
        watch.close()

    # Seen apart from the action: the primary's connection closed; then whom the Sentinels name.
    assert watch.closed
    named = _cli(sentinel.status.pod_ip, 26379, password,
                 "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")  # fmt: skip
    killed = next(r for r in journal["run"] if r["activity"]["name"] == "kill-redis-primary")
    assert killed["status"] == "succeeded", killed.get("exception")
    output = killed["output"]
    print(f"failover: {json.dumps(output, indent=1)}")
    assert output["primary"]["pod"] == "redis-0"
    promoted = bool(named) and named[0].startswith("redis-1.")
    connected_at = _head_client_since(core, password) if promoted else None
    if not promoted or output["missing"] or connected_at is None:
        print(f"the Sentinels name {named} as the primary after the run")
        _print_evidence(kube, core, sentinel.status.pod_ip, password)
    if not promoted:
        # No failover happened (the Sentinels still name the deleted primary): the action
        # must not have seen one, and a service without its Redis must not read as passed.
        assert named and named[0].startswith("redis-0."), named
        assert output["new_primary"] == "" and "primary_elected" in output["missing"], output
        assert verdict["outcome"] in ("deviated", "failed"), verdict
    else:
        _check_promoted(core, primary.metadata.uid, password, output, verdict, connected_at)
    log = read_traffic_log(tmp_path / "journal-traffic.jsonl")
    print(f"marks: {[(m['event'], round(m['t'] - log.marks[0]['t'], 1)) for m in log.marks]}")
    summary = summarize(log)
    heads = core.list_namespaced_pod("default", label_selector="ray.io/node-type=head").items
    restarted = sum(s.restart_count for s in heads[0].status.container_statuses or [])
    print(f"traffic: {summary['requests']} requests, {summary['failures']} failed "
          f"({summary.get('failures_by_error')}); head container restarts "
          f"{head_restarts} -> {restarted}")  # fmt: skip
    assert verdict["outcome"] in ("passed", "deviated", "failed"), verdict  # not inconclusive
    assert password not in (tmp_path / "journal.json").read_text()
