"""Serve and dashboard URLs of the kubernetes target: which route, in which order, and why not.

The API server's service proxy is exercised against a loopback HTTP server standing in for
the API server (the real one, proxying to a real dashboard that moves, is in
tests/integration/kube/real/test_real_dashboard_proxy.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from chaosraysvc.config import Settings
from chaosraysvc.errors import ConfigurationError, KubernetesApiError, ServeApiError
from chaosraysvc.kube.client import KubeApi
from chaosraysvc.kube.proxy import ApiServerProxyDashboard
from chaosraysvc.serve import nodes, rest
from chaosraysvc.targets.kubernetes import KubernetesTarget
from tests.support.loopback import LoopbackServer, QuietHandler

SETTINGS = Settings(target="kubernetes", rayservice_name="rayservice-ha", rayservice_namespace="ml")
PROXY_PATH = "/api/v1/namespaces/ml/services/rayservice-ha-head-svc:dashboard/proxy"
TOKEN = "t0ken-never-logged"


@dataclass
class ApiServerStandIn:
    """What the stand-in saw, and what it answers next: (status, JSON body, delay s)."""

    url: str
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    answer: tuple[int, Any, float] = (200, {}, 0.0)


@pytest.fixture
def apiserver() -> Iterator[ApiServerStandIn]:
    """A loopback HTTP server standing in for the API server's service proxy."""
    state = ApiServerStandIn(url="")

    class Handler(QuietHandler):
        def _answer(self) -> None:
            state.seen.append(
                (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
            )
            status, document, delay = state.answer
            time.sleep(delay)
            self.answer(status, document)

        do_GET = _answer  # http.server's names
        do_PUT = _answer

    with LoopbackServer(Handler) as server:
        state.url = server.url
        yield state


def _configuration(url: str) -> client.Configuration:
    configuration = client.Configuration(host=url)
    configuration.api_key = {"authorization": TOKEN}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return configuration


def _api(url: str) -> KubeApi:
    return KubeApi(client.ApiClient(_configuration(url)), request_timeout=2.0)


def _no_api() -> KubeApi:
    raise AssertionError("the Kubernetes client must not be needed on this route")


def test_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSTOOLKIT_IN_POD", "true")
    settings = Settings(
        target="kubernetes",
        serve_url="http://127.0.0.1:8000/",
        dashboard_url="http://127.0.0.1:8265",
    )
    target = KubernetesTarget(settings)

    assert target.serve_url() == "http://127.0.0.1:8000"
    assert target.dashboard().url == "http://127.0.0.1:8265"
    assert type(target.dashboard()).__name__ == "Dashboard"


def test_a_configured_dashboard_url_wins_outside_the_cluster_without_a_kubeconfig(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CHAOSTOOLKIT_IN_POD", raising=False)
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    target = KubernetesTarget(
        Settings(target="kubernetes", dashboard_url="http://127.0.0.1:8265"), api=None
    )

    assert target.dashboard().url == "http://127.0.0.1:8265"  # no client was configured


def test_in_cluster_urls_are_the_rayservice_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSTOOLKIT_IN_POD", "true")
    target = KubernetesTarget(SETTINGS)

    assert target.serve_url() == "http://rayservice-ha-serve-svc.ml.svc.cluster.local:8000"
    assert target.dashboard().url == "http://rayservice-ha-head-svc.ml.svc.cluster.local:8265"


def test_outside_the_cluster_the_dashboard_is_the_head_service_through_the_api_server(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("CHAOSTOOLKIT_IN_POD", raising=False)
    target = KubernetesTarget(SETTINGS, api=_api("https://203.0.113.7:6443"))

    with caplog.at_level(logging.INFO, logger="chaostoolkit"):
        dashboard = target.dashboard()

    assert isinstance(dashboard, ApiServerProxyDashboard)
    assert dashboard.url == "https://203.0.113.7:6443" + PROXY_PATH
    assert target.dashboard() is dashboard  # resolved once per target
    logged = caplog.text
    assert "API server's service proxy of the head Service" in logged
    assert "rayservice-ha-head-svc:dashboard/proxy" in logged
    assert TOKEN not in logged


def test_the_route_is_logged_for_a_configured_url_and_in_the_cluster(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="chaostoolkit"):
        KubernetesTarget(Settings(target="kubernetes", dashboard_url="http://h:1")).dashboard()
        monkeypatch.setenv("CHAOSTOOLKIT_IN_POD", "true")
        KubernetesTarget(SETTINGS).dashboard()

    assert "http://h:1 (dashboard_url)" in caplog.text
    assert "cluster DNS name (CHAOSTOOLKIT_IN_POD=true)" in caplog.text


def test_serve_calls_go_through_the_proxy_with_the_clients_credentials(
    apiserver: ApiServerStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHAOSTOOLKIT_IN_POD", raising=False)
    target = KubernetesTarget(SETTINGS, api=_api(apiserver.url))
    apiserver.answer = (200, {"applications": {"fruit_app": {"status": "RUNNING"}}}, 0.0)

    details = rest.get_serve_details(target.dashboard())

    assert rest.application_statuses(details) == {"fruit_app": "RUNNING"}
    [(method, path, headers)] = apiserver.seen
    assert method == "GET"
    assert path == PROXY_PATH + "/api/serve/applications/?api_type=declarative"
    assert headers["authorization"] == f"Bearer {TOKEN}"


def test_a_refreshed_token_is_used_on_the_next_read(apiserver: ApiServerStandIn) -> None:
    configuration = _configuration(apiserver.url)
    issued = iter(f"tok-{n}" for n in range(1, 10))

    def refresh(conf: client.Configuration) -> None:  # as kubeconfig exec plugins do
        conf.api_key["authorization"] = next(issued)

    configuration.refresh_api_key_hook = refresh
    api = KubeApi(client.ApiClient(configuration))
    dashboard = ApiServerProxyDashboard(api, "ml", "rayservice-ha-head-svc")

    rest.get_serve_details(dashboard)
    rest.get_serve_details(dashboard)

    assert [h["authorization"] for _, _, h in apiserver.seen] == ["Bearer tok-1", "Bearer tok-2"]


def test_the_proxy_reads_ray_nodes_too(apiserver: ApiServerStandIn) -> None:
    dashboard = ApiServerProxyDashboard(_api(apiserver.url), "ml", "rayservice-ha-head-svc")
    summary = [{"ip": "198.18.1.10", "raylet": {"nodeId": "n1", "state": "ALIVE"}}]
    apiserver.answer = (200, {"data": {"summary": summary}}, 0.0)

    [node] = nodes.list_nodes(dashboard)

    assert node.node_id == "n1" and node.alive
    assert apiserver.seen[0][1] == PROXY_PATH + "/nodes?view=summary"


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def test_a_forbidden_proxy_names_the_permission_to_grant(apiserver: ApiServerStandIn) -> None:
    dashboard = ApiServerProxyDashboard(_api(apiserver.url), "ml", "rayservice-ha-head-svc")
    said = (
        'services "rayservice-ha-head-svc:dashboard" is forbidden: User "system:serviceaccount:'
        'ml:chaosraysvc" cannot get resource "services/proxy" in API group "" in the namespace '
        '"ml"'
    )
    apiserver.answer = (403, _status(403, "Forbidden", said), 0.0)

    with pytest.raises(KubernetesApiError) as caught:
        rest.get_serve_details(dashboard)

    message = str(caught.value)
    assert "forbidden (403): the account may not 'get' resource 'services/proxy'" in message
    assert "in namespace 'ml'" in message and "deploy/role.yaml" in message
    assert said in message


def test_no_head_endpoint_is_a_dashboard_that_does_not_answer(
    apiserver: ApiServerStandIn,
) -> None:
    dashboard = ApiServerProxyDashboard(_api(apiserver.url), "ml", "rayservice-ha-head-svc")
    said = 'no endpoints available for service "rayservice-ha-head-svc"'
    apiserver.answer = (503, _status(503, "ServiceUnavailable", said), 0.0)

    with pytest.raises(ServeApiError) as caught:  # "unknown" for probes, not yet for recovery
        rest.get_serve_details(dashboard)

    assert f"answered 503 to GET /api/serve/applications/: API server: {said}" in str(caught.value)
    assert PROXY_PATH in str(caught.value)


def test_a_dashboard_slow_behind_the_proxy_is_a_timeout_of_the_read(
    apiserver: ApiServerStandIn,
) -> None:
    dashboard = ApiServerProxyDashboard(_api(apiserver.url), "ml", "rayservice-ha-head-svc")
    apiserver.answer = (200, {}, 1.5)

    started = time.monotonic()
    with pytest.raises(ServeApiError, match=r"no answer within 0.3 s from Service"):
        rest.get_serve_details(dashboard, timeout=0.3)

    assert time.monotonic() - started < 1.2  # one try, not retried


def test_an_unreachable_api_server_is_an_api_error(apiserver: ApiServerStandIn) -> None:
    url = apiserver.url
    dashboard = ApiServerProxyDashboard(_api(url.rsplit(":", 1)[0] + ":9"), "ml", "svc")

    with pytest.raises(KubernetesApiError, match=r"is unreachable \(connection refused\)"):
        rest.get_serve_details(dashboard)


def test_a_tls_failure_says_to_check_the_certificate_settings(
    apiserver: ApiServerStandIn,
) -> None:
    https = apiserver.url.replace("http://", "https://")  # a TLS client meets plain HTTP
    dashboard = ApiServerProxyDashboard(_api(https), "ml", "rayservice-ha-head-svc")

    with pytest.raises(KubernetesApiError) as caught:
        rest.get_serve_details(dashboard)

    message = str(caught.value)
    assert "could not get services/proxy 'rayservice-ha-head-svc:dashboard'" in message
    assert "SSLError" in message and "certificate settings" in message


def test_outside_the_cluster_serve_url_is_refused_naming_how_to_set_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CHAOSTOOLKIT_IN_POD", raising=False)
    target = KubernetesTarget(SETTINGS)

    with pytest.raises(ConfigurationError) as serve:
        target.serve_url()

    message = str(serve.value)
    assert "kubectl port-forward -n ml svc/rayservice-ha-serve-svc 8000:8000" in message
    assert "serve_url" in message and "RAYSVC_SERVE_URL" in message
    assert "deploy/" in message
    assert "not sent through the API server's service proxy" in message
