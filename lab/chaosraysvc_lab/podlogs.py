"""Container logs as the kubelet keeps and serves them (the CRI log format).

A container's stdout and stderr are pipes read by the node (what containerd's shim does);
every line is written to `pods/<uid>/logs/<container>/<restartCount>.log` as
`<RFC 3339 time with nanoseconds> <stdout|stderr> <F|P> <text>` (`P`: a partial line, the
rest follows in the next entry). The current instance's file and the previous one are kept
(`kubectl logs --previous`), older ones removed, as the kubelet's container GC keeps one
dead container per container.

`read_log(path, options)` applies the options of `GET /containerLogs` (`tailLines`,
`sinceSeconds`/`sinceTime`, `timestamps`, `limitBytes`, `stream`) and returns the text a
kubelet returns; `follow_log` goes on yielding new entries until the instance has exited.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAX_LINE = 16 * 1024  # the CRI runtimes split longer lines into partial entries
FOLLOW_POLL_S = 0.1


def timestamp(ns: int | None = None) -> str:
    """RFC 3339 in UTC with nanoseconds, as runtimes write it: 2026-12-04T21:30:04.123456789Z."""
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    day = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{day}.{frac:09d}Z"


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (nanoseconds truncated to microseconds)."""
    text = text.replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    return datetime.datetime.fromisoformat(text).timestamp()


class LogWriter:
    """Pumps a container instance's stdout and stderr pipes into its CRI log file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed when both pipes end
        self._lock = threading.Lock()
        self._open = 0
        self._threads: list[threading.Thread] = []

    def start(self, stdout: IO[bytes] | None, stderr: IO[bytes] | None) -> LogWriter:
        for pipe, stream in ((stdout, "stdout"), (stderr, "stderr")):
            if pipe is None:
                continue
            self._open += 1
            thread = threading.Thread(
                target=self._pump, args=(pipe, stream), name=f"log-{stream}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self

    def _pump(self, pipe: IO[bytes], stream: str) -> None:
        pending = b""
        fd = pipe.fileno()
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    self._entries(stream, line, final=True)
                if len(pending) >= MAX_LINE:
                    self._entries(stream, pending, final=False)
                    pending = b""
            if pending:
                self._entries(stream, pending, final=False)
        except OSError:
            pass
        finally:
            pipe.close()
            with self._lock:
                self._open -= 1
                if self._open == 0:
                    self._file.close()

    def _entries(self, stream: str, data: bytes, *, final: bool) -> None:
        pieces = [data[i : i + MAX_LINE] for i in range(0, len(data), MAX_LINE)] or [b""]
        with self._lock:
            for n, piece in enumerate(pieces):
                tag = "F" if final and n == len(pieces) - 1 else "P"
                self._file.write(f"{timestamp()} {stream} {tag} ".encode() + piece + b"\n")

    def join(self, timeout: float = 5.0) -> None:
        """Wait until both pipes are drained (the container and everything it forked exited)."""
        for thread in self._threads:
            thread.join(timeout)


@dataclass(frozen=True)
class LogOptions:
    """The query of `GET /containerLogs/{ns}/{pod}/{container}` (PodLogOptions)."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since: float | None = None  # seconds since the epoch (sinceSeconds or sinceTime)
    limit_bytes: int | None = None
    stream: str = "All"  # All, Stdout, Stderr

    @classmethod
    def from_query(cls, query: dict[str, str], now: float | None = None) -> LogOptions:
        """Read the kubelet's query parameters; raise ValueError for malformed ones."""

        def flag(name: str) -> bool:
            return query.get(name, "false").lower() in ("true", "1")

        since = None
        if "sinceSeconds" in query:
            since = (time.time() if now is None else now) - int(query["sinceSeconds"])
        elif "sinceTime" in query:
            since = parse_time(query["sinceTime"])
        tail = int(query["tailLines"]) if "tailLines" in query else None
        limit = int(query["limitBytes"]) if "limitBytes" in query else None
        return cls(
            follow=flag("follow"),
            previous=flag("previous"),
            timestamps=flag("timestamps"),
            tail_lines=tail if tail is None or tail >= 0 else None,
            since=since,
            limit_bytes=limit,
            stream=query.get("stream", "All") or "All",
        )


@dataclass(frozen=True)
class Entry:
    time: str
    stream: str
    full: bool
    text: bytes

    def render(self, timestamps: bool) -> bytes:
        body = self.text + (b"\n" if self.full else b"")
        return (self.time.encode() + b" " + body) if timestamps else body


def parse_entry(line: bytes) -> Entry | None:
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    text = parts[3] if len(parts) == 4 else b""
    return Entry(parts[0].decode(), parts[1].decode(), parts[2] == b"F", text)


def _wanted(entry: Entry, options: LogOptions) -> bool:
    if options.stream != "All" and entry.stream != options.stream.lower():
        return False
    return options.since is None or parse_time(entry.time) >= options.since


def _lines(entries: list[Entry]) -> list[list[Entry]]:
    """Group entries into logical lines (partial entries with the full one ending them)."""
    lines: list[list[Entry]] = []
    current: list[Entry] = []
    for entry in entries:
        current.append(entry)
        if entry.full:
            lines.append(current)
            current = []
    if current:
        lines.append(current)
    return lines


def read_log(path: Path, options: LogOptions) -> tuple[bytes, int]:
    """Return (the log as the kubelet serves it, the file offset read up to)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return b"", 0
    end = raw.rfind(b"\n") + 1  # a line being written is left for the next read
    entries = [e for line in raw[:end].splitlines() if (e := parse_entry(line))]
    entries = [e for e in entries if _wanted(e, options)]
    lines = _lines(entries)
    if options.tail_lines is not None:
        lines = lines[-options.tail_lines :] if options.tail_lines else []
    out = b"".join(e.render(options.timestamps) for line in lines for e in line)
    return out, end


def follow_log(
    path: Path, options: LogOptions, offset: int, running: Callable[[], bool]
) -> Iterator[bytes]:
    """Yield what is appended to `path` after `offset` until `running()` turns false and the
    file is drained (`kubectl logs -f` ends when the container exits)."""
    while True:
        alive = running()
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            data = b""
        end = data.rfind(b"\n") + 1
        if end:
            offset += end
            out = b"".join(
                e.render(options.timestamps)
                for line in data[:end].splitlines()
                if (e := parse_entry(line)) and _wanted(e, options)
            )
            if out:
                yield out
        if not alive and not end:
            return
        if not end:
            time.sleep(FOLLOW_POLL_S)
            yield b""  # lets the caller notice a client that went away
