"""A container's environment as the kubelet builds it (`makeEnvironmentVariables`).

`resolve_env(pod, container, lookup, pod_ip, host_ip)` applies Kubernetes' rules to the pod
as the API server returns it (a camelCase dict):

- `envFrom` first, in order: every key of a ConfigMap (`configMapRef`) or Secret
  (`secretRef`), with `prefix`; a missing object is skipped only when `optional`;
- then `env` in order, each replacing what came before: `value` with `$(VAR)` references to
  the variables defined so far expanded (`$$` is a literal `$`; an unknown `$(X)` stays as
  written), or `valueFrom` (`secretKeyRef`, `configMapKeyRef`, `fieldRef`,
  `resourceFieldRef`).

A reference the kubelet could not resolve raises `PodConfigError` with reason
`CreateContainerConfigError` and the kubelet's words (`secret "s" not found`,
`couldn't find key password in Secret default/s`). `expand(args, env)` applies the same
expansion to a container's `command` and `args`.

```python
container = pod["spec"]["containers"][0]
env = resolve_env(pod, container, ApiLookup(core), "198.18.0.7", "127.0.0.1")
argv = expand(container["command"] + container["args"], env)
```
"""

from __future__ import annotations

import base64
import decimal
import json
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from chaosraysvc.errors import ChaosRaySvcError, KubernetesApiError
from chaosraysvc_lab.node import node_body

logger = logging.getLogger("chaostoolkit")

CONFIG_ERROR = "CreateContainerConfigError"
# What `resourceFieldRef` reads when the container sets no limit: the Node's allocatable.
DEFAULT_ALLOCATABLE: dict[str, str] = node_body("node", "127.0.0.1")["status"]["allocatable"]


class PodConfigError(ChaosRaySvcError):
    """The kubelet cannot start a container: `reason` is the pod status reason
    (`CreateContainerConfigError`, `FailedMount`), `message` the kubelet's own words."""

    def __init__(self, message: str, *, reason: str = CONFIG_ERROR) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Lookup(Protocol):
    """Where ConfigMaps and Secrets of the pod's namespace are read (None: not found)."""

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        """Return the ConfigMap's `data` and `binaryData` (bytes as surrogate escapes).

        The kubelet gives env only `data`; merged here, a `binaryData` key is visible to env.
        """
        ...

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """Return the Secret's `data`, base64-decoded (bytes as surrogate escapes)."""
        ...


def decode_bytes(value: bytes) -> str:
    """Return `value` as str, undecodable bytes as surrogate escapes (see `encode_str`)."""
    return value.decode("utf-8", "surrogateescape")


def encode_str(value: str) -> bytes:
    """Return the bytes `decode_bytes` made `value` from."""
    return value.encode("utf-8", "surrogateescape")


def _b64(values: Mapping[str, str] | None) -> dict[str, str]:
    return {k: decode_bytes(base64.b64decode(v)) for k, v in (values or {}).items()}


