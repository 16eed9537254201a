"""Serve endpoints from EndpointSlices and core Endpoints."""

from __future__ import annotations

from kubernetes import client

from chaosraysvc.kube.endpoints import (
    endpoints_from_core,
    endpoints_from_slices,
    serve_service_name,
)
from chaosraysvc.model import Endpoint


def _ref(name: str) -> client.V1ObjectReference:
    return client.V1ObjectReference(kind="Pod", name=name, namespace="default")


def _endpoint(
    ip: str, pod: str, ready: bool | None, terminating: bool | None = None
) -> client.V1Endpoint:
    return client.V1Endpoint(
        addresses=[ip],
        conditions=client.V1EndpointConditions(ready=ready, terminating=terminating),
        target_ref=_ref(pod),
    )


def _slice(
    endpoints: list[client.V1Endpoint], ports: list[client.DiscoveryV1EndpointPort]
) -> client.V1EndpointSlice:
    return client.V1EndpointSlice(address_type="IPv4", endpoints=endpoints, ports=ports)


SERVE = client.DiscoveryV1EndpointPort(name="serve", port=8000, protocol="TCP")


def test_serve_service_name() -> None:
    assert serve_service_name("rayservice-ha") == "rayservice-ha-serve-svc"


def test_one_endpoint_per_address_with_readiness_and_role() -> None:
    slices = [
        _slice([_endpoint("127.0.1.10", "h", True), _endpoint("127.0.1.11", "w1", False)], [SERVE]),
        _slice([_endpoint("127.0.1.12", "w2", None)], [SERVE]),
    ]

    assert endpoints_from_slices(slices, heads={"h"}) == [
        Endpoint("h", "http://127.0.1.10:8000", True, "head"),
        Endpoint("w1", "http://127.0.1.11:8000", False, "worker"),
        Endpoint("w2", "http://127.0.1.12:8000", True, "worker"),  # nil ready means ready
    ]


def test_terminating_endpoints_are_not_ready_and_duplicates_merge() -> None:
    slices = [
        _slice([_endpoint("127.0.1.11", "w1", True, terminating=True)], [SERVE]),
        _slice(
            [_endpoint("127.0.1.12", "w2", False), _endpoint("127.0.1.12", "w2", True)], [SERVE]
        ),
    ]

    assert [(e.pod_name, e.ready) for e in endpoints_from_slices(slices, set())] == [
        ("w1", False),
        ("w2", True),
    ]


def test_the_serve_port_is_picked_by_name_and_ipv6_is_bracketed() -> None:
    ports = [
        client.DiscoveryV1EndpointPort(name="serve-grpc", port=9000),
        client.DiscoveryV1EndpointPort(name="serve", port=8001),
    ]
    [endpoint] = endpoints_from_slices([_slice([_endpoint("::1", "w", True)], ports)], set())
    assert endpoint.url == "http://[::1]:8001"


def test_core_endpoints() -> None:
    core = client.V1Endpoints(
        subsets=[
            client.V1EndpointSubset(
                addresses=[client.V1EndpointAddress(ip="127.0.1.10", target_ref=_ref("h"))],
                not_ready_addresses=[
                    client.V1EndpointAddress(ip="127.0.1.11", target_ref=_ref("w"))
                ],
                ports=[client.CoreV1EndpointPort(name="serve", port=8000)],
            )
        ]
    )

    assert endpoints_from_core(core, heads={"h"}) == [
        Endpoint("h", "http://127.0.1.10:8000", True, "head"),
        Endpoint("w", "http://127.0.1.11:8000", False, "worker"),
    ]
