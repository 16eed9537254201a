"""The dashboard through the real API server's service proxy, as a new user meets it.

A RayService named otherwise than the sample, in a namespace of its own, no `serve_url` nor
`dashboard_url`, not in a pod: the target reads the Ray dashboard through
`<api server>/api/v1/namespaces/<ns>/services/<name>-head-svc:dashboard/proxy/` (the URL
KubeRay's own operator uses with `--use-kubernetes-proxy`). Behind the head Service (headless,
as KubeRay makes it) is a dashboard double in a network namespace of its own (the API server
refuses to proxy to loopback), on the head pod's address; the real endpoints controller
lists it.
Then the head moves as KubeRay moves it (the pod deleted, a new one on another address) and
the same probes, and the same `Dashboard` object, answer from the new head; and
`delete_head_pod`, the head-kill, sees the applications RUNNING again through the proxy.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from chaosraysvc.activities import pod_actions, serve_probes
from chaosraysvc.errors import ServeApiError
from chaosraysvc.serve import rest
from chaosraysvc.serve.dashboard import Dashboard
from chaosraysvc.targets.base import pods_of_role
from tests.support.polling import wait_for

from .. import seed
from .conftest import (
    DashboardHeads,
    RealCluster,
    SeedCluster,
    head_endpoint_addresses,
    with_head_at,
)
from .loader import in_namespace

pytestmark = pytest.mark.node

NAME = "shop-llm"  # not the sample's rayservice-ha
HEAD_SVC = f"{NAME}-head-svc"
NEW_HEAD = f"{seed.CLUSTER}-head-b2n4x".replace(seed.RAYSERVICE, NAME)


def _renamed(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the seed's objects for a RayService called NAME (its cluster, pods, Services)."""
    renamed: list[dict[str, Any]] = json.loads(json.dumps(objects).replace(seed.RAYSERVICE, NAME))
    return renamed


def _seed_with_headless_head_service(seed_cluster: SeedCluster, head_address: str) -> RealCluster:
    """Seed the sample as NAME, the head at `head_address`, its head Service headless.

    KubeRay makes `<name>-head-svc` headless (`clusterIP: None`) unless told otherwise; the
    API server's proxy goes by the Service's endpoints, not by a ClusterIP.
    """
    objects = _renamed(with_head_at(seed.ha_sample(), head_address))
    [head_svc] = [
        o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == HEAD_SVC
    ]
    objects.remove(head_svc)
    cluster = seed_cluster(objects, wait_slices=False)
    [body] = in_namespace([head_svc], cluster.namespace)
    for key in ("uid", "resourceVersion", "creationTimestamp"):
        body["metadata"].pop(key, None)
    body["spec"]["clusterIP"] = "None"
    body["spec"].pop("clusterIPs", None)
    cluster.plane.core.create_namespaced_service(cluster.namespace, body)
    return cluster


def _configuration(cluster: RealCluster) -> dict[str, Any]:
    return {
        "raysvc_target": "kubernetes",
        "rayservice_name": NAME,
        "rayservice_namespace": cluster.namespace,
    }  # no serve_url, no dashboard_url; kube_env cleared CHAOSTOOLKIT_IN_POD


def _placement(pod: str) -> dict[str, Any]:
    return {pod: {"role": "head", "replicas": {"fruit_app/FruitMarket": 1}}}


def _answering_node(dashboard: Dashboard) -> str:
    try:
        return str(rest.get_serve_details(dashboard, timeout=2.0)["controller_info"]["node_id"])
    except ServeApiError:
        return ""


def _start_new_head(cluster: RealCluster, address: str) -> str:
    """Create the head pod KubeRay would create after a head loss, at `address`."""
    pod = with_head_at([seed.head_pod()], address)[0]
    pod["metadata"]["name"] = f"{seed.CLUSTER}-head-b2n4x"
    [body] = in_namespace(_renamed([pod]), cluster.namespace)
    cluster.loader.create(body)
    return str(body["metadata"]["name"])


