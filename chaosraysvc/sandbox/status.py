"""What the sandbox looks like right now, in Kubernetes terms: pods, endpoints, applications.

Readiness is checked live, the way a kubelet's probes would see it:
- Redis: its process runs and its port accepts connections;
- head: its process runs and the GCS and dashboard ports accept connections;
- worker: its process runs and its Serve proxy listens on the serve port.
An *endpoint* of the serve Service is a node whose proxy listens on the shared serve
port (found through /proc: the port is shared by all proxies, so a single proxy
cannot be addressed on it).

With endpoint ports (`SandboxSpec.endpoint_ports`) each proxy has a port of its own:
an endpoint's URL is that port, and it is ready when the sandbox's serve Service found
its `/-/healthz` answering (the supervisor records that set, as Kubernetes records an
Endpoints object); a worker pod is ready when it is such an endpoint.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from chaosraysvc.errors import ServeApiError
from chaosraysvc.runtime import sessions as procs
from chaosraysvc.runtime.ports import pids_listening, port_open
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.sandbox.state import PodRecord, SandboxState
from chaosraysvc.serve import rest


@dataclass
class PodStatus:
    name: str
    role: str
    phase: str
    ready: bool
    age_s: float
    restarts: int
    uid: str
    created_at: float
    labels: dict[str, str]


@dataclass
class EndpointStatus:
    pod: str
    role: str
    url: str
    ready: bool


@dataclass
class SandboxStatus:
    """A snapshot of the sandbox (`chaosraysvc sandbox status --json` prints it)."""

    state: str  # up | starting | stopping | down | failed | stale | absent
    state_dir: str
    pods: list[PodStatus] = field(default_factory=list)
    endpoints: list[EndpointStatus] = field(default_factory=list)
    applications: dict[str, str] = field(default_factory=dict)
    application_messages: dict[str, str] = field(default_factory=dict)
    serve_url: str = ""
    dashboard_url: str = ""
    message: str = ""
    supervisor_pid: int = 0

    @property
    def endpoints_ready(self) -> int:
        return sum(1 for e in self.endpoints if e.ready)

    def ready(self) -> bool:
        """Tell whether every pod and endpoint is ready and every application RUNNING."""
        return (
            self.state == "up"
            and bool(self.pods)
            and all(p.ready for p in self.pods)
            and bool(self.endpoints)
            and all(e.ready for e in self.endpoints)
            and bool(self.applications)
            and all(s == "RUNNING" for s in self.applications.values())
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["endpoints_ready"] = self.endpoints_ready
        data["endpoints_total"] = len(self.endpoints)
        data["ready"] = self.ready()
        return data


def _is_proxy(pid: int) -> bool:
    """Tell whether `pid` is a Serve proxy actor (Ray sets its process title)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"ProxyActor" in handle.read(200)
    except OSError:
        return False


def _pod_ready(spec: SandboxSpec, pod: PodRecord, alive: bool, listening: bool) -> bool:
    if not alive or pod.phase != "Running":
        return False
    if pod.role == "redis":
        return port_open(spec.redis_port)
    if pod.role == "head":
        return port_open(spec.gcs_port) and port_open(spec.dashboard_port)
    return listening


def collect(
    spec: SandboxSpec, current: SandboxState | None, check_serve: bool = True
) -> SandboxStatus:
    """Return the live status of the sandbox described by `spec` and its state file."""
    serve_url = f"http://127.0.0.1:{spec.serve_port}"
    dashboard_url = f"http://127.0.0.1:{spec.dashboard_port}"
    if current is None:
        return SandboxStatus(state="absent", state_dir=str(spec.state_dir), message="not up")
    status = current.status
    if status in ("up", "starting", "stopping") and not current.supervisor_alive():
        status = "stale"
    result = SandboxStatus(
        state=status,
        state_dir=str(spec.state_dir),
        serve_url=serve_url,
        dashboard_url=dashboard_url,
        message=current.message,
        supervisor_pid=current.supervisor_pid,
    )
    if status in ("down", "absent"):
        return result
    sessions = procs.sessions()
    ray_pids = [pid for p in current.pods if p.role != "redis" for pid in sessions.get(p.sid, [])]
    listeners = (
        set()
        if spec.endpoint_ports
        else pids_listening(spec.serve_port, [p for p in ray_pids if _is_proxy(p)])
    )
    now = time.time()
    for pod in current.pods:
        alive = pod.alive()
        if spec.endpoint_ports:  # the Service runs in the supervisor: stale means gone
            listening = alive and status == "up" and pod.name in current.ready_endpoints
        else:
            listening = alive and bool(listeners.intersection(sessions.get(pod.sid, [])))
        phase = pod.phase if alive or pod.phase in ("Pending",) else "Failed"
        result.pods.append(
            PodStatus(
                name=pod.name,
                role=pod.role,
                phase=phase,
                ready=_pod_ready(spec, pod, alive, listening),
                age_s=round(now - pod.created_at, 1),
                restarts=pod.restarts,
                uid=pod.uid,
                created_at=pod.created_at,
                labels=dict(pod.labels),
            )
        )
        # On the shared serve port the Service is whoever listens there: a head excluded by
        # the spec whose proxy still binds the serve port (a cluster restored with the Serve
        # config of a sandbox that had the head in the Service) is in it all the same, for
        # as long as it listens (once killed it is gone from the list, not listed unready:
        # the spec cannot tell where it will listen when it comes back).
        head_listens = not spec.endpoint_ports and listening
        in_service = pod.role == "worker" or (
            pod.role == "head" and (spec.head_in_serve_svc or head_listens)
        )
        if in_service:
            url = serve_url
            if spec.endpoint_ports:  # no address before the pod runs, as on Kubernetes
                url = f"http://127.0.0.1:{pod.ports['proxy']}" if pod.ports.get("proxy") else ""
            result.endpoints.append(
                EndpointStatus(pod=pod.name, role=pod.role, url=url, ready=listening)
            )
    if check_serve and status == "up":
        try:
            details = rest.get_serve_details(dashboard_url, timeout=2.0)
            result.applications = rest.application_statuses(details)
            result.application_messages = rest.application_messages(details)
        except ServeApiError as exc:
            result.message = str(exc)
    return result
