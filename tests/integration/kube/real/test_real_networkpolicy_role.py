"""The opt-in NetworkPolicy Role (deploy/networkpolicy-role.yaml), enforced by the real RBAC
authorizer, and the policies partition_redis writes, as the real API server stores them.

With deploy/'s Role alone the partition is forbidden and the error names the opt-in Role;
with deploy/networkpolicy-role.yaml bound too, the account creates both policies (a server-
side dry run and for real) and the rollback deletes them. The seed has no kubelet, so nothing
enforces them here: that and the whole redis-partition.json run on the lab's node in
test_real_redis_partition.py.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from chaosraysvc.errors import KubernetesApiError

from .. import seed
from .conftest import RealCluster, deploy_manifest

pytestmark = pytest.mark.apiserver


def _bind_networkpolicy_role(cluster: RealCluster) -> None:
    rbac = client.RbacAuthorizationV1Api(cluster.plane.api)
    rbac.create_namespaced_role(cluster.namespace, deploy_manifest("networkpolicy-role.yaml"))
    binding = deploy_manifest("networkpolicy-rolebinding.yaml")
    for subject in binding["subjects"]:
        subject["namespace"] = cluster.namespace
    rbac.create_namespaced_role_binding(cluster.namespace, binding)


def _policies(cluster: RealCluster) -> dict[str, client.V1NetworkPolicy]:
    listed = client.NetworkingV1Api(cluster.plane.api).list_namespaced_network_policy(
        cluster.namespace
    )
    return {p.metadata.name: p for p in listed.items}


def test_without_the_role_the_partition_is_forbidden_and_names_the_opt_in_role(
    as_account: RealCluster,
) -> None:
    with pytest.raises(KubernetesApiError) as refused:
        as_account.target().partition_redis(dry_run=True)

    assert refused.value.status == 403
    assert "networkpolicies" in str(refused.value)
    assert "deploy/networkpolicy-role.yaml" in str(refused.value)
    assert _policies(as_account) == {}


def test_with_the_role_the_account_partitions_and_heals(as_account: RealCluster) -> None:
    _bind_networkpolicy_role(as_account)
    target = as_account.target()

    planned = target.partition_redis(dry_run=True)
    assert _policies(as_account) == {}  # validated by the server, not stored
    made = target.partition_redis()
    stored = _policies(as_account)
    healed = target.heal_redis_partition()

    names = {f"{seed.RAYSERVICE}-redis-partition-ray", f"{seed.RAYSERVICE}-redis-partition-redis"}
    assert planned == made
    assert set(stored) == names
    assert made.cluster == seed.CLUSTER and made.redis_pods == (seed.REDIS,)
    ray = stored[f"{seed.RAYSERVICE}-redis-partition-ray"].spec
    assert ray.pod_selector.match_labels == {"ray.io/cluster": seed.CLUSTER}
    [rule] = ray.egress
    assert rule.to[1].ip_block.var_except == [f"{seed.IPS[seed.REDIS]}/32"]
    redis = stored[f"{seed.RAYSERVICE}-redis-partition-redis"].spec
    assert redis.pod_selector.match_labels == {"app": "redis"}  # the redis Service's selector
    assert sorted(healed) == sorted(f"{as_account.namespace}/{n}" for n in names)
    assert _policies(as_account) == {}
    assert target.heal_redis_partition() == []  # nothing left: no error


def test_a_partition_left_behind_is_refused_until_healed(as_account: RealCluster) -> None:
    _bind_networkpolicy_role(as_account)
    target = as_account.target()
    target.partition_redis()

    with pytest.raises(Exception, match="exists already .* heal_redis_partition"):
        target.partition_redis()

    assert len(_policies(as_account)) == 2  # the first partition's, untouched
    target.heal_redis_partition()
