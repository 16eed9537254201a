"""Send one command to the sandbox's Redis on loopback, as a new client authenticated as the GCS.

A new connection per command (`AUTH <password>` first when there is one), so a command whose
answer does not come within its timeout says that Redis is not answering new clients (a
`CLIENT PAUSE ... ALL` holds `AUTH` too). The password is never logged nor put in an error.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.model import RedisReply

__all__ = ["encode", "send_command"]


def encode(argv: Sequence[str]) -> bytes:
    """Return `argv` as one RESP array of bulk strings."""
    parts = [f"*{len(argv)}\r\n".encode()]
    for arg in argv:
        data = arg.encode()
        parts += [f"${len(data)}\r\n".encode(), data, b"\r\n"]
    return b"".join(parts)


class _Reader:
    """Reads RESP replies from `conn` until a deadline (None from `reply` when it passes)."""

    def __init__(self, conn: socket.socket, deadline: float) -> None:
        self.conn = conn
        self.deadline = deadline
        self.buffer = b""

    def _fill(self) -> bool:
        left = self.deadline - time.monotonic()
        if left <= 0:
            return False
        self.conn.settimeout(left)
        try:
            data = self.conn.recv(4096)
        except TimeoutError:
            return False
        if not data:
            raise ConnectionResetError("Redis closed the connection")
        self.buffer += data
        return True

    def _line(self) -> bytes | None:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                return None
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def reply(self) -> RedisReply | None:
        line = self._line()
        if line is None:
            return None
        kind, text = line[:1], line[1:].decode(errors="replace")
        if kind == b"$" and int(text) >= 0:  # a bulk string: its bytes follow
            while len(self.buffer) < int(text) + 2:
                if not self._fill():
                    return None
            data, self.buffer = self.buffer[: int(text)], self.buffer[int(text) + 2 :]
            return RedisReply(data.decode(errors="replace"))
        return RedisReply(text, error=kind == b"-")


def send_command(
    port: int, password: str, argv: Sequence[str], timeout: float, host: str = "127.0.0.1"
) -> RedisReply | None:
    """Send `argv` to Redis at `host`:`port` on a new connection; return its reply, or None
    when no reply (to `AUTH` or to `argv`) came within `timeout` seconds.

    An `AUTH` refused is returned as that error reply. Raises `ChaosRaySvcError` when Redis
    cannot be reached (not listening, connection closed).
    """
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 5.0)) as conn:
            reader = _Reader(conn, deadline)
            if password:
                conn.sendall(encode(["AUTH", password]))
                auth = reader.reply()
                if auth is None or auth.error:
                    return auth
            conn.sendall(encode(argv))
            return reader.reply()
    except TimeoutError:  # connecting took longer than the timeout: no answer either
        return None
    except OSError as exc:
        raise ChaosRaySvcError(
            f"the sandbox's Redis at {host}:{port} could not be reached for `{argv[0]}`: "
            f"{type(exc).__name__}: {exc}: is the sandbox up (chaosraysvc sandbox status)?"
        ) from exc
