"""Process sessions are how the sandbox ends a pod for sure: test them on real processes."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

from chaosraysvc.runtime import ports as netcheck
from chaosraysvc.runtime import sessions as procs

CHILDREN = (
    "import subprocess,time; [subprocess.Popen(['sleep','60']) for _ in range(3)]; time.sleep(60)"
)


def test_kill_session_ends_the_leader_and_every_descendant(tmp_path: Path) -> None:
    popen = procs.spawn([sys.executable, "-c", CHILDREN], {}, tmp_path / "log", tmp_path)
    try:
        deadline = time.monotonic() + 10
        while len(procs.session_pids(popen.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(procs.session_pids(popen.pid)) == 4
        assert procs.session_of(popen.pid) == popen.pid
        assert procs.kill_session(popen.pid, grace_period=0.2)
        popen.wait(5)
        assert procs.session_pids(popen.pid) == []
    finally:
        procs.kill_session(popen.pid)


def test_start_time_tells_a_process_from_a_reused_pid(tmp_path: Path) -> None:
    popen = procs.spawn(["sleep", "30"], {}, tmp_path / "log", tmp_path)
    try:
        ticks = procs.start_time_of(popen.pid)
        assert ticks is not None and ticks > 0
    finally:
        procs.kill_session(popen.pid)
        popen.wait(5)
    assert procs.start_time_of(popen.pid) is None


def test_listening_socket_is_attributed_to_its_process() -> None:
    import os

    port = netcheck.free_port()
    assert netcheck.PORT_RANGE[0] <= port <= netcheck.PORT_RANGE[1]
    assert not netcheck.port_in_use(port)
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert netcheck.port_in_use(port)
        assert netcheck.port_open(port)
        assert netcheck.pids_listening(port, [os.getpid()]) == {os.getpid()}
    assert netcheck.pids_listening(port, [os.getpid()]) == set()
    assert not netcheck.port_open(port)


def test_recorded_sessions_are_ended_and_a_reused_pid_is_left_alone(tmp_path: Path) -> None:
    """Issue 25 item 3: a node agent killed with SIGKILL left its pods' processes running;
    `node down` now ends what the kubelet recorded, checking the start time first."""
    records = tmp_path / "sessions"
    ours = procs.spawn(["sleep", "60"], {"PATH": "/usr/bin:/bin"}, tmp_path / "a.log", tmp_path)
    other = procs.spawn(["sleep", "60"], {"PATH": "/usr/bin:/bin"}, tmp_path / "b.log", tmp_path)
    try:
        procs.record(records, ours.pid)
        procs.record(records, other.pid)
        (records / str(other.pid)).write_text("1")  # as if the pid were another process now

        left = procs.end_recorded(records)

        assert left == []
        assert not procs.session_pids(ours.pid)  # killed (and reaped)
        assert other.poll() is None  # not ours: untouched
        assert not list(records.iterdir())
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait()
