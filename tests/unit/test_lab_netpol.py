"""The node's NetworkPolicy engine runs kube-router's firewall alone, listening nowhere, and
says what it needs when iptables or ipset are missing. (It enforces policies, and `node down`
removes its chains and ipsets, on the node: tests/integration/kube/real/test_real_netpol.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosraysvc_lab import netpol


def test_kube_router_runs_its_firewall_alone_and_listens_nowhere() -> None:
    argv = netpol.command(Path("/bin/kube-router"), Path("/k.conf"), "node-a", "198.19.0.0/20")

    assert argv[0] == "/bin/kube-router"
    assert {"--run-firewall=true", "--run-router=false", "--run-service-proxy=false"} <= set(argv)
    assert {"--health-port=0", "--metrics-port=0"} <= set(argv)  # upstream's bind 0.0.0.0
    assert "--hostname-override=node-a" in argv
    assert "--service-cluster-ip-range=198.19.0.0/20" in argv
    assert "--kubeconfig=/k.conf" in argv


def test_missing_tools_are_named_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netpol.shutil, "which", lambda name: None)
    engine = netpol.NetworkPolicyEngine(
        object(), Path("/bin/kube-router"), Path("/k.conf"), "n", "198.19.0.0/20", tmp_path
    )

    with pytest.raises(netpol.NetworkPolicyError, match="apt-get install iptables ipset"):
        engine.start()
    assert netpol.leftovers() == []  # without the tools nothing can be left either
    assert not (tmp_path / "kube-router.log").exists()


def test_the_cluster_role_is_upstreams_read_only_view_of_policies_and_pods() -> None:
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): r["verbs"]
             for r in netpol.CLUSTER_ROLE["rules"]}  # fmt: skip

    assert rules[(("networking.k8s.io",), ("networkpolicies",))] == ["list", "get", "watch"]
    assert rules[(("",), ("namespaces", "pods", "services", "nodes", "endpoints"))] == [
        "list",
        "get",
        "watch",
    ]


@pytest.mark.parametrize(("flags", "enforced"), [([], True), (["--no-network-policy"], False)])
def test_node_up_enforces_network_policy_unless_told_not_to(
    flags: list[str], enforced: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaosraysvc_lab import cli, stack

    seen: dict[str, object] = {}
    monkeypatch.setattr(stack.KubeNode, "up", lambda self, **kw: seen.update(kw) or {})

    assert cli.main(["node", "up", "--state-dir", str(tmp_path), *flags]) == 0
    assert seen["network_policy"] is enforced
