"""The sandbox supervisor: plays KubeRay's (and the kubelet's) role on one machine.

Run as `python -m chaosraysvc.sandbox.supervisor STATE_DIR` (started by
`chaosraysvc sandbox up`, in its own session). It starts Redis, the head and the
workers, deploys the fruit Serve application, then reconciles every 0.25 s:

- a deleted pod (a delete request file was written before its processes ended) is
  replaced after `restart_delay` by a new pod under a new name, as a ReplicaSet or
  the KubeRay operator would;
- a pod whose processes died on their own is restarted in place after the delay
  (same name, `restarts` + 1), as the kubelet restarts a crashed container;
- if the Serve application is missing after GCS data was lost (ephemeral Redis
  restarted), or for 30 s with the head up, the Serve config is applied again;
- with endpoint ports, the serve Service (`service.py`) is told which pods it selects.

SIGTERM or SIGINT ends every pod's process session and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from chaosraysvc.errors import SandboxError, ServeApiError
from chaosraysvc.fruit.config import APP_NAME
from chaosraysvc.runtime import containers
from chaosraysvc.runtime import sessions as procs
from chaosraysvc.runtime.ports import free_port, port_open, reserve
from chaosraysvc.sandbox import agentport, podspec, state
from chaosraysvc.sandbox.service import ServeService
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.serve import rest

log = logging.getLogger("chaosraysvc.sandbox.supervisor")
TICK_S = 0.25
APP_CHECK_EVERY_S = 2.0
APP_MISSING_GRACE_S = 30.0
PASSWORD_FILE = "redis-password"
CONTROL_PLANE_NICE = -5


def _suffix(n: int = 5) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def read_password(state_dir: Path) -> str:
    return (state_dir / PASSWORD_FILE).read_text().strip()


def temp_root(sandbox_id: str) -> Path:
    """Short per-sandbox temp root: Ray's Unix socket paths must stay under 108 chars."""
    return Path("/tmp") / f"crs-{sandbox_id}"


@dataclass
class Scheduled:
    """A pod to (re)start once `due` (monotonic seconds) has passed."""

    due: float
    record: state.PodRecord


