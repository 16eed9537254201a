"""Pod events as the kubelet and the scheduler write them.

The kubelet records core/v1 Events through client-go's recorder: source `kubelet` on its
host, the involved object the pod (uid, resourceVersion, `fieldPath: spec.containers{name}`
for a container's events), `count`, `firstTimestamp`, `lastTimestamp`; an identical event
(same object, field path, reason, message, type) is not written again but has its count and
last timestamp patched. Reasons and messages are the kubelet's own (pkg/kubelet/events,
kuberuntime, prober): Pulled `Container image "x" already present on machine`, Created
`Created container: x`, Started `Started container x`, Killing `Stopping container x` (or
`Container x failed liveness probe, will be restarted`), Unhealthy `Readiness probe failed:
<output>`, BackOff `Back-off restarting failed container x in pod p_ns(uid)`.

The scheduler writes events.k8s.io/v1 Events: Scheduled `Successfully assigned ns/p to node`,
reporting controller `default-scheduler`, action `Binding` (`scheduled()` writes it when this
node's kubelet binds a pod, since no kube-scheduler runs here).

Events are written by one background thread, so a pod's worker never waits for the API.

    recorder = EventRecorder(core, "chaosraysvc-node").start()
    recorder.container(pod, "ray-head", "Normal", "Started", "Started container ray-head")
    recorder.stop()
"""

from __future__ import annotations

import datetime
import logging
import queue
import threading
import time
from typing import Any

logger = logging.getLogger("chaosraysvc.kubelet")
NORMAL, WARNING = "Normal", "Warning"
MAX_MESSAGE = 1024  # client-go truncates messages of this length


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def field_path(pod: dict[str, Any], container: str) -> str:
    """`spec.containers{name}` or `spec.initContainers{name}` (GenerateContainerRef)."""
    inits = {c["name"] for c in pod["spec"].get("initContainers", [])}
    return f"spec.{'initContainers' if container in inits else 'containers'}{{{container}}}"


def pod_ref(pod: dict[str, Any]) -> str:
    """The kubelet's `format.Pod`: name_namespace(uid)."""
    meta = pod["metadata"]
    return f"{meta['name']}_{meta['namespace']}({meta['uid']})"


class EventRecorder:
    """Writes the events of `host`'s pods in a background thread (`start`, `stop`)."""

    def __init__(self, core: Any, host: str, events_api: Any = None) -> None:
        from kubernetes import client

        self.core = core
        self.events_api = events_api or client.EventsV1Api(core.api_client)
        self.host = host
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._seen: dict[tuple[str, ...], tuple[str, int]] = {}  # key -> (event name, count)
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def start(self) -> EventRecorder:
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (for at most `timeout` seconds), then stop."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def container(
        self, pod: dict[str, Any], container: str, kind: str, reason: str, message: str
    ) -> None:
        """Record a kubelet event about `container` of `pod`."""
        self._queue.put(("core", self._core_event(pod, field_path(pod, container), kind, reason,
                                                  message)))  # fmt: skip

    def scheduled(self, pod: dict[str, Any], node: str) -> None:
        """Record the scheduler's `Scheduled` event for `pod` bound to `node`."""
        meta = pod["metadata"]
        now = _now()
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": _name(meta["name"]), "namespace": meta["namespace"]},
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": "default-scheduler",
            "reportingInstance": f"default-scheduler-{node}",
            "action": "Binding",
            "reason": "Scheduled",
            "type": NORMAL,
            "note": f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}",
            "regarding": _ref(pod, ""),
        }
        self._queue.put(("events", body))

    def _core_event(
        self, pod: dict[str, Any], path: str, kind: str, reason: str, message: str
    ) -> dict[str, Any]:
        meta = pod["metadata"]
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": _name(meta["name"]), "namespace": meta["namespace"]},
            "involvedObject": _ref(pod, path),
            "reason": reason,
            "message": message[:MAX_MESSAGE],
            "type": kind,
            "source": {"component": "kubelet", "host": self.host},
            "reportingComponent": "kubelet",
            "reportingInstance": self.host,
            "count": 1,
        }

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            where, body = item  # plain dicts: the client accepts them
            try:
                if where == "events":
                    namespace = body["metadata"]["namespace"]
                    self.events_api.create_namespaced_event(namespace, body)
                else:
                    self._write_core(body)
            except Exception as exc:  # noqa: BLE001 - kept for the owner; events are best effort
                self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                logger.debug("event not written: %s", exc)

    def _write_core(self, body: dict[str, Any]) -> None:
        """Create the event, or count it on the identical one already written (the correlator)."""
        ref = body["involvedObject"]
        key = (ref["uid"], ref.get("fieldPath", ""), body["reason"], body["message"], body["type"])
        stamp = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
        namespace = body["metadata"]["namespace"]
        seen = self._seen.get(key)
        if seen is not None:
            name, count = seen
            patch = {"count": count + 1, "lastTimestamp": stamp}
            try:
                self.core.patch_namespaced_event(name, namespace, patch)
                self._seen[key] = (name, count + 1)
                return
            except Exception:  # noqa: BLE001 - gone (TTL or namespace): write a new one
                pass
        body["firstTimestamp"] = body["lastTimestamp"] = stamp
        self.core.create_namespaced_event(namespace, body)
        self._seen[key] = (body["metadata"]["name"], 1)
        if len(self._seen) > 4096:  # client-go's LRU of 4096 events
            self._seen.pop(next(iter(self._seen)))


def _name(obj: str) -> str:
    """`<object name>.<hex nanoseconds>`, as client-go names events."""
    return f"{obj}.{time.time_ns():x}"


def _ref(pod: dict[str, Any], path: str) -> dict[str, Any]:
    meta = pod["metadata"]
    ref = {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if path:
        ref["fieldPath"] = path
    return ref
