"""Kubeconfig files for the local control plane: client certificates or bearer tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CONTEXT = "chaosraysvc-local"


def write(
    path: Path,
    *,
    server: str,
    ca: Path,
    cert: Path | None = None,
    key: Path | None = None,
    token: str = "",
    namespace: str = "default",
) -> Path:
    """Write a one-context kubeconfig for `server` (file mode 0600: it holds credentials)."""
    user: dict[str, Any] = {}
    if token:
        user["token"] = token
    if cert and key:
        user["client-certificate"] = str(cert)
        user["client-key"] = str(key)
    body = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CONTEXT, "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": CONTEXT, "user": user}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT,
    }
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    path.chmod(0o600)
    return path


def api_client(path: Path) -> Any:
    """Return a `kubernetes.client.ApiClient` for the kubeconfig at `path`."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    return client.ApiClient(configuration)


def bind_cluster_role(api: Any, user: str, cluster_role: dict[str, Any]) -> None:
    """Create (or keep) `cluster_role` and a ClusterRoleBinding of that name giving it to
    `user` (a client certificate's CN): how the node's host processes get their rights."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    rbac: Any = client.RbacAuthorizationV1Api(api)
    name = cluster_role["metadata"]["name"]
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    for call in (lambda: rbac.create_cluster_role(cluster_role),
                 lambda: rbac.create_cluster_role_binding(binding)):  # fmt: skip
        try:
            call()
        except ApiException as exc:
            if exc.status != 409:  # already there (a node brought up again)
                raise