class Supervisor:
    def __init__(self, spec: SandboxSpec, sandbox_id: str) -> None:
        self.spec = spec
        self.dir = spec.state_dir
        self.password = read_password(self.dir)
        self.sandbox_id = sandbox_id
        self.tmp = temp_root(sandbox_id)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.scheduled: list[Scheduled] = []
        self.backoffs: dict[str, containers.RestartBackoff] = {}
        self.starts = 0
        self.redis_starts = 0
        self.stopping = False
        self.gcs_data_lost = False
        self.app_missing_since = 0.0
        self.next_app_check = 0.0
        self.service = ServeService(spec.serve_port) if spec.endpoint_ports else None
        # The head's proxy binds its port only once Serve is deployed: keep it from workers.
        reserve(spec.serve_port, spec.dashboard_port, spec.redis_port, spec.gcs_port)
        reserve(spec.head_proxy_port)
        self.state = state.SandboxState(
            status="starting",
            supervisor_pid=os.getpid(),
            supervisor_ticks=procs.start_time_of(os.getpid()) or 0,
            sandbox_id=sandbox_id,
            cluster_name=f"{spec.cluster_name}-{sandbox_id[:5]}",
        )

    # --- events and naming -------------------------------------------------------------
    def event(self, kind: str, pod: str, message: str, **detail: float) -> None:
        log.info("%s %s: %s", kind, pod, message)
        self.state.events.append(
            {"t": time.time(), "type": kind, "pod": pod, "message": message, **detail}
        )
        del self.state.events[:-200]

    def new_record(self, role: str) -> state.PodRecord:
        cluster = self.state.cluster_name
        if role == "redis":
            name = f"redis-{self.sandbox_id[:8]}-{_suffix()}"
            labels = {"app": "redis"}
        elif role == "head":
            name = f"{cluster}-head-{_suffix()}"
            labels = {"ray.io/node-type": "head", "ray.io/group": "headgroup"}
        else:
            name = f"{cluster}-worker-{_suffix()}"
            labels = {"ray.io/node-type": "worker", "ray.io/group": "worker"}
        if role != "redis":
            labels |= {
                "ray.io/cluster": cluster,
                "ray.io/originated-from-crd": "RayService",
                "ray.io/serve": "true",
            }
        now = time.time()
        return state.PodRecord(
            name=name,
            role=role,
            uid=str(uuid.uuid4()),
            sid=0,
            start_ticks=0,
            created_at=now,
            started_at=0.0,
            labels=labels,
        )

    # --- starting and ending pods ------------------------------------------------------
    def start(self, record: state.PodRecord) -> None:
        self.starts += 1
        temp_dir = self.tmp / f"{self.starts:03d}"
        temp_dir.mkdir(parents=True, exist_ok=True)
        env = podspec.base_env()
        ports: dict[str, int] = {}
        if record.role == "redis":
            if self.spec.redis_storage == "persistent":
                data_dir = self.dir / "redis-data"
            else:
                data_dir = temp_dir / "data"
                # A Redis without a volume comes back empty: the GCS data is gone.
                self.gcs_data_lost = self.redis_starts > 0
            self.redis_starts += 1
            conf = self.dir / "redis" / f"{record.name}.conf"
            cmd = podspec.redis_command(self.spec, self.password, conf, data_dir)
            ports = {"redis": self.spec.redis_port}
        elif record.role == "head":
            ports = podspec.node_ports() | {"ray_client_server": free_port()}
            cmd, env = podspec.head_command(self.spec, self.password, temp_dir, ports)
            ports |= {
                "gcs": self.spec.gcs_port,
                "dashboard": self.spec.dashboard_port,
                "proxy": podspec.head_proxy_port(self.spec),
            }
        else:
            ports = podspec.node_ports()
            # A restarted container keeps its pod's address; a new pod gets a new one.
            proxy = self.spec.serve_port
            if self.spec.endpoint_ports:
                proxy = record.ports.get("proxy") or free_port()
            cmd, env = podspec.worker_command(self.spec, temp_dir, ports, proxy)
            ports |= {"proxy": proxy}
        log_path = self.dir / "logs" / f"{record.name}.log"
        # A container, as on Kubernetes: the pod's command is PID 1 of its own PID namespace.
        popen = containers.spawn(cmd, env, log_path, temp_dir)
        if "dashboard_agent_listen" in ports:
            agentport.write_agent_port_in_background(temp_dir, ports["dashboard_agent_listen"])
        if record.role in ("head", "redis"):
            # On Kubernetes the control plane has CPUs of its own; on a shared machine, let it
            # win over load so that Ray's fixed 30 s start-up limits are not missed.
            for pid in (popen.pid, containers.main_pid(popen.pid)):
                if pid:
                    procs.raise_priority(pid, CONTROL_PLANE_NICE)
        self.procs[record.name] = popen
        record.sid = popen.pid
        record.start_ticks = procs.start_time_of(popen.pid) or 0
        record.started_at = time.time()
        record.phase = "Running"
        record.ports = ports
        record.temp_dir = str(temp_dir)
        record.log = str(log_path)
        if self.state.pod(record.name) is None:
            self.state.pods.append(record)
        self.event(
            "Started", record.name, f"{record.role} pod started (restarts {record.restarts})"
        )

    def end(self, record: state.PodRecord) -> None:
        if record.sid > 0:
            procs.kill_session(record.sid)
        popen = self.procs.pop(record.name, None)
        if popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=5)
        # The pod's temp dir (Ray's session logs) is kept until `down` for post-mortems.

    def schedule(self, record: state.PodRecord, delay: float | None = None) -> None:
        """Start `record` after `delay` (default: --restart-delay, KubeRay's recreation)."""
        record.phase = "Pending"
        record.sid = 0
        wait = self.spec.restart_delay if delay is None else delay
        self.scheduled.append(Scheduled(time.monotonic() + wait, record))

    # --- the reconcile loop --------------------------------------------------------------
    def reconcile(self) -> None:
        for record in list(self.state.pods):
            popen = self.procs.get(record.name)
            if popen is None:
                continue
            deleting = state.deletion_requested(self.dir, record.name)
            if popen.poll() is None:
                if deleting:
                    record.phase = "Terminating"
                continue
            self.end(record)
            if deleting:
                requested = state.deletion_time(self.dir, record.name)
                state.clear_deletion(self.dir, record.name)
                self.state.pods.remove(record)
                replacement = self.new_record(record.role)
                self.state.pods.append(replacement)
                # `t` is when the supervisor saw the pod gone; `requested_at` when the
                # deletion was asked for (Kubernetes' deletionTimestamp).
                extra = {"requested_at": requested} if requested is not None else {}
                self.event("Deleted", record.name, f"replaced by {replacement.name}", **extra)
                self.schedule(replacement)
            else:
                # Restarted in place after the kubelet's back-off (at once, then 10 s, 20 s...).
                exited = time.monotonic()
                backoff = self.backoffs.setdefault(record.name, containers.RestartBackoff())
                delay = backoff.delay(exited)
                backoff.restarted(exited)
                record.restarts += 1
                code = containers.exit_code(popen.returncode)
                self.event("Crashed", record.name, f"exit code {code}; restarting in {delay:g}s")
                self.schedule(record, delay)
        now = time.monotonic()
        for item in [s for s in self.scheduled if s.due <= now]:
            self.scheduled.remove(item)
            if item.record.role == "redis" or self._redis_up():
                self.start(item.record)
            else:
                item.due = now + 1.0
                self.scheduled.append(item)

    def update_service(self) -> None:
        """Tell the serve Service its candidates; record which endpoints it found ready."""
        if self.service is None:
            return
        selected = {
            r.name: (r.ports["proxy"], r.sid)  # a restarted container is a new generation
            for r in self.state.pods
            if (r.role == "worker" or (r.role == "head" and self.spec.head_in_serve_svc))
            and r.phase == "Running"
            and "proxy" in r.ports
            and not state.deletion_requested(self.dir, r.name)
        }
        self.service.set_candidates(selected)
        self.state.ready_endpoints = sorted(self.service.ready())
        if not self.service.alive():
            raise SandboxError(
                f"the serve Service on port {self.spec.serve_port} stopped: "
                f"{self.service.error!r} (see the supervisor log)"
            )

    def _redis_up(self) -> bool:
        return port_open(self.spec.redis_port)

    def _head(self) -> state.PodRecord | None:
        return next((p for p in self.state.pods if p.role == "head"), None)

    def ensure_app(self) -> None:
        """Apply the Serve config when the application is missing (KubeRay's reconcile)."""
        now = time.monotonic()
        head = self._head()
        if now < self.next_app_check or head is None or head.phase != "Running":
            return
        self.next_app_check = now + APP_CHECK_EVERY_S
        if not port_open(self.spec.dashboard_port):
            return
        url = f"http://127.0.0.1:{self.spec.dashboard_port}"
        first = not self.state.app_deployed_at
        if first:
            # Nothing to look at yet: deploy as soon as the dashboard accepts it.
            self.next_app_check = now + 1.0
            self._deploy(url, head)
            return
        try:
            details = rest.get_serve_details(url, timeout=2.0)
        except ServeApiError:
            return
        if APP_NAME in rest.application_statuses(details):
            self.app_missing_since = 0.0
            self.gcs_data_lost = False
            return
        self.app_missing_since = self.app_missing_since or now
        waited = now - self.app_missing_since > APP_MISSING_GRACE_S
        if self.gcs_data_lost or waited:
            self._deploy(url, head)

    def _deploy(self, url: str, head: state.PodRecord) -> None:
        try:
            rest.deploy_config(url, self.serve_config(), timeout=30.0)
        except ServeApiError as exc:
            self.event("DeployFailed", head.name, str(exc))
            return
        self.state.app_deployed_at = time.time()
        self.gcs_data_lost = False
        self.app_missing_since = 0.0
        self.event("ServeConfigApplied", head.name, f"{APP_NAME} config applied")

    def serve_config(self) -> dict[str, object]:
        from chaosraysvc.fruit.config import serve_config

        return serve_config(podspec.head_proxy_port(self.spec))

    # --- lifecycle -----------------------------------------------------------------------
    def _wait_port(self, port: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            if port_open(port):
                return True
            time.sleep(0.1)
        return False

    def boot(self) -> bool:
        if self.service is not None:
            try:
                self.service.start()
            except SandboxError as exc:
                self.state.message = str(exc)
                return False
        redis = self.new_record("redis")
        self.start(redis)
        self.state.save(self.dir)
        if not self._wait_port(self.spec.redis_port, 20):
            self.state.message = f"Redis did not open port {self.spec.redis_port}: see {redis.log}"
            return False
        head = self.new_record("head")
        self.start(head)
        self.state.save(self.dir)
        if not self._wait_port(self.spec.gcs_port, 60):
            self.state.message = (
                f"the head's GCS did not open port {self.spec.gcs_port}: see {head.log}"
            )
            return False
        for _ in range(self.spec.workers):
            self.start(self.new_record("worker"))
        self.state.status = "up"
        return True

    def run(self) -> int:
        def stop(signum: int, frame: FrameType | None) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        code = 0
        try:
            if not self.boot():
                self.state.status = "failed"
                code = 1
            while not self.stopping and code == 0:
                self.reconcile()
                self.update_service()
                self.ensure_app()
                self.state.save(self.dir)
                time.sleep(TICK_S)
        except Exception as exc:
            log.exception("supervisor failed")
            self.state.status = "failed"
            self.state.message = f"supervisor failed: {exc!r}"
            code = 1
        finally:
            self.teardown()
        return code

    def teardown(self) -> None:
        if self.state.status != "failed":
            self.state.status = "stopping"
        self.state.save(self.dir)
        if self.service is not None:
            try:
                self.service.stop()
            except Exception:  # the pods must be ended whatever happens to the Service
                log.exception("stopping the serve Service failed")
        self.state.ready_endpoints = []
        # Kill every pod at once, then wait: pods exit in parallel (a Ray node can take
        # seconds to release its memory), which keeps `down` short.
        live = [r for r in self.state.pods if r.sid > 0]
        for record in live:
            procs.signal_session(record.sid, signal.SIGKILL)
        for record in live:
            self.end(record)
        for record in self.state.pods:
            record.phase = "Terminated"
            record.sid = 0
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(state.deleting_dir(self.dir), ignore_errors=True)
        if self.state.status != "failed":
            self.state.status = "down"
        self.state.save(self.dir)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(
            "usage: python -m chaosraysvc.sandbox.supervisor STATE_DIR SANDBOX_ID", file=sys.stderr
        )
        return 2
    state_dir = Path(args[0])
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout
    )
    spec = SandboxSpec.load(state_dir)
    return Supervisor(spec, args[1]).run()


if __name__ == "__main__":
    sys.exit(main())
