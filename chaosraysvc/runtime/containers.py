"""A container as a container runtime runs it: its main process is PID 1 of its own PID namespace.

The sandbox's pods and the lab kubelet's containers start and end here, one way:

- `command(argv, ...)` runs `argv` through the launcher `pid1.py` (in the lab inside `ip netns
  exec <pod netns>`, with a mount script run before `exec`), so `argv` is PID 1 of new PID
  and mount namespaces with their own `/proc` (not root: a user namespace maps the caller to
  root first). The launcher stays outside as PID 1's parent: it is the recorded process (its
  pid is the pod's session id) and exits with PID 1's status, 128 + n for signal n.
- `stop(launcher, grace)` is what the kubelet does on deletion: the `pre_stop` hook first,
  then SIGTERM to PID 1 *only* (as a runtime does: `ray start --block` then drains its node),
  SIGKILL when the grace period ends (2 s more if the hook used it all, as the kubelet grants).
  When PID 1 exits the kernel kills every other process of its namespace; a last SIGKILL of
  the launcher's session ends anything that could have escaped.
- `exit_code(returncode)` reports a death by signal as a runtime does (128 + signal: 137 for
  SIGKILL, 143 for SIGTERM) and `reason(code)` names it (`Completed`, `Error`).
- `RestartBackoff` is the kubelet's crash-loop back-off: the first restart at once, then 10 s
  doubling to 300 s, forgotten after 10 minutes without a crash.

Only PIDs recorded by the caller are ever signalled (the launcher, its child, its session),
never processes found by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chaosraysvc.runtime import sessions
from chaosraysvc.runtime.executables import host_tool

BACKOFF_INITIAL_S = 10.0
BACKOFF_MAX_S = 300.0
BACKOFF_RESET_S = 600.0  # 2 x the maximum, as the kubelet's flowcontrol.Backoff forgets
HOOK_EXTENSION_S = 2.0  # the kubelet's one-time extension when preStop used the whole grace
DEFAULT_GRACE_S = 30.0  # a pod's terminationGracePeriodSeconds when its spec says nothing
MAIN_PID_WAIT_S = 5.0


LAUNCHER = Path(__file__).with_name("pid1.py")  # stdlib only: run as a script, isolated


def command(
    argv: list[str],
    *,
    setup_script: str = "",
    netns: str = "",
    hostname: str = "",
    workdir: str = "",
) -> list[str]:
    """Return the command line that runs `argv` as PID 1 of a new PID namespace.

    `setup_script` (shell lines PID 1 runs with `/bin/sh` and the host's tools before it
    `exec`s `argv`) binds volumes; `workdir` is where `argv` then starts; `netns` runs the
    container in that named network namespace; `hostname` gives it a UTS namespace of that
    name (a pod's hostname). `argv` gets the environment the launcher is given, unchanged.
    """
    options = [f"--hostname={hostname}"] if hostname else []
    if setup_script:
        options.append(f"--setup={setup_script}")
    if workdir:
        options.append(f"--workdir={workdir}")
    inner = [sys.executable, "-I", str(LAUNCHER), *options, "--", *argv]
    return [host_tool("ip"), "netns", "exec", netns, *inner] if netns else inner


def spawn(
    argv: list[str],
    env: dict[str, str],
    log_path: Path,
    cwd: Path,
    *,
    setup_script: str = "",
    netns: str = "",
) -> subprocess.Popen[bytes]:
    """Start a container (its launcher in a session of its own); output appended to `log_path`."""
    return sessions.spawn(command(argv, setup_script=setup_script, netns=netns), env, log_path, cwd)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(word) for word in text.split()]


def main_pid(launcher: int, wait: float = MAIN_PID_WAIT_S) -> int | None:
    """Return the host pid of the container's PID 1 (the launcher's child), or None if gone."""
    deadline = time.monotonic() + wait
    while True:
        children = _children(launcher)
        if children:
            return children[0]
        if time.monotonic() >= deadline or not sessions.session_of(launcher):
            return None
        time.sleep(0.01)


def wait_started(launcher: int, timeout: float = MAIN_PID_WAIT_S) -> int | None:
    """Wait until the container's command runs (PID 1 has `exec`ed it, its mounts done);
    return PID 1's host pid, or None if that did not happen within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pid1 = main_pid(launcher, wait=timeout)
    while pid1 is not None:
        try:
            cmdline = Path(f"/proc/{pid1}/cmdline").read_bytes()
        except OSError:
            return None
        if LAUNCHER.name.encode() not in cmdline:
            return pid1
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)
    return None


