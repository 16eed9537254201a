"""Run a command as PID 1 of new PID and mount namespaces; exit with its status.

    python -m chaosraysvc.runtime.pid1 [--hostname=NAME] [--setup=SCRIPT] [--workdir=DIR] \
        -- ARGV...

With `--hostname`, also in a UTS namespace of its own named NAME (a pod's hostname). With
`--setup`, PID 1 first runs SCRIPT with `/bin/sh` and the host's tools (`HOST_PATH`) in the
new mount namespace (a pod's volume mounts), then changes to DIR, then `exec`s ARGV with the
environment it was given, untouched: no shell stands between (a shell would drop variables
whose names it cannot hold, such as a ConfigMap's `data-1` given by `envFrom`).

The container launcher of `chaosraysvc.runtime.containers` (what `unshare --pid --fork
--mount-proc --kill-child` does, but exiting 128 + n when PID 1 dies of signal n, as a
container runtime reports it: util-linux's unshare exits 1 when its child was SIGKILLed).
The launcher stays outside the namespace as PID 1's parent; it ignores SIGTERM and SIGINT
(they are for PID 1, sent by its pid), and PID 1 gets SIGKILL if the launcher dies. Not
root: a user namespace maps the caller to root inside first.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MS_REC, MS_PRIVATE = 0x4000, 0x40000
PR_SET_PDEATHSIG = 1
EXIT_SETUP_FAILED = 125  # as `docker run` / `podman run` for a runtime failure before exec
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # as executables.py

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _map_to_root() -> None:
    uid, gid = os.geteuid(), os.getegid()
    _check(_libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"0 {gid} 1")


def _become_pid_1(argv: list[str], setup: str = "", workdir: str = "") -> None:
    """In the child: die with the launcher, get a /proc of this namespace, run `setup`, move
    to `workdir`, exec `argv`."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    _check(
        _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None),
        "mount proc",
    )
    if setup:
        import subprocess  # only here: the launcher stays small for the sandbox's containers

        done = subprocess.run(["/bin/sh", "-c", setup], env={"PATH": HOST_PATH}, check=False)
        if done.returncode != 0:
            print(f"pid1: the container's set-up failed (exit code {done.returncode})",
                  file=sys.stderr)  # fmt: skip
            os._exit(EXIT_SETUP_FAILED)
    if workdir:
        os.chdir(workdir)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        print(f"pid1: {argv[0]}: not found", file=sys.stderr)
        os._exit(EXIT_NOT_FOUND)
    except OSError as exc:
        print(f"pid1: {argv[0]}: {exc}", file=sys.stderr)
        os._exit(EXIT_NOT_EXECUTABLE)


def main(argv: list[str]) -> int:
    options = {"hostname": "", "setup": "", "workdir": ""}
    while argv and argv[0].startswith("--"):
        flag, argv = argv[0], argv[1:]
        if flag == "--":
            break
        key, _, value = flag[2:].partition("=")
        if key not in options:
            print(f"pid1: unknown option {flag}", file=sys.stderr)
            return 2
        options[key] = value
    hostname = options["hostname"]
    if not argv:
        print("usage: python -m chaosraysvc.runtime.pid1 ARGV...", file=sys.stderr)
        return 2
    # Signals are for PID 1 (its host pid is our child's): ignore them here, before the fork,
    # so that none is lost between the fork and the child's exec.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if os.geteuid() != 0:
            _map_to_root()
        _check(_libc.unshare(CLONE_NEWPID | CLONE_NEWNS | (CLONE_NEWUTS if hostname else 0)),
               "unshare(CLONE_NEWPID|CLONE_NEWNS)")  # fmt: skip
        if hostname:
            name = hostname.encode()
            _check(_libc.sethostname(name, len(name)), f"sethostname({hostname})")
    except OSError as exc:
        print(f"pid1: cannot create the container's namespaces: {exc}", file=sys.stderr)
        return EXIT_SETUP_FAILED
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        try:
            _become_pid_1(argv, options["setup"], options["workdir"])
        except OSError as exc:
            print(f"pid1: {exc}", file=sys.stderr)
        os._exit(EXIT_SETUP_FAILED)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
