"""A command in a pseudo-terminal, typed into as a user types: for `kubectl exec -it ... bash`.

`Terminal.start(argv, env)` runs `argv` with a new pty as its stdin, stdout and stderr (so
kubectl sees a terminal, puts it in raw mode and asks the kubelet for one), reads what it
prints in a thread, line by line with the time each line arrived, and lets the test `type()`
text and `interrupt()` (Ctrl-C, byte 0x03, which the remote terminal turns into SIGINT).
`close()` waits for the process and kills it by its PID when it does not end: the command
never outlives the test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Line:
    """One line the terminal printed (carriage returns dropped) and when it arrived."""

    at: float  # time.monotonic()
    text: str


@dataclass
class Terminal:
    process: subprocess.Popen[bytes]
    master: int
    lines: list[Line] = field(default_factory=list)
    _partial: bytes = b""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False
    _reader: threading.Thread | None = None

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], columns: int = 200) -> Terminal:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        try:
            process = subprocess.Popen(
                argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
            )
        finally:
            os.close(slave)
        terminal = cls(process, master)
        terminal._reader = threading.Thread(target=terminal._read, daemon=True)
        terminal._reader.start()
        return terminal

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the process closed its side
                data = b""
            now = time.monotonic()
            with self._lock:
                if not data:
                    if self._partial:
                        self.lines.append(Line(now, self._partial.decode(errors="replace")))
                        self._partial = b""
                    return
                *complete, self._partial = (self._partial + data).split(b"\n")
                for raw in complete:
                    text = raw.decode(errors="replace").replace("\r", "")
                    self.lines.append(Line(now, text))

    def printed_anything(self) -> bool:
        """Return whether anything arrived yet, a prompt without its newline included."""
        with self._lock:
            return bool(self.lines or self._partial)

    def snapshot(self) -> list[Line]:
        with self._lock:
            return list(self.lines)

    def text(self, since: float = 0.0) -> str:
        """Return what was printed (whole lines) at or after monotonic time `since`."""
        return "\n".join(line.text for line in self.snapshot() if line.at >= since)

    def matches(self, pattern: str, since: float = 0.0) -> list[re.Match[str]]:
        """Return the matches of `pattern` (fullmatch per line) printed at or after `since`."""
        found = (re.fullmatch(pattern, line.text) for line in self.snapshot() if line.at >= since)
        return [m for m in found if m]

    def type(self, text: str) -> None:
        """Type `text` (use "\\r" for Enter, as a terminal sends it)."""
        os.write(self.master, text.encode())

    def interrupt(self) -> None:
        """Press Ctrl-C."""
        self.type("\x03")

    def close(self, timeout: float = 10) -> int | None:
        """Wait up to `timeout` s for the process to end, else kill it (by its PID); return its
        exit code (None when it had to be killed)."""
        code: int | None
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            code = None
        if self._reader is not None:  # the rest of the output (EIO once every holder is gone)
            self._reader.join(5)
        if not self._closed:  # once: the descriptor's number may be reused afterwards
            self._closed = True
            with contextlib.suppress(OSError):
                os.close(self.master)
        return code
