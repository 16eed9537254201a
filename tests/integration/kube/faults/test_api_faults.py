"""Faults a real kube-apiserver does not produce on demand, on the HTTP-level API double.

Everything else the kubernetes target does is proven against the real control plane in
`real/`. These stay on the double because the real server cannot be made to:

- stall every answer (the client's request timeout), short of stopping the process;
- serve no EndpointSlice API (every supported Kubernetes release serves
  discovery.k8s.io/v1; the target's fallback to core Endpoints is for older or trimmed ones).
"""

from __future__ import annotations

import pytest

from chaosraysvc.errors import KubernetesApiError
from chaosraysvc.targets.base import Endpoint

from .. import seed
from .conftest import StartCluster

pytestmark = pytest.mark.fast


def test_a_stalled_api_times_out_naming_the_server(start_cluster: StartCluster) -> None:
    cluster = start_cluster(stall=1.0)

    with pytest.raises(KubernetesApiError, match=r"did not answer within 0\.2 s") as err:
        cluster.target(request_timeout=0.2).pods()
    assert cluster.server.url in str(err.value)


def test_without_the_endpointslice_api_the_core_endpoints_are_read(
    start_cluster: StartCluster,
) -> None:
    cluster = start_cluster(seed.ha_sample(slices=False))

    assert cluster.target().serve_endpoints() == [
        Endpoint(seed.HEAD, "http://198.18.1.10:8000", True, "head"),
        Endpoint(seed.WORKERS[0], "http://198.18.1.11:8000", True, "worker"),
        Endpoint(seed.WORKERS[1], "http://198.18.1.12:8000", True, "worker"),
    ]
    assert ("get", "endpoints", seed.SERVE_SVC) in {
        (c.verb, c.resource, c.name) for c in cluster.double.calls
    }
