"""The endpoints behind a RayService's serve Service (`<name>-serve-svc`).

Read from the Service's EndpointSlices (label `kubernetes.io/service-name`), falling back
to its core Endpoints where the cluster serves no EndpointSlices. An endpoint's URL is
`http://<address>:<port>` (the "serve" port); its pod comes from `targetRef`. A nil
`conditions.ready` counts as ready, as the EndpointSlice API documents.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kubernetes import client

from chaosraysvc.errors import NotFoundError
from chaosraysvc.kube.client import KubeApi
from chaosraysvc.model import Endpoint, Role

__all__ = [
    "SERVE_PORT_NAME",
    "endpoints_from_core",
    "endpoints_from_slices",
    "read_serve_endpoints",
    "serve_service_name",
]

logger = logging.getLogger("chaostoolkit")

SERVE_PORT_NAME = "serve"
DEFAULT_SERVE_PORT = 8000


def serve_service_name(rayservice: str) -> str:
    """Return the name KubeRay gives the RayService's serve Service."""
    return f"{rayservice}-serve-svc"


def _pick_port(ports: Iterable[object]) -> int:
    """Return the "serve" port (else the first "serve-*", else the first, else 8000)."""
    named: list[tuple[str, int]] = []
    for port in ports:
        number = getattr(port, "port", None)
        if number is not None:
            named.append((str(getattr(port, "name", "") or ""), int(number)))
    for name, number in named:
        if name == SERVE_PORT_NAME:
            return number
    for name, number in named:
        if name.startswith(SERVE_PORT_NAME + "-"):
            return number
    return named[0][1] if named else DEFAULT_SERVE_PORT


def _url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}"


def _role(pod_name: str, heads: set[str]) -> Role:
    return "head" if pod_name in heads else "worker"


def _merge(endpoints: list[Endpoint]) -> list[Endpoint]:
    """Drop duplicates (an address may sit in two slices for a moment); ready wins."""
    merged: dict[str, Endpoint] = {}
    for endpoint in endpoints:
        seen = merged.get(endpoint.url)
        if seen is None or (endpoint.ready and not seen.ready):
            merged[endpoint.url] = endpoint
    return sorted(merged.values(), key=lambda e: (e.role != "head", e.pod_name, e.url))


def endpoints_from_slices(
    slices: Iterable[client.V1EndpointSlice], heads: set[str]
) -> list[Endpoint]:
    """Return one `Endpoint` per address in `slices`; pods named in `heads` are "head"."""
    found: list[Endpoint] = []
    for endpoint_slice in slices:
        port = _pick_port(endpoint_slice.ports or [])
        for item in endpoint_slice.endpoints or []:
            conditions = item.conditions
            ready = conditions is None or conditions.ready is None or bool(conditions.ready)
            if conditions is not None and conditions.terminating:
                ready = False
            pod_name = str((item.target_ref and item.target_ref.name) or "")
            for address in item.addresses or []:
                found.append(
                    Endpoint(
                        pod_name=pod_name,
                        url=_url(str(address), port),
                        ready=ready,
                        role=_role(pod_name, heads),
                    )
                )
    return _merge(found)


def endpoints_from_core(endpoints: client.V1Endpoints, heads: set[str]) -> list[Endpoint]:
    """Return one `Endpoint` per address of core `endpoints` (notReadyAddresses: not ready)."""
    found: list[Endpoint] = []
    for subset in endpoints.subsets or []:
        port = _pick_port(subset.ports or [])
        for ready, addresses in ((True, subset.addresses), (False, subset.not_ready_addresses)):
            for address in addresses or []:
                pod_name = str((address.target_ref and address.target_ref.name) or "")
                found.append(
                    Endpoint(
                        pod_name=pod_name,
                        url=_url(str(address.ip), port),
                        ready=ready,
                        role=_role(pod_name, heads),
                    )
                )
    return _merge(found)


def read_serve_endpoints(api: KubeApi, namespace: str, service: str) -> list[Endpoint]:
    """Return every endpoint behind Service `service`, ready or not.

    Head endpoints are told from workers by the pods' `ray.io/node-type=head` label.
    Returns [] when the Service has neither EndpointSlices nor Endpoints.
    """
    slices: list[client.V1EndpointSlice] | None
    try:
        slices = api.list_endpoint_slices(namespace, service)
    except NotFoundError as exc:
        logger.debug("%s; reading core Endpoints instead", exc)
        slices = None
    heads = {
        str(p.metadata.name)
        for p in api.list_pods(namespace, "ray.io/node-type=head")
        if p.metadata is not None
    }
    if slices:
        return endpoints_from_slices(slices, heads)
    try:
        core = api.get_endpoints(namespace, service)
    except NotFoundError:
        logger.debug("Service %s/%s has no EndpointSlices nor Endpoints", namespace, service)
        return []
    return endpoints_from_core(core, heads)
