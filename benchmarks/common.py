"""Helpers shared by the benchmark scripts: a trivial server, CPU time, tables, JSON, the machine.

Not a benchmark itself. The scripts beside it import it as `common` (Python puts a
script's own directory first on `sys.path`); importing it also puts the repository root
on `sys.path`, so `chaosraysvc` and `tests/` are found from a plain checkout.

Run on its own, it serves the fallback trivial server (used when nginx is absent)::

    .venv/bin/python benchmarks/common.py serve-twelve --port 20123
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ANSWER = b"12"
BODY = b'["PEAR", 12]'
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the machine ---------------------------------------------------------------------------------


def _meminfo() -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[key] = int(parts[0])  # kB
    return values


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """Return what the numbers depend on: cores, RAM, CPU model, load average now."""
    mem = _meminfo()
    load = os.getloadavg()
    return {
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "ram_gib": round(mem.get("MemTotal", 0) / 1024**2, 1),
        "ram_available_gib": round(mem.get("MemAvailable", 0) / 1024**2, 1),
        "load_average_at_start": [round(x, 2) for x in load],
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def describe_machine(info: dict[str, Any]) -> str:
    """Return the machine in one line, for the top of a benchmark's output."""
    load = " / ".join(f"{x:.2f}" for x in info["load_average_at_start"])
    return (
        f"machine: {info['cores_usable']} of {info['cores']} cores usable, {info['cpu_model']}, "
        f"{info['ram_gib']} GiB RAM ({info['ram_available_gib']} GiB available), "
        f"load average at start {load} (1/5/15 min), Python {info['python']}"
    )


# -- CPU time ------------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float | None:
    """Return utime + stime of process `pid` (its threads included) from /proc, in seconds.

    Resolution is one clock tick (1/100 s on Linux). None when the process is gone.
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Window:
    """A measured time window: wall seconds, this process's CPU seconds, epoch bounds."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    start_epoch: float = 0.0
    end_epoch: float = 0.0

    @property
    def cpu_pct(self) -> float:
        """Return CPU time as a percentage of one core over the window."""
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


@contextlib.contextmanager
def measured() -> Iterator[Window]:
    """Measure wall time and this process's CPU time (every thread) over a `with` block."""
    window = Window(start_epoch=time.time())
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        yield window
    finally:
        window.cpu_s = time.process_time() - c0
        window.wall_s = time.perf_counter() - w0
        window.end_epoch = time.time()


# -- memory --------------------------------------------------------------------------------------


def pss_kib(pid: int) -> int | None:
    """Return the proportional set size of `pid` in KiB (None when gone or unreadable).

    Reads /proc/<pid>/smaps_rollup (Linux >= 4.14), else sums /proc/<pid>/smaps.
    """
    for name in ("smaps_rollup", "smaps"):
        try:
            text = Path(f"/proc/{pid}/{name}").read_text()
        except FileNotFoundError:
            continue
        except (PermissionError, ProcessLookupError, OSError):
            return None
        total = 0
        found = False
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                found = True
        if found:
            return total
    return None


def pss_of_pids(pids: Sequence[int]) -> tuple[int, int]:
    """Return (total PSS in KiB, how many of `pids` could be read)."""
    total, read = 0, 0
    for pid in pids:
        value = pss_kib(pid)
        if value is not None:
            total += value
            read += 1
    return total, read


# -- the trivial server --------------------------------------------------------------------------

_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: keep-alive\r\n\r\n" + ANSWER
)
_RESPONSE_CLOSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\n" + ANSWER
)


class _Twelve(asyncio.Protocol):
    """HTTP/1.1 keep-alive: answer `12` to every request, reading its Content-Length body."""

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(self.buf) < total:
                return
            self.buf = self.buf[total:]
            if b"\r\nconnection: close" in head:
                self.transport.write(_RESPONSE_CLOSE)
                self.transport.close()
                self.transport = None
                return
            self.transport.write(_RESPONSE)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def serve_twelve(port: int) -> None:
    """Serve `12` on 127.0.0.1:`port` until SIGTERM/SIGINT (uvloop when installed)."""
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(_Twelve, "127.0.0.1", port, reuse_address=True, backlog=1024)
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(stop.wait())
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


_NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    default_type text/plain;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location / {{ return 200 "12"; }}
    }}
}}
"""


def nginx_path() -> str | None:
    """Return the nginx binary, or None when nginx is not installed."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def wrk_path() -> str | None:
    """Return the wrk binary, or None when wrk is not installed."""
    return shutil.which("wrk")


