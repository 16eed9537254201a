"""One pod run as local processes, as a kubelet runs it: network, volumes, containers, status.

The pod gets a network namespace on the node's bridge (its IP from the node's 198.18.N.0/24)
with `/etc/resolv.conf` pointing at the cluster DNS (`ip netns exec` binds
`/etc/netns/<ns>/resolv.conf`), and each container a private mount namespace in which its
volumes are bound at their `mountPath` and `/tmp` is the pod's own. Init containers run to
completion in order, then the containers start; probes run at their periods with their
thresholds; a container that exits (or fails liveness) restarts in place per `restartPolicy`
with `restartCount + 1` after the kubelet's back-off (at once, then 10 s doubling to 300 s).
Each container's main process is PID 1 of its own PID namespace (`chaosraysvc.runtime.
containers`, the runtime the sandbox uses too). Status is written back the way a kubelet
writes it. `terminate()` stops every container at once as the kubelet does: its `preStop`
hook (exec inside the container, or httpGet), SIGTERM to PID 1 only, SIGKILL of the
container when the grace period ends.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chaosraysvc.runtime import container_probes, containers
from chaosraysvc.runtime import sessions as procs
from chaosraysvc_lab import images, podexec, podlogs
from chaosraysvc_lab.events import NORMAL, WARNING, EventRecorder, pod_ref

logger = logging.getLogger("chaosraysvc.kubelet")


class NodeContext(Protocol):
    """What a pod needs from its node (the kubelet implements it)."""

    core: Any
    node_name: str
    host_ip: str
    dns_ip: str
    state_dir: Path
    events: EventRecorder

    def add_pod_network(self, pod_uid: str) -> tuple[str, str]: ...

    def remove_pod_network(self, pod_uid: str) -> None: ...

    def resolve(self, pod: dict[str, Any], pod_ip: str, pod_dir: Path) -> PodPlan: ...


@dataclass
class ContainerPlan:
    """A container ready to start: argv, env and mounts resolved."""

    spec: dict[str, Any]
    argv: list[str]
    env: dict[str, str]
    mounts: list[tuple[str, str, bool]]  # (host source, mountPath, read only)
    workdir: str = "/"


@dataclass
class PodPlan:
    init: list[ContainerPlan]
    main: list[ContainerPlan]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ConfigError(Exception):
    """The pod cannot start a container (reason as a kubelet names it)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Container:
    """A running (or waiting) container and its status."""

    plan: ContainerPlan | None
    name: str
    image: str
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: str = ""
    waiting: tuple[str, str] = ("ContainerCreating", "")
    last_exit: dict[str, Any] | None = None
    readiness: container_probes.ProbeState | None = None
    liveness: container_probes.ProbeState | None = None
    startup: container_probes.ProbeState | None = None
    begun: float = 0.0
    next_restart: float = 0.0
    exited_at: float = 0.0
    exited: dict[str, Any] | None = None  # init containers: their final state
    backoff: containers.RestartBackoff = field(default_factory=containers.RestartBackoff)
    instance: int = -1  # the restartCount the running (or last) instance started with
    logs: podlogs.LogWriter | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def ready(self) -> bool:
        if self.exited is not None:  # an init container that completed is Ready (kubelet)
            return self.exited.get("exitCode") == 0
        running = self.proc is not None and self.proc.poll() is None
        return (running and self.started_up
                and (self.readiness is None or self.readiness.passed))  # fmt: skip

    @property
    def started_up(self) -> bool:
        """Its startup probe succeeded (or it has none): until then no readiness or liveness
        probe runs, and the status says `started: false`."""
        return self.startup is None or self.startup.passed

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": f"chaosraysvc-local://{images.repository(self.image)}",
            "ready": self.ready,
            "restartCount": self.restarts,
            "started": self.proc is not None and self.proc.poll() is None and self.started_up,
        }
        if self.exited is not None:
            body["state"] = {"terminated": self.exited}
        elif self.proc is not None and self.proc.poll() is None:
            body["state"] = {"running": {"startedAt": self.started_at}}
        else:
            body["state"] = {"waiting": {"reason": self.waiting[0], "message": self.waiting[1]}}
        if self.last_exit:
            body["lastState"] = {"terminated": self.last_exit}
        return body


