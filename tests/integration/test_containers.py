"""Containers on the real kernel: PID 1 of their own PID namespace, ended as the kubelet ends them.

Each test starts real processes through `chaosraysvc.runtime.containers` (the one runtime of the
sandbox and of the lab's kubelet) and checks what a container on Kubernetes does: SIGTERM
reaches PID 1 only, the grace period then SIGKILL, every process ends with PID 1, preStop runs
before SIGTERM, exit codes as a runtime reports them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosraysvc.runtime import containers, sessions
from tests.support.polling import wait_for


def _pid_namespaces_refused() -> str:
    try:
        done = subprocess.run(
            containers.command(["true"]), capture_output=True, text=True, timeout=10
        )
    except Exception as exc:  # noqa: BLE001 - the reason is the skip message
        return f"{type(exc).__name__}: {exc}"
    return "" if done.returncode == 0 else done.stderr.strip() or f"exit {done.returncode}"


REFUSED = _pid_namespaces_refused()
pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(bool(REFUSED), reason=f"PID namespaces refused: {REFUSED}"),
]

# PID 1 records the signals it gets and starts a child that records its own; both then wait.
TRAPPING = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    out = sys.argv[1]
    def note(who):
        def handler(signum, frame):
            with open(os.path.join(out, who), "a") as f:
                f.write(f"{signum} {time.time()}\\n")
            if who == "pid1" and len(sys.argv) > 2:
                time.sleep(float(sys.argv[2]))  # drain, as ray start --block does
                sys.exit(0)
        return handler
    for who in ("daemon", "child"):
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, note(who))
            if who == "daemon":
                os.setsid()  # it leaves the session: it must still die with PID 1
            with open(os.path.join(out, who + ".pid"), "w") as f:
                f.write(str(os.getpid()))
            while True:
                time.sleep(0.1)
    signal.signal(signal.SIGTERM, note("pid1"))
    with open(os.path.join(out, "pid1.ns_pid"), "w") as f:
        f.write(str(os.getpid()))
    while True:
        time.sleep(0.1)
    """
)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Containers the test starts; every one of them is killed at the end, even on failure."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        containers.stop(proc.pid, 0, reap=proc.poll)
        proc.wait(timeout=10)


def _start(
    started: list[subprocess.Popen[bytes]], tmp_path: Path, *args: str
) -> subprocess.Popen[bytes]:
    script = tmp_path / "trapping.py"
    script.write_text(TRAPPING)
    proc = containers.spawn(
        [sys.executable, str(script), str(tmp_path), *args],
        dict(os.environ),
        tmp_path / "container.log",
        tmp_path,
    )
    started.append(proc)
    for pid_file in (tmp_path / "child.pid", tmp_path / "daemon.pid"):
        wait_for(pid_file.exists, timeout=15, what=f"{pid_file.name} to be written")
    wait_for(lambda: (tmp_path / "pid1.ns_pid").exists(), timeout=15, what="PID 1 to start")
    return proc


def _host_children(proc: subprocess.Popen[bytes]) -> list[int]:
    """The host pids of PID 1's children (the pids the container writes are its namespace's)."""
    pid1 = containers.main_pid(proc.pid)
    assert pid1 is not None
    children = [int(w) for w in Path(f"/proc/{pid1}/task/{pid1}/children").read_text().split()]
    assert len(children) == 2
    return children


