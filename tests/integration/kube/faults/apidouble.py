"""An HTTP-level Kubernetes API double, kept for faults the real API server will not produce.

The kubernetes target is proven against the real kube-apiserver (`../real/`); this double
serves the few tests that need a stalled API or a cluster without the EndpointSlice API, and
the probe-cost benchmark.

kmock 0.8's `KubernetesEmulator` stores objects and serves get/list/delete over HTTP. This
subclass adds what chaosraysvc relies on and kmock lacks:

- `labelSelector` filtering of lists (equality, `!=`, `in`, `notin`, exists, `!key`);
- bearer-token authentication (401 with a `Status` body, as kube-apiserver answers);
- RBAC from a Role manifest (403 with kube-apiserver's wording), so the shipped Role in
  deploy/ is what every test runs under;
- a record of every call (verb, API group, resource, namespace, name, query; a DELETE's
  options from its body when it has one, as kube-apiserver then ignores the query);
- pod deletion as the API server does it: `dryRun=All` changes nothing, a uid precondition
  that no longer holds answers 409, a grace period marks the pod terminating
  (`deletionTimestamp`; nothing removes it later: there is no kubelet);
- listeners told of pod deletions;
- `stall`: hold every answer that long (for client timeouts).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml

PODS = kmock.resource("v1/pods")

_VERBS = {
    kmock.action.LIST: "list",
    kmock.action.WATCH: "watch",
    kmock.action.FETCH: "get",
    kmock.action.CREATE: "create",
    kmock.action.UPDATE: "patch",
    kmock.action.DELETE: "delete",
}


# -- label selectors ---------------------------------------------------------------------------


def _split_requirements(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^(\S+)\s+(in|notin)\s+\((.*)\)$")
_EQ_RE = re.compile(r"^([^!=\s]+)\s*(==|!=|=)\s*(\S*)$")


def selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Return whether `labels` satisfy the Kubernetes label `selector`."""
    for requirement in _split_requirements(selector):
        if match := _SET_RE.match(requirement):
            key, op, values = match.groups()
            allowed = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in" and labels.get(key) not in allowed:
                return False
            if op == "notin" and key in labels and labels[key] in allowed:
                return False
        elif match := _EQ_RE.match(requirement):
            key, op, value = match.groups()
            if op == "!=":
                if labels.get(key) == value:
                    return False
            elif labels.get(key) != value:
                return False
        elif requirement.startswith("!"):
            if requirement[1:].strip() in labels:
                return False
        elif requirement not in labels:
            return False
    return True


# -- RBAC ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiCall:
    """One request the double served (or refused)."""

    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None
    params: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Rule:
    groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]
    names: frozenset[str]

    def allows(self, verb: str, group: str, resource: str, name: str | None) -> bool:
        if self.names and (name is None or name not in self.names):
            return False
        return (
            ("*" in self.groups or group in self.groups)
            and ("*" in self.resources or resource in self.resources)
            and ("*" in self.verbs or verb in self.verbs)
        )


@dataclass(frozen=True)
class Rbac:
    """A Role's rules, enforced in one namespace for one ServiceAccount."""

    rules: tuple[Rule, ...]
    namespace: str = "default"
    user: str = "system:serviceaccount:default:chaosraysvc"

    @classmethod
    def from_rules(cls, rules: Iterable[Mapping[str, Any]], **kwargs: Any) -> Rbac:
        parsed = tuple(
            Rule(
                frozenset(r.get("apiGroups") or []),
                frozenset(r.get("resources") or []),
                frozenset(r.get("verbs") or []),
                frozenset(r.get("resourceNames") or []),
            )
            for r in rules
        )
        return cls(parsed, **kwargs)

    @classmethod
    def from_manifest(cls, path: Path, **kwargs: Any) -> Rbac:
        """Load the rules of the (single) Role in the YAML file at `path`."""
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Role":
                return cls.from_rules(doc.get("rules") or [], **kwargs)
        raise ValueError(f"no Role in {path}")

    def without(self, verb: str, group: str, resource: str) -> Rbac:
        """Return these rules less one verb on one resource (for 403 tests)."""
        rules = []
        for rule in self.rules:
            for res in sorted(rule.resources):
                verbs = rule.verbs
                if res == resource and group in rule.groups:
                    verbs = verbs - {verb}
                if verbs:
                    rules.append(Rule(rule.groups, frozenset({res}), verbs, rule.names))
        return Rbac(tuple(rules), self.namespace, self.user)

    def granted(self) -> set[tuple[str, str, str]]:
        """Return every (verb, API group, resource) the rules grant (no wildcards expected)."""
        return {
            (verb, group, resource)
            for rule in self.rules
            for verb in rule.verbs
            for group in rule.groups
            for resource in rule.resources
        }

    def allows(self, call: ApiCall) -> bool:
        if call.namespace != self.namespace:
            return False
        return any(r.allows(call.verb, call.group, call.resource, call.name) for r in self.rules)

    def denial(self, call: ApiCall) -> str:
        """Return kube-apiserver's message for a refused `call`."""
        subject = f'{call.resource} "{call.name}"' if call.name else call.resource
        where = f'in the namespace "{call.namespace}"' if call.namespace else "at the cluster scope"
        return (
            f'{subject} is forbidden: User "{self.user}" cannot {call.verb} resource '
            f'"{call.resource}" in API group "{call.group}" {where}'
        )


# -- the double ------------------------------------------------------------------------------


def now_rfc3339() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


PodListener = Callable[[str, dict[str, Any]], None]  # ("terminating" | "deleted", pod)