@dataclass
class PodRun:
    """The kubelet's view of one pod it runs."""

    ctx: NodeContext
    pod: dict[str, Any]
    pod_ip: str = ""
    netns: str = ""
    phase: str = "Pending"
    containers: list[Container] = field(default_factory=list)
    inits: list[Container] = field(default_factory=list)
    initialized: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    last_status: str = ""
    since: dict[str, tuple[bool | None, str]] = field(default_factory=dict)
    start_time: str = field(default_factory=now)
    volumes_synced: float = 0.0  # monotonic time of the kubelet's last volume refresh
    seen: dict[str, Any] = field(default_factory=dict)  # the pod as the kubelet last listed it
    reason: tuple[str, str] | None = None  # the pod's own status reason and message
    began: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.seen = self.seen or self.pod

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])

    @property
    def pod_dir(self) -> Path:
        return self.ctx.state_dir / "pods" / self.uid

    @property
    def hostname(self) -> str:
        """The pod's hostname as the kubelet sets it: `spec.hostname`, else its name cut to 63
        characters (without a trailing `-` or `.`)."""
        name = str(self.pod["spec"].get("hostname") or self.name)
        return name[:63].rstrip("-.")

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True)
        self.thread.start()

    # -- lifecycle ----------------------------------------------------------------------------

    def _run(self) -> None:
        spec = self.pod["spec"]
        self.inits = [
            Container(None, c["name"], c["image"]) for c in spec.get("initContainers", [])
        ]
        self.containers = [Container(None, c["name"], c["image"]) for c in spec["containers"]]
        if self.inits:  # the kubelet's reason while init containers have not all completed
            for container in self.inits[1:] + self.containers:
                container.waiting = ("PodInitializing", "")
        try:
            self.netns, self.pod_ip = self.ctx.add_pod_network(self.uid)
            (self.pod_dir / "tmp").mkdir(parents=True, exist_ok=True)
            (self.pod_dir / "tmp").chmod(0o1777)
            self._write_status()
            plan = self._plan()
            if plan is None:
                return
            for container, cplan in zip(self.inits, plan.init, strict=True):
                container.plan = cplan
                if not self._run_init(container):
                    return
            self.initialized = True
            for container, cplan in zip(self.containers, plan.main, strict=True):
                container.plan = cplan
                container.readiness = _probe(cplan.spec, "readinessProbe")
                container.liveness = _probe(cplan.spec, "livenessProbe")
                container.startup = _probe(cplan.spec, "startupProbe")
                self._launch(container)
            self.phase = "Running"
            self._supervise()
        except Exception as exc:
            logger.exception("pod %s/%s failed", self.namespace, self.name)
            for container in self.containers:
                if container.proc is None:
                    container.waiting = ("RunContainerError", str(exc)[:300])
            self._write_status()

    def _plan(self) -> PodPlan | None:
        try:
            return self.ctx.resolve(self.pod, self.pod_ip, self.pod_dir)
        except (ConfigError, images.ImagePullError) as exc:
            reason = getattr(exc, "reason", "CreateContainerConfigError")
            for container in self.inits + self.containers:
                container.waiting = (reason, str(exc))
            self._write_status()
            return None

    def _run_init(self, container: Container) -> bool:
        while not self.stop.is_set():
            self._launch(container)
            self._write_status()
            assert container.proc is not None
            while container.proc.poll() is None and not self.stop.is_set():
                time.sleep(0.2)
            if self.stop.is_set():
                return False
            code = containers.exit_code(container.proc.returncode)
            finished = {"exitCode": code, "startedAt": container.started_at, "finishedAt": now(),
                        **self._termination_message(container, code)}  # fmt: skip
            if code == 0:
                container.exited = {**finished, "reason": "Completed"}
                self._write_status()
                return True
            container.last_exit = {**finished, "reason": "Error"}
            container.proc = None
            if self.pod["spec"].get("restartPolicy", "Always") == "Never":
                self.phase = "Failed"
                self._write_status()
                return False
            exited = time.monotonic()
            delay = container.backoff.delay(exited)
            container.restarts += 1
            if delay:
                container.waiting = ("CrashLoopBackOff", f"back-off {delay:g}s restarting")
                self._back_off_event(container)
            self._write_status()
            self.stop.wait(delay)
            container.backoff.restarted(exited)
        return False

    def _launch(self, container: Container) -> None:
        assert container.plan is not None
        plan = container.plan
        private_tmp = (
            []
            if any(t == "/tmp" for _, t, _ in plan.mounts)
            else [(str(self.pod_dir / "tmp"), "/tmp", False)]
        )
        # parents before children (the pod's private /tmp before a file mounted under it)
        every = sorted([*plan.mounts, *private_tmp], key=lambda m: len(Path(m[1]).parts))
        script = _mount_script(every, plan.workdir, images.host_paths())
        self._event(container, NORMAL, "Pulled",
                    f'Container image "{container.image}" already present on machine')  # fmt: skip
        container.instance = container.restarts
        message = self.termination_log(container.name)
        if message.exists():  # each instance's own message, as the kubelet's file per instance
            message.write_bytes(b"")
        log = self.log_path(container.name, container.instance)
        self._prune_logs(container)
        # stdout and stderr are pipes the node writes to the CRI log (what containerd's shim
        # does), each line with its time and stream: `kubectl logs --timestamps`.
        container.proc = subprocess.Popen(
            containers.command(
                plan.argv,
                setup_script=script,
                netns=self.netns,
                hostname=self.hostname,
                workdir=plan.workdir,
            ),  # fmt: skip
            env=plan.env,
            cwd=self.pod_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        # where `node down` finds it if this kubelet dies without ending it (kill -9)
        procs.record(self.ctx.state_dir / "sessions", container.proc.pid)
        container.logs = podlogs.LogWriter(log).start(container.proc.stdout,
                                                      container.proc.stderr)  # fmt: skip
        self._event(container, NORMAL, "Created", f"Created container: {container.name}")
        self._event(container, NORMAL, "Started", f"Started container {container.name}")
        container.started_at = now()
        container.begun = time.monotonic()
        for probe in (container.readiness, container.liveness, container.startup):
            if probe is not None:
                probe.successes = probe.failures = 0
                probe.passed = False
                probe.next_at = time.monotonic() + probe.initial_delay
        hook = ((container.plan.spec if container.plan else {}).get("lifecycle") or {}).get(
            "postStart"
        )
        if hook:
            self._post_start(container, hook)

    def _post_start(self, container: Container, hook: dict[str, Any]) -> None:
        """Run a postStart hook right after the container started, as the kubelet does (it
        holds the container's start until the hook returns); a failing hook kills the
        container (`FailedPostStartHook`), which then restarts as its policy says."""
        assert container.plan is not None and container.proc is not None
        containers.wait_started(container.proc.pid)  # its mounts done, its command running
        spec = {**hook, "timeoutSeconds": 30}
        try:
            argv = container_probes.command(spec, container.plan.spec, self.pod_ip)
            ok, output = container_probes.run(
                self._inside(container, spec), argv, container.plan.env, 30
            )
        except ValueError as exc:
            ok, output = False, str(exc)
        if not ok:
            self._event(container, WARNING, "FailedPostStartHook",
                        f"PostStartHook failed: {output}")  # fmt: skip
            self._stop_container(container, self._grace())

    def _supervise(self) -> None:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        while not self.stop.is_set():
            deadline = self.seen["spec"].get("activeDeadlineSeconds")  # may be updated
            if deadline is not None and time.monotonic() - self.began > float(deadline):
                self._deadline_exceeded()
                return
            for container in self.containers:
                self._check(container, policy)
            if all(c.exited is not None for c in self.containers):
                # Never / OnFailure and every container done: the pod's phase is final.
                codes = [int((c.exited or {}).get("exitCode", 1)) for c in self.containers]
                self.phase = "Succeeded" if not any(codes) else "Failed"
                self._write_status()
                return
            self._write_status()
            self.stop.wait(0.2)

    def _deadline_exceeded(self) -> None:
        """activeDeadlineSeconds ran out: the kubelet kills the containers and fails the pod."""
        self.reason = ("DeadlineExceeded",
                       "Pod was active on the node longer than the specified deadline")  # fmt: skip
        for container in self.containers:
            if container.proc is not None:
                self._stop_container(container, self._grace())
        self.phase = "Failed"
        self._write_status()

    def _check(self, container: Container, policy: str) -> None:
        proc = container.proc
        clock = time.monotonic()
        if proc is not None and proc.poll() is not None:
            code = containers.exit_code(proc.returncode)
            container.last_exit = {
                "exitCode": code,
                "reason": containers.reason(code),
                "startedAt": container.started_at,
                "finishedAt": now(),
                **self._termination_message(container, code),
            }
            procs.kill_session(proc.pid)  # the namespace died with PID 1; the launcher too
            container.proc = None
            if policy == "Always" or (policy == "OnFailure" and code != 0):
                container.exited_at = clock
                delay = container.backoff.delay(clock)
                container.next_restart = clock + delay
                container.waiting = (
                    ("CrashLoopBackOff", f"back-off {delay:g}s restarting")
                    if delay
                    else ("ContainerCreating", "")
                )
                if delay:
                    self._back_off_event(container)
            else:
                container.exited = container.last_exit
        if container.proc is None and container.exited is None:
            if clock >= container.next_restart:
                container.restarts += 1
                container.backoff.restarted(container.exited_at)
                self._launch(container)
            return
        if container.proc is None:
            return
        if not container.started_up:  # only the startup probe until it succeeds
            due = [(container.startup, "startup")]
        else:
            due = [(container.readiness, "readiness"), (container.liveness, "liveness")]
        for probe, kind in due:
            if probe is None or clock < probe.next_at:
                continue
            probe.next_at = clock + probe.period
            self._probe(container, probe)
            if probe.failures:
                self._event(container, WARNING, "Unhealthy",
                            f"{kind.capitalize()} probe failed: {probe.last_output}")  # fmt: skip
            if kind == "startup" and probe.passed:  # the others start at once
                for other in (container.readiness, container.liveness):
                    if other is not None:
                        other.next_at = min(other.next_at, clock)
            if kind in ("liveness", "startup") and probe.failed_out():
                logger.info("pod %s: container %s failed %s; restarting", self.name,
                            container.name, kind)  # fmt: skip
                self._event(container, NORMAL, "Killing", f"Container {container.name} failed "
                            f"{kind} probe, will be restarted")  # fmt: skip
                self._stop_container(container, self._grace(probe.spec))

    def _probe(self, container: Container, probe: container_probes.ProbeState) -> None:
        assert container.plan is not None
        try:
            argv = container_probes.command(probe.spec, container.plan.spec, self.pod_ip)
        except ValueError as exc:
            probe.record(False, str(exc))
            return
        timeout = float(probe.spec.get("timeoutSeconds", 1)) + 1
        inside = self._inside(container, probe.spec)
        ok, output = container_probes.run(inside, argv, container.plan.env, timeout)
        probe.record(ok, output)

    # -- status -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        started = self.phase == "Running"
        ready = started and all(c.ready for c in self.containers)
        # readinessGates: Ready also waits for the conditions others set on the pod
        gates = [g.get("conditionType") for g in self.seen["spec"].get("readinessGates") or []]
        held = {c.get("type"): c.get("status")
                for c in (self.seen.get("status") or {}).get("conditions") or []}  # fmt: skip
        conditions = [
            ("PodScheduled", True),
            ("PodReadyToStartContainers", bool(self.pod_ip)),
            ("Initialized", self.initialized),
            ("ContainersReady", ready),
            ("Ready", ready and all(held.get(gate) == "True" for gate in gates)),
        ]
        for kind, value in conditions:
            if self.since.get(kind, (None, ""))[0] != value:
                self.since[kind] = (value, now())
        body: dict[str, Any] = {
            "phase": self.phase,
            "hostIP": self.ctx.host_ip,
            "hostIPs": [{"ip": self.ctx.host_ip}],
            "startTime": self.start_time,
            "conditions": [
                {
                    "type": kind,
                    "status": "True" if value else "False",
                    "lastTransitionTime": self.since[kind][1],
                }
                for kind, value in conditions
            ],
            "containerStatuses": [c.status() for c in self.containers],
        }
        if self.inits:
            body["initContainerStatuses"] = [c.status() for c in self.inits]
        if self.pod_ip:
            body["podIP"] = self.pod_ip
            body["podIPs"] = [{"ip": self.pod_ip}]
        if self.reason:
            body["reason"], body["message"] = self.reason
        return body

    def _write_status(self) -> None:
        """Patch the pod's status, for this pod only: the patch carries its uid, which the API
        server checks (409 when the pod of that name is another one), as the kubelet's status
        manager does. A pod deleted at once (grace 0) and created again under its name (a
        StatefulSet's) must not get the status of the old one, which is still terminating."""
        body = self.status()
        text = json.dumps(body, sort_keys=True)
        if text == self.last_status:
            return
        patch = {"metadata": {"uid": self.uid}, "status": body}
        try:
            self.ctx.core.patch_namespaced_pod_status(self.name, self.namespace, patch)
            self.last_status = text
        except Exception as exc:  # noqa: BLE001 - the pod may be gone; the next pass retries
            logger.debug("status of %s not written: %s", self.name, exc)

    # -- termination --------------------------------------------------------------------------

    def terminate(self, grace_period: float) -> None:
        """Stop every container at once (preStop, SIGTERM to PID 1, SIGKILL after
        `grace_period`), as the kubelet does; then free the pod's network."""
        self.stop.set()
        for container in self.containers + self.inits:
            if container.running:
                self._event(container, NORMAL, "Killing", f"Stopping container {container.name}")
        stoppers = [
            threading.Thread(target=self._stop_container, args=(c, grace_period), daemon=True)
            for c in self.containers + self.inits
            if c.proc is not None
        ]
        for thread in stoppers:
            thread.start()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=5)  # the pod's loop ends its pass: probes are ours now
        self._probe_while_terminating(stoppers)
        self.ctx.remove_pod_network(self.uid)
        shutil.rmtree(self.pod_dir / "tmp", ignore_errors=True)

    def _probe_while_terminating(self, stoppers: list[threading.Thread]) -> None:
        """Until every container has stopped, go on with readiness probes and the status, as
        the kubelet does during a pod's grace period: a container whose readiness probe fails
        while it drains turns the pod NotReady (its endpoint `serving: false`)."""
        while any(thread.is_alive() for thread in stoppers):
            clock = time.monotonic()
            for container in self.containers:
                probe = container.readiness
                if probe is None or not container.running or clock < probe.next_at:
                    continue
                probe.next_at = clock + probe.period
                self._probe(container, probe)
            self._write_status()
            for thread in stoppers:
                thread.join(timeout=0.2)
        self._write_status()

    def _grace(self, probe_spec: dict[str, Any] | None = None) -> float:
        """The pod's terminationGracePeriodSeconds (a probe's own overrides it), default 30."""
        own = (probe_spec or {}).get("terminationGracePeriodSeconds")
        if own is not None:
            return float(own)
        value = self.pod["spec"].get("terminationGracePeriodSeconds")
        return containers.DEFAULT_GRACE_S if value is None else float(value)

    def _stop_container(self, container: Container, grace_period: float) -> None:
        proc = container.proc
        if proc is None:
            return
        hook = ((container.plan.spec if container.plan else {}).get("lifecycle") or {}).get(
            "preStop"
        )
        result = containers.stop(
            proc.pid,
            grace_period,
            pre_stop=(lambda timeout: self._pre_stop(container, hook, timeout)) if hook else None,
            reap=proc.poll,
        )
        if result.hook_error:
            logger.info("pod %s: preStop of %s failed: %s", self.name, container.name,
                        result.hook_error)  # fmt: skip
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def _pre_stop(self, container: Container, hook: dict[str, Any], timeout: float) -> None:
        """Run a preStop hook (exec inside the container, httpGet from the pod's network)."""
        assert container.plan is not None
        spec = {**hook, "timeoutSeconds": max(int(timeout), 1)}
        argv = container_probes.command(spec, container.plan.spec, self.pod_ip)
        ok, output = container_probes.run(
            self._inside(container, spec), argv, container.plan.env, timeout
        )
        if not ok:
            raise RuntimeError(output or "failed")

    def _inside(self, container: Container, handler: dict[str, Any]) -> list[str]:
        """The prefix that runs a handler where the kubelet runs it: an exec inside the
        container (its mount, PID and network namespaces), the others in the pod's network."""
        pid1 = containers.main_pid(container.proc.pid, wait=0) if container.proc else None
        if "exec" in handler and pid1 is not None:
            return ["nsenter", f"--target={pid1}", "--mount", "--pid", "--net", "--uts", "--"]
        return ["ip", "netns", "exec", self.netns]

    # -- events -----------------------------------------------------------------------------

    def _event(self, container: Container, kind: str, reason: str, message: str) -> None:
        self.ctx.events.container(self.pod, container.name, kind, reason, message)

    def _back_off_event(self, container: Container) -> None:
        self._event(container, WARNING, "BackOff", f"Back-off restarting failed container "
                    f"{container.name} in pod {pod_ref(self.pod)}")  # fmt: skip

    # -- what the kubelet API serves (kubeletapi.ContainerView) ---------------------------------

    def _container(self, name: str) -> Container:
        for container in self.containers + self.inits:
            if container.name == name:
                return container
        raise LookupError(f'container "{name}" in pod "{self.name}" is not available')

    def termination_log(self, container: str) -> Path:
        """The host file mounted at the container's `terminationMessagePath`."""
        return self.pod_dir / "termination" / container

    def _termination_message(self, container: Container, code: int) -> dict[str, str]:
        """The kubelet's `message` of a terminated container: what it wrote to its
        `terminationMessagePath` (at most 4096 bytes); with `FallbackToLogsOnError` and a
        failure that wrote none, the end of its log (80 lines, 2048 bytes at most)."""
        spec = container.plan.spec if container.plan else {}
        try:
            message = self.termination_log(container.name).read_bytes()[:4096]
        except OSError:
            message = b""
        policy = spec.get("terminationMessagePolicy", "File")
        if not message.strip() and code != 0 and policy == "FallbackToLogsOnError":
            if container.logs is not None:
                container.logs.join(2.0)
            path = self.log_path(container.name, container.instance)
            lines = [line.split(" ", 3)[3] if line.count(" ") >= 3 else line
                     for line in path.read_text(errors="replace").splitlines()[-80:]]  # fmt: skip
            message = "\n".join(lines).encode()[-2048:] if lines else b""
        text = message.decode(errors="replace")
        return {"message": text} if text else {}

    def log_path(self, container: str, instance: int) -> Path:
        """Where instance `instance` (its restartCount) of `container` logs."""
        return self.pod_dir / "logs" / container / f"{instance}.log"

    def _prune_logs(self, container: Container) -> None:
        """Keep the logs of the current and the previous instance only."""
        folder = self.pod_dir / "logs" / container.name
        for path in folder.glob("*.log"):
            if path.stem.isdigit() and int(path.stem) < container.instance - 1:
                path.unlink(missing_ok=True)

    def log_file(self, container: str, previous: bool) -> tuple[Path, Callable[[], bool]]:
        """Return the log of `container`'s current (or `previous`) instance and a function
        telling whether that instance still runs; raise LookupError with the kubelet's words
        when there is none. While a container waits to restart, both are its last exit's."""
        found = self._container(container)
        instance = found.instance
        if previous:
            waiting_again = not found.running and found.exited is None and found.last_exit
            instance = instance if waiting_again else instance - 1
            if instance < 0 or not self.log_path(container, instance).exists():
                raise LookupError(
                    f'previous terminated container "{container}" in pod "{self.name}" not found'
                )
        elif instance < 0:
            reason = found.waiting[0] or "ContainerCreating"
            raise LookupError(
                f'container "{container}" in pod "{self.name}" is waiting to start: {reason}'
            )
        current = found.instance

        def running() -> bool:
            return found.instance == current == instance and found.running

        return self.log_path(container, instance), running

    def exec_target(self, container: str) -> podexec.ExecTarget:
        """The running container `container` to exec in; LookupError when it does not run."""
        found = self._container(container)
        pid1 = containers.main_pid(found.proc.pid, wait=0) if found.running and found.proc else None
        if pid1 is None or found.plan is None:
            raise LookupError(f'container not found ("{container}")')
        return podexec.ExecTarget(pid1, dict(found.plan.env), found.plan.workdir)

    def alive_sessions(self) -> list[int]:
        return [
            c.proc.pid
            for c in self.containers + self.inits
            if c.proc is not None and procs.session_pids(c.proc.pid)
        ]


