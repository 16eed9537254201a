"""A pod's environment and volumes from the real API server: its ConfigMaps, Secrets, the
volume its ServiceAccount admission plugin added, and a token from the TokenRequest API."""

from __future__ import annotations

import base64
import json
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc_lab.podenv import ApiLookup, PodConfigError, resolve_env
from chaosraysvc_lab.podvolumes import Mount, materialize, mounts, token_source
from tests.support.polling import wait_for

from .conftest import NODE, RealPlane

pytestmark = pytest.mark.apiserver

BINARY = bytes(range(256))


def _listed(directory: Path) -> list[Path]:
    """What `ls` shows of a volume: its keys, not the writer's `..data` and timestamped dirs."""
    return sorted(p for p in directory.iterdir() if not p.name.startswith(".."))


@pytest.fixture
def namespace(real_plane: RealPlane) -> Iterator[str]:
    name = f"podvol-{uuid.uuid4().hex[:8]}"
    core = real_plane.core
    core.create_namespace({"metadata": {"name": name}})
    try:
        wait_for(
            lambda: core.list_namespaced_service_account(
                name, field_selector="metadata.name=default"
            ).items,
            10,
            what=f"ServiceAccount default in namespace {name}",
        )
        yield name
    finally:
        core.delete_namespace(name, grace_period_seconds=0)


def _pod(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "redis-head",
            "namespace": namespace,
            "labels": {"ray.io/cluster": "raycluster-ha"},
        },
        "spec": {
            "nodeName": NODE,
            "containers": [
                {
                    "name": "main",
                    "image": "redis:7.4.0",
                    "env": [
                        {
                            "name": "RAY_CLUSTER_NAME",
                            "valueFrom": {
                                "fieldRef": {"fieldPath": "metadata.labels['ray.io/cluster']"}
                            },
                        },
                        {
                            "name": "REDIS_PASSWORD",
                            "valueFrom": {
                                "secretKeyRef": {"name": "redis-password-secret", "key": "password"}
                            },
                        },
                        {"name": "URL", "value": "redis://:$(REDIS_PASSWORD)@redis:6379"},
                    ],
                    "envFrom": [{"configMapRef": {"name": "redis-config"}, "prefix": "CONF_"}],
                    "resources": {"limits": {"cpu": "1500m", "memory": "1Gi"}},
                    "volumeMounts": [
                        {
                            "name": "config",
                            "mountPath": "/usr/local/etc/redis/redis.conf",
                            "subPath": "redis.conf",
                        },
                        {"name": "password", "mountPath": "/secrets"},
                    ],
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "redis-config"}},
                {"name": "password", "secret": {"secretName": "redis-password-secret"}},
            ],
        },
    }


def _jwt_payload(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def test_a_stored_pod_resolves_its_env_token_and_volumes(
    real_plane: RealPlane, namespace: str, tmp_path: Path
) -> None:
    core = real_plane.core
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "redis-password-secret"},
            "stringData": {"password": "5241590000000000"},
            "data": {"blob": base64.b64encode(BINARY).decode()},
        },
    )
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {"name": "redis-config"},
            "data": {"redis.conf": "dir /data\n"},
            "binaryData": {"dump": base64.b64encode(b"\x00\xff").decode()},
        },
    )
    # The controller publishes the cluster CA in every namespace; the pod's volume needs it.
    wait_for(
        lambda: core.list_namespaced_config_map(
            namespace, field_selector="metadata.name=kube-root-ca.crt"
        ).items,
        10,
        what=f"ConfigMap kube-root-ca.crt in namespace {namespace}",
    )
    created = core.create_namespaced_pod(namespace, _pod(namespace))
    pod: dict[str, Any] = real_plane.api.sanitize_for_serialization(
        core.read_namespaced_pod(created.metadata.name, namespace)
    )
    lookup = ApiLookup(core)

    # ApiLookup: decoded values, binary bytes kept, 404 is None.
    secret = lookup.secret(namespace, "redis-password-secret")
    assert secret is not None and secret["password"] == "5241590000000000"
    assert lookup.config_map(namespace, "nope") is None
    assert lookup.secret(namespace, "nope") is None

    container = pod["spec"]["containers"][0]
    env = resolve_env(pod, container, lookup, "198.18.0.9", "198.18.0.2")
    assert env["RAY_CLUSTER_NAME"] == "raycluster-ha"
    assert env["REDIS_PASSWORD"] == "5241590000000000"
    assert env["URL"] == "redis://:5241590000000000@redis:6379"
    assert env["CONF_redis.conf"] == "dir /data\n"

    # The token from the real TokenRequest API is bound to this pod.
    token = token_source(core, pod)("", 3607)
    claims = _jwt_payload(token)["kubernetes.io"]
    assert claims["namespace"] == namespace
    assert claims["pod"] == {"name": "redis-head", "uid": pod["metadata"]["uid"]}
    assert claims["serviceaccount"]["name"] == "default"
    audience = _jwt_payload(token_source(core, pod)("redis", 600))["aud"]
    assert audience == ["redis"]

    # The volume the ServiceAccount admission plugin added, as the server stored it.
    [access] = [v["name"] for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api")]
    volumes = materialize(pod, lookup, token_source(core, pod), tmp_path / "pod", tmp_path / "node")
    files = volumes[access]
    assert sorted(p.name for p in _listed(files)) == ["ca.crt", "namespace", "token"]
    assert (files / "namespace").read_text() == namespace
    ca = real_plane.plane.pki_dir / "ca.crt"
    assert (files / "ca.crt").read_text().strip() == ca.read_text().strip()
    assert _jwt_payload((files / "token").read_text())["kubernetes.io"]["pod"]["name"] == (
        "redis-head"
    )
    assert stat.S_IMODE((files / "token").stat().st_mode) == 0o644
    assert (volumes["password"] / "blob").read_bytes() == BINARY
    assert (volumes["config"] / "dump").read_bytes() == b"\x00\xff"

    assert mounts(container, volumes) == [
        Mount(volumes["config"] / "redis.conf", "/usr/local/etc/redis/redis.conf", True),
        Mount(volumes["password"], "/secrets", True),
        Mount(files, "/var/run/secrets/kubernetes.io/serviceaccount", True),
    ]

    # A token for a pod that is gone is refused, naming the pod.
    core.delete_namespaced_pod("redis-head", namespace, grace_period_seconds=0)
    wait_for(
        lambda: not core.list_namespaced_pod(namespace).items, 10, what="the pod to be deleted"
    )
    with pytest.raises(PodConfigError) as caught:
        token_source(core, pod)("", 3607)
    assert caught.value.reason == "FailedMount"
    assert f"pod {namespace}/redis-head" in caught.value.message
