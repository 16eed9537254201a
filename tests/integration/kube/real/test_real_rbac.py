"""deploy/'s ServiceAccount, Role and RoleBinding as shipped, enforced by the real RBAC authorizer.

The activities run with a kubeconfig holding a token of the ServiceAccount (TokenRequest API),
both ways: everything succeeds with the Role as shipped, and removing any one permission makes
the activity that needs it fail with an error naming the verb, the resource and the namespace.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaosraysvc.activities import pod_actions, pod_probes, serve_probes
from chaosraysvc.cli import main
from chaosraysvc.runtime.ports import free_port
from tests.support.polling import wait_for

from .. import seed
from .conftest import ACCOUNT, RealCluster, deploy_manifest

CLOSED_DASHBOARD = f"http://127.0.0.1:{free_port()}"


def _configuration(cluster: RealCluster) -> dict[str, Any]:
    # No Ray runs behind the seed: the dashboard is a closed port (the doctor notes it).
    return {
        "raysvc_target": "kubernetes",
        "rayservice_name": seed.RAYSERVICE,
        "rayservice_namespace": cluster.namespace,
        "dashboard_url": CLOSED_DASHBOARD,
    }


def _through_the_api_server(conf: dict[str, Any]) -> dict[str, Any]:
    """Return `conf` without a dashboard URL: the dashboard is read through the API server."""
    return {**conf, "dashboard_url": ""}


@pytest.mark.fast  # reads deploy/role.yaml only
def test_the_role_is_namespaced_and_has_no_wildcards() -> None:
    role = deploy_manifest("role.yaml")
    assert role["kind"] == "Role"
    for rule in role["rules"]:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule


@pytest.mark.apiserver
def test_every_kubernetes_activity_and_the_doctor_succeed_with_the_role_as_shipped(
    as_account: RealCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = _configuration(as_account)
    monkeypatch.setenv("RAYSVC_DASHBOARD_URL", CLOSED_DASHBOARD)

    assert serve_probes.serve_endpoint_count(conf) == 3
    assert pod_probes.head_pod_ready(conf) is True
    assert pod_probes.gcs_fault_tolerance_enabled(conf) is True
    assert pod_probes.redis_storage_persistent(conf) is False
    deleted = pod_actions.delete_worker_pod(dry_run=True, configuration=conf)
    assert deleted["deleted"]["name"] in seed.WORKERS and deleted["dry_run"] is True
    code = main(
        [
            "doctor",
            "--target",
            "kubernetes",
            "--name",
            seed.RAYSERVICE,
            "--namespace",
            as_account.namespace,
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "gcs-storage-ephemeral" in out  # the sample's risk, read as the account
    assert "forbidden" not in out.lower()


@pytest.mark.node  # the dashboard double needs a network namespace
def test_the_dashboard_is_read_through_the_api_server_with_the_role_as_shipped(
    as_account_with_dashboard: RealCluster,
) -> None:
    conf = _through_the_api_server(_configuration(as_account_with_dashboard))

    assert serve_probes.serve_applications_healthy(configuration=conf) is True
    assert serve_probes.serve_proxies_healthy(configuration=conf) is True


@pytest.mark.node
def test_the_serve_health_script_reads_the_dashboard_through_the_api_server(
    as_account_with_dashboard: RealCluster,
) -> None:
    cluster = as_account_with_dashboard
    env = {
        **os.environ,
        "RAYSVC_TARGET": "kubernetes",
        "RAYSVC_NAMESPACE": cluster.namespace,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    env.pop("RAYSVC_DASHBOARD_URL", None)

    def serve_health() -> tuple[int, dict[str, Any]]:
        script = Path(__file__).resolve().parents[4] / "probes" / "serve_health.py"
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
        )
        return done.returncode, json.loads(done.stdout or "{}")

    code, report = serve_health()
    assert (code, report.get("healthy")) == (0, True), report
    assert report["applications"] == {"fruit_app": "RUNNING"}

    rbac = client.RbacAuthorizationV1Api(cluster.plane.api)
    rbac.replace_namespaced_role(
        "chaosraysvc", cluster.namespace, _without(deploy_manifest("role.yaml"), "get", "", PROXY)
    )
    code, report = wait_for(
        lambda: (answer := serve_health())[0] != 0 and answer,
        10,
        what="the authorizer to refuse the service proxy",
    )
    assert code == 3
    assert "may not 'get' resource 'services/proxy'" in report["error"]


# Each permission the Role grants, and a call that needs it. `get endpoints` is only used on
# clusters that serve no EndpointSlice API (the double covers it): a 1.34 server always does.
# `get services/proxy` runs with the head on a dashboard double the API server can reach.
Call = Callable[[dict[str, Any]], object]
PROXY = "services/proxy"
PERMISSIONS: list[tuple[str, str, str, Call]] = [
    ("get", "ray.io", "rayservices", lambda conf: pod_probes.head_pod_ready(conf)),
    ("list", "", "pods", lambda conf: pod_probes.head_pod_ready(conf)),
    (
        "delete",
        "",
        "pods",
        lambda conf: pod_actions.delete_worker_pod(dry_run=True, configuration=conf),
    ),
    ("get", "", "services", lambda conf: pod_probes.redis_storage_persistent(conf)),
    (
        "list",
        "discovery.k8s.io",
        "endpointslices",
        lambda conf: serve_probes.serve_endpoint_count(conf),
    ),
    (
        "get",
        "",
        PROXY,
        lambda conf: serve_probes.serve_applications_healthy(
            configuration=_through_the_api_server(conf)
        ),
    ),
]


def _without(role: dict[str, Any], verb: str, group: str, resource: str) -> dict[str, Any]:
    """Return `role` with `verb` on `group/resource` taken away (and nothing else)."""
    smaller = copy.deepcopy(role)
    rules = []
    for rule in smaller["rules"]:
        if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
            others = [r for r in rule["resources"] if r != resource]
            if others:
                rules.append({**rule, "resources": others})
            verbs = [v for v in rule["verbs"] if v != verb]
            if verbs:
                rules.append({**rule, "resources": [resource], "verbs": verbs})
        else:
            rules.append(rule)
    assert rules != smaller["rules"], f"the Role grants no {verb} on {group}/{resource}"
    smaller["rules"] = rules
    return smaller


@pytest.mark.parametrize(
    ("verb", "group", "resource", "call"),
    [
        # `services/proxy` needs the dashboard double: a network namespace, so root.
        pytest.param(
            *p,
            id=f"{p[0]}-{p[2]}",
            marks=pytest.mark.node if p[2] == PROXY else pytest.mark.apiserver,
        )
        for p in PERMISSIONS
    ],
)
def test_removing_one_permission_fails_the_activity_that_needs_it_by_name(
    request: pytest.FixtureRequest, verb: str, group: str, resource: str, call: Call
) -> None:
    fixture = "as_account_with_dashboard" if resource == PROXY else "as_account"
    as_account: RealCluster = request.getfixturevalue(fixture)
    conf = _configuration(as_account)
    call(conf)  # allowed as shipped
    rbac = client.RbacAuthorizationV1Api(as_account.plane.api)
    rbac.replace_namespaced_role(
        "chaosraysvc",
        as_account.namespace,
        _without(deploy_manifest("role.yaml"), verb, group, resource),
    )

    def refused() -> str:
        try:
            call(conf)
        except Exception as exc:  # noqa: BLE001 - the activity's translated error
            return str(exc)
        return ""  # the authorizer's cache has not seen the new Role yet

    message = wait_for(refused, 10, what=f"the authorizer to refuse {verb} {resource}")

    assert "forbidden (403)" in message
    assert f"may not '{verb}' resource '{resource}'" in message
    if group:
        assert f"'{resource}' (API group {group})" in message
    assert f'cannot {verb} resource "{resource}"' in message  # what the server said
    assert f"in namespace '{as_account.namespace}'" in message
    assert f"system:serviceaccount:{as_account.namespace}:{ACCOUNT}" in message
