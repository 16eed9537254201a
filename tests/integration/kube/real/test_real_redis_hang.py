"""experiments/redis-hang.json through `chaos run` on the lab's node: Redis paused, not gone.

`KubeNode.up()` brings up the node with KubeRay's HA sample; `chaos run` then uses the
kubernetes target with the settings the node wrote (its admin kubeconfig: `pods/exec`, which
the opt-in deploy/exec-role.yaml grants a ServiceAccount). The action runs `redis-cli` in the
sample's Redis pod (`CLIENT PAUSE <ms> ALL`) with the password it read in the head.

What must hold: a connection to Redis opened by this test before the fault (from the node's
host, on the pod bridge, with the sample's password from its Secret) gets no answer for about
the hang and answers again after it, never closed; the action saw its check PING go
unanswered and Redis answer again after the duration; the start and end are marked; the
rollback unpaused; the run is judged on an injected fault (not inconclusive). What the GCS,
the head and the requests did is printed (docs/findings.md). Needs root and the machine's
node lock (marked `node`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaosraysvc.traffic.log import read_traffic_log
from chaosraysvc.traffic.stats import summarize
from chaosraysvc_lab import kubeconfig
from chaosraysvc_lab.stack import KubeNode
from tests.support.redis_watch import RedisWatch

from .conftest import chaos_run, own_node, requires_namespaces

pytestmark = [pytest.mark.node, requires_namespaces]
RECOVERY_BUDGET_S = 420  # a new head on this node took up to 146 s (test_real_node.py)
HANG_S = 15


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[KubeNode, dict[str, str]]]:
    with own_node("crs-hang-") as started:
        yield started


def _activity(journal: dict[str, Any], phase: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in journal[phase] if r["activity"]["name"] == name)
    return found


def _ray_pods(core: client.CoreV1Api) -> dict[str, tuple[str, int]]:
    """Return each head and worker pod: its uid and restart count."""
    pods = core.list_namespaced_pod("default", label_selector="ray.io/node-type").items
    found = {}
    for pod in pods:
        restarts = sum(s.restart_count for s in pod.status.container_statuses or [])
        found[pod.metadata.name] = (pod.metadata.uid, restarts)
    return found


def test_redis_hang_experiment_pauses_redis_and_it_answers_again(
    node: tuple[KubeNode, dict[str, str]], tmp_path: Path
) -> None:
    _, settings = node
    api = kubeconfig.api_client(Path(settings["KUBECONFIG"]))
    core = client.CoreV1Api(api)
    [redis] = core.list_namespaced_pod("default", label_selector="app=redis").items
    secret = core.read_namespaced_secret("redis-password-secret", "default")
    password = base64.b64decode(secret.data["password"]).decode()
    before = _ray_pods(core)
    watch = RedisWatch(redis.status.pod_ip, 6379, password)
    try:
        journal, verdict = chaos_run("redis-hang", settings, tmp_path,
                                     RAYSVC_RECOVERY_TIMEOUT=str(RECOVERY_BUDGET_S),
                                     RAYSVC_HANG_DURATION=str(HANG_S))  # fmt: skip
    finally:
        watch.close()
    after = _ray_pods(core)
    print(f"ray pods before {before}\nray pods after {after}")

    log = read_traffic_log(tmp_path / "journal-traffic.jsonl")
    marks = {m["event"]: m for m in log.marks}
    print(f"marks: {[(m['event'], round(m['t'] - log.marks[0]['t'], 1)) for m in log.marks]}")
    start, end = marks["fault"]["t"], marks["hang_ended"]["t"]
    silence = watch.longest_silence(start, end + 5)
    print(f"watched connection silent {silence:.1f} s; hang {end - start:.1f} s")
    assert HANG_S - 1 <= silence < HANG_S + 10 and not watch.closed
    assert watch.answers and watch.answers[-1] > end

    hung = _activity(journal, "run", "hang-redis")
    assert hung["status"] == "succeeded", hung.get("exception")
    output = hung["output"]
    print(f"hang: {json.dumps(output, indent=1)}")
    assert output["target"] == "kubernetes" and output["hung"]["pod"] == redis.metadata.name
    assert output["check"]["answer"] == "no answer"
    assert HANG_S - 0.5 <= output["answered_again_after_s"] < HANG_S + 30
    unpaused = _activity(journal, "rollbacks", "unpause-redis")
    assert unpaused["status"] == "succeeded", unpaused.get("exception")

    during = [r for r in log.requests if start <= r["t"] <= end]
    failed = [r for r in during if not r["ok"]]
    latencies = sorted(r["ms"] for r in during if r["ok"])
    summary = summarize(log)
    print(f"traffic: {summary['requests']} requests, {summary['failures']} failed; during the "
          f"hang {len(during)} requests, {len(failed)} failed "
          f"({sorted({r['err'] or '' for r in failed})}), max latency "
          f"{latencies[-1] if latencies else None} ms")  # fmt: skip
    assert verdict["outcome"] in ("passed", "deviated", "failed"), verdict  # not inconclusive
    assert "stopped answering (CLIENT PAUSE ALL)" in " ".join(verdict["facts"])
    assert password not in (tmp_path / "journal.json").read_text()
    assert password not in (tmp_path / "journal-traffic.jsonl").read_text()
