"""The real KubeRay operator (pinned release) against the local API server.

It runs as user `kuberay-operator` (a client certificate), bound to the ClusterRole KubeRay
ships (`config/rbac/role.yaml` of the pinned module, copied beside the binaries), with
leader election off and `--use-kubernetes-proxy`: it reaches each head's dashboard through
the API server's service proxy, so the host needs no cluster DNS.
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


def args(kubeconfig: Path, health_port: int, metrics_port: int) -> list[str]:
    """Return the operator's command-line flags."""
    return [
        f"--kubeconfig={kubeconfig}",
        "--enable-leader-election=false",
        "--use-kubernetes-proxy",
        f"--health-probe-bind-address=127.0.0.1:{health_port}",
        f"--metrics-addr=127.0.0.1:{metrics_port}",
        "--enable-metrics",  # kuberay_service_condition_ready and the other kuberay_* series
        "--log-stdout-encoder=console",
    ]


def healthy(health_port: int) -> bool:
    """Tell whether the operator's readiness endpoint answers ok."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False
