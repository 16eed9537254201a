"""The shipped Role (deploy/role.yaml) grants no verb the target never uses: on the double.

Why here and not on the real server: proving "no unused verb" needs a record of every call
the target makes. The real API server keeps one in its audit log, but the local control plane
(chaosraysvc.kubenode.controlplane) does not yet start kube-apiserver with
`--audit-policy-file` / `--audit-log-path`. Until it does, the double records the calls.
That the Role as shipped *allows* every call is proven by the real RBAC authorizer in
`real/test_real_rbac.py`.
"""

from __future__ import annotations

from chaosraysvc.targets.base import pods_of_role

from .. import seed
from .apidouble import ApiCall
from .conftest import StartCluster, shipped_rbac


def _exercise(start_cluster: StartCluster) -> list[ApiCall]:
    """Make every call the target can make: each activity's path and the Endpoints fallback."""
    cluster = start_cluster()
    target = cluster.target()
    target.describe()
    target.gcs_fault_tolerance()
    target.pods()
    target.ha_facts(live=False)
    target.serve_endpoints()
    target.delete_pod(pods_of_role(target, "worker")[0], dry_run=True)
    fallback = start_cluster(seed.ha_sample(slices=False))
    fallback.target().serve_endpoints()
    return cluster.double.calls + fallback.double.calls


def test_the_role_grants_exactly_the_calls_the_target_makes(start_cluster: StartCluster) -> None:
    rbac = shipped_rbac()
    calls = _exercise(start_cluster)
    used = {(c.verb, c.group, c.resource) for c in calls}

    lacking = sorted({(c.verb, c.group, c.resource) for c in calls if not rbac.allows(c)})
    unused = sorted(rbac.granted() - used)

    assert lacking == [], f"calls the Role does not allow: {lacking}"
    assert unused == [], f"the Role grants verbs the target never uses: {unused}"
