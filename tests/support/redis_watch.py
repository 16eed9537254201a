"""A client of Redis that keeps one connection and PINGs it: what the GCS sees of a hang.

Opened before a fault, apart from the code under test, it records when each answer came,
so a test can tell how long Redis was silent on a connection held open, and whether that
connection was closed.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time


class RedisWatch:
    """An authenticated connection to Redis at `host`:`port` that PINGs every `every` s."""

    def __init__(self, host: str, port: int, password: str, every: float = 0.25) -> None:
        self.conn = socket.create_connection((host, port), 10)
        self.conn.sendall(f"AUTH {password}\r\n".encode())
        assert self.conn.recv(64) == b"+OK\r\n"
        self.every = every
        self.answers: list[float] = []
        self.closed = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._ping, daemon=True)
        self.thread.start()

    def _ping(self) -> None:
        self.conn.settimeout(120)
        while not self.stop.is_set():
            try:
                self.conn.sendall(b"PING\r\n")
                answer = self.conn.recv(64)
            except OSError:
                answer = b""
            if answer != b"+PONG\r\n":
                self.closed = True
                return
            self.answers.append(time.time())
            self.stop.wait(self.every)

    def longest_silence(self, start: float, end: float) -> float:
        """Return the longest time without an answer between `start` and `end` (epoch s)."""
        inside = [start] + [t for t in self.answers if start < t < end] + [end]
        return max(b - a for a, b in itertools.pairwise(inside))

    def close(self) -> None:
        """Stop pinging and close the connection."""
        self.stop.set()
        self.thread.join(timeout=30)
        self.conn.close()
