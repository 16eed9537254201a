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
