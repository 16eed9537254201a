"""The Kubernetes API calls chaosraysvc makes, with the client's errors translated once.

The client is configured like chaostoolkit-kubernetes: `chaosk8s.create_k8s_api_client`
reads `$KUBECONFIG` (or ~/.kube/config) and `KUBERNETES_CONTEXT`, the in-cluster
ServiceAccount when `CHAOSTOOLKIT_IN_POD=true`, or `KUBERNETES_HOST` and a token or
certificate from the secrets or the environment.

Every method raises a `ChaosRaySvcError`: `NotFoundError` for a 404, `RefusedError` when a
deletion precondition fails, `KubernetesApiError` for anything else (unreachable API,
timeout, 401, 403, server errors), each message naming the call and what to do.
`proxy_request` is the exception: it returns whatever answered through the API server's
service proxy (the backend or the API server), raising only for what the API server
refused itself (401, 403), an unreachable API server, and no answer in time.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import chaosk8s
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException

from chaosraysvc.errors import (
    ChaosRaySvcError,
    ConfigurationError,
    KubernetesApiError,
    NotFoundError,
    RefusedError,
    ServeApiError,
)

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "KubeApi", "create_api_client", "exec_forbidden"]

logger = logging.getLogger("chaostoolkit")

DEFAULT_REQUEST_TIMEOUT = 10.0  # seconds, for connecting and for reading each answer

T = TypeVar("T")

# The RBAC verb the API server checks for each HTTP method of a proxied request.
PROXY_VERBS = {"GET": "get", "HEAD": "get", "PUT": "update", "POST": "create",
               "PATCH": "patch", "DELETE": "delete"}  # fmt: skip


SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def _no_configuration_found(secrets: Mapping[str, Any]) -> ConfigurationError | None:
    """Return why no client configuration can be found, or None when one can.

    chaosk8s falls back to `http://localhost` when it finds no kubeconfig, no in-pod
    setting and no `KUBERNETES_HOST`: say what was checked instead of failing on that URL.
    """
    if secrets.get("KUBERNETES_HOST") or os.environ.get("KUBERNETES_HOST"):
        return None
    if os.environ.get("CHAOSTOOLKIT_IN_POD") == "true":
        return None
    env = os.environ.get("KUBECONFIG")
    path = os.path.expanduser(env or "~/.kube/config")
    if os.path.exists(path):
        return None
    checked = [
        f"$KUBECONFIG={env} (no such file)" if env else "$KUBECONFIG (not set)",
        *([] if env else [f"{path} (no such file)"]),
    ]
    in_pod = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(
        SERVICE_ACCOUNT_TOKEN
    )
    checked.append(
        "CHAOSTOOLKIT_IN_POD (not set, though this runs in a pod with a ServiceAccount token)"
        if in_pod
        else "CHAOSTOOLKIT_IN_POD (not set; not in a pod)"
    )
    checked.append("KUBERNETES_HOST (not set)")
    todo = (
        "set CHAOSTOOLKIT_IN_POD=true to use the pod's ServiceAccount"
        if in_pod
        else "point $KUBECONFIG at a kubeconfig (or create ~/.kube/config, e.g. with your "
        "cluster's `get-credentials` command), set CHAOSTOOLKIT_IN_POD=true when running in "
        "a pod with a ServiceAccount, or set KUBERNETES_HOST and a token"
    )
    return ConfigurationError(
        f"no Kubernetes configuration found for the kubernetes target: checked "
        f"{', '.join(checked)}; {todo}"
    )


def create_api_client(secrets: Mapping[str, Any] | None = None) -> client.ApiClient:
    """Return an API client configured the way chaostoolkit-kubernetes does it.

    Raises `ConfigurationError` when no configuration is found (naming what was checked),
    or when the kubeconfig or the in-cluster configuration is unusable.
    """
    missing = _no_configuration_found(secrets or {})
    if missing is not None:
        raise missing
    # `kubernetes.config` reads $KUBECONFIG once, when it is imported, while chaosk8s reads it
    # on every call: keep both on the same file when the variable changed since.
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = os.environ.get("KUBECONFIG", "~/.kube/config")
    try:
        return chaosk8s.create_k8s_api_client(dict(secrets or {}))
    except ConfigException as exc:
        raise ConfigurationError(
            f"cannot configure the Kubernetes client: {exc}; point $KUBECONFIG at a valid "
            "kubeconfig (and $KUBERNETES_CONTEXT at one of its contexts), or set "
            "CHAOSTOOLKIT_IN_POD=true when running in a pod with a ServiceAccount"
        ) from exc


def redact_url(url: str) -> str:
    """Return `url` without any user or password part."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


