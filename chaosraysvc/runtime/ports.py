"""Network checks on loopback: free ports, open ports, and who listens where."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

# Ports handed out below the kernel's ephemeral range (32768-60999 by default), so that
# outgoing connections cannot take a port between its choice and the bind by Ray.
PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def reserve(*ports: int) -> None:
    """Never hand out `ports` (chosen elsewhere, perhaps not bound yet) from `free_port`."""
    _handed_out.update(p for p in ports if p)


def free_port() -> int:
    """Return a TCP port that is free right now, outside the ephemeral range.

    A port is not handed out twice by the same process.
    """
    for _ in range(500):
        port = random.randint(*PORT_RANGE)
        if port not in _handed_out and _bindable(port) and not listening_inodes(port):
            _handed_out.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Tell whether something listens on `port` (any address) or the port cannot be bound."""
    if port in listening_inodes(port).values():
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Tell whether a TCP connection to `host:port` is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listening_inodes(port: int) -> dict[int, int]:
    """Return {socket inode: port} of TCP sockets listening on `port` (IPv4 and IPv6)."""
    found: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], int(parts[9])
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                found[inode] = port
    return found


def pids_listening(port: int, pids: list[int]) -> set[int]:
    """Return which of `pids` hold a socket listening on `port`."""
    inodes = listening_inodes(port)
    if not inodes:
        return set()
    wanted = {f"socket:[{inode}]" for inode in inodes}
    owners: set[int] = set()
    for pid in pids:
        try:
            fds = os.scandir(f"/proc/{pid}/fd")
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        with fds:
            for fd in fds:
                try:
                    if os.readlink(fd.path) in wanted:
                        owners.add(pid)
                        break
                except OSError:
                    continue
    return owners
