"""A container's environment and a pod's volumes as the kubelet builds them (no API server).

ConfigMaps and Secrets come from `Objects`, a dict-backed `Lookup`; the pods are the seed's
KubeRay head pod and Redis pod, with the volume the ServiceAccount admission plugin adds.
"""

from __future__ import annotations

import copy
import stat
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc_lab import podenv, podvolumes
from chaosraysvc_lab.podenv import PodConfigError, expand, resolve_env
from chaosraysvc_lab.podvolumes import Mount, materialize, mounts
from tests.integration.kube import seed

NS = "default"
POD_IP = "198.18.0.7"
HOST_IP = "127.0.0.1"
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


class Objects:
    """ConfigMaps and Secrets by (namespace, name), values decoded; records every read."""

    def __init__(self) -> None:
        self.config_maps: dict[tuple[str, str], dict[str, str]] = {}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.reads: list[tuple[str, str, str]] = []

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        self.reads.append(("ConfigMap", namespace, name))
        return self.config_maps.get((namespace, name))

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        self.reads.append(("Secret", namespace, name))
        return self.secrets.get((namespace, name))


def _listed(directory: Path) -> list[Path]:
    """What `ls` shows of a volume: its keys, not the writer's `..data` and timestamped dirs."""
    return sorted(p for p in directory.iterdir() if not p.name.startswith(".."))


@pytest.fixture
def objects() -> Objects:
    found = Objects()
    found.secrets[NS, "redis-password-secret"] = {"password": "5241590000000000"}
    found.config_maps[NS, "redis-config"] = {"redis.conf": "dir /data\nport 6379\n"}
    found.config_maps[NS, "kube-root-ca.crt"] = {"ca.crt": CA}
    return found


def _pod(
    env: list[dict[str, Any]] | None = None,
    env_from: list[dict[str, Any]] | None = None,
    **container: Any,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p",
            "namespace": NS,
            "uid": "0b1c-uid",
            "labels": {"app": "x", "ray.io/cluster": "c"},
            "annotations": {"note": 'say "hi"\n'},
        },
        "spec": {
            "nodeName": "kind-worker",
            "serviceAccountName": "default",
            "containers": [
                {"name": "main", "env": env or [], "envFrom": env_from or [], **container}
            ],
        },
    }


def _env(pod: dict[str, Any], lookup: podenv.Lookup) -> dict[str, str]:
    return resolve_env(pod, pod["spec"]["containers"][0], lookup, POD_IP, HOST_IP)


def _fails(pod: dict[str, Any], lookup: podenv.Lookup) -> PodConfigError:
    with pytest.raises(PodConfigError) as caught:
        _env(pod, lookup)
    assert caught.value.reason == "CreateContainerConfigError"
    assert isinstance(caught.value, ChaosRaySvcError)
    return caught.value


# -- environment ----------------------------------------------------------------------------


def test_the_kuberay_head_pod_gets_its_cluster_name_and_redis_password(objects: Objects) -> None:
    pod = seed.head_pod()
    env = _env(pod, objects)

    assert env["RAY_CLUSTER_NAME"] == seed.CLUSTER
    assert env["RAY_CLOUD_INSTANCE_ID"] == seed.HEAD
    assert env["RAY_NODE_TYPE_NAME"] == "headgroup"
    assert env["REDIS_PASSWORD"] == "5241590000000000"
    assert env["RAY_REDIS_ADDRESS"] == "redis:6379"
    # `$REDIS_PASSWORD` is the shell's to expand, not the kubelet's.
    assert "--redis-password=$REDIS_PASSWORD" in env["KUBERAY_GEN_RAY_START_CMD"].split()
    assert ("Secret", seed.NAMESPACE, "redis-password-secret") in objects.reads


def test_the_head_pod_without_its_redis_secret_names_the_secret(objects: Objects) -> None:
    del objects.secrets[NS, "redis-password-secret"]
    error = _fails(seed.head_pod(), objects)
    assert error.message == 'secret "redis-password-secret" not found'