@dataclass(frozen=True)
class _Call:
    """One API call, described for error messages."""

    verb: str
    resource: str
    group: str
    namespace: str
    name: str = ""
    selector: str = ""

    def what(self) -> str:
        if self.name:
            return f"{self.resource} '{self.name}'"
        if self.selector:
            return f"{self.resource} with labels '{self.selector}'"
        return self.resource

    def where(self) -> str:
        return f"in namespace '{self.namespace}'" if self.namespace else "(cluster-wide)"

    def action(self) -> str:
        return f"{self.verb} {self.what()} {self.where()}"


class KubeApi:
    """The few Kubernetes API calls chaosraysvc needs, each answering fresh state."""

    def __init__(
        self, api_client: client.ApiClient, request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        self._api_client = api_client
        self._timeout = (request_timeout, request_timeout)
        self._core = client.CoreV1Api(api_client)
        self._discovery = client.DiscoveryV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._networking = client.NetworkingV1Api(api_client)

    @classmethod
    def from_secrets(
        cls,
        secrets: Mapping[str, Any] | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> KubeApi:
        """Return a `KubeApi` on a client configured from `secrets` and the environment."""
        return cls(create_api_client(secrets), request_timeout)

    @property
    def host(self) -> str:
        """Return the API server's URL (never credentials)."""
        return redact_url(str(self._api_client.configuration.host or ""))

    def close(self) -> None:
        """Release the client's connections."""
        self._api_client.close()

    # -- reads -------------------------------------------------------------------------------

    def get_rayservice(self, namespace: str, name: str) -> dict[str, Any]:
        """Return the RayService `name` (ray.io/v1) as a dict."""
        call = _Call("get", "rayservices", "ray.io", namespace, name)
        hint = (
            f"RayService '{name}' not found in namespace '{namespace}': check "
            "rayservice_name / rayservice_namespace ($RAYSVC_NAME / $RAYSVC_NAMESPACE) "
            "and `kubectl get rayservices -A`"
        )
        obj = self._run(
            call,
            lambda: self._custom.get_namespaced_custom_object(
                "ray.io", "v1", namespace, "rayservices", name, _request_timeout=self._timeout
            ),
            not_found=hint,
        )
        if not isinstance(obj, dict):
            raise KubernetesApiError(
                f"the Kubernetes API at {self.host} answered {type(obj).__name__}, not an "
                f"object, when asked to {call.action()}",
                verb=call.verb,
                resource=call.resource,
            )
        return obj

    def list_pods(self, namespace: str, label_selector: str) -> list[client.V1Pod]:
        """Return the pods matching `label_selector`."""
        call = _Call("list", "pods", "", namespace, selector=label_selector)
        result = self._run(
            call,
            lambda: self._core.list_namespaced_pod(
                namespace, label_selector=label_selector, _request_timeout=self._timeout
            ),
        )
        return list(result.items or [])

    def list_nodes(self) -> list[client.V1Node]:
        """Return the cluster's nodes (cluster-scoped: needs deploy/node-reader-clusterrole.yaml).

        A 403 raises `KubernetesApiError` (status 403) saying to grant node read.
        """
        call = _Call("list", "nodes", "", "")
        try:
            result = self._core.list_node(_request_timeout=self._timeout)
        except ApiException as exc:
            if int(exc.status or 0) == 403:
                raise KubernetesApiError(
                    "forbidden (403): the account may not list nodes (cluster-scoped): apply "
                    "deploy/node-reader-clusterrole.yaml (a ClusterRole and its binding). "
                    f"The API server said: {_server_message(exc)}",
                    status=403,
                    verb=call.verb,
                    resource=call.resource,
                ) from exc
            raise self._api_error(call, exc, "", "") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise self._transport_error(call, exc) from exc
        return list(result.items or [])

    def get_service(self, namespace: str, name: str, purpose: str = "") -> client.V1Service:
        """Return the Service `name`; `purpose` says why it was looked up (for a 404)."""
        call = _Call("get", "services", "", namespace, name)
        hint = f"Service '{name}' not found in namespace '{namespace}'" + (
            f" ({purpose})" if purpose else ""
        )
        return self._run(
            call,
            lambda: self._core.read_namespaced_service(
                name, namespace, _request_timeout=self._timeout
            ),
            not_found=hint,
        )

    def list_endpoint_slices(
        self, namespace: str, service_name: str
    ) -> list[client.V1EndpointSlice]:
        """Return the EndpointSlices of Service `service_name`.

        Raises `NotFoundError` when the cluster does not serve discovery.k8s.io/v1.
        """
        selector = f"kubernetes.io/service-name={service_name}"
        call = _Call("list", "endpointslices", "discovery.k8s.io", namespace, selector=selector)
        hint = f"the EndpointSlice API (discovery.k8s.io/v1) is not served by {self.host}"
        result = self._run(
            call,
            lambda: self._discovery.list_namespaced_endpoint_slice(
                namespace, label_selector=selector, _request_timeout=self._timeout
            ),
            not_found=hint,
        )
        return list(result.items or [])

    def get_endpoints(self, namespace: str, name: str) -> client.V1Endpoints:
        """Return the core Endpoints `name` (older clusters' view of a Service's addresses)."""
        call = _Call("get", "endpoints", "", namespace, name)
        hint = f"Endpoints '{name}' not found in namespace '{namespace}'"
        return self._run(
            call,
            lambda: self._core.read_namespaced_endpoints(
                name, namespace, _request_timeout=self._timeout
            ),
            not_found=hint,
        )

    # -- the API server's service proxy -------------------------------------------------------

    def service_proxy_url(self, namespace: str, service: str, port: str) -> str:
        """Return the base URL of Service port `port` through the API server (no credentials)."""
        return self.host.rstrip("/") + _proxy_path(namespace, service, port)

    def proxy_request(
        self,
        namespace: str,
        service: str,
        port: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> tuple[int, str]:
        """Send `method path` to Service `service`'s port `port` through the API server.

        Goes with the client's own connection pool, TLS settings and credentials (the
        bearer token is read afresh, so a refreshed token is used). Returns (status, body)
        of whatever answered: the backend, or the API server when it could not proxy (its
        Status message then, e.g. 503 "no endpoints available"). Raises `KubernetesApiError`
        when the API server refused the request itself (401, 403: the Role needs verb
        `get` on `services/proxy` for GET) or cannot be reached, and `ServeApiError` when no
        answer came within `timeout` seconds (the API server was still waiting for the
        backend). Nothing is retried.
        """
        verb = PROXY_VERBS.get(method.upper(), method.lower())
        call = _Call(verb, "services/proxy", "", namespace, f"{service}:{port}")
        headers: dict[str, str] = {"Accept": "application/json, */*"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        _, url, headers, _, _ = self._api_client.param_serialize(
            method.upper(),
            _proxy_path(namespace, service, port) + path,
            query_params=list((params or {}).items()),
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        payload = None if body is None else json.dumps(body).encode()
        pool = self._api_client.rest_client.pool_manager
        try:
            response = pool.request(
                method.upper(),
                url,
                body=payload,
                headers=headers,
                timeout=urllib3.Timeout(connect=self._timeout[0], read=timeout),
                retries=False,
                preload_content=True,
            )
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise ServeApiError(
                f"no answer within {timeout:g} s from Service '{service}' port '{port}' in "
                f"namespace '{namespace}' through the API server at {self.host} (the API "
                "server may still be dialing a backend that is gone)"
            ) from exc
        except urllib3.exceptions.SSLError as exc:  # as the client's own calls report it
            tls = ApiException(status=0, reason=f"{type(exc).__name__}: {exc}")
            raise self._api_error(call, tls, "", "") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise self._transport_error(call, exc) from exc
        text = response.data.decode("utf-8", "replace")
        status = int(response.status)
        said = _status_message(text) if status >= 400 else None
        if said is not None and status in (401, 403):
            refused = ApiException(status=status, reason=response.reason)
            refused.body = text
            raise self._api_error(call, refused, "", "")
        return status, f"API server: {said}" if said is not None else text

    # -- writes ------------------------------------------------------------------------------

    def patch_rayservice(
        self, namespace: str, name: str, patch: Mapping[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        """Apply a JSON merge patch to RayService `name`; return the object the server kept.

        `dry_run` asks the API server to validate the patch (CRD schema included) without
        storing it.
        """
        call = _Call("patch", "rayservices", "ray.io", namespace, name)
        hint = f"RayService '{name}' not found in namespace '{namespace}'"
        extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        obj = self._run(
            call,
            lambda: self._custom.patch_namespaced_custom_object(
                "ray.io",
                "v1",
                namespace,
                "rayservices",
                name,
                dict(patch),
                _content_type="application/merge-patch+json",
                _request_timeout=self._timeout,
                **extra,
            ),
            not_found=hint,
        )
        return obj if isinstance(obj, dict) else {}

    # -- nodes and evictions (drain_node: deploy/drain-clusterrole.yaml) ---------------------

    def get_node(self, name: str) -> client.V1Node:
        """Return Node `name` (cluster-scoped)."""
        call = _Call("get", "nodes", "", "", name)
        return self._run(
            call,
            lambda: self._core.read_node(name, _request_timeout=self._timeout),
            not_found=f"node '{name}' not found (`kubectl get nodes`)",
            forbidden=DRAIN_ROLE,
        )

    def patch_node(self, name: str, patch: Mapping[str, Any], dry_run: bool = False) -> None:
        """Apply a JSON merge patch to Node `name` (cordon: `spec.unschedulable`)."""
        call = _Call("patch", "nodes", "", "", name)
        extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        self._run(
            call,
            lambda: self._core.patch_node(
                name,
                dict(patch),
                _content_type="application/merge-patch+json",
                _request_timeout=self._timeout,
                **extra,
            ),  # fmt: skip
            not_found=f"node '{name}' not found (`kubectl get nodes`)",
            forbidden=DRAIN_ROLE,
        )

    def delete_node(self, name: str) -> bool:
        """Delete Node `name` (what a cloud's node controller does once its instance is gone);
        False when it was not there."""
        call = _Call("delete", "nodes", "", "", name)
        try:
            self._run(
                call,
                lambda: self._core.delete_node(name, _request_timeout=self._timeout),
                not_found="gone",
                forbidden=NODE_LOSS_ROLE,
            )
        except NotFoundError:
            return False
        return True

    def list_pods_on_node(self, node: str) -> list[client.V1Pod]:
        """Return every pod bound to `node`, in every namespace (as `kubectl drain` sees)."""
        call = _Call("list", "pods", "", "", selector=f"spec.nodeName={node}")
        result = self._run(
            call,
            lambda: self._core.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={node}", _request_timeout=self._timeout
            ),
            forbidden=DRAIN_ROLE,
        )
        return list(result.items or [])

    def evict_pod(
        self, namespace: str, name: str, grace_period: int | None = None, dry_run: bool = False
    ) -> str:
        """Ask the Eviction API to evict pod `name`; return "" when it was accepted, else why
        not: a PodDisruptionBudget forbids it now (429: try again later), or the pod is gone
        ("gone"). Other refusals raise as every call does."""
        call = _Call("create", "pods/eviction", "", namespace, name)
        body = client.V1Eviction(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace),
            delete_options=client.V1DeleteOptions(
                grace_period_seconds=grace_period, dry_run=["All"] if dry_run else None
            ),
        )
        try:
            self._core.create_namespaced_pod_eviction(
                name, namespace, body, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if int(exc.status or 0) == 429:
                return _server_message(exc) or "429 Too Many Requests"
            if int(exc.status or 0) == 404:
                return "gone"
            raise self._api_error(call, exc, "", "", DRAIN_ROLE) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise self._transport_error(call, exc) from exc
        return ""

    def delete_pod(
        self, namespace: str, name: str, uid: str, grace_period: int, dry_run: bool
    ) -> None:
        """Delete pod `name` if its uid is still `uid`; `dry_run` asks a server-side dry run."""
        call = _Call("delete", "pods", "", namespace, name)
        # Everything goes in the body: a DELETE with a body has its query parameters ignored
        # by the API server, so `?dryRun=All&gracePeriodSeconds=0` beside the preconditions
        # would delete for real, with the pod's own grace period.
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid) if uid else None,
            grace_period_seconds=grace_period,
            dry_run=["All"] if dry_run else None,
        )
        kwargs: dict[str, Any] = {"body": options}
        hint = f"pod '{name}' not found in namespace '{namespace}' (already deleted?)"
        self._run(
            call,
            lambda: self._core.delete_namespaced_pod(
                name, namespace, _request_timeout=self._timeout, **kwargs
            ),
            not_found=hint,
            conflict=(
                f"pod '{name}' in namespace '{namespace}' is no longer the pod that was "
                f"picked (uid {uid} changed): it was replaced meanwhile; list the pods again"
            ),
        )

    def create_network_policy(
        self, namespace: str, body: Mapping[str, Any], dry_run: bool = False
    ) -> None:
        """Create the NetworkPolicy `body`; `dry_run` asks the API server to validate it only.

        Raises `RefusedError` when one of that name exists already (a partition not healed:
        run the rollback), `KubernetesApiError` naming deploy/networkpolicy-role.yaml on 403.
        """
        name = str(body["metadata"]["name"])
        call = _Call("create", "networkpolicies", "networking.k8s.io", namespace, name)
        extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        policy: Any = dict(body)  # the client serializes a plain dict as it is
        self._run(
            call,
            lambda: self._networking.create_namespaced_network_policy(
                namespace, policy, _request_timeout=self._timeout, **extra
            ),
            conflict=(
                f"NetworkPolicy '{name}' exists already in namespace '{namespace}': a partition "
                "not healed yet? Delete it (the heal_redis_partition rollback does)"
            ),
            forbidden=NETWORKPOLICY_ROLE,
        )

    def delete_network_policy(self, namespace: str, name: str) -> bool:
        """Delete NetworkPolicy `name`; return False when there was none."""
        call = _Call("delete", "networkpolicies", "networking.k8s.io", namespace, name)
        try:
            self._run(
                call,
                lambda: self._networking.delete_namespaced_network_policy(
                    name, namespace, _request_timeout=self._timeout
                ),
                forbidden=NETWORKPOLICY_ROLE,
            )
        except NotFoundError:
            return False
        return True

    def exec_in_pod(
        self,
        namespace: str,
        name: str,
        container: str,
        argv: list[str],
        timeout: float = 30.0,
        stdin: str = "",
    ) -> tuple[int, str]:
        """Run `argv` in `container` of pod `name` through `pods/exec` (what `kubectl exec`
        does, over a WebSocket: an HTTP GET, so RBAC `get` on `pods/exec`, and `create` too
        from Kubernetes 1.35 on); return (exit code, output).

        `stdin`, when given, is written to the command's standard input (a secret goes there,
        never in `argv`: the command line is part of the request's URL, which API servers
        and kubelets log). A refusal names deploy/exec-role.yaml, the opt-in Role that
        grants it.
        """
        from kubernetes.stream import stream

        call = _Call("get", "pods/exec", "", namespace, name)
        try:
            answer = stream(
                self._core.connect_get_namespaced_pod_exec, name, namespace,
                container=container, command=argv, stdout=True, stderr=True,
                stdin=bool(stdin), tty=False, _preload_content=False,
            )  # fmt: skip
            if stdin:
                answer.write_stdin(stdin)
            answer.run_forever(timeout=timeout)
            output = answer.read_stdout() + answer.read_stderr()
            if answer.is_open():
                answer.close()
                raise KubernetesApiError(
                    f"`{' '.join(argv)}` in pod '{name}' (namespace '{namespace}') did not "
                    f"finish within {timeout:g} s",
                    verb=call.verb,
                    resource=call.resource,
                )
            return _exit_code(answer.read_channel(ERROR_CHANNEL), call, name), str(output)
        except ApiException as exc:
            found = re.search(r"Handshake status (\d+)", str(exc.reason or ""))
            status = int(found.group(1)) if found else int(exc.status or 0)
            if status == 403:
                raise KubernetesApiError(
                    exec_forbidden(namespace, name),
                    status=403,
                    verb=call.verb,
                    resource=call.resource,
                ) from exc
            raise KubernetesApiError(
                f"could not exec in pod '{name}' in namespace '{namespace}' through "
                f"{self.host}: {str(exc.reason or exc)[:300]}",
                status=status,
                verb=call.verb,
                resource=call.resource,
            ) from exc

    # -- error translation -------------------------------------------------------------------

    def _run(
        self,
        call: _Call,
        fn: Callable[[], T],
        not_found: str = "",
        conflict: str = "",
        forbidden: str = "",
    ) -> T:
        try:
            return fn()
        except ApiException as exc:
            raise self._api_error(call, exc, not_found, conflict, forbidden) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise self._transport_error(call, exc) from exc

    def _api_error(
        self, call: _Call, exc: ApiException, not_found: str, conflict: str, forbidden: str = ""
    ) -> ChaosRaySvcError:
        status = int(exc.status or 0)
        said = _server_message(exc)
        if status == 404:
            return NotFoundError(not_found or f"{call.what()} not found ({call.action()})")
        if status == 409 and conflict:
            return RefusedError(conflict)
        if status == 401:
            return KubernetesApiError(
                f"the Kubernetes API at {self.host} rejected the credentials (401 Unauthorized) "
                f"when asked to {call.action()}: log in again or refresh the token of the "
                "current kubeconfig context (or KUBERNETES_API_KEY / the pod's ServiceAccount "
                "token)",
                status=401,
                verb=call.verb,
                resource=call.resource,
            )
        if status == 403:
            group = call.group or '"" (core)'
            return KubernetesApiError(
                f"forbidden (403): the account may not '{call.verb}' resource "
                f"'{call.resource}' (API group {group}) {call.where()}; "
                f"grant verb '{call.verb}' on '{call.resource}' in its Role "
                f"({forbidden or 'deploy/role.yaml ships the rules chaosraysvc needs'}). The "
                f"API server said: {said}",
                status=403,
                verb=call.verb,
                resource=call.resource,
            )
        if status == 0:
            return KubernetesApiError(
                f"could not {call.action()} on {self.host}: {exc.reason}; check the cluster's "
                "certificate settings in the kubeconfig (or KUBERNETES_VERIFY_SSL / "
                "KUBERNETES_CA_CERT_FILE)",
                verb=call.verb,
                resource=call.resource,
            )
        return KubernetesApiError(
            f"the Kubernetes API at {self.host} answered {status} {exc.reason or ''} when asked "
            f"to {call.action()}: {said}",
            status=status,
            verb=call.verb,
            resource=call.resource,
        )

    def _transport_error(self, call: _Call, exc: urllib3.exceptions.HTTPError) -> ChaosRaySvcError:
        cause: BaseException = exc
        if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
            cause = exc.reason
        # urllib3 makes a refused connection a kind of connect timeout: tell them apart first.
        refused = isinstance(cause, urllib3.exceptions.NewConnectionError)
        if isinstance(cause, urllib3.exceptions.TimeoutError) and not refused:
            return KubernetesApiError(
                f"the Kubernetes API at {self.host} did not answer within {self._timeout[1]:g} s "
                f"when asked to {call.action()}: check that the API server is healthy and "
                "reachable from here (VPN, proxy, firewall)",
                verb=call.verb,
                resource=call.resource,
            )
        return KubernetesApiError(
            f"the Kubernetes API at {self.host} is unreachable ({_short(cause)}) when asked to "
            f"{call.action()}: check $KUBECONFIG and its current context (`kubectl cluster-info`)"
            ", or KUBERNETES_HOST, and that the cluster is running",
            verb=call.verb,
            resource=call.resource,
        )


NETWORKPOLICY_ROLE = (
    "the opt-in deploy/networkpolicy-role.yaml and deploy/networkpolicy-rolebinding.yaml grant "
    "it, for partition_redis and its rollback"
)
NODE_LOSS_ROLE = (
    "the opt-in deploy/node-loss-clusterrole.yaml grants it (nodes are cluster-scoped), for "
    "lose_node and its rollback restore_node"
)
DRAIN_ROLE = (
    "the opt-in deploy/drain-clusterrole.yaml grants it (a ClusterRole and its binding: nodes "
    "are cluster-scoped and a drain evicts pods of every namespace), for drain_node and its "
    "rollback uncordon_node"
)
ERROR_CHANNEL = 3  # where the kubelet (or the API server) writes the exec's final Status


def exec_forbidden(namespace: str, name: str) -> str:
    """The message of an exec the account may not make (names the opt-in Role)."""
    return (
        f"forbidden (403): the account may not exec in pod '{name}' in namespace "
        f"'{namespace}' (verbs get and create on 'pods/exec'); chaosraysvc's Role does not "
        "grant it: apply the opt-in deploy/exec-role.yaml and deploy/exec-rolebinding.yaml to "
        "allow killing a process inside a pod"
    )


def _exit_code(raw: str, call: _Call, name: str) -> int:
    """The exit code in an exec's final Status; raise when it is an error, not an exit."""
    try:
        status = json.loads(raw) if raw else {}
    except ValueError:
        status = {"status": "Failure", "message": raw}
    if status.get("status", "Success") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                return int(cause.get("message", "1"))
    raise KubernetesApiError(
        f"exec in pod '{name}' in namespace '{call.namespace}' failed: "
        f"{str(status.get('message') or raw)[:300]}",
        status=int(status.get("code") or 0) or None,
        verb=call.verb,
        resource=call.resource,
    )


def _proxy_path(namespace: str, service: str, port: str) -> str:
    return f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"


def _status_message(text: str) -> str | None:
    """Return the message of a Kubernetes Status body (the API server's own answer), or None."""
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("kind") == "Status" and data.get("apiVersion"):
        return str(data.get("message") or data.get("reason") or "no details")
    return None


def _server_message(exc: ApiException) -> str:
    """Return the `message` of a Kubernetes Status body, or the raw reason."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            data = json.loads(body)
        except ValueError:
            return body[:300]
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
    return str(exc.reason or "no details")


def _short(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text or isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {text}"[:200]
