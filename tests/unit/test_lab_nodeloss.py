"""The lab's node loss, what it writes and what it refuses before any change (the rules
applied and a real node lost in tests/integration/kube/real/test_real_node_loss.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaosraysvc_lab import network, nodeloss, stack
from chaosraysvc_lab.stack import KubeNode, NodeError


def test_a_lost_node_is_silent_both_ways_after_kube_proxys_dnat() -> None:
    net = network.NodeNetwork(13)
    rules = nodeloss._drop_rules(net)
    assert nodeloss.drop_table(net) == "chaosraysvc-lost-crsbr13"
    # its own table, replaced whole: never a rule in anybody else's
    assert rules.startswith("table ip chaosraysvc-lost-crsbr13\ndelete table ip ")
    for hook in ("output", "input", "forward"):
        assert f"type filter hook {hook} priority filter - 20" in rules
    assert "ip daddr 198.18.13.0/24 drop" in rules and "ip saddr 198.18.13.0/24 drop" in rules
    assert "reject" not in rules  # silence, not a refusal: a dead machine answers nothing


def _node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: dict[str, Any]) -> KubeNode:
    node = KubeNode(tmp_path)
    monkeypatch.setattr(node, "running", lambda: True)
    monkeypatch.setattr(node, "_state", lambda: state)
    monkeypatch.setattr(nodeloss, "lose", lambda w: pytest.fail(f"lost {w['name']}"))
    return node


def test_only_a_node_that_runs_pods_can_be_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = {"name": "chaosraysvc-worker-a", "sid": 1, "ticks": 1, "node_index": 11,
              "state_dir": str(tmp_path / "w")}  # fmt: skip
    node = _node(tmp_path, monkeypatch, {"workers": [worker]})
    with pytest.raises(NodeError, match="'chaosraysvc-node' is not a node of the lab .* the "
                       "control plane's node cannot"):  # fmt: skip
        node.lose_nodes(["chaosraysvc-worker-a", "chaosraysvc-node"])  # none lost
    single = _node(tmp_path, monkeypatch, {})
    with pytest.raises(NodeError, match="none: it was brought up with one node"):
        single.lose_nodes(["chaosraysvc-worker-a"])


def test_a_node_must_be_up_to_lose_one(tmp_path: Path) -> None:
    with pytest.raises(NodeError, match="no node runs in"):
        KubeNode(tmp_path).lose_nodes(["chaosraysvc-worker-a"])
    with pytest.raises(NodeError, match="no node runs in"):
        KubeNode(tmp_path).restore_nodes(["chaosraysvc-worker-a"])


def test_the_operator_on_a_node_resolves_cluster_names_in_a_namespace_of_its_own(
    tmp_path: Path,
) -> None:
    import subprocess

    from chaosraysvc_lab import operator as kuberay

    flags = kuberay.args(tmp_path / "k", 1, 2, cluster_dns=True)
    assert "--use-kubernetes-proxy" not in flags  # it calls the heads as a deployed one does
    assert "--use-kubernetes-proxy" in kuberay.args(tmp_path / "k", 1, 2)  # alone: no DNS
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(kuberay.resolv_conf("198.19.0.10"))
    seen = subprocess.run(kuberay.cluster_dns_command(resolv, ["cat", "/etc/resolv.conf"]),
                          capture_output=True, text=True, timeout=10, check=False)  # fmt: skip
    if seen.returncode != 0 and "Operation not permitted" in seen.stderr:
        pytest.skip("needs root: a mount namespace")
    assert seen.stdout.splitlines()[0] == "nameserver 198.19.0.10", seen.stderr
    assert "nameserver 198.19.0.10" not in Path("/etc/resolv.conf").read_text()  # host's as was


def test_nodes_are_spread_over_fewer_zones_in_turn_for_a_zone_loss() -> None:
    assert stack.worker_names(3) == [
        ("chaosraysvc-worker-a", "zone-a"),
        ("chaosraysvc-worker-b", "zone-b"),
        ("chaosraysvc-worker-c", "zone-c"),
    ]  # one zone per node, as before
    assert [zone for _, zone in stack.worker_names(4, zones=2)] == [
        "zone-a", "zone-b", "zone-a", "zone-b",
    ]  # fmt: skip
    names = [name for name, _ in stack.worker_names(4, zones=2)]
    assert len(set(names)) == 4  # a name per node, whatever the zones


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KubeNode:
    """A node whose `up` gets the machine's lock and stops at its first build: a broken
    argument check fails the test there, not by starting anything."""
    monkeypatch.setattr(stack, "try_lock", lambda: open(tmp_path / "lock", "w"))  # noqa: SIM115
    kube = KubeNode(tmp_path)
    monkeypatch.setattr(kube, "down", lambda lock_held=False: None)
    monkeypatch.setattr(stack.binaries, "coredns_binary", lambda: pytest.fail("not refused"))
    return kube


@pytest.mark.parametrize(("nodes", "zones"), [(3, 4), (3, -1), (1, 1)])
def test_more_zones_than_nodes_are_refused_before_anything_starts(
    node: KubeNode, nodes: int, zones: int
) -> None:
    with pytest.raises(NodeError, match=f"zones must be 0 .* or 1 to nodes={nodes}"):
        node.up(nodes=nodes, zones=zones)


@pytest.mark.parametrize(
    ("nodes", "zones", "redis"), [(2, 0, "single"), (4, 2, "single"), (3, 0, "sentinel")]
)
def test_spread_zones_without_three_zones_and_one_redis_is_refused_before_anything_starts(
    node: KubeNode, nodes: int, zones: int, redis: str
) -> None:
    with pytest.raises(NodeError, match=f"--spread-zones needs .* zones={zones}, redis={redis}"):
        node.up(nodes=nodes, zones=zones, redis=redis, spread_zones=True)


def test_sentinel_redis_without_debians_redis_70_is_refused_before_anything_starts(
    node: KubeNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack.images, "DEBIAN_REDIS", tmp_path / "absent")

    with pytest.raises(NodeError, match=r"--redis sentinel: .*redis:7\.0\.15.*redis-tools"):
        node.up(redis="sentinel")
    with pytest.raises(NodeError, match=r"redis must be 'single' or 'sentinel' \(got 'ha'\)"):
        node.up(redis="ha")
    with pytest.raises(NodeError, match=r"down-after-milliseconds must be 100 or more \(got 5\)"):
        node.up(redis="sentinel", sentinel_down_after_ms=5)