def test_a_missing_key_is_named_with_kind_namespace_and_object(objects: Objects) -> None:
    objects.secrets[NS, "redis-password-secret"] = {"other": "x"}
    error = _fails(seed.head_pod(), objects)
    assert error.message == ("couldn't find key password in Secret default/redis-password-secret")
    pod = _pod(
        [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "redis-config", "key": "k"}}}]
    )
    assert _fails(pod, objects).message == "couldn't find key k in ConfigMap default/redis-config"
    pod = _pod([{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}])
    assert _fails(pod, objects).message == 'configmap "nope" not found'


def test_optional_references_leave_the_variable_out(objects: Objects) -> None:
    pod = _pod(
        [
            {
                "name": "A",
                "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
            },
            {
                "name": "B",
                "valueFrom": {
                    "configMapKeyRef": {"name": "redis-config", "key": "k", "optional": True}
                },
            },
            {"name": "C", "value": "c"},
        ],
        [{"configMapRef": {"name": "nope", "optional": True}}],
    )
    assert _env(pod, objects) == {"C": "c"}


def test_env_from_comes_first_with_its_prefix_and_env_overrides_it(objects: Objects) -> None:
    objects.config_maps[NS, "settings"] = {"MODE": "fast", "LEVEL": "2"}
    objects.secrets[NS, "creds"] = {"TOKEN": "t0k"}
    pod = _pod(
        [{"name": "LEVEL", "value": "9"}, {"name": "BOTH", "value": "$(MODE)-$(S_TOKEN)"}],
        [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "creds"}, "prefix": "S_"}],
    )
    assert _env(pod, objects) == {
        "MODE": "fast",
        "LEVEL": "9",
        "S_TOKEN": "t0k",
        "BOTH": "fast-t0k",
    }
    missing = _pod(env_from=[{"secretRef": {"name": "gone"}}])
    assert _fails(missing, objects).message == 'secret "gone" not found'


def test_env_from_skips_keys_that_cannot_be_variable_names(objects: Objects) -> None:
    objects.config_maps[NS, "odd"] = {"a=b": "1", "fine.name-1": "2"}
    assert _env(_pod(env_from=[{"configMapRef": {"name": "odd"}}]), objects) == {"fine.name-1": "2"}


def test_values_expand_only_variables_defined_before_them() -> None:
    pod = _pod(
        [
            {"name": "EARLY", "value": "[$(LATER)]"},
            {"name": "LATER", "value": "later"},
            {"name": "ESCAPED", "value": "$$(LATER) costs $$5"},
            {"name": "BOTH", "value": "$(LATER)/$(UNKNOWN)/$(EARLY)"},
            {"name": "PLAIN", "value": "$LATER ${LATER} $( $"},
            {"name": "EMPTY"},
        ]
    )
    assert _env(pod, Objects()) == {
        "EARLY": "[$(LATER)]",
        "LATER": "later",
        "ESCAPED": "$(LATER) costs $5",
        "BOTH": "later/$(UNKNOWN)/[$(LATER)]",
        "PLAIN": "$LATER ${LATER} $( $",
        "EMPTY": "",
    }


def test_service_link_variables_are_visible_and_added_last() -> None:
    pod = _pod([{"name": "URL", "value": "https://$(KUBERNETES_SERVICE_HOST)"}])
    services = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "URL": "ignored"}
    env = resolve_env(
        pod, pod["spec"]["containers"][0], Objects(), POD_IP, HOST_IP, service_env=services
    )
    assert env == {"URL": "https://10.96.0.1", "KUBERNETES_SERVICE_HOST": "10.96.0.1"}


