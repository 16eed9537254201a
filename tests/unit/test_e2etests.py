"""chaosraysvc_lab.e2etests: which of Kubernetes' e2e tests a subset selects, and the rows read
from Ginkgo's JSON report (the run itself: tests/integration/kube/real/test_real_conformance.py)."""

from __future__ import annotations

import re

from chaosraysvc_lab import e2etests

OTHERS = (
    "[sig-node] Pods should be submitted and removed slowly",
    "[sig-network] Services should serve a basic endpoint from pods with a twist",
    "[sig-network] DNS should provide DNS for services with hostNetwork",
    "[sig-node] Pods should get a host IP [NodeConformance] [Conformance]",
)


def test_the_fast_subset_selects_its_five_tests_and_no_other() -> None:
    focus, skip = e2etests.SUBSETS["fast"]

    for name in e2etests.FAST:
        assert re.search(focus, name + " [NodeConformance] [Conformance]"), name
        assert re.search(focus, name), name
        assert not re.search(skip, name + " [NodeConformance] [Conformance]"), name
    for name in OTHERS:
        assert not re.search(focus, name), name


def test_the_node_network_subset_leaves_out_serial_disruptive_and_feature_gated_tests() -> None:
    focus, skip = e2etests.SUBSETS["node-network"]
    kept = "[sig-node] Container Lifecycle Hook when create a pod with lifecycle hook should execute prestop exec hook properly [NodeConformance] [Conformance]"  # noqa: E501
    serial = "[sig-network] Services should work after restarting kube-proxy [Disruptive]"
    gated = "[sig-node] Pods should do something [Feature:SidecarContainers]"

    assert re.search(focus, kept) and not re.search(skip, kept)
    assert re.search(focus, serial) and re.search(skip, serial)
    assert re.search(skip, gated)
    assert not re.search(focus, "[sig-apps] Deployment should run the lifecycle of a Deployment")


def test_rows_name_each_test_and_keep_the_first_line_of_its_failure() -> None:
    report = [
        {
            "SpecReports": [
                {"LeafNodeType": "SynchronizedBeforeSuite", "State": "passed", "RunTime": 1e9},
                {
                    "LeafNodeType": "It",
                    "ContainerHierarchyTexts": ["[sig-node] Pods"],
                    "LeafNodeText": "should be submitted and removed [Conformance]",
                    "State": "passed",
                    "RunTime": 12_340_000_000,
                },
                {
                    "LeafNodeType": "It",
                    "ContainerHierarchyTexts": ["[sig-network] DNS"],
                    "LeafNodeText": "should provide DNS for services",
                    "State": "failed",
                    "RunTime": 3e9,
                    "Failure": {"Message": "timed out waiting\nmore detail"},
                },
                {"LeafNodeType": "AfterSuite", "State": "failed", "Failure": {"Message": "x"}},
            ]
        }
    ]

    rows = e2etests.rows(report)

    assert [(r.name, r.state, r.seconds, r.failure) for r in rows] == [
        ("[sig-node] Pods should be submitted and removed [Conformance]", "passed", 12.3, ""),
        ("[sig-network] DNS should provide DNS for services", "failed", 3.0, "timed out waiting"),
        ("AfterSuite", "failed", 0.0, "x"),
    ]
    assert e2etests.plain(rows[0].name) == "[sig-node] Pods should be submitted and removed"
