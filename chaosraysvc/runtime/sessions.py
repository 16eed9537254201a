"""Process sessions: how the sandbox starts a "pod" and how it ends one for sure.

Every pod runs in its own process session (`start_new_session=True`), so every
process Ray forks for that node shares the session id, which is the pid of the
pod's first process. Ending a pod means signalling every process of that session,
found through /proc, never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may contain spaces.
    return raw[raw.rfind(")") + 2 :].split()


def session_of(pid: int) -> int | None:
    """Return the session id of `pid`, or None when it is gone."""
    fields = _stat_fields(pid)
    return int(fields[3]) if fields else None


def start_time_of(pid: int) -> int | None:
    """Return the start time of `pid` in clock ticks since boot (to detect pid reuse)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def sessions() -> dict[int, list[int]]:
    """Return {session id: pids} of every live (non-zombie) process on the machine."""
    found: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[0] != "Z":
            found.setdefault(int(fields[3]), []).append(int(entry.name))
    return found


def running(pid: int, start_ticks: int) -> bool:
    """Tell whether `pid` is still the process started at `start_ticks` and not a zombie."""
    fields = _stat_fields(pid)
    if fields is None:
        return False
    return fields[0] not in ("Z", "X") and int(fields[19]) == start_ticks


def reap(pid: int) -> None:
    """Collect `pid`'s exit status if it is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def comm_of(pid: int) -> str:
    """Return the process' command name (/proc/PID/comm, at most 15 characters), or ""."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def session_pids(sid: int) -> list[int]:
    """Return the pids of every live (non-zombie) process in session `sid`."""
    return sessions().get(sid, [])


def spawn(
    cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    """Start `cmd` in a new session, output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def signal_session(sid: int, sig: int) -> int:
    """Send `sig` to every process of session `sid`; return how many were signalled."""
    count = 0
    for pid in session_pids(sid):
        try:
            os.kill(pid, sig)
            count += 1
        except ProcessLookupError:
            pass
    return count


def kill_session(sid: int, grace_period: float = 0.0, timeout: float = 5.0) -> bool:
    """End every process of session `sid`: SIGTERM and `grace_period` first when > 0.

    Returns True when no process of the session is left.
    """
    if grace_period > 0 and signal_session(sid, signal.SIGTERM):
        deadline = time.monotonic() + grace_period
        while time.monotonic() < deadline and session_pids(sid):
            time.sleep(0.05)
    deadline = time.monotonic() + timeout
    while True:
        if not signal_session(sid, signal.SIGKILL):
            return True
        if time.monotonic() > deadline:
            return not session_pids(sid)
        time.sleep(0.05)


def record(directory: Path, sid: int) -> None:
    """Note session `sid` (a container's launcher) in `directory`, so that whoever cleans up
    finds it even when the process that started it died without ending it (a node agent
    killed with SIGKILL): `end_recorded(directory)`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / str(sid)).write_text(str(start_time_of(sid) or 0))


def end_recorded(directory: Path, timeout: float = 5.0) -> list[int]:
    """End every session recorded in `directory` that still runs (the same process: its start
    time is checked, a reused pid is left alone), forget the records; return the sessions
    that could not be ended."""
    left = []
    for path in sorted(directory.glob("*")) if directory.is_dir() else []:
        try:
            sid, ticks = int(path.name), int(path.read_text() or 0)
        except (ValueError, OSError):
            continue
        started = start_time_of(sid)
        # ours: the leader itself, or (leader gone) what is left of its session; a leader
        # with another start time is a reused pid, not ours
        ours = started == ticks or (started is None and bool(session_pids(sid)))
        if ours and not kill_session(sid, timeout=timeout):
            left.append(sid)
            continue
        reap(sid)
        path.unlink(missing_ok=True)
    return left


def raise_priority(pid: int, nice: int) -> bool:
    """Set `pid`'s nice value (its children inherit it); False when not permitted."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except (PermissionError, ProcessLookupError):
        return False
    return True
