"""deploy/'s Role grants exactly the calls the kubernetes target makes, read from the audit log.

The real API server logs every request of a workload's ServiceAccount (the control plane's
audit policy, `logs/audit.jsonl`). The target runs every call path as deploy/'s
ServiceAccount; the calls the log shows must all be granted, none refused, and every granted
verb used, except `get endpoints`: the fallback for clusters that do not serve
discovery.k8s.io/v1, which a real server always does (the API double proves that path, in
tests/integration/kube/faults/test_api_faults.py). The head pod sits on a dashboard double's
address, so the dashboard reads through the API server's service proxy (`get services/proxy`,
a subresource: logged as resource `services`, subresource `proxy`) reach a server.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaosraysvc.errors import NotFoundError
from chaosraysvc.serve import nodes, rest
from chaosraysvc.targets.base import pods_of_role
from tests.support.polling import wait_for

from .conftest import ACCOUNT, RealCluster, deploy_manifest

pytestmark = pytest.mark.node

MARKER = "zz-audit-end"  # a last call, to know the log holds every call before it
FALLBACK_ONLY = {("get", "", "endpoints")}

Call = tuple[str, str, str]  # verb, API group, resource (with its subresource: services/proxy)


def _events(cluster: RealCluster, user: str) -> list[dict[str, Any]]:
    log = cluster.plane.plane.audit_log
    lines = log.read_text().splitlines() if log.exists() else []
    events = (json.loads(line) for line in lines if line.strip())
    return [
        e for e in events if e.get("stage") == "ResponseComplete" and e["user"]["username"] == user
    ]


def _call(event: dict[str, Any]) -> Call:
    ref = event["objectRef"]
    sub = ref.get("subresource", "")
    return event["verb"], ref.get("apiGroup", ""), ref["resource"] + (f"/{sub}" if sub else "")


def _granted() -> set[Call]:
    rules = deploy_manifest("role.yaml")["rules"]
    return {
        (verb, group, resource)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_role_grants_exactly_the_calls_the_target_makes(
    as_account_with_dashboard: RealCluster,
) -> None:
    as_account = as_account_with_dashboard
    target = as_account.target()
    target.validate()
    target.describe()
    target.gcs_fault_tolerance()
    target.pods()
    target.ha_facts(live=False)
    target.serve_endpoints()
    target.ray_clusters()
    target.delete_pod(pods_of_role(target, "worker")[0], dry_run=True)
    assert rest.application_statuses(rest.get_serve_details(target.dashboard())) == {
        "fruit_app": "RUNNING"
    }  # through the API server: no dashboard_url, not in a pod
    assert [n.node_id for n in nodes.list_nodes(target.dashboard())] == ["head-a"]
    with pytest.raises(NotFoundError):
        as_account.target(rayservice_name=MARKER).rayservice()
    user = f"system:serviceaccount:{as_account.namespace}:{ACCOUNT}"

    events = wait_for(
        lambda: (found := _events(as_account, user))
        and any(e["objectRef"].get("name") == MARKER for e in found)
        and found,
        15,
        what="the audit log to hold the calls",
    )

    used = {_call(e) for e in events}
    refused = sorted({_call(e) for e in events if e["responseStatus"].get("code") == 403})
    assert refused == [], f"calls the Role refused: {refused}"
    assert sorted(used - _granted()) == [], "calls outside the Role (and yet allowed?)"
    assert sorted(_granted() - used) == sorted(FALLBACK_ONLY), "granted verbs never used"
    assert {e["objectRef"]["namespace"] for e in events} == {as_account.namespace}
