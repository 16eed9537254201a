"""The two NetworkPolicies that cut a RayCluster off from its GCS Redis, and their names.

NetworkPolicy only allows: a pod selected by a policy of a type (Egress, Ingress) may send or
receive only what some rule of those policies allows. So "deny X" is written as "allow
everything but X":

- `<rayservice>-redis-partition-ray`, in the RayService's namespace, selects the RayCluster's
  pods (`ray.io/cluster=<cluster>`) for Egress and allows every pod but the Redis pods (a
  pod peer: any namespace, none of the Redis pods' label values) and every address but the
  Redis pods' (an `ipBlock` of 0.0.0.0/0 `except` each Redis pod IP: DNS, the API server
  and the internet stay reachable). Engines that match ipBlock against pod addresses
  (kube-router, Calico) need the except; the others (Cilium) the pod peer.
- `<rayservice>-redis-partition-redis`, in the Redis pods' namespace, selects them (the
  Redis Service's selector) for Ingress and allows every pod but the RayCluster's. Being
  selector-based on both sides it holds when Redis is replaced by a pod with a new address.
  Traffic to Redis from outside the cluster's pods is cut as well (no ipBlock: it would
  re-admit the Ray pods where ipBlock matches pod addresses); the node's own (kubelet
  probes) is allowed by every engine.

A connection established before the policies may go on: most engines (kube-router, Calico,
Cilium) accept packets of an established flow before any policy. Both objects carry the
label `chaosraysvc.io/fault=redis-partition`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["FAULT_LABEL", "egress_policy", "ingress_policy", "policy_names"]

FAULT_LABEL = {"chaosraysvc.io/fault": "redis-partition"}
MANAGED = {"app.kubernetes.io/managed-by": "chaosraysvc"}


def policy_names(rayservice: str) -> tuple[str, str]:
    """Return the names of the (Ray pods' egress, Redis pods' ingress) policies."""
    return f"{rayservice}-redis-partition-ray", f"{rayservice}-redis-partition-redis"


def _meta(name: str, rayservice: str) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {**FAULT_LABEL, **MANAGED, "chaosraysvc.io/rayservice": rayservice},
    }


def _not_in(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Match expressions selecting the pods that carry none of `labels`' values."""
    return [
        {"key": key, "operator": "NotIn", "values": [value]}
        for key, value in sorted(labels.items())
    ]


def egress_policy(
    rayservice: str,
    cluster: str,
    redis_labels: Mapping[str, str],
    redis_ips: Sequence[str],
) -> dict[str, Any]:
    """The policy on the RayCluster's pods: egress to anything but the Redis pods."""
    if not redis_labels:
        raise ValueError("the Redis pods' labels are needed to leave them out")
    name, _ = policy_names(rayservice)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(name, rayservice),
        "spec": {
            "podSelector": {"matchLabels": {"ray.io/cluster": cluster}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {},
                            "podSelector": {"matchExpressions": _not_in(redis_labels)},
                        },
                        {
                            "ipBlock": {
                                "cidr": "0.0.0.0/0",
                                "except": [f"{ip}/32" for ip in sorted(set(redis_ips))],
                            }
                        },
                    ]
                }
            ],
        },
    }


def ingress_policy(
    rayservice: str, cluster: str, redis_labels: Mapping[str, str]
) -> dict[str, Any]:
    """The policy on the Redis pods: ingress from any pod but the RayCluster's."""
    if not redis_labels:
        raise ValueError("the Redis pods' labels are needed to select them")
    _, name = policy_names(rayservice)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(name, rayservice),
        "spec": {
            "podSelector": {"matchLabels": dict(redis_labels)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {},
                            "podSelector": {
                                "matchExpressions": _not_in({"ray.io/cluster": cluster})
                            },
                        }
                    ]
                }
            ],
        },
    }
