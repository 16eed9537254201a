"""The shipped Role (deploy/role.yaml) grants exactly the calls the target makes.

Every API double in the session enforces that Role, so a call it lacks fails the test that
makes it (403). This module runs last (see conftest) and checks the other way round: a verb
granted but never used during the session fails. It exercises every path of the target
itself as well, so it also holds when run alone.
"""

from __future__ import annotations

import yaml

from chaosraysvc.targets.base import pods_of_role

from . import seed
from .apidouble import ApiCall
from .conftest import ROLE_MANIFEST, StartCluster, shipped_rbac


def _exercise(start_cluster: StartCluster) -> list[ApiCall]:
    cluster = start_cluster()
    target = cluster.target()
    target.describe()
    target.gcs_fault_tolerance()
    target.serve_endpoints()
    target.delete_pod(pods_of_role(target, "worker")[0], dry_run=True)
    fallback = start_cluster(seed.ha_sample(slices=False))
    fallback.target().serve_endpoints()
    return cluster.double.calls + fallback.double.calls


def test_the_role_is_namespaced_and_has_no_wildcards() -> None:
    [role] = [d for d in yaml.safe_load_all(ROLE_MANIFEST.read_text()) if d]
    assert role["kind"] == "Role"
    for rule in role["rules"]:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule


def test_the_role_grants_exactly_what_the_session_used(
    start_cluster: StartCluster, api_usage: list[ApiCall]
) -> None:
    rbac = shipped_rbac()
    calls = api_usage + _exercise(start_cluster)
    used = {(c.verb, c.group, c.resource) for c in calls}

    lacking = sorted({(c.verb, c.group, c.resource) for c in calls if not rbac.allows(c)})
    unused = sorted(rbac.granted() - used)

    assert lacking == [], f"calls the Role does not allow: {lacking}"
    assert unused == [], f"the Role grants verbs no test ever saw used: {unused}"
