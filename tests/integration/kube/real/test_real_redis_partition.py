"""experiments/redis-partition.json through `chaos run` on the lab's node, kube-router enforcing.

`KubeNode.up()` brings up the node with KubeRay's HA sample and the NetworkPolicy engine
(kube-router's firewall); `chaos run` then uses the kubernetes target with the settings the
node wrote (its admin kubeconfig: NetworkPolicy create/delete and pods/exec, which the
opt-in deploy/networkpolicy-role.yaml and deploy/exec-role.yaml grant a ServiceAccount).

What must hold: the partition took effect (a new connection from the head to Redis was
refused within the action's timeout), the result says what the connection established
before it saw, the rollback deleted both policies and Redis answered the head again, and
the run is judged on an injected fault (not inconclusive). Without the engine the action
fails ("does not enforce NetworkPolicy"), the run is inconclusive and this test fails. What
the run measured (the verdict, the established connection, kube-router's CPU and memory) is
printed. Needs root and the machine's node lock (marked `node`).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaosraysvc_lab import kubeconfig, netpol
from chaosraysvc_lab.stack import KubeNode

from .conftest import chaos_run, own_node, requires_namespaces

pytestmark = [pytest.mark.node, requires_namespaces]
RECOVERY_BUDGET_S = 420  # a new head on this node took up to 146 s (test_real_node.py)


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[KubeNode, dict[str, str]]]:
    if netpol.tools_missing():
        pytest.skip(f"kube-router needs {', '.join(netpol.tools_missing())} (make node-deps)")
    with own_node("crs-partition-") as started:
        yield started


def _kube_router_usage(state_dir: Path) -> str:
    """kube-router's CPU seconds (its own and its iptables/ipset children's) and resident
    memory so far (from /proc)."""
    agent = json.loads((state_dir / "node.json").read_text())["agent"]
    pids = subprocess.run(["pgrep", "-s", str(agent["sid"]), "-x", "kube-router"],
                          capture_output=True, text=True, check=False).stdout.split()  # fmt: skip
    if len(pids) != 1:
        return f"kube-router processes: {pids}"
    stat = Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = sum(int(field) for field in stat[11:15]) / ticks  # utime stime cutime cstime
    alive = float(Path("/proc/uptime").read_text().split()[0]) - int(stat[19]) / ticks
    rss = next(
        line.split()[1] for line in Path(f"/proc/{pids[0]}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )  # fmt: skip
    return f"kube-router: {cpu:.1f} s CPU in {alive:.0f} s alive, RSS {int(rss) / 1024:.0f} MiB"


def _activity(journal: dict[str, Any], phase: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in journal[phase] if r["activity"]["name"] == name)
    return found


def test_redis_partition_experiment_cuts_redis_off_and_heals(
    node: tuple[KubeNode, dict[str, str]], tmp_path: Path
) -> None:
    kube, settings = node
    journal, verdict = chaos_run("redis-partition", settings, tmp_path,
                                 RAYSVC_RECOVERY_TIMEOUT=str(RECOVERY_BUDGET_S))  # fmt: skip
    print(_kube_router_usage(kube.state_dir))
    traffic = _activity(journal, "rollbacks", "stop-traffic").get("output") or {}
    print(f"traffic: {traffic.get('requests')} requests, {traffic.get('failures')} failed")

    cut = _activity(journal, "run", "partition-redis")
    assert cut["status"] == "succeeded", cut.get("exception")  # no engine: "does not enforce"
    output = cut["output"]
    print(f"partition: {json.dumps(output, indent=1)}")
    assert output["new_connection"]["error"] == "refused"  # kube-router's REJECT
    assert output["new_connection"]["seen_after_s"] < 30
    assert output["established_connection"]["outcome"] in ("kept", "cut")
    assert len(output["policies"]) == 2
    heal = _activity(journal, "rollbacks", "heal-redis-partition")
    assert heal["status"] == "succeeded", heal.get("exception")
    assert sorted(heal["output"]["deleted"]) == sorted(output["policies"])
    assert heal["output"]["reconnected"] is not None
    print(f"heal: {heal['output']}")
    api = kubeconfig.api_client(Path(settings["KUBECONFIG"]))
    left = client.NetworkingV1Api(api).list_network_policy_for_all_namespaces().items
    assert left == []
    assert verdict["outcome"] in ("passed", "deviated", "failed"), verdict  # not inconclusive
    assert "cut off from the Ray pods" in " ".join(verdict["facts"]) + verdict["headline"]