@attrs.define(kw_only=True)
class ApiDouble(kmock.KubernetesEmulator):
    """kmock's emulator with selectors, auth, RBAC, call records and real pod deletion."""

    token: str | None = None
    rbac: Rbac | None = None
    stall: float = 0.0
    calls: list[ApiCall] = attrs.field(factory=list)
    listeners: list[PodListener] = attrs.field(factory=list)

    # -- helpers for tests and the stand-in (call them on the server's loop) --------------

    def put(self, obj: Mapping[str, Any]) -> None:
        """Store `obj` under its apiVersion, kind-derived plural, namespace and name."""
        api_version = obj["apiVersion"]
        plural = _PLURALS[obj["kind"]]
        meta = obj["metadata"]
        self.objects[f"{api_version}/{plural}", meta.get("namespace"), meta["name"]] = (
            copy.deepcopy(dict(obj))
        )

    def live(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the live (not deleted) objects of `resource`."""
        wanted = kmock.resource(resource)
        return [
            copy.deepcopy(obj.raw)
            for (res, ns, _), obj in self.objects.items()
            if res == wanted and not obj.deleted and (namespace is None or ns == namespace)
        ]

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (kmock.resource(resource), namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(self.objects[key].raw)

    def remove(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Delete an object now (no API call); return what it was."""
        key = (kmock.resource(resource), namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        raw = copy.deepcopy(self.objects[key].raw)
        self.objects[key].delete()
        return raw

    def notify(self, event: str, pod: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(event, pod)

    # -- request handling ------------------------------------------------------------------

    async def _status(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> aiohttp.web.StreamResponse:
        return aiohttp.web.json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": reason,
                "details": dict(details or {}),
                "code": code,
            },
            status=code,
        )

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        resource = request.resource
        if resource is None or not resource.plural:  # discovery, /version, ...
            return await super()._handle(request)
        plural = resource.plural + (f"/{request.subresource}" if request.subresource else "")
        verb = _VERBS.get(request.action) if request.action else None
        call = ApiCall(
            verb or str(request.method.value).lower(),
            resource.group or "",
            plural,
            request.namespace,
            request.name,
            {**request.params, **_delete_options(request)},
        )
        self.calls.append(call)
        if self.stall:
            await asyncio.sleep(self.stall)
        if self.token is not None:
            headers = {k.lower(): v for k, v in request.headers.items()}
            if headers.get("authorization") != f"Bearer {self.token}":
                return await self._status(401, "Unauthorized", "Unauthorized")
        if self.rbac is not None and not self.rbac.allows(call):
            details = {"name": call.name or "", "kind": resource.plural}
            if call.group:
                details["group"] = call.group
            return await self._status(403, "Forbidden", self.rbac.denial(call), details)
        if request.action == kmock.action.DELETE and resource == PODS and request.name:
            return await self._delete_pod(request)
        return await super()._handle(request)

    async def _serve_list(self, request: kmock.Request) -> Any:
        result = await super()._serve_list(request)
        selector = request.params.get("labelSelector", "")
        if selector:
            result["items"] = [
                item
                for item in result["items"]
                if selector_matches(selector, (item.get("metadata") or {}).get("labels") or {})
            ]
        return result

    async def _delete_pod(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        namespace, name = request.namespace, str(request.name)
        key = (PODS, namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            details = {"name": name, "kind": "pods"}
            return await self._status(404, "NotFound", f'pods "{name}" not found', details)
        obj = self.objects[key]
        raw = copy.deepcopy(obj.raw)
        body = request.data if isinstance(request.data, Mapping) else {}
        wanted_uid = (body.get("preconditions") or {}).get("uid")
        actual_uid = raw["metadata"].get("uid")
        if wanted_uid and wanted_uid != actual_uid:
            return await self._status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on Pod "{name}": Precondition failed: '
                f"UID in precondition: {wanted_uid}, UID in object meta: {actual_uid}",
                {"name": name, "kind": "pods"},
            )
        options = _delete_options(request)
        grace_text = options.get("gracePeriodSeconds")
        if grace_text is None:
            grace = int(raw.get("spec", {}).get("terminationGracePeriodSeconds", 30))
        else:
            grace = int(grace_text)
        dry_run = options.get("dryRun") == "All"
        if grace == 0:
            if not dry_run:
                obj.delete()
                self.notify("deleted", raw)
            return aiohttp.web.json_response(raw)
        answer = copy.deepcopy(raw)
        if not raw["metadata"].get("deletionTimestamp"):
            answer["metadata"]["deletionTimestamp"] = now_rfc3339()
            answer["metadata"]["deletionGracePeriodSeconds"] = grace
            if not dry_run:
                obj.patch({"metadata": answer["metadata"]})
                self.notify("terminating", copy.deepcopy(answer))
        return aiohttp.web.json_response(answer)


_PLURALS = {
    "Pod": "pods",
    "Service": "services",
    "Endpoints": "endpoints",
    "EndpointSlice": "endpointslices",
    "RayService": "rayservices",
    "RayCluster": "rayclusters",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
}


def _delete_options(request: Any) -> dict[str, str]:
    """The options of a DELETE as kube-apiserver reads them: from the body when there is one
    (its query parameters are then ignored), else from the query."""
    body = request.data if isinstance(request.data, Mapping) else {}
    if not body:
        return {k: v for k, v in request.params.items() if k in ("gracePeriodSeconds", "dryRun")}
    options: dict[str, str] = {}
    if body.get("gracePeriodSeconds") is not None:
        options["gracePeriodSeconds"] = str(body["gracePeriodSeconds"])
    if "All" in (body.get("dryRun") or []):
        options["dryRun"] = "All"
    return options