def test_the_dashboard_is_read_through_the_api_server_and_follows_the_head_when_it_moves(
    seed_cluster: SeedCluster, dashboard_heads: DashboardHeads
) -> None:
    head_a = dashboard_heads("head-a")
    head_b = dashboard_heads("head-b")
    cluster = _seed_with_headless_head_service(seed_cluster, head_a.address)
    head_svc = cluster.plane.core.read_namespaced_service(HEAD_SVC, cluster.namespace)
    assert head_svc.spec.cluster_ip == "None"
    wait_for(
        lambda: head_endpoint_addresses(cluster, HEAD_SVC) == {head_a.address},
        15,
        what="the endpoints controller to list head A",
        state=lambda: head_endpoint_addresses(cluster, HEAD_SVC),
    )
    conf = _configuration(cluster)
    old_head = seed.HEAD.replace(seed.RAYSERVICE, NAME)

    assert serve_probes.serve_applications_healthy(configuration=conf) is True
    assert serve_probes.serve_proxies_healthy(configuration=conf) is True
    assert serve_probes.serve_replica_placement(configuration=conf)["nodes"] == _placement(old_head)

    target = cluster.target(rayservice_name=NAME)  # one target and one Dashboard throughout
    dashboard = target.dashboard()
    assert dashboard.url == (
        f"{cluster.server}/api/v1/namespaces/{cluster.namespace}/services/"
        f"{HEAD_SVC}:dashboard/proxy"
    )
    assert _answering_node(dashboard) == "head-a"
    facts = target.ha_facts()  # the doctor reads the live placement the same way
    assert facts.placement_source == f"dashboard {dashboard.url}"
    assert f"a Serve proxy runs on the head pod {old_head}" in facts.head_proxy_evidence

    # The head is lost; until its replacement is ready there is no endpoint to proxy to.
    [head] = pods_of_role(target, "head")
    target.delete_pod(head, grace_period=0)
    wait_for(
        lambda: not head_endpoint_addresses(cluster, HEAD_SVC),
        15,
        what="the endpoints controller to drop head A",
    )
    head_a.stop()  # nothing answers on A's address any more
    with pytest.raises(ServeApiError, match=f"no endpoints available for service .{HEAD_SVC}"):
        rest.get_serve_details(dashboard)

    new_head = _start_new_head(cluster, head_b.address)
    answered = wait_for(
        lambda: _answering_node(dashboard),
        20,
        what="the dashboard to answer through the proxy from the new head",
        state=lambda: head_endpoint_addresses(cluster, HEAD_SVC),
    )

    assert answered == "head-b"
    assert serve_probes.serve_applications_healthy(configuration=conf) is True
    assert serve_probes.serve_replica_placement(configuration=conf)["nodes"] == _placement(new_head)
    target.close()


def test_head_kill_through_the_kubernetes_target_recovers_with_no_url_given(
    seed_cluster: SeedCluster, dashboard_heads: DashboardHeads
) -> None:
    """The issue's run: delete_head_pod's recovery wait reads the dashboard through the API
    server, so the applications are seen RUNNING again once the new head answers."""
    head_a = dashboard_heads("head-a")
    head_b = dashboard_heads("head-b")
    cluster = _seed_with_headless_head_service(seed_cluster, head_a.address)
    wait_for(
        lambda: head_endpoint_addresses(cluster, HEAD_SVC) == {head_a.address},
        15,
        what="the endpoints controller to list head A",
    )
    old_head = seed.HEAD.replace(seed.RAYSERVICE, NAME)
    failures: list[BaseException] = []

    def kuberay() -> None:  # replaces the head once it is gone, as the operator would
        try:
            wait_for(lambda: old_head not in cluster.pod_names(), 30, what="head A deleted")
            wait_for(
                lambda: not head_endpoint_addresses(cluster, HEAD_SVC),
                15,
                what="the endpoints controller to drop head A",
            )
            head_a.stop()
            _start_new_head(cluster, head_b.address)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    operator = threading.Thread(target=kuberay, daemon=True)
    operator.start()
    result = pod_actions.delete_head_pod(timeout=60, configuration=_configuration(cluster))
    operator.join(30)

    assert failures == []
    assert result["deleted"]["name"] == old_head
    assert result["before"]["applications"] == ["fruit_app"]  # read through the API server
    recovery = result["recovery"]
    assert recovery["recovered"] is True, recovery
    assert recovery["new_pod"] == NEW_HEAD
    assert set(recovery["seconds_to"]) >= {
        "pod_ready",
        "endpoints_restored",
        "applications_running",
    }
