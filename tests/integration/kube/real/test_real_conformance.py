"""Kubernetes' own e2e tests, the fast part, against the lab's node (issue 21 item 4).

One node of its own without the RayService (`KubeNode.up(sample=False)`), then `e2e.test`
(built by `make e2e` from the pinned Kubernetes) runs `e2etests.FAST`: one test for each place
where our HA results are decided (a graceful pod delete, a preStop hook, a liveness-probe
restart, a Service's ClusterIP through kube-proxy, a Service's name through CoreDNS). Every
one must pass; the wider subset and what fails in it are benchmarks/conformance.py's and
docs/conformance.md's.

Needs root, network namespaces, nftables and `make e2e`: skipped with the reason otherwise
(a failure under CI: the `node` marker).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc_lab import binaries, e2etests
from chaosraysvc_lab.stack import KubeNode

pytestmark = pytest.mark.node


def _unmet() -> str:
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables)"
    if shutil.which("nft") is None:
        return "nftables not installed (apt-get install nftables)"
    try:
        binaries.e2e_dir(build=False)
    except ChaosRaySvcError as exc:
        return f"e2e.test not built (run `make e2e`): {exc}"
    return ""


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeNode]:
    unmet = _unmet()
    if unmet:
        pytest.skip(unmet)
    state_dir = Path(tempfile.mkdtemp(prefix="crs-conformance-"))
    node = KubeNode(state_dir)
    try:
        node.up(sample=False, progress=lambda _: None)
        yield node
    finally:
        leftovers = node.down()
        shutil.rmtree(state_dir, ignore_errors=True)
        assert not leftovers


def test_kubernetes_e2e_tests_where_ha_results_are_decided_pass_on_the_node(
    kube: KubeNode, tmp_path: Path
) -> None:
    code, rows = e2etests.run(kube.plane.kubeconfig, *e2etests.SUBSETS["fast"], tmp_path,
                              progress=lambda _: None, timeout="20m")  # fmt: skip

    log = (tmp_path / "e2e.log").read_text()[-4000:]
    ran = {e2etests.plain(row.name): row for row in rows if row.state != "skipped"}
    assert sorted(ran) == sorted(e2etests.FAST), log
    failed = {name: (row.state, row.failure) for name, row in ran.items() if row.state != "passed"}
    assert not failed, f"{failed}\n{log}"
    assert code == 0, log
