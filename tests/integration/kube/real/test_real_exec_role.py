"""The opt-in pods/exec Role (deploy/exec-role.yaml), enforced by the real RBAC authorizer.

kill_gcs_server on Kubernetes kills the GCS inside the head through `pods/exec`. deploy/'s
Role stays as it is and does not grant it: with that Role alone the exec is refused and the
error names the opt-in Role; with deploy/exec-role.yaml bound too, the API server authorizes
`get` and `create` on `pods/exec` for the account (a SubjectAccessReview: the seed's pods
have no kubelet to exec in). The exec itself, both ways, runs against the lab's kubelet in
test_real_kubelet_api.py, and the whole gcs-kill.json on the lab's node in test_real_node.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from chaosraysvc.errors import KubernetesApiError
from tests.support.polling import wait_for

from .conftest import ACCOUNT, RealCluster, deploy_manifest

pytestmark = pytest.mark.apiserver


def _head(cluster: RealCluster) -> Any:
    target = cluster.target()
    return target, next(p for p in target.pods() if p.role == "head")


def test_without_the_exec_role_the_kill_is_forbidden_and_names_the_opt_in_role(
    as_account: RealCluster,
) -> None:
    target, head = _head(as_account)

    with pytest.raises(KubernetesApiError) as refused:
        target.kill_process(head, "gcs_server")

    assert refused.value.status == 403
    assert "pods/exec" in str(refused.value)
    assert "deploy/exec-role.yaml" in str(refused.value)


def test_with_the_exec_role_bound_the_authorizer_allows_exec_to_the_account(
    as_account: RealCluster,
) -> None:
    def allowed(verb: str) -> bool:
        review = client.AuthorizationV1Api(as_account.plane.api).create_subject_access_review(
            {
                "spec": {
                    "user": f"system:serviceaccount:{as_account.namespace}:{ACCOUNT}",
                    "groups": [
                        "system:serviceaccounts",
                        f"system:serviceaccounts:{as_account.namespace}",
                    ],
                    "resourceAttributes": {
                        "namespace": as_account.namespace,
                        "verb": verb,
                        "resource": "pods",
                        "subresource": "exec",
                    },
                }
            }  # fmt: skip
        )
        return bool(review.status.allowed)

    before = {verb: allowed(verb) for verb in ("get", "create")}
    rbac = client.RbacAuthorizationV1Api(as_account.plane.api)
    rbac.create_namespaced_role(as_account.namespace, deploy_manifest("exec-role.yaml"))
    binding = deploy_manifest("exec-rolebinding.yaml")
    for subject in binding["subjects"]:
        subject["namespace"] = as_account.namespace
    rbac.create_namespaced_role_binding(as_account.namespace, binding)

    after = wait_for(
        lambda: (found := {verb: allowed(verb) for verb in ("get", "create")})
        and all(found.values())
        and found,
        10,
        what="the RoleBinding to take effect",
    )

    assert before == {"get": False, "create": False}  # deploy/role.yaml as shipped
    assert after == {"get": True, "create": True}