def test_the_main_process_is_pid_1_of_its_own_namespace(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    proc = _start(started, tmp_path)
    assert (tmp_path / "pid1.ns_pid").read_text() == "1"
    host_pid = containers.main_pid(proc.pid)
    assert host_pid is not None and host_pid != 1
    assert sessions.session_of(host_pid) == proc.pid  # recorded under the launcher's session


def test_sigterm_reaches_pid_1_only_and_the_rest_dies_with_it(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    proc = _start(started, tmp_path, "0.5")  # PID 1 drains 0.5 s, then exits 0
    children = _host_children(proc)
    result = containers.stop(proc.pid, 10, reap=proc.poll)
    assert result.term_sent and not result.killed
    assert (tmp_path / "pid1").read_text().startswith("15 ")
    assert not (tmp_path / "child").exists()  # no SIGTERM for anyone but PID 1
    assert not (tmp_path / "daemon").exists()
    assert [sessions.session_of(c) for c in children] == [None, None]  # the kernel killed them
    assert 0.4 < result.seconds < 5
    assert containers.exit_code(proc.wait(timeout=5)) == 0


def test_a_pid_1_that_ignores_sigterm_is_killed_when_the_grace_period_ends(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    proc = _start(started, tmp_path, "1000")  # its handler never returns within the grace
    result = containers.stop(proc.pid, 1.5, reap=proc.poll)
    assert result.term_sent and result.killed
    assert 1.4 < result.seconds < 5
    code = containers.exit_code(proc.wait(timeout=5))
    assert (code, containers.reason(code)) == (137, "Error")


def test_when_pid_1_exits_every_process_of_the_container_ends(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    proc = _start(started, tmp_path)
    children = _host_children(proc)
    pid1 = containers.main_pid(proc.pid)
    assert pid1 is not None
    os.kill(pid1, 9)  # PID 1 dies (as `ray start --block` does when the GCS dies)
    # ... and so do its children, the daemon too, which left the session.
    wait_for(lambda: all(sessions.session_of(c) is None for c in children), timeout=5,
             what="the children to end")  # fmt: skip
    assert containers.exit_code(proc.wait(timeout=5)) == 137


def test_pre_stop_runs_before_sigterm_within_the_grace_period(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    proc = _start(started, tmp_path, "0")
    hook_ran: list[float] = []

    def pre_stop(timeout: float) -> None:
        assert timeout > 5
        time.sleep(0.3)
        hook_ran.append(time.time())

    result = containers.stop(proc.pid, 10, pre_stop=pre_stop, reap=proc.poll)
    term_at = float((tmp_path / "pid1").read_text().split()[1])
    assert hook_ran and hook_ran[0] <= term_at
    assert result.hook_seconds >= 0.3 and not result.killed


def test_exit_codes_are_reported_as_a_runtime_reports_them(tmp_path: Path) -> None:
    codes = []
    for argv in (["true"], ["sh", "-c", "exit 3"], ["sh", "-c", "kill -TERM $$; sleep 0.2"]):
        proc = containers.spawn(argv, dict(os.environ), tmp_path / "log", tmp_path)
        codes.append(containers.exit_code(proc.wait(timeout=10)))
    # PID 1 has no handler for SIGTERM sent from inside its own namespace: ignored, as in a
    # container; the shell then exits after its sleep with status 0.
    assert codes == [0, 3, 0]


def test_a_pod_s_hostname_is_its_own_and_the_host_keeps_its_name() -> None:
    """Kubernetes' e2e "node-pod communication" read the host's name from a pod's netexec
    (`/hostName` answered "vm"): a pod's containers get a UTS namespace named for the pod."""
    named = subprocess.run(
        containers.command(["hostname"], hostname="netserver-0"),
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    plain = subprocess.run(containers.command(["hostname"]), capture_output=True, text=True,
                           timeout=10)  # fmt: skip

    assert named.stdout.strip() == "netserver-0", named.stderr
    assert plain.stdout.strip() == socket.gethostname() != "netserver-0"


def test_the_environment_reaches_the_command_untouched_even_names_a_shell_drops() -> None:
    """Kubernetes' e2e "Secrets should be consumable via the environment": `envFrom` gives
    `data-1=value-1`; a shell between the launcher and the command (dash) dropped it."""
    env = {"PATH": "/usr/bin:/bin", "data-1": "value-1", "p-data-1": "x"}
    for setup in ("", "true"):
        done = subprocess.run(
            containers.command(["env"], setup_script=setup, workdir="/tmp"),
            env=env, capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        assert "data-1=value-1" in done.stdout.splitlines(), (setup, done.stderr)
        assert "p-data-1=x" in done.stdout.splitlines()
