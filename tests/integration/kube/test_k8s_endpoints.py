"""Serve endpoints come from the serve Service's EndpointSlices, or its core Endpoints."""

from __future__ import annotations

from chaosraysvc.targets.base import Endpoint, ready_endpoint_count

from . import seed
from .conftest import Cluster, StartCluster
from .helpers import patch_object

EXPECTED = [
    Endpoint(seed.HEAD, "http://198.18.1.10:8000", True, "head"),
    Endpoint(seed.WORKERS[0], "http://198.18.1.11:8000", True, "worker"),
    Endpoint(seed.WORKERS[1], "http://198.18.1.12:8000", True, "worker"),
]


def test_counts_the_ready_endpoints_of_the_serve_service(ha: Cluster) -> None:
    target = ha.target()

    assert target.serve_endpoints() == EXPECTED
    assert ready_endpoint_count(target) == 3
    slice_lists = [c for c in ha.double.calls if c.resource == "endpointslices"]
    assert [c.params["labelSelector"] for c in slice_lists] == [
        f"kubernetes.io/service-name={seed.SERVE_SVC}",
        f"kubernetes.io/service-name={seed.SERVE_SVC}",
    ]


def test_an_endpoint_whose_pod_is_not_ready_is_listed_as_not_ready(ha: Cluster) -> None:
    def not_ready(pod: dict) -> None:
        for condition in pod["status"]["conditions"]:
            if condition["type"] == "Ready":
                condition["status"] = "False"

    def flip() -> None:
        patch_object(ha.double, "v1/pods", seed.NAMESPACE, seed.WORKERS[1], not_ready)
        assert ha.server.standin is not None
        ha.server.standin.reconcile()

    ha.server.call(flip)
    endpoints = ha.target().serve_endpoints()

    assert [(e.pod_name, e.ready) for e in endpoints] == [
        (seed.HEAD, True),
        (seed.WORKERS[0], True),
        (seed.WORKERS[1], False),
    ]


def test_falls_back_to_core_endpoints_without_the_endpointslice_api(
    start_cluster: StartCluster,
) -> None:
    cluster = start_cluster(seed.ha_sample(slices=False))

    assert cluster.target().serve_endpoints() == EXPECTED
    assert ("get", "endpoints", seed.SERVE_SVC) in {
        (c.verb, c.resource, c.name) for c in cluster.double.calls
    }


def test_a_serve_service_without_any_endpoints_has_none(ha: Cluster) -> None:
    def drop() -> None:
        ha.double.remove(
            "discovery.k8s.io/v1/endpointslices", seed.NAMESPACE, f"{seed.SERVE_SVC}-x0k2q"
        )
        ha.double.remove("v1/endpoints", seed.NAMESPACE, seed.SERVE_SVC)

    ha.server.call(drop)

    assert ha.target().serve_endpoints() == []