def exit_code(returncode: int) -> int:
    """The container's exit code from its launcher's return code (signals as 128 + n)."""
    return returncode if returncode >= 0 else 128 - returncode


def reason(code: int) -> str:
    """The kubelet's name for a terminated container's exit."""
    return "Completed" if code == 0 else "Error"


@dataclass
class StopResult:
    """How a container ended: by SIGTERM within the grace period or by SIGKILL after it."""

    hook_seconds: float = 0.0
    term_sent: bool = False
    killed: bool = False  # SIGKILL was needed (the grace period ran out)
    seconds: float = 0.0  # from the stop call to the last process gone
    hook_error: str = ""


def stop(
    launcher: int,
    grace_period: float,
    *,
    pre_stop: Callable[[float], None] | None = None,
    reap: Callable[[], object] | None = None,
) -> StopResult:
    """End the container whose launcher is `launcher`, as the kubelet ends it on deletion.

    `pre_stop(timeout)` runs first (its errors are recorded, as the kubelet logs a failed hook
    and goes on); then SIGTERM to PID 1 only; after `grace_period` (counted from the start,
    hook included) SIGKILL of PID 1, which ends the PID namespace. `reap` is called while
    waiting so that a launcher that is the caller's child does not linger as a zombie.
    """
    started = time.monotonic()
    result = StopResult()
    deadline = started + max(grace_period, 0.0)

    def gone() -> bool:
        if reap is not None:
            reap()
        else:
            sessions.reap(launcher)
        return not sessions.session_pids(launcher)

    if grace_period > 0 and pre_stop is not None and not gone():
        try:
            pre_stop(max(deadline - time.monotonic(), 0.0))
        except Exception as exc:  # noqa: BLE001 - a failed hook is reported, not fatal
            result.hook_error = f"{type(exc).__name__}: {exc}"[:300]
        result.hook_seconds = time.monotonic() - started
        if time.monotonic() >= deadline:
            deadline = time.monotonic() + HOOK_EXTENSION_S
    pid1 = main_pid(launcher, wait=0.5)
    if grace_period > 0 and pid1 is not None:
        try:
            os.kill(pid1, signal.SIGTERM)
            result.term_sent = True
        except ProcessLookupError:
            pass
        while time.monotonic() < deadline and not gone():
            time.sleep(0.05)
    if not gone():
        result.killed = True
        pid1 = main_pid(launcher, wait=0)
        if pid1 is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid1, signal.SIGKILL)  # the kernel ends the whole PID namespace
        sessions.kill_session(launcher)
    gone()
    result.seconds = time.monotonic() - started
    return result


@dataclass
class RestartBackoff:
    """The kubelet's restart back-off for one container (CrashLoopBackOff).

    `delay(exited_at)` is how long to wait before restarting a container that just exited;
    call `restarted(exited_at)` when it restarts (the kubelet counts from the exit). First
    restart at once; then 10 s, 20 s, ... 300 s; after 10 minutes without a restart the
    back-off starts again from the beginning.
    """

    initial: float = BACKOFF_INITIAL_S
    maximum: float = BACKOFF_MAX_S
    reset_after: float = BACKOFF_RESET_S
    current: float = 0.0
    last: float = field(default=-1e18)

    def delay(self, now: float) -> float:
        if self.current and now - self.last > self.reset_after:
            self.current = 0.0
        return self.current

    def restarted(self, now: float) -> None:
        self.delay(now)
        self.current = min(self.current * 2, self.maximum) if self.current else self.initial
        self.last = now
