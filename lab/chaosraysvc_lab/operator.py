"""The real KubeRay operator (pinned release) against the local API server.

It runs as user `kuberay-operator` (a client certificate), bound to the ClusterRole KubeRay
ships (`config/rbac/role.yaml` of the pinned module, copied beside the binaries), with
leader election off.

How it reaches each head's dashboard and Serve proxies decides what it does when a head's
node is lost, so on a node it reaches them as an operator deployed in the cluster does:
directly (`http://<head Service>.<namespace>.svc.cluster.local:8265`, the proxies at their pod
IPs), with KubeRay's own 2 s client timeouts, its names resolved by the cluster's DNS. The
operator stays a host process (its health and metrics ports on loopback) in a mount namespace
of its own whose /etc/resolv.conf is a pod's (`cluster_dns_command`): ClusterFirst, the cluster
DNS Service's address, which kube-proxy DNATs to CoreDNS. (With `--use-kubernetes-proxy`, the
only way without cluster DNS, KubeRay sends those calls through the API server's proxy with a
client that has no timeout: a call to a head whose node went silent then hangs the RayService
controller for minutes, which a deployed operator does not do.) The control plane alone, on
loopback, has no cluster DNS and uses `--use-kubernetes-proxy`.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

USER = "kuberay-operator"


def install_rbac(api_client: Any, bin_dir: Path) -> None:
    """Create KubeRay's ClusterRole as shipped and bind it to the operator's user."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    rbac = client.RbacAuthorizationV1Api(api_client)
    role_path = bin_dir / "operator-rbac" / "role.yaml"
    role: Any
    [role] = [doc for doc in yaml.safe_load_all(role_path.read_text()) if doc]
    binding: Any = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": USER},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role["metadata"]["name"],
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
    }
    creations: list[tuple[Any, Any]] = [
        (rbac.create_cluster_role, role),
        (rbac.create_cluster_role_binding, binding),
    ]
    for create, body in creations:
        try:
            create(body)
        except ApiException as exc:
            if exc.status != 409:
                raise


def args(
    kubeconfig: Path, health_port: int, metrics_port: int, cluster_dns: bool = False
) -> list[str]:
    """Return the operator's command-line flags (`cluster_dns`: it resolves cluster names,
    so it calls the heads directly, not through the API server's proxy)."""
    return [
        f"--kubeconfig={kubeconfig}",
        "--enable-leader-election=false",
        *([] if cluster_dns else ["--use-kubernetes-proxy"]),
        f"--health-probe-bind-address=127.0.0.1:{health_port}",
        f"--metrics-addr=127.0.0.1:{metrics_port}",
        "--enable-metrics",  # kuberay_service_condition_ready and the other kuberay_* series
        "--log-stdout-encoder=console",
    ]


def resolv_conf(dns_ip: str, namespace: str = "default") -> str:
    """A ClusterFirst pod's /etc/resolv.conf in `namespace` (the kubelet's rules)."""
    return (
        f"nameserver {dns_ip}\n"
        f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local\n"
        "options ndots:5\n"
    )


def cluster_dns_command(resolv: Path, argv: list[str]) -> list[str]:
    """`argv` run in a mount namespace of its own whose /etc/resolv.conf is `resolv` (the
    host's stays as it is: the bind mount is private to that namespace)."""
    return [
        "unshare", "--mount", "--propagation", "private", "--",
        "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv), *argv,
    ]  # fmt: skip


def healthy(health_port: int) -> bool:
    """Tell whether the operator's readiness endpoint answers ok."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False