def test_field_refs_read_the_pod_and_the_node() -> None:
    paths = {
        "NAME": "metadata.name",
        "NAMESPACE": "metadata.namespace",
        "UID": "metadata.uid",
        "APP": "metadata.labels['app']",
        "NOTE": "metadata.annotations['note']",
        "ABSENT": "metadata.labels['absent']",
        "NODE": "spec.nodeName",
        "SA": "spec.serviceAccountName",
        "IP": "status.podIP",
        "IPS": "status.podIPs",
        "HOST": "status.hostIP",
        "LABELS": "metadata.labels",
    }
    pod = _pod([{"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in paths.items()])
    assert _env(pod, Objects()) == {
        "NAME": "p",
        "NAMESPACE": NS,
        "UID": "0b1c-uid",
        "APP": "x",
        "NOTE": 'say "hi"\n',
        "ABSENT": "",
        "NODE": "kind-worker",
        "SA": "default",
        "IP": POD_IP,
        "IPS": POD_IP,
        "HOST": HOST_IP,
        "LABELS": 'app="x"\nray.io/cluster="c"',
    }
    bad = _pod([{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}])
    assert _fails(bad, Objects()).message == "unsupported fieldPath: spec.hostname"


def _resources(resources: dict[str, Any]) -> dict[str, str]:
    refs = [
        {"name": name, "valueFrom": {"resourceFieldRef": {"resource": resource, **extra}}}
        for name, (resource, extra) in {
            "CPU_LIMIT": ("limits.cpu", {}),
            "CPU_REQUEST": ("requests.cpu", {}),
            "CPU_MILLI": ("requests.cpu", {"divisor": "1m"}),
            "CPU_LIMIT_MILLI": ("limits.cpu", {"divisor": "1m"}),
            "MEM_LIMIT": ("limits.memory", {}),
            "MEM_REQUEST_MI": ("requests.memory", {"divisor": "1Mi"}),
        }.items()
    ]
    pod = _pod(refs, resources=resources)
    return _env(pod, Objects())


def test_resource_field_refs_round_cpu_up_to_cores_and_give_memory_in_bytes() -> None:
    values = _resources(
        {"limits": {"cpu": "1500.5m", "memory": "2Gi"}, "requests": {"cpu": "250m", "memory": "1G"}}
    )
    assert values == {
        "CPU_LIMIT": "2",
        "CPU_REQUEST": "1",
        "CPU_MILLI": "250",
        "CPU_LIMIT_MILLI": "1501",  # 1500.5m: Go's MilliValue rounds up
        "MEM_LIMIT": str(2 * 1024**3),
        "MEM_REQUEST_MI": "954",  # 10^9 / 2^20 = 953.67, rounded up
    }


def test_resource_field_refs_without_limits_read_the_node_allocatable() -> None:
    values = _resources({})
    assert values["CPU_LIMIT"] == "8"  # the Node's allocatable (node.node_body)
    assert values["MEM_LIMIT"] == str(16 * 1024**3)
    assert values["CPU_REQUEST"] == "0"
    # A request left out is the limit (the API server's defaulting).
    assert _resources({"limits": {"cpu": "3"}})["CPU_REQUEST"] == "3"


def test_command_and_args_expand_like_values() -> None:
    env = {"PORT": "6379", "NAME": "head"}
    args = ["serve --port=$(PORT)", "$$(PORT)", "$(MISSING)", "echo $(hostname) $HOME", "$"]
    assert expand(args, env) == [
        "serve --port=6379",
        "$(PORT)",
        "$(MISSING)",
        "echo $(hostname) $HOME",
        "$",
    ]
    pod = seed.head_pod()
    head = pod["spec"]["containers"][0]
    # KubeRay puts the start command in `args`; its `$REDIS_PASSWORD` is the shell's.
    assert expand(head["args"], {}) == head["args"]
    assert "--redis-password=$REDIS_PASSWORD" in head["args"][0]


# -- volumes --------------------------------------------------------------------------------


def _api_access(pod: dict[str, Any]) -> dict[str, Any]:
    """Add the volume and mount the ServiceAccount admission plugin adds to a pod."""
    pod = copy.deepcopy(pod)
    pod["spec"]["serviceAccountName"] = "default"
    pod["spec"]["volumes"].append(
        {
            "name": "kube-api-access-x7k2p",
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {
                                        "apiVersion": "v1",
                                        "fieldPath": "metadata.namespace",
                                    },
                                }
                            ]
                        }
                    },
                ],
            },
        }
    )
    for container in pod["spec"]["containers"]:
        container.setdefault("volumeMounts", []).append(
            {
                "name": "kube-api-access-x7k2p",
                "readOnly": True,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            }
        )
    return pod