class ApiLookup:
    """`Lookup` through the Kubernetes API (`CoreV1Api`); a 404 is None."""

    def __init__(self, core: client.CoreV1Api) -> None:
        self.core = core

    def _read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        read = {
            "ConfigMap": self.core.read_namespaced_config_map,
            "Secret": self.core.read_namespaced_secret,
        }[kind]
        try:
            # Raw JSON: the model would decode binaryData/data for us only as str.
            answer: Any = read(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise KubernetesApiError(
                f"could not read {kind} {namespace}/{name} for a pod: HTTP {exc.status} "
                f"{exc.reason}",
                status=exc.status,
                verb="get",
                resource=f"{kind.lower()}s",
            ) from exc
        body: dict[str, Any] = json.loads(answer.data)
        return body

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        body = self._read("ConfigMap", namespace, name)
        if body is None:
            return None
        return {**(body.get("data") or {}), **_b64(body.get("binaryData"))}

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        body = self._read("Secret", namespace, name)
        return None if body is None else _b64(body.get("data"))


# -- $(VAR) expansion (k8s.io/kubernetes/third_party/forked/golang/expansion) ---------------


def expand_text(text: str, *contexts: Mapping[str, str]) -> str:
    """Return `text` with `$(VAR)` references expanded from the first of `contexts` naming VAR."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1 :]
            advance = 1
            if rest[0] == "$":  # `$$` is an escaped `$`
                out.append("$")
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close == -1:  # incomplete reference: kept
                    out.append("$(")
                else:
                    name = rest[1:close]
                    out.append(_mapped(name, contexts))
                    advance = close + 1
            else:  # a `$` not starting a reference: kept with the next character
                out.append("$" + rest[0])
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def _mapped(name: str, contexts: Iterable[Mapping[str, str]]) -> str:
    for context in contexts:
        if name in context:
            return context[name]
    return f"$({name})"


def expand(args: list[str], env: Mapping[str, str]) -> list[str]:
    """Return `args` (a container's `command` or `args`) with `$(VAR)` references to `env`
    expanded as the kubelet does: `$$` is `$`, an unknown `$(X)` stays as written."""
    return [expand_text(arg, env) for arg in args]


# -- downward API ---------------------------------------------------------------------------


def go_quote(text: str) -> str:
    """Return `text` quoted as Go's `%q` does (how the kubelet writes label values)."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(char)])
        elif 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char.isprintable():
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def format_map(values: Mapping[str, str]) -> str:
    """Return labels or annotations as the downward API writes them: `k="v"` lines, sorted."""
    return "\n".join(f"{key}={go_quote(values[key])}" for key in sorted(values))


def _subscript(path: str) -> tuple[str, str] | None:
    if path.endswith("']") and "['" in path:
        head, _, key = path[:-2].partition("['")
        return head, key
    return None


def pod_field(pod: Mapping[str, Any], path: str, pod_ip: str = "", host_ip: str = "") -> str:
    """Return the value of `fieldRef` `path` of `pod` (env and downward API volumes)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    subscripted = _subscript(path)
    if subscripted is not None:
        field, key = subscripted
        if field in ("metadata.labels", "metadata.annotations"):
            return str((meta.get(field.split(".")[1]) or {}).get(key, ""))
        raise PodConfigError(f'fieldPath "{path}" does not support subscript')
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,  # one address family on this node
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    if path == "metadata.labels":
        return format_map(meta.get("labels") or {})
    if path == "metadata.annotations":
        return format_map(meta.get("annotations") or {})
    raise PodConfigError(f"unsupported fieldPath: {path}")


def _ceil_scaled(quantity: str, scale: int) -> int:
    """Return ceil(quantity * scale) as Go's Quantity.ScaledValue (MilliValue, Value)."""
    return math.ceil(decimal.Decimal(parse_quantity(quantity)) * scale)


def container_resource(
    container: Mapping[str, Any],
    field: Mapping[str, Any],
    allocatable: Mapping[str, str] | None = None,
) -> str:
    """Return the value of `resourceFieldRef` `field` (cpu in whole cores rounded up, memory
    in bytes, each divided by `divisor`); a missing limit is the node's `allocatable`."""
    resource = str(field.get("resource", ""))
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise PodConfigError(f"unsupported container resource : {resource}")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(name)
    if value is None and kind == "requests":  # the API server defaults requests to limits
        value = (resources.get("limits") or {}).get(name)
    if value is None:
        value = (DEFAULT_ALLOCATABLE if allocatable is None else allocatable).get(name, "0")
        if kind == "requests":
            value = "0"
    divisor = str(field.get("divisor") or "1")
    if parse_quantity(divisor) == 0:
        divisor = "1"
    if name == "cpu":
        return str(math.ceil(_ceil_scaled(str(value), 1000) / _ceil_scaled(divisor, 1000)))
    return str(math.ceil(_ceil_scaled(str(value), 1) / _ceil_scaled(divisor, 1)))


# -- the environment ------------------------------------------------------------------------


def _not_found(kind: str, name: str) -> PodConfigError:
    return PodConfigError(f'{kind.lower()} "{name}" not found')


def resolve_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    lookup: Lookup,
    pod_ip: str,
    host_ip: str,
    *,
    service_env: Mapping[str, str] | None = None,
    allocatable: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment of `container` of `pod` as the kubelet builds it.

    `lookup` reads the ConfigMaps and Secrets named; `pod_ip` and `host_ip` answer
    `status.podIP(s)` and `status.hostIP(s)`; `service_env` holds the service-link variables
    (visible to `$(VAR)`, added last where not set); `allocatable` is the node's (what a
    `resourceFieldRef` to a missing limit reads). Raises `PodConfigError`
    (CreateContainerConfigError) naming a ConfigMap, Secret or key that is missing and not
    optional.
    """
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    cache: dict[tuple[str, str], dict[str, str] | None] = {}

    def source(kind: str, name: str) -> dict[str, str] | None:
        if (kind, name) not in cache:
            read = lookup.config_map if kind == "ConfigMap" else lookup.secret
            cache[kind, name] = read(namespace, name)
        return cache[kind, name]

    env: dict[str, str] = {}
    for item in container.get("envFrom") or []:
        kind, ref = (
            ("ConfigMap", item["configMapRef"])
            if item.get("configMapRef")
            else ("Secret", item["secretRef"])
        )
        data = source(kind, ref["name"])
        if data is None:
            if ref.get("optional"):
                continue
            raise _not_found(kind, ref["name"])
        for key, value in data.items():
            name = str(item.get("prefix") or "") + key
            if not name or "=" in name or not name.isprintable():
                logger.warning(
                    "pod %s/%s: key %r of %s %s skipped: not an environment variable name",
                    namespace,
                    pod.get("metadata", {}).get("name"),
                    name,
                    kind,
                    ref["name"],
                )
                continue
            env[name] = value
    services = service_env or {}
    for var in container.get("env") or []:
        value = var.get("value") or ""
        origin = var.get("valueFrom")
        if value:
            value = expand_text(value, env, services)
        elif origin:
            if origin.get("fieldRef"):
                value = pod_field(pod, origin["fieldRef"]["fieldPath"], pod_ip, host_ip)
            elif origin.get("resourceFieldRef"):
                value = container_resource(container, origin["resourceFieldRef"], allocatable)
            else:
                kind, ref = (
                    ("ConfigMap", origin["configMapKeyRef"])
                    if origin.get("configMapKeyRef")
                    else ("Secret", origin["secretKeyRef"])
                )
                data = source(kind, ref["name"])
                if data is None:
                    if ref.get("optional"):
                        continue
                    raise _not_found(kind, ref["name"])
                if ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    raise PodConfigError(
                        f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}"
                    )
                value = data[ref["key"]]
        env[var["name"]] = value
    for name, value in services.items():
        env.setdefault(name, value)
    return env
