"""What `kubectl exec` and `kubectl port-forward` do inside a pod, as a container runtime does.

`exec_in(target, argv, streams, tty)` runs `argv` inside a running container: `nsenter` into
its PID 1's mount, PID and network namespaces (so `/proc`, `ps` and `kill` see the container's
processes and pids), in its working directory, with the container's environment; with a tty
(`-t`) the command gets a pseudo-terminal as its controlling terminal, sized by the client's
resize messages. It returns the exit code (128 + n for a signal); when the client goes away
the command is killed, as containerd kills an exec whose stream context ends.

`dial_in_pod(netns, port)` connects to `localhost:port` inside the pod's network namespace,
as the CRI port-forward does (IPv4 first, then IPv6).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import socket
import struct
import termios
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from chaosraysvc.runtime import containers
from chaosraysvc.runtime import sessions as procs
from chaosraysvc.runtime.executables import host_tool

CLONE_NEWNET = 0x40000000
IO_GRACE_S = 1.0  # how long output may still arrive after the command exited
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class ExecTarget:
    """A running container: its PID 1 (host pid), environment and working directory."""

    pid1: int
    env: dict[str, str]
    workdir: str


@dataclass
class ExecStreams:
    """The client's side of an exec, whatever the protocol (SPDY streams or WebSocket channels).

    `stdin`/`resize` return b"" at their end; a `None` stream was not requested.
    """

    stdin: Callable[[], Awaitable[bytes]] | None
    stdout: Callable[[bytes], Awaitable[None]] | None
    stderr: Callable[[bytes], Awaitable[None]] | None
    resize: Callable[[], Awaitable[bytes]] | None
    gone: asyncio.Event  # the client went away


def command(target: ExecTarget, argv: list[str]) -> list[str]:
    return [
        host_tool("nsenter"), f"--target={target.pid1}", "--mount", "--pid", "--net", "--uts",
        f"--wdns={target.workdir or '/'}", "--", *argv,
    ]  # fmt: skip


async def exec_in(target: ExecTarget, argv: list[str], streams: ExecStreams, tty: bool) -> int:
    """Run `argv` in the container; return its exit code (128 + n when killed by signal n)."""
    if tty:
        return await _exec_tty(target, argv, streams)
    proc = await asyncio.create_subprocess_exec(
        *command(target, argv),
        stdin=asyncio.subprocess.PIPE if streams.stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=target.env,
        start_new_session=True,
    )
    pumps = [
        asyncio.create_task(_copy_out(proc.stdout, streams.stdout)),
        asyncio.create_task(_copy_out(proc.stderr, streams.stderr)),
    ]
    feeder = asyncio.ensure_future(_feed(streams.stdin, proc.stdin)) if streams.stdin else None
    return await _finish(proc.pid, proc.wait(), pumps, feeder, streams.gone)


async def _finish(
    pid: int,
    waiting: Awaitable[int],
    pumps: list[asyncio.Task[None]],
    feeder: asyncio.Future[Any] | None,
    gone: asyncio.Event,
) -> int:
    waiter = asyncio.ensure_future(waiting)
    watcher = asyncio.ensure_future(gone.wait())
    await asyncio.wait([waiter, watcher], return_when=asyncio.FIRST_COMPLETED)
    if not waiter.done():  # the client went away: kill the command and all it started
        procs.kill_session(pid)
    code = await waiter
    watcher.cancel()
    await asyncio.wait(pumps, timeout=IO_GRACE_S)
    helpers = [*pumps, *([feeder] if feeder else [])]
    for task in helpers:
        task.cancel()
    await asyncio.gather(*helpers, return_exceptions=True)
    procs.kill_session(pid)  # whatever it left running in the background
    return containers.exit_code(code)


async def _copy_out(
    pipe: asyncio.StreamReader | None, sink: Callable[[bytes], Awaitable[None]] | None
) -> None:
    if pipe is None:
        return
    while chunk := await pipe.read(65536):
        if sink is not None:
            await sink(chunk)


async def _feed(source: Callable[[], Awaitable[bytes]], pipe: asyncio.StreamWriter | None) -> None:
    if pipe is None:
        return
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source():
            pipe.write(data)
            await pipe.drain()
        pipe.close()  # the client closed stdin: the command reads EOF


def _set_size(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


async def _exec_tty(target: ExecTarget, argv: list[str], streams: ExecStreams) -> int:
    master, slave = os.openpty()
    _set_size(slave, 80, 24)
    env = {**target.env, "TERM": target.env.get("TERM", "xterm")}

    def controlling_tty() -> None:  # in the child, after setsid: the pty becomes its terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = await asyncio.create_subprocess_exec(
        *command(target, argv),
        stdin=slave, stdout=slave, stderr=slave, env=env,
        start_new_session=True, preexec_fn=controlling_tty,
    )  # fmt: skip
    os.close(slave)
    os.set_blocking(master, False)
    loop = asyncio.get_running_loop()
    output: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every holder of the terminal closed it
            data = b""
        if not data:
            loop.remove_reader(master)
        output.put_nowait(data)

    loop.add_reader(master, readable)

    async def pump_out() -> None:
        while data := await output.get():
            if streams.stdout is not None:
                await streams.stdout(data)

    async def pump_in() -> None:
        assert streams.stdin is not None
        while data := await streams.stdin():
            while data:
                try:
                    data = data[os.write(master, data) :]
                except BlockingIOError:
                    await asyncio.sleep(0.01)

    async def resizes() -> None:
        assert streams.resize is not None
        decoder, buffer = json.JSONDecoder(), ""
        while data := await streams.resize():
            buffer += data.decode(errors="replace")
            while buffer.strip():
                try:
                    size, end = decoder.raw_decode(buffer.lstrip())
                except ValueError:
                    break
                buffer = buffer.lstrip()[end:]
                with contextlib.suppress(OSError):
                    _set_size(master, int(size.get("Width", 80)), int(size.get("Height", 24)))

    pumps = [asyncio.create_task(pump_out())]
    helpers = [asyncio.ensure_future(f()) for s, f in ((streams.stdin, pump_in),
                                                       (streams.resize, resizes)) if s]  # fmt: skip
    feeder = asyncio.ensure_future(asyncio.gather(*helpers)) if helpers else None
    try:
        return await _finish(proc.pid, proc.wait(), pumps, feeder, streams.gone)
    finally:
        loop.remove_reader(master)
        os.close(master)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def dial_in_pod(netns: str, port: int, timeout: float = 5.0) -> socket.socket:
    """Connect to localhost:`port` inside network namespace `netns` (a socket stays in the
    namespace it was created in); raise OSError with the runtime's words when refused."""
    result: dict[str, socket.socket | BaseException] = {}

    def work() -> None:  # a thread of its own: setns changes only the calling thread
        target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            _setns(target)
            errors = []
            for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                try:
                    sock.connect((host, port))
                    sock.setblocking(False)
                    result["sock"] = sock
                    return
                except OSError as exc:
                    sock.close()
                    label, dial = (
                        ("IPv4", "dial tcp4 127.0.0.1")
                        if family == socket.AF_INET
                        else ("IPv6", "dial tcp6 [::1]")
                    )
                    reason = (exc.strerror or str(exc)).lower()
                    errors.append(f"{label}: {dial}:{port}: connect: {reason}")
            result["error"] = OSError(
                f'failed to connect to localhost:{port} inside namespace "{netns}", '
                + " ".join(errors)
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            result["error"] = exc
        finally:
            os.close(target)

    thread = threading.Thread(target=work, name=f"dial-{netns}-{port}")
    thread.start()
    thread.join()
    sock = result.get("sock")
    if isinstance(sock, socket.socket):
        return sock
    error = result.get("error")
    raise error if isinstance(error, BaseException) else OSError("dial failed")