def _probe(spec: dict[str, Any], key: str) -> container_probes.ProbeState | None:
    return container_probes.ProbeState(spec[key]) if spec.get(key) else None


def _mount_script(
    mounts: list[tuple[str, str, bool]], workdir: str = "/", keep: tuple[str, ...] = ()
) -> str:
    """Shell lines binding each (source, target) in the container's mount namespace.

    `keep` are host paths the container must still see where they are (the runtime standing
    in for its image: this project's venv, Python, Redis), even under a mount target such as
    the pod's private `/tmp`: each is bound into that mount's source first, and the mount is
    then made recursive (`--rbind`), so it carries them.
    """
    lines = ["set -e"]
    recursive: set[str] = set()
    for path in keep:
        for source, target, _ in mounts:
            inside = target.rstrip("/") + "/"
            if path.startswith(inside) and Path(source).is_dir():
                carrier = Path(source) / path[len(inside) :]
                k, c = shlex.quote(path), shlex.quote(str(carrier))
                lines += [f"mkdir -p {c}", f"mount --bind {k} {c}"]
                recursive.add(target)
    # A mount over a directory that holds other mounts' sources (e.g. an emptyDir on /tmp
    # while the node's state dir is under /tmp) would hide them: bind those last.
    sources = [source for source, _, _ in mounts]

    def shadows(target: str) -> bool:
        return any(src.startswith(target.rstrip("/") + "/") for src in sources)

    ordered = [m for m in mounts if not shadows(m[1])] + [m for m in mounts if shadows(m[1])]
    for source, target, read_only in ordered:
        s, t = shlex.quote(source), shlex.quote(target)
        if Path(source).is_dir():
            lines.append(f"mkdir -p {t}")
        else:
            lines.append(f'[ -e {t} ] || {{ mkdir -p "$(dirname {t})"; : > {t}; }}')
        lines.append(f"mount {'--rbind' if target in recursive else '--bind'} {s} {t}")
        if read_only:
            lines.append(f"mount -o remount,bind,ro {t}")
    lines.append(f"mkdir -p {shlex.quote(workdir)} && cd {shlex.quote(workdir)}")
    return "\n".join(lines)  # run by the launcher's PID 1 (runtime.containers.command)
