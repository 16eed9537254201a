"""The sandbox's Python API: `Sandbox(state_dir).up(spec) / down() / status() / logs()`.

`up` starts the supervisor (which owns every pod) and waits, showing progress,
until the Serve application is RUNNING with every endpoint ready. It starts a new Ray
cluster: a previous sandbox's GCS Redis data in the state directory is removed first,
unless `keep_state` (see `carryover`). `down` stops
the supervisor and, as a backstop, ends every recorded pod session itself, so
nothing is left even after a crash. Both are safe to repeat.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chaosraysvc.errors import ConfigurationError, NotFoundError, SandboxError
from chaosraysvc.runtime import containers
from chaosraysvc.runtime import sessions as procs
from chaosraysvc.runtime.executables import ray_executable, redis_executable
from chaosraysvc.runtime.ports import free_port, port_in_use
from chaosraysvc.sandbox.carryover import settle_previous_state
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.sandbox.state import SandboxState, request_deletion
from chaosraysvc.sandbox.status import SandboxStatus, collect
from chaosraysvc.sandbox.supervisor import PASSWORD_FILE, temp_root

Progress = Callable[[str], None]
SUPERVISOR_LOG = "supervisor.log"


@dataclass
class DownResult:
    was_up: bool
    pods_ended: int
    seconds: float
    leftovers: list[int]


def _no_progress(message: str) -> None:
    pass


def _progress_line(status: SandboxStatus, elapsed: float) -> str:
    roles: dict[str, list[bool]] = {}
    for pod in status.pods:
        roles.setdefault(pod.role, []).append(pod.ready)
    parts = [f"{role} {sum(r)}/{len(r)} ready" for role, r in sorted(roles.items())]
    parts.append(f"endpoints {status.endpoints_ready}/{len(status.endpoints)}")
    apps = ", ".join(f"{n} {s}" for n, s in status.applications.items()) or "no application yet"
    parts.append(apps)
    return f"[{elapsed:5.1f}s] " + "; ".join(parts)


class Sandbox:
    """A sandbox identified by its state directory."""

    def __init__(self, state_dir: Path | str) -> None:
        self.state_dir = Path(state_dir).expanduser().resolve()

    # --- reading -----------------------------------------------------------------------
    @property
    def spec_path(self) -> Path:
        return self.state_dir / "spec.json"

    def spec(self) -> SandboxSpec:
        try:
            return SandboxSpec.load(self.state_dir)
        except FileNotFoundError as exc:
            raise SandboxError(
                f"no sandbox in {self.state_dir}: run `chaosraysvc sandbox up` first "
                "(or set sandbox_state_dir / $RAYSVC_SANDBOX_DIR to the one you started)"
            ) from exc

    def state(self) -> SandboxState | None:
        return SandboxState.load(self.state_dir)

    def status(self, check_serve: bool = True) -> SandboxStatus:
        """Return the live status (state "absent" when there is no sandbox here)."""
        if not self.spec_path.exists():
            return SandboxStatus(state="absent", state_dir=str(self.state_dir), message="not up")
        return collect(self.spec(), self.state(), check_serve=check_serve)

    def is_up(self) -> bool:
        current = self.state()
        return bool(current and current.status in ("up", "starting") and current.supervisor_alive())

    def require_up(self) -> SandboxState:
        """Return the state of a running sandbox or raise `SandboxError` saying what to do."""
        current = self.state()
        if current is None or not self.spec_path.exists():
            raise SandboxError(
                f"the sandbox is not up (no state in {self.state_dir}): "
                "run `chaosraysvc sandbox up` first"
            )
        if current.status == "down":
            raise SandboxError(
                f"the sandbox in {self.state_dir} is down: run `chaosraysvc sandbox up` first"
            )
        if current.status not in ("up", "starting") or not current.supervisor_alive():
            raise SandboxError(
                f"the sandbox in {self.state_dir} is {current.status} and its supervisor is not "
                "running: run `chaosraysvc sandbox down` then `chaosraysvc sandbox up`"
            )
        return current

    # --- up ------------------------------------------------------------------------------
    def up(
        self,
        spec: SandboxSpec,
        timeout: float = 240.0,
        progress: Progress = _no_progress,
        keep_state: bool = False,
    ) -> SandboxStatus:
        """Start the sandbox and wait until it serves; raise `SandboxError` with the log path.

        A previous sandbox's Ray cluster state in the state directory (its GCS Redis data)
        is removed first, so the new one starts a new cluster; `keep_state` keeps it, and
        the new head then restores the previous cluster's session. `progress` is told which.
        """
        if keep_state and spec.redis_storage != "persistent":
            raise ConfigurationError(
                "--keep-state keeps the GCS Redis data of --redis-storage persistent; an "
                "ephemeral Redis starts empty: drop one of the two"
            )
        ray_executable()
        redis_executable()
        spec = replace(spec, state_dir=self.state_dir)
        if self.is_up():
            raise SandboxError(
                f"a sandbox is already up in {self.state_dir}: use it, or run "
                "`chaosraysvc sandbox down` first (or choose another --state-dir)"
            )
        if self.state() is not None:
            ended = self._cleanup()
            if ended:
                progress(f"cleaned up {ended} leftover pod(s) of a previous sandbox that crashed")
        if keep_state:
            spec = self._kept_setup(spec)
        spec = self._choose_ports(spec)
        spec.validate()
        for line in settle_previous_state(self.state_dir, keep_state).lines():
            progress(line)
        self._prepare(spec)
        sandbox_id = secrets.token_hex(4)
        log_path = self.state_dir / "logs" / SUPERVISOR_LOG
        with open(log_path, "ab") as log:
            supervisor = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "chaosraysvc.sandbox.supervisor",
                    str(self.state_dir),
                    sandbox_id,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        progress(f"supervisor started (pid {supervisor.pid}); logs in {self.state_dir / 'logs'}")
        try:
            return self._wait_ready(supervisor, timeout, progress, log_path)
        except BaseException:
            progress("stopping the sandbox")
            self.down()
            raise

    def _kept_setup(self, spec: SandboxSpec) -> SandboxSpec:
        """Refuse --keep-state with another Serve set-up than the kept cluster's; return
        `spec` with the kept cluster's head proxy port.

        The restored GCS holds the previous Serve config, whose HTTP options Serve keeps
        (a new config's are ignored): the head's proxy binds the previous cluster's port.
        With new serve or dashboard ports the sandbox was seen never to get ready (workers
        not ready after 240 s); with the head moved out of the serve Service the head's
        proxy was seen still listening on the serve port, in the Service the spec said it
        was not in (a head kill then lost the requests in flight on it: issue 10).
        """
        if not self.spec_path.exists():
            return spec
        previous = self.spec()
        for name, option in (
            ("serve_port", "--serve-port"),
            ("dashboard_port", "--dashboard-port"),
        ):
            if getattr(previous, name) != getattr(spec, name):
                raise ConfigurationError(
                    f"--keep-state restores the previous cluster, which used {option} "
                    f"{getattr(previous, name)}: start with the same {option}, or without "
                    "--keep-state"
                )
        for option, before, now in (
            (
                "--exclude-head-from-serve-svc",
                not previous.head_in_serve_svc,
                not spec.head_in_serve_svc,
            ),
            ("--endpoint-ports", previous.endpoint_ports, spec.endpoint_ports),
        ):
            if before != now:
                was = "with" if before else "without"
                raise ConfigurationError(
                    f"--keep-state restores the previous cluster, started {was} {option}: its "
                    "Serve config keeps the head's proxy where it was, so start "
                    f"{was} {option} too, or without --keep-state"
                )
        if previous.head_proxy_port and not spec.head_proxy_port:
            spec = replace(spec, head_proxy_port=previous.head_proxy_port)
        return spec

    def _choose_ports(self, spec: SandboxSpec) -> SandboxSpec:
        for name, option, make_var in (
            ("serve_port", "--serve-port", "SERVE_PORT"),
            ("dashboard_port", "--dashboard-port", "DASHBOARD_PORT"),
        ):
            port = getattr(spec, name)
            if port_in_use(port):
                raise SandboxError(
                    f"port {port} is already in use, so the sandbox cannot use it for "
                    f"{name.replace('_port', '')}: free it or choose another with {option} "
                    f"(`make demo {make_var}=<port>`)"
                )
        chosen: dict[str, Any] = {}
        for name in ("redis_port", "gcs_port", "head_proxy_port"):
            port = getattr(spec, name)
            if port and port_in_use(port):
                raise SandboxError(f"port {port} ({name}) is already in use: choose another")
            if not port and (name != "head_proxy_port" or spec.head_has_own_port):
                chosen[name] = free_port()
        return replace(spec, **chosen)

    def _prepare(self, spec: SandboxSpec) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("state.json", "deleting"):
            path = self.state_dir / stale
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        (self.state_dir / "logs").mkdir(exist_ok=True)
        spec.save()
        password_path = self.state_dir / PASSWORD_FILE
        fd = os.open(password_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(18))

    def _wait_ready(
        self, supervisor: subprocess.Popen[bytes], timeout: float, progress: Progress, log: Path
    ) -> SandboxStatus:
        start = time.monotonic()
        last = ""
        while True:
            elapsed = time.monotonic() - start
            if supervisor.poll() is not None:
                current = self.state()
                why = current.message if current and current.message else "it exited"
                raise SandboxError(f"the sandbox failed to start: {why}. Supervisor log: {log}")
            status = self.status()
            line = _progress_line(status, elapsed) if status.pods else ""
            if line and line.split("] ", 1)[1] != last:
                progress(line)
                last = line.split("] ", 1)[1]
            if status.ready():
                progress(
                    f"sandbox up in {elapsed:.1f}s: serve {status.serve_url}, "
                    f"dashboard {status.dashboard_url}"
                )
                return status
            if elapsed > timeout:
                unready = [p.name for p in status.pods if not p.ready]
                raise SandboxError(
                    f"the sandbox was not ready after {timeout:.0f}s (not ready: "
                    f"{', '.join(unready) or 'none'}; applications: {status.applications or 'none'}"
                    f"{'; ' + status.message if status.message else ''}). Logs: {log.parent}"
                )
            time.sleep(0.5)

    # --- down ----------------------------------------------------------------------------
    def down(self, timeout: float = 10.0) -> DownResult:
        """Stop the sandbox; idempotent. Ends every recorded pod session for sure."""
        start = time.monotonic()
        current = self.state()
        if current is None:
            return DownResult(False, 0, 0.0, [])
        was_up = current.status in ("up", "starting", "stopping") and current.supervisor_alive()
        running = sum(1 for p in current.pods if p.alive())
        if current.supervisor_alive():
            os.kill(current.supervisor_pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while current.supervisor_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if current.supervisor_alive():
                procs.kill_session(current.supervisor_pid)
        ended = self._cleanup()
        current = self.state() or current
        leftovers = [pid for p in current.pods if p.sid > 0 for pid in procs.session_pids(p.sid)]
        return DownResult(was_up, max(running, ended), time.monotonic() - start, leftovers)

    def _cleanup(self) -> int:
        """End what a crashed or stopped supervisor left: recorded pod sessions, temp dirs."""
        current = self.state()
        if current is None:
            return 0
        ended = 0
        for pod in current.pods:
            if pod.sid > 0 and (pod.alive() or procs.session_pids(pod.sid)):
                procs.kill_session(pod.sid)
                ended += 1
        if current.supervisor_alive():
            procs.kill_session(current.supervisor_pid)
        shutil.rmtree(temp_root(current.sandbox_id), ignore_errors=True)
        shutil.rmtree(self.state_dir / "deleting", ignore_errors=True)
        if current.status != "down":
            current.status = "down"
            for pod in current.pods:
                pod.sid = 0
                pod.phase = "Terminated"
            current.save(self.state_dir)
        return ended

    # --- faults ---------------------------------------------------------------------------
    def delete_pod(self, name: str, grace_period: float = 0.0) -> float:
        """Delete pod `name` as `kubectl delete pod` would; return the deletion time (epoch)."""
        current = self.require_up()
        pod = current.pod(name)
        if pod is None:
            names = ", ".join(p.name for p in current.pods) or "none"
            raise NotFoundError(f"no pod {name!r} in the sandbox (pods: {names})")
        if pod.sid <= 0 or not pod.alive():
            raise SandboxError(f"pod {name!r} is {pod.phase}, not running: nothing to delete")
        if grace_period < 0:
            raise ConfigurationError(f"grace_period {grace_period} must be >= 0")
        request_deletion(self.state_dir, name, grace_period)
        deleted_at = time.time()
        # As the kubelet: SIGTERM to the container's PID 1 only (`ray start --block` drains its
        # node), SIGKILL of the whole container when the grace period ends.
        containers.stop(pod.sid, grace_period)
        return deleted_at

    def kill_process(self, name: str, process: str) -> tuple[float, int]:
        """SIGKILL the process called `process` (its /proc comm) in pod `name`.

        Returns (the kill time, the PID killed). What follows is Ray's and the supervisor's:
        the head's `ray start --block` exits when a Ray process dies, and the pod restarts in
        place (same name, restarts + 1), as a container would.
        """
        current = self.require_up()
        pod = current.pod(name)
        if pod is None or pod.sid <= 0 or not pod.alive():
            raise SandboxError(f"pod {name!r} is not running in the sandbox: nothing to kill")
        pids = [pid for pid in procs.session_pids(pod.sid) if procs.comm_of(pid) == process]
        if not pids:
            raise NotFoundError(f"no process {process!r} runs in pod {name!r}")
        killed_at = time.time()
        os.kill(pids[0], signal.SIGKILL)
        return killed_at, pids[0]

    # --- logs -----------------------------------------------------------------------------
    def logs(self, pod: str = "", lines: int = 40) -> str:
        """Return the last `lines` of the supervisor's log, or of pod `pod`'s log."""
        logs_dir = self.state_dir / "logs"
        if pod:
            path = logs_dir / f"{pod}.log"
            if not path.exists():
                known = sorted(p.stem for p in logs_dir.glob("*.log"))
                raise NotFoundError(
                    f"no log for pod {pod!r} in {logs_dir} (known: {', '.join(known)})"
                )
        else:
            path = logs_dir / SUPERVISOR_LOG
            if not path.exists():
                raise NotFoundError(f"no sandbox logs in {logs_dir}: was it ever started there?")
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return f"==> {path} <==\n" + "\n".join(text)