class Tokens:
    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    def __call__(self, audience: str, expiration_seconds: int) -> str:
        self.asked.append((audience, expiration_seconds))
        return f"jwt-{len(self.asked)}"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_head_pod_gets_shared_memory_and_the_api_access_volume(
    objects: Objects, tmp_path: Path
) -> None:
    pod = _api_access(seed.head_pod())
    tokens = Tokens()
    pod_dir, node_dir = tmp_path / "pod", tmp_path / "node"

    volumes = materialize(pod, objects, tokens, pod_dir, node_dir)

    assert volumes["shared-mem"] == pod_dir / "volumes/kubernetes.io~empty-dir/shared-mem"
    assert volumes["shared-mem"].is_dir()
    access = volumes["kube-api-access-x7k2p"]
    assert access == pod_dir / "volumes/kubernetes.io~projected/kube-api-access-x7k2p"
    assert sorted(p.name for p in _listed(access)) == ["ca.crt", "namespace", "token"]
    assert (access / "token").read_text() == "jwt-1"
    assert tokens.asked == [("", 3607)]
    assert (access / "ca.crt").read_text() == CA
    assert (access / "namespace").read_text() == seed.NAMESPACE
    assert {_mode(access / name) for name in ("ca.crt", "namespace", "token")} == {0o644}

    assert mounts(pod["spec"]["containers"][0], volumes) == [
        Mount(volumes["shared-mem"], "/dev/shm", False),
        Mount(access, "/var/run/secrets/kubernetes.io/serviceaccount", True),
    ]


def test_the_redis_pod_mounts_one_key_of_its_config_map(objects: Objects, tmp_path: Path) -> None:
    pod = seed.redis_pod()
    volumes = materialize(pod, objects, None, tmp_path / "pod", tmp_path / "node")
    [mount] = mounts(pod["spec"]["containers"][0], volumes)
    assert mount == Mount(volumes["config"] / "redis.conf", "/usr/local/etc/redis/redis.conf", True)
    assert mount.source.read_text() == "dir /data\nport 6379\n"

    objects.config_maps[NS, "redis-config"] = {"other.conf": "x"}
    volumes = materialize(pod, objects, None, tmp_path / "pod", tmp_path / "node")
    with pytest.raises(PodConfigError) as caught:
        mounts(pod["spec"]["containers"][0], volumes)
    assert caught.value.reason == "CreateContainerConfigError"
    assert 'volumeMount "config" of container "redis"' in caught.value.message
    assert "redis.conf" in caught.value.message


def test_a_volume_of_a_missing_config_map_fails_the_mount_naming_both(
    objects: Objects, tmp_path: Path
) -> None:
    del objects.config_maps[NS, "redis-config"]
    with pytest.raises(PodConfigError) as caught:
        materialize(seed.redis_pod(), objects, None, tmp_path, tmp_path)
    assert caught.value.reason == "FailedMount"
    assert caught.value.message == (
        'MountVolume.SetUp failed for volume "config" : configmap "redis-config" not found'
    )


def _volume_pod(*volumes: dict[str, Any]) -> dict[str, Any]:
    pod = _pod()
    pod["spec"]["volumes"] = list(volumes)
    return pod