@dataclass
class TrivialServer:
    """A server answering `12` to any request, in its own process session on loopback."""

    kind: str
    port: int
    pid: int
    detail: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "port": self.port, "pid": self.pid, "detail": self.detail}


def _wait_port(proc: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    from chaosraysvc.runtime.ports import port_open

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if port_open(port, timeout=0.2):
            return True
        time.sleep(0.02)
    return False


def _end_session(proc: subprocess.Popen[bytes]) -> None:
    """End `proc` and every process of its session (nginx workers included)."""
    from chaosraysvc.runtime.sessions import kill_session

    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(3)
    kill_session(proc.pid, timeout=5)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


@contextlib.contextmanager
def trivial_server(kind: str = "auto") -> Iterator[TrivialServer]:
    """Start a server answering `12` (nginx when installed, else Python) and stop it for sure.

    `kind` is "auto", "nginx" or "python". The server runs in a child process with its
    own session, so its CPU time is never counted as the client's.
    """
    from chaosraysvc.runtime.ports import free_port

    nginx = nginx_path()
    if kind == "nginx" and nginx is None:
        raise RuntimeError(
            "nginx is not installed (apt-get install -y nginx), or use --server auto"
        )
    with tempfile.TemporaryDirectory(prefix="crs-bench-srv-") as tmp:
        port = free_port()
        notes = ""
        proc: subprocess.Popen[bytes] | None = None
        if kind in ("auto", "nginx") and nginx is not None:
            conf = Path(tmp) / "nginx.conf"
            conf.write_text(_NGINX_CONF.format(d=tmp, port=port))
            log = open(Path(tmp) / "nginx.out", "wb")  # noqa: SIM115 - closed below
            try:
                proc = subprocess.Popen(
                    [nginx, "-p", tmp, "-c", str(conf), "-e", str(Path(tmp) / "error.log")],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                log.close()
            if _wait_port(proc, port, 10):
                version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr
                server = TrivialServer("nginx", port, proc.pid, version.strip(), proc)
            else:
                why = (Path(tmp) / "error.log").read_text(errors="replace")[-300:]
                _end_session(proc)
                if kind == "nginx":
                    raise RuntimeError(f"nginx did not start: {why}")
                notes = f"nginx did not start ({why.strip()}); "
                proc = None
        if proc is None:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "serve-twelve",
                    "--port",
                    str(port),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            if not _wait_port(proc, port, 15):
                _end_session(proc)
                raise RuntimeError("the Python trivial server did not start within 15 s")
            why = "nginx not installed" if nginx is None else "nginx not used"
            detail = notes + f"{why}: Python asyncio keep-alive server (one process)"
            server = TrivialServer("python", port, proc.pid, detail, proc)
        try:
            yield server
        finally:
            _end_session(proc)


# -- output --------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 1) -> str:
    """Return `value` for a table cell: "-" for None, thousands separators for numbers."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(
    columns: Sequence[tuple[str, str]],
    rows: Sequence[dict[str, Any]],
    formatters: dict[str, Callable[[Any], str]] | None = None,
) -> str:
    """Return a markdown table: `columns` are (key, header) pairs."""
    formatters = formatters or {}
    lines = [
        "| " + " | ".join(header for _, header in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        cells = [formatters.get(key, fmt)(row.get(key)) for key, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class TargetCheck:
    """A target the numbers are compared with; `passed` None means not measured (skipped)."""

    name: str
    passed: bool | None
    detail: str

    @property
    def verdict(self) -> str:
        return "SKIP" if self.passed is None else ("PASS" if self.passed else "FAIL")


def targets_text(checks: Sequence[TargetCheck]) -> str:
    """Return one line per target: PASS/FAIL/SKIP, the target, what was measured."""
    return "\n".join(f"- **{c.verdict}** {c.name}: {c.detail}" for c in checks)


def write_result(path: Path, payload: dict[str, Any]) -> Path:
    """Write `payload` as JSON to `path` (creating its folder) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(payload)
    if "targets" in payload:
        payload["targets"] = [
            asdict(t) | {"verdict": t.verdict} if isinstance(t, TargetCheck) else t
            for t in payload["targets"]
        ]
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    return path


def default_out(name: str) -> Path:
    """Return benchmarks/results/<name>.json."""
    return RESULTS_DIR / f"{name}.json"


def main() -> int:
    parser = argparse.ArgumentParser(description="Serve the fallback trivial server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve-twelve", help="answer 12 to every request on 127.0.0.1:PORT")
    serve.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve_twelve(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
