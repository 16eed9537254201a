"""A pod's volumes as host directories, and a container's mounts of them.

`materialize(pod, lookup, token, pod_dir, node_dir)` writes every volume of the pod (a camelCase
dict as the API server returns it) and returns volume name -> host path:

- `configMap`, `secret`: every key (or `items` key -> path) as a file, `defaultMode` or the
  item's `mode` applied, bytes as stored; a missing object or key fails unless `optional`;
- `projected`: `serviceAccountToken` (from `token(audience, expiration_seconds)`, see
  `token_source`), `configMap`, `secret` and `downwardAPI` sources into one directory;
- `downwardAPI`: `fieldRef` (labels and annotations as `k="v"` lines, sorted, as the kubelet
  writes them) and `resourceFieldRef` items;
- `emptyDir`: a directory of the pod (`medium: Memory` too), kept across container restarts;
- `hostPath`: `node_dir/hostpath/<path without its leading slash>`, contained in the node's
  directory rather than the real host path, and shared by every pod on this node that names it;
- `persistentVolumeClaim`: `node_dir/pvc/<namespace>/<claimName>`, kept across pods, as a
  local PersistentVolume would be (the claim's binding is not checked).

Pod-owned volumes live where the kubelet keeps them:
`pod_dir/volumes/kubernetes.io~<plugin>/<name>`. Any other volume type, or content that cannot
be had, raises `PodConfigError` naming the volume. `mounts(container, volumes)` turns a
container's `volumeMounts` into `Mount`s (`subPath` and `subPathExpr` resolved; ConfigMap,
Secret, projected and downward API volumes are read-only, as the kubelet mounts them).

```python
volumes = materialize(pod, ApiLookup(core), token_source(core, pod), pod_dir, node_dir)
for mount in mounts(pod["spec"]["containers"][0], volumes, env):
    ...  # bind or link mount.source at mount.target
```
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaosraysvc_lab.podenv import (
    CONFIG_ERROR,
    Lookup,
    PodConfigError,
    container_resource,
    encode_str,
    expand_text,
    pod_field,
)

FAILED_MOUNT = "FailedMount"
DEFAULT_MODE = 0o644
DIR_MODE = 0o755
# Plugins whose content the kubelet writes, and mounts read-only.
CONTENT_PLUGINS = ("configmap", "secret", "projected", "downward-api")
TokenSource = Callable[[str, int], str]


@dataclass(frozen=True)
class Mount:
    """A host path (`source`) seen by the container at `target`."""

    source: Path
    target: str
    read_only: bool


class _VolumeError(Exception):
    """A reason the kubelet gives for one volume; `materialize` names the volume."""


def _plugin_dir(pod_dir: Path, plugin: str, name: str) -> Path:
    return pod_dir / "volumes" / f"kubernetes.io~{plugin}" / name


def _relative(path: str) -> PurePosixPath:
    rel = PurePosixPath(path)
    if not path or rel.is_absolute() or ".." in rel.parts:
        raise _VolumeError(f"path {path!r} must be relative and may not contain '..'")
    return rel


def _write(root: Path, files: Mapping[str, tuple[bytes, int]]) -> None:
    """Make `root` hold `files` (path -> (content, mode)) as the kubelet's AtomicWriter does:
    the files in a new timestamped directory, `..data` a symlink to it swapped in one rename,
    each top-level name a symlink through `..data`. `root` itself stays, so a container that
    bind-mounted it sees every later update (and never half of one)."""
    root.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    current = root / "..data"
    old = current.resolve() if current.is_symlink() else None
    if old is not None and _same(old, files):
        return
    stamp = Path(tempfile.mkdtemp(prefix=time.strftime("..%Y_%m_%d_%H_%M_%S."), dir=root))
    stamp.chmod(DIR_MODE)
    for path, (content, mode) in files.items():
        target = stamp / _relative(path)
        target.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        target.write_bytes(content)
        target.chmod(mode)
    swap = root / "..data_tmp"
    swap.unlink(missing_ok=True)
    swap.symlink_to(stamp.name)
    swap.rename(current)
    tops = {_relative(path).parts[0] for path in files}
    for top in tops:
        link = root / top
        if not link.is_symlink():
            if link.is_dir():
                shutil.rmtree(link)
            else:
                link.unlink(missing_ok=True)
            link.symlink_to(f"..data/{top}")
    for entry in root.iterdir():
        if entry.name.startswith(".."):
            if entry.is_dir() and not entry.is_symlink() and entry != stamp:
                shutil.rmtree(entry)  # an older timestamped directory
        elif entry.name not in tops:
            entry.unlink() if entry.is_symlink() or entry.is_file() else shutil.rmtree(entry)


def _same(directory: Path, files: Mapping[str, tuple[bytes, int]]) -> bool:
    """Whether `directory` holds exactly `files` (content and mode)."""
    held = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    if held != {_relative(path).as_posix() for path in files}:
        return False
    for path, (content, mode) in files.items():
        target = directory / _relative(path)
        if target.read_bytes() != content or (target.stat().st_mode & 0o7777) != mode:
            return False
    return True


def _keys(
    kind: str,
    name: str,
    data: Mapping[str, str] | None,
    items: list[dict[str, Any]] | None,
    mode: int,
    optional: bool,
) -> dict[str, tuple[bytes, int]]:
    """Return the files of a ConfigMap or Secret (kubelet's MakePayload)."""
    if data is None:
        if not optional:
            raise _VolumeError(f'{kind.lower()} "{name}" not found')
        data = {}
    if not items:
        return {key: (encode_str(value), mode) for key, value in data.items()}
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item["key"] not in data:
            if optional:
                continue
            what = "config" if kind == "ConfigMap" else "secret"
            raise _VolumeError(f"{kind.lower()} references non-existent {what} key: {item['key']}")
        files[item["path"]] = (encode_str(data[item["key"]]), item.get("mode", mode))
    return files


def _object_files(
    kind: str, source: Mapping[str, Any], namespace: str, lookup: Lookup, mode: int
) -> dict[str, tuple[bytes, int]]:
    name = source.get("name") or source.get("secretName") or ""
    read = lookup.config_map if kind == "ConfigMap" else lookup.secret
    return _keys(
        kind, name, read(namespace, name), source.get("items"), mode, bool(source.get("optional"))
    )


def _downward_files(
    pod: Mapping[str, Any], items: list[dict[str, Any]], mode: int
) -> dict[str, tuple[bytes, int]]:
    containers = {c["name"]: c for c in (pod.get("spec") or {}).get("containers") or []}
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item.get("fieldRef"):
            value = pod_field(pod, item["fieldRef"]["fieldPath"])
        else:
            field = item["resourceFieldRef"]
            container = containers.get(field.get("containerName", ""))
            if container is None:
                raise _VolumeError(
                    f"no container named {field.get('containerName', '')!r} for "
                    f"resourceFieldRef {field.get('resource')}"
                )
            value = container_resource(container, field)
        files[item["path"]] = (encode_str(value), item.get("mode", mode))
    return files


def _projected_files(
    pod: Mapping[str, Any],
    spec: Mapping[str, Any],
    namespace: str,
    lookup: Lookup,
    token: TokenSource | None,
) -> dict[str, tuple[bytes, int]]:
    mode = spec.get("defaultMode", DEFAULT_MODE)
    files: dict[str, tuple[bytes, int]] = {}
    for source in spec.get("sources") or []:
        if source.get("serviceAccountToken"):
            sat = source["serviceAccountToken"]
            if token is None:
                raise _VolumeError("no token source to request a service account token with")
            value = token(sat.get("audience", ""), int(sat.get("expirationSeconds", 3600)))
            files[sat["path"]] = (value.encode(), mode)
        elif source.get("configMap"):
            files.update(_object_files("ConfigMap", source["configMap"], namespace, lookup, mode))
        elif source.get("secret"):
            files.update(_object_files("Secret", source["secret"], namespace, lookup, mode))
        elif source.get("downwardAPI"):
            files.update(_downward_files(pod, source["downwardAPI"].get("items") or [], mode))
        else:
            raise _VolumeError(f"projected source {', '.join(sorted(source))} is not supported")
    return files


_HOSTPATH_MUST_EXIST = {"Directory": Path.is_dir, "File": Path.is_file}


def _host_path(node_dir: Path, spec: Mapping[str, Any]) -> Path:
    path = str(spec["path"])
    host = node_dir / "hostpath" / _relative(path.lstrip("/") or ".")
    kind = spec.get("type") or ""
    if kind in ("", "DirectoryOrCreate"):
        host.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        host.parent.mkdir(parents=True, exist_ok=True)
        host.touch(mode=DEFAULT_MODE, exist_ok=True)
    elif kind in _HOSTPATH_MUST_EXIST:
        if not _HOSTPATH_MUST_EXIST[kind](host):
            raise _VolumeError(
                f"hostPath type check failed: {path} is not a {kind.lower()} (looked at {host})"
            )
    else:
        raise _VolumeError(f"hostPath type {kind} is not supported")
    return host


VOLUME_TYPES = (
    "configMap",
    "secret",
    "projected",
    "downwardAPI",
    "emptyDir",
    "hostPath",
    "persistentVolumeClaim",
)


def materialize(
    pod: Mapping[str, Any],
    lookup: Lookup,
    token: TokenSource | None,
    pod_dir: Path,
    node_dir: Path,
) -> dict[str, Path]:
    """Write the volumes of `pod` and return volume name -> host path.

    `lookup` reads ConfigMaps and Secrets, `token(audience, expiration_seconds)` service account
    tokens (`token_source`); pod-owned volumes go under `pod_dir`, hostPath and
    persistentVolumeClaim volumes under `node_dir`. Raises `PodConfigError` (FailedMount) naming
    the volume when its type is not supported or its content cannot be had.
    """
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    result: dict[str, Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume["name"]
        kinds = [key for key in volume if key != "name"]
        kind = kinds[0] if kinds else "(none)"
        spec = volume.get(kind) or {}
        try:
            if kind == "configMap" or kind == "secret":
                plugin = kind.lower()
                mode = spec.get("defaultMode", DEFAULT_MODE)
                path = _plugin_dir(pod_dir, plugin, name)
                kind_name = "ConfigMap" if kind == "configMap" else "Secret"
                _write(path, _object_files(kind_name, spec, namespace, lookup, mode))
            elif kind == "projected":
                path = _plugin_dir(pod_dir, "projected", name)
                _write(path, _projected_files(pod, spec, namespace, lookup, token))
            elif kind == "downwardAPI":
                path = _plugin_dir(pod_dir, "downward-api", name)
                mode = spec.get("defaultMode", DEFAULT_MODE)
                _write(path, _downward_files(pod, spec.get("items") or [], mode))
            elif kind == "emptyDir":
                path = _plugin_dir(pod_dir, "empty-dir", name)
                path.mkdir(parents=True, exist_ok=True)
            elif kind == "hostPath":
                path = _host_path(node_dir, spec)
            elif kind == "persistentVolumeClaim":
                path = node_dir / "pvc" / namespace / _relative(spec["claimName"])
                path.mkdir(parents=True, exist_ok=True)
            else:
                raise PodConfigError(
                    f'volume "{name}" is of type {kind}, which this node does not support '
                    f"(supported: {', '.join(VOLUME_TYPES)})",
                    reason=FAILED_MOUNT,
                )
        except _VolumeError as exc:
            raise PodConfigError(
                f'MountVolume.SetUp failed for volume "{name}" : {exc}', reason=FAILED_MOUNT
            ) from exc
        result[name] = path
    return result


def refresh(pod: Mapping[str, Any], lookup: Lookup, pod_dir: Path) -> list[str]:
    """Write the configMap, secret, projected and downwardAPI volumes of a running pod again
    from what the API server holds now (the kubelet's periodic volume sync): a container sees
    the update in place. Service account tokens are kept as they are (no new TokenRequest); a
    volume whose content cannot be had now keeps its old content. Returns the volumes that
    could not be refreshed, with why."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    failed = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume["name"]
        try:
            if volume.get("configMap") or volume.get("secret"):
                kind = "configMap" if volume.get("configMap") else "secret"
                spec = volume[kind]
                mode = spec.get("defaultMode", DEFAULT_MODE)
                kind_name = "ConfigMap" if kind == "configMap" else "Secret"
                _write(_plugin_dir(pod_dir, kind.lower(), name),
                       _object_files(kind_name, spec, namespace, lookup, mode))  # fmt: skip
            elif volume.get("projected"):
                path = _plugin_dir(pod_dir, "projected", name)
                _write(path, _projected_files(pod, volume["projected"], namespace, lookup,
                                              _kept_token(path, volume["projected"])))  # fmt: skip
            elif volume.get("downwardAPI"):
                spec = volume["downwardAPI"]
                mode = spec.get("defaultMode", DEFAULT_MODE)
                _write(_plugin_dir(pod_dir, "downward-api", name),
                       _downward_files(pod, spec.get("items") or [], mode))  # fmt: skip
        except (_VolumeError, PodConfigError, OSError) as exc:
            failed.append(f"{name}: {exc}")
    return failed


def _kept_token(path: Path, spec: Mapping[str, Any]) -> TokenSource:
    """A token source that answers with the token already written (refresh keeps it)."""
    written = {
        source["serviceAccountToken"]["path"]: (path / source["serviceAccountToken"]["path"])
        for source in spec.get("sources") or []
        if source.get("serviceAccountToken")
    }

    order = iter(written.values())  # _projected_files asks in the sources' order

    def kept(audience: str, expiration_seconds: int) -> str:
        file = next(order, None)
        if file is None or not file.exists():
            raise _VolumeError("the service account token was never written")
        return file.read_text()

    return kept


def _is_content(path: Path) -> bool:
    return path.parent.name.removeprefix("kubernetes.io~") in CONTENT_PLUGINS


def mounts(
    container: Mapping[str, Any],
    volumes: Mapping[str, Path],
    env: Mapping[str, str] | None = None,
) -> list[Mount]:
    """Return the mounts of `container`'s `volumeMounts` on `volumes` (from `materialize`).

    `subPath` mounts volume path / subPath (`subPathExpr` first expanded with `env`); a subPath
    missing from an emptyDir, hostPath or claim is created as a directory, as the kubelet does,
    while one missing from a ConfigMap, Secret, projected or downward API volume is a key that
    is absent. Raises `PodConfigError` (CreateContainerConfigError) for that and for a mount of
    a volume the pod does not have.
    """
    result: list[Mount] = []
    cname = container.get("name", "")
    for item in container.get("volumeMounts") or []:
        name = item["name"]
        if name not in volumes:
            raise PodConfigError(f'cannot find volume "{name}" to mount into container "{cname}"')
        source = volumes[name]
        content = _is_content(source)
        sub = item.get("subPath") or ""
        if item.get("subPathExpr"):
            sub = expand_text(item["subPathExpr"], env or {})
        if sub:
            try:
                source = source / _relative(sub)
            except _VolumeError as exc:
                raise PodConfigError(
                    f'failed to prepare subPath for volumeMount "{name}" of container '
                    f'"{cname}": {exc}'
                ) from exc
            if not source.exists():
                if content:
                    raise PodConfigError(
                        f'failed to prepare subPath for volumeMount "{name}" of container '
                        f'"{cname}": {sub} is not in volume "{name}" (no such key)',
                        reason=CONFIG_ERROR,
                    )
                source.mkdir(parents=True, exist_ok=True)
        result.append(Mount(source, item["mountPath"], bool(item.get("readOnly")) or content))
    return result


def token_source(core: client.CoreV1Api, pod: Mapping[str, Any]) -> TokenSource:
    """Return `token(audience, expiration_seconds)`: a token of the pod's service account from
    the TokenRequest API, bound to the pod (invalid once it is deleted). An empty audience
    asks for the API server's own. The callable raises `PodConfigError` (FailedMount) when the
    server refuses."""
    meta = pod.get("metadata") or {}
    account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    namespace = meta.get("namespace") or "default"

    def token(audience: str, expiration_seconds: int) -> str:
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=[audience] if audience else [],  # none: the API server's own
                expiration_seconds=expiration_seconds,
                bound_object_ref=client.V1BoundObjectReference(
                    api_version="v1", kind="Pod", name=meta.get("name"), uid=meta.get("uid")
                ),
            )
        )
        try:
            answer = core.create_namespaced_service_account_token(account, namespace, request)
        except ApiException as exc:
            raise PodConfigError(
                f"failed to fetch token for pod {namespace}/{meta.get('name')} "
                f"(ServiceAccount {account}): HTTP {exc.status} {exc.reason}",
                reason=FAILED_MOUNT,
            ) from exc
        if answer.status is None or not answer.status.token:
            raise PodConfigError(
                f"the TokenRequest API gave no token for pod {namespace}/{meta.get('name')}",
                reason=FAILED_MOUNT,
            )
        return str(answer.status.token)

    return token