def test_config_map_and_secret_volumes_write_keys_items_modes_and_bytes(
    objects: Objects, tmp_path: Path
) -> None:
    objects.config_maps[NS, "cm"] = {"a": "A", "b": "B"}
    binary = bytes(range(256))
    objects.secrets[NS, "s"] = {"blob": podenv.decode_bytes(binary), "pw": "hunter2"}
    pod = _volume_pod(
        {"name": "all", "configMap": {"name": "cm", "defaultMode": 0o440}},
        {
            "name": "some",
            "configMap": {
                "name": "cm",
                "items": [
                    {"key": "a", "path": "sub/dir/a.txt", "mode": 0o600},
                    {"key": "b", "path": "b"},
                ],
            },
        },
        {"name": "sec", "secret": {"secretName": "s"}},
        {"name": "gone", "secret": {"secretName": "nope", "optional": True}},
        {
            "name": "gone-key",
            "configMap": {"name": "cm", "items": [{"key": "z", "path": "z"}], "optional": True},
        },
    )
    volumes = materialize(pod, objects, None, tmp_path / "pod", tmp_path / "node")

    assert {p.name: p.read_text() for p in _listed(volumes["all"])} == {"a": "A", "b": "B"}
    assert _mode(volumes["all"] / "a") == 0o440
    assert (volumes["some"] / "sub/dir/a.txt").read_text() == "A"
    assert _mode(volumes["some"] / "sub/dir/a.txt") == 0o600
    assert _mode(volumes["some"] / "b") == 0o644
    assert (volumes["sec"] / "blob").read_bytes() == binary
    assert (volumes["sec"] / "pw").read_text() == "hunter2"
    assert volumes["sec"] == tmp_path / "pod/volumes/kubernetes.io~secret/sec"
    assert _listed(volumes["gone"]) == []
    assert _listed(volumes["gone-key"]) == []


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (
            {"name": "v", "secret": {"secretName": "nope"}},
            'MountVolume.SetUp failed for volume "v" : secret "nope" not found',
        ),
        (
            {
                "name": "v",
                "configMap": {"name": "redis-config", "items": [{"key": "k", "path": "k"}]},
            },
            'MountVolume.SetUp failed for volume "v" : configmap references non-existent '
            "config key: k",
        ),
        (
            {
                "name": "v",
                "secret": {
                    "secretName": "redis-password-secret",
                    "items": [{"key": "k", "path": "k"}],
                },
            },
            'MountVolume.SetUp failed for volume "v" : secret references non-existent '
            "secret key: k",
        ),
        (
            {"name": "disk", "awsElasticBlockStore": {"volumeID": "vol-1"}},
            'volume "disk" is of type awsElasticBlockStore, which this node does not support',
        ),
    ],
)
def test_volumes_that_cannot_be_set_up_are_named(
    objects: Objects, tmp_path: Path, volume: dict[str, Any], message: str
) -> None:
    with pytest.raises(PodConfigError) as caught:
        materialize(_volume_pod(volume), objects, None, tmp_path, tmp_path)
    assert caught.value.reason == "FailedMount"
    assert caught.value.message.startswith(message)


def test_downward_api_volumes_write_labels_as_the_kubelet_does(tmp_path: Path) -> None:
    pod = _volume_pod(
        {
            "name": "info",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
                    {
                        "path": "cpu",
                        "resourceFieldRef": {"containerName": "main", "resource": "limits.cpu"},
                    },
                ]
            },
        }
    )
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "2"}}
    volumes = materialize(pod, Objects(), None, tmp_path / "pod", tmp_path / "node")
    info = volumes["info"]
    assert info == tmp_path / "pod/volumes/kubernetes.io~downward-api/info"
    assert (info / "labels").read_text() == 'app="x"\nray.io/cluster="c"'
    assert (info / "annotations").read_text() == 'note="say \\"hi\\"\\n"'
    assert (info / "name").read_text() == "p"
    assert _mode(info / "name") == 0o400
    assert (info / "cpu").read_text() == "2"


def test_host_path_and_claims_live_in_the_node_directory_and_outlive_the_pod(
    tmp_path: Path,
) -> None:
    node_dir = tmp_path / "node"
    pod = _volume_pod(
        {"name": "host", "hostPath": {"path": "/var/lib/redis", "type": "DirectoryOrCreate"}},
        {"name": "claim", "persistentVolumeClaim": {"claimName": "redis-data"}},
        {"name": "scratch", "emptyDir": {}},
    )
    pod["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "host", "mountPath": "/data"},
        {"name": "claim", "mountPath": "/claim", "subPath": "gcs"},
        {"name": "scratch", "mountPath": "/logs", "subPathExpr": "$(POD)", "readOnly": True},
    ]
    volumes = materialize(pod, Objects(), None, tmp_path / "pod-1", node_dir)
    assert volumes["host"] == node_dir / "hostpath/var/lib/redis"
    assert volumes["claim"] == node_dir / "pvc" / NS / "redis-data"
    (volumes["claim"] / "dump.rdb").write_text("saved")

    again = materialize(pod, Objects(), None, tmp_path / "pod-2", node_dir)
    assert (again["claim"] / "dump.rdb").read_text() == "saved"
    assert again["scratch"] != volumes["scratch"]
    assert mounts(pod["spec"]["containers"][0], again, {"POD": "p"}) == [
        Mount(node_dir / "hostpath/var/lib/redis", "/data", False),
        Mount(again["claim"] / "gcs", "/claim", False),
        Mount(again["scratch"] / "p", "/logs", True),
    ]
    assert (again["claim"] / "gcs").is_dir()  # a missing subPath of a claim is created


def test_a_host_path_that_must_exist_and_does_not_fails(tmp_path: Path) -> None:
    pod = _volume_pod({"name": "sock", "hostPath": {"path": "/run/x.sock", "type": "File"}})
    with pytest.raises(PodConfigError, match="hostPath type check failed: /run/x.sock"):
        materialize(pod, Objects(), None, tmp_path, tmp_path)


def test_a_mount_of_an_unknown_volume_or_an_escaping_sub_path_fails(tmp_path: Path) -> None:
    volumes = {"v": tmp_path}
    with pytest.raises(PodConfigError, match='cannot find volume "w"'):
        mounts({"name": "c", "volumeMounts": [{"name": "w", "mountPath": "/w"}]}, volumes)
    with pytest.raises(PodConfigError, match="may not contain"):
        mounts(
            {"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/w", "subPath": "../x"}]},
            volumes,
        )


def test_a_projected_token_needs_a_token_source(objects: Objects, tmp_path: Path) -> None:
    with pytest.raises(PodConfigError, match="kube-api-access-x7k2p"):
        materialize(_api_access(seed.head_pod()), objects, None, tmp_path, tmp_path)
    assert podvolumes.FAILED_MOUNT == "FailedMount"


def test_a_refresh_updates_a_volume_in_place_and_keeps_its_directory(
    objects: Objects, tmp_path: Path
) -> None:
    """Kubernetes' e2e "[sig-storage] ConfigMap updates should be reflected in volume": the
    kubelet writes a running pod's content volumes again; a container that bind-mounted the
    volume's directory sees the new content (the directory itself is never replaced)."""
    objects.config_maps[NS, "cm"] = {"data-1": "value-1", "old": "x"}
    pod = _volume_pod({"name": "cfg", "configMap": {"name": "cm"}})
    pod["metadata"]["labels"] = {"a": "1"}
    pod["spec"]["volumes"].append(
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}
    )  # fmt: skip
    volumes = materialize(pod, objects, None, tmp_path / "pod", tmp_path / "node")
    inode = volumes["cfg"].stat().st_ino
    assert (volumes["cfg"] / "data-1").read_text() == "value-1"

    objects.config_maps[NS, "cm"] = {"data-1": "value-2"}
    pod["metadata"]["labels"] = {"a": "2"}
    failed = podvolumes.refresh(pod, objects, tmp_path / "pod")

    assert failed == []
    assert volumes["cfg"].stat().st_ino == inode
    assert [p.name for p in _listed(volumes["cfg"])] == ["data-1"]  # "old" is gone
    assert (volumes["cfg"] / "data-1").read_text() == "value-2"
    assert (volumes["info"] / "labels").read_text() == 'a="2"'
    stamps = [p for p in volumes["cfg"].iterdir() if p.name.startswith("..") and p.is_dir()
              and not p.is_symlink()]  # fmt: skip
    assert len(stamps) == 1  # the old timestamped directory was removed
