#!/usr/bin/env python3
"""Timing precision: recovery figures from the traffic log vs an independent clock.

    .venv/bin/python benchmarks/timing_precision.py [--trials 10] [--rate 200]
    .venv/bin/python benchmarks/timing_precision.py --quick   # smoke run, 2 short trials

The requirement: recovery figures derived from the traffic log agree with an independent
clock (the pod's deletion time, and the moment it serves again) to within 50 ms.

Each trial starts a trivial HTTP server (`serve` below: the standard library's
`ThreadingHTTPServer`, HTTP/1.1 keep-alive, `POST /fruit/` answered with `12`) as a child
process in a session of its own on a free loopback port. The server prints one JSON line
with `time.time()` taken right after its socket is bound and listening: the independent
clock for "up". The product's traffic engine runs in this process, through its public API
(`chaosraysvc.traffic.start_engine`, as the `start_traffic` action does), in `sequential`
mode (one request in flight) or, for the last `--rate-trials` trials, in `rate` mode.

After `--warmup` seconds of successes the trial "deletes the pod" the way
`chaosraysvc.activities.pod_actions` does: the `fault` mark through
`chaosraysvc.traffic.mark`, then `t_kill = time.time()` immediately before
`os.killpg(pgid, SIGKILL)`. It waits the trial's outage (from `--outage-min` to
`--outage-max`, spread over the trials), starts a new server on the same port and reads
its listening time `t_up`, lets the traffic run `--after` more seconds and stops it.

From the traffic log (`read_traffic_log`, then `summarize`: the `longest_failure_window`
the reports show; its end is the start of the first success after it):

- start error = window start - t_kill, end error = window end - t_up (signed, ms);
- duration error = window duration - (t_up - t_kill);
- mark error = the logged `fault` mark - t_kill.

Target: max |start error| and max |end error| <= 50 ms. A table per trial, the targets
(PASS/FAIL), and JSON in benchmarks/results/timing_precision.json (`--out`). Every
server's process group is killed on the way out, on errors and Ctrl-C included.

    .venv/bin/python benchmarks/timing_precision.py --sandbox [--sandbox-trials 3]

`--sandbox` checks the same requirement on the real Ray sandbox, deleting its head pod
with the product's action: that mode lives in timing_sandbox.py (`sandbox_main`), which
imports what both modes share from here; its JSON goes to
benchmarks/results/timing_precision_sandbox.json.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import itertools
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from common import (
    TargetCheck,
    default_out,
    describe_machine,
    fmt,
    machine_info,
    markdown_table,
    targets_text,
    write_result,
)

if TYPE_CHECKING:
    from chaosraysvc.traffic.log import TrafficLog

PATH = "/fruit/"
TARGET_MS = 50.0
TIMEOUT_S = 2.0
SERVER_START_TIMEOUT_S = 20.0

# -- the server (child process; stdlib only, so it starts fast) ----------------------------------


class _Twelve(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive: `POST /fruit/` answers `12`, anything else 404."""

    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: headers and body are two writes; with Nagle on, the body waits for
    # the client's delayed ACK (~40 ms), which would spread the requests out
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        found = self.path == PATH
        body = b"12" if found else b"not found"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # silent: nothing may block on a full pipe


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away (the engine stops with requests in flight)
        super().handle_error(request, client_address)


def serve(port: int) -> None:
    """Listen on 127.0.0.1:`port`, print `{"listening": epoch, ...}` once, serve until killed.

    The time is taken right after `listen()` returns: from then on a connection succeeds
    (it waits in the backlog until the accept loop runs), before it it is refused.
    """
    server = _Server(("127.0.0.1", port), _Twelve, bind_and_activate=False)
    deadline = time.monotonic() + 5.0
    while True:  # the previous server's socket may take a moment to go after SIGKILL
        try:
            server.server_bind()  # SO_REUSEADDR: allow_reuse_address is set
            break
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    server.server_activate()  # listen()
    listening = time.time()
    line = {"listening": listening, "pid": os.getpid(), "port": port}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    server.serve_forever(poll_interval=0.05)


# -- the server, seen from the benchmark ----------------------------------------------------------


@dataclass
class Server:
    """A server child process; `pgid` is its process group (it leads its own session)."""

    proc: subprocess.Popen[bytes]
    pgid: int
    port: int
    spawned_at: float
    listening_at: float = 0.0


@dataclass
class Servers:
    """Every server started, so each process group can be killed on the way out."""

    started: list[Server] = field(default_factory=list)
    stderr: IO[bytes] | None = None

    def start(self, port: int) -> Server:
        """Start a server on `port` and wait for its listening line (raise if none)."""
        spawned = time.time()
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.stderr if self.stderr is not None else subprocess.DEVNULL,
            start_new_session=True,
        )
        server = Server(proc, proc.pid, port, spawned)  # session leader: pgid == pid
        self.started.append(server)
        line = _read_line(proc, SERVER_START_TIMEOUT_S)
        if line is None:
            raise RuntimeError(
                f"the server on port {port} printed no listening line within "
                f"{SERVER_START_TIMEOUT_S:g} s (exit code {proc.poll()}); see its stderr above"
            )
        server.listening_at = float(json.loads(line)["listening"])
        return server

    def kill(self, server: Server) -> None:
        """SIGKILL the server's process group and reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.proc.wait(10)
        if server.proc.stdout is not None:
            server.proc.stdout.close()

    def kill_all(self) -> None:
        for server in self.started:
            self.kill(server)


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str | None:
    """Return the first line `proc` prints within `timeout` s, None if none comes."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return None  # exited
        buf += chunk
    return buf.split(b"\n", 1)[0].decode()


# -- one trial -----------------------------------------------------------------------------------


@dataclass
class Plan:
    trial: int
    mode: str
    rate: float
    concurrency: int
    warmup_s: float
    outage_s: float
    after_s: float


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def run_trial(plan: Plan, servers: Servers, work: Path) -> dict[str, Any]:
    """Run one kill/restart trial and return its row (times are epoch seconds)."""
    from chaosraysvc.runtime.ports import free_port
    from chaosraysvc.traffic import build_settings, mark, read_traffic_log, start_engine
    from chaosraysvc.traffic import stop_engine as stop_traffic

    port = free_port()
    first = servers.start(port)
    settings = build_settings(
        url=f"http://127.0.0.1:{port}",
        path=PATH,
        mode=plan.mode,
        rate=plan.rate if plan.mode == "rate" else 0.0,
        concurrency=plan.concurrency,
        timeout=TIMEOUT_S,
        log_path=str(work / f"trial-{plan.trial}.jsonl"),
    )
    engine, _ = start_engine(settings)
    try:
        time.sleep(plan.warmup_s)
        # as pod_actions._delete: the fault mark, then the deletion (deletionTimestamp)
        marked = mark("fault", pod=f"trivial-server-{first.proc.pid}", role="trivial")
        t_kill = time.time()
        os.killpg(first.pgid, signal.SIGKILL)
        servers.kill(first)  # reap it
        time.sleep(max(t_kill + plan.outage_s - time.time(), 0.0))
        second = servers.start(port)
        time.sleep(plan.after_s)
    finally:
        stop_traffic()
    servers.kill(second)
    log = read_traffic_log(engine.log_path)
    row = measure(plan, log, t_kill, second.listening_at)
    row.update(
        port=port,
        server_pids=[first.proc.pid, second.proc.pid],
        mark_written=marked,
        server_start_ms=_ms(second.listening_at - second.spawned_at),
        log=str(engine.log_path),
    )
    return row


def measure(plan: Plan, log: TrafficLog, t_kill: float, t_up: float) -> dict[str, Any]:
    """Compare the log's failure window and fault mark with `t_kill` and `t_up`."""
    from chaosraysvc.traffic.stats import failure_windows, summarize

    summary = summarize(log)
    window = summary["longest_failure_window"] or {}
    windows = failure_windows(log.requests)
    fault = next((m["t"] for m in log.marks if m["event"] == "fault"), None)
    failed = [r for r in log.requests if not r["ok"]]
    inside = [r["t"] for r in failed if window and window["start"] <= r["t"] < window["end"]]
    gaps = [b - a for a, b in itertools.pairwise(inside)]
    start, end = window.get("start"), window.get("end")
    start_err = _ms(start - t_kill) if start is not None else None
    end_err = _ms(end - t_up) if end is not None else None
    last_failure = summary["fault_to_last_failure_s"]
    return {
        "trial": plan.trial,
        "mode": plan.mode if plan.mode == "sequential" else f"rate {plan.rate:g}/s",
        "concurrency": plan.concurrency,
        "outage_chosen_s": plan.outage_s,
        "outage_s": round(t_up - t_kill, 6),
        "t_kill": t_kill,
        "t_up": t_up,
        "window_start": start,
        "window_end": end,
        "window_duration_s": window.get("duration_s"),
        "window_ongoing": window.get("ongoing"),
        "failure_windows": len(windows),
        "requests": summary["requests"],
        "failures": summary["failures"],
        # requests that started after t_kill and still succeeded (the kill takes effect late)
        "ok_after_kill": sum(
            1 for r in log.requests if r["ok"] and t_kill <= r["t"] < (start or t_kill)
        ),
        "failures_by_error": summary["failures_by_error"],
        "start_error_ms": start_err,
        "end_error_ms": end_err,
        "duration_error_ms": (
            round(end_err - start_err, 3) if start_err is not None and end_err is not None else None
        ),
        "mark_error_ms": _ms(fault - t_kill) if fault is not None else None,
        # the last failure started this long before the server listened (informative)
        "last_failure_before_up_ms": (
            _ms(t_up - (fault + last_failure))
            if fault is not None and last_failure is not None
            else None
        ),
        "retry_interval_ms": _ms(statistics.median(gaps)) if gaps else None,
        # rate mode: did the engine hold its rate (late slots would blur the figures)?
        "engine_rate_check": (
            {k: check.get(k) for k in ("achieved_rps", "kept_up", "late", "skipped")}
            if (check := summary.get("rate_check"))
            else None
        ),
    }


# -- targets -------------------------------------------------------------------------------------


def _max_abs(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [abs(r[key]) for r in rows if r.get(key) is not None]
    return max(values) if len(values) == len(rows) and values else None


def check_targets(rows: list[dict[str, Any]]) -> list[TargetCheck]:
    checks: list[TargetCheck] = []
    for key, what in (("start_error_ms", "start"), ("end_error_ms", "end")):
        name = f"failure window {what} within {TARGET_MS:g} ms of the independent clock"
        worst = _max_abs(rows, key)
        missing = [r["trial"] for r in rows if r.get(key) is None]
        if not rows or missing:
            detail = f"no failure window in trial(s) {missing}" if missing else "no trial ran"
            checks.append(TargetCheck(name, False, detail))
            continue
        assert worst is not None
        worst_row = max(rows, key=lambda r: abs(r[key]))
        checks.append(
            TargetCheck(
                name,
                worst <= TARGET_MS,
                f"max |error| {worst:.1f} ms (trial {worst_row['trial']}, "
                f"{worst_row[key]:+.1f} ms) over {len(rows)} trials",
            )
        )
    name = "each trial: one failure window (the kill's), closed by a success"
    bad = [r["trial"] for r in rows if r.get("failure_windows") != 1 or r.get("window_ongoing")]
    checks.append(
        TargetCheck(
            name,
            bool(rows) and not bad,
            f"trials {bad} were not clean" if bad else f"all {len(rows)} clean",
        )
    )
    return checks


# -- main ----------------------------------------------------------------------------------------

COLUMNS = [
    ("trial", "trial"),
    ("mode", "mode"),
    ("outage_s", "outage s (kill to listening)"),
    ("window_duration_s", "failure window s"),
    ("failures", "failures"),
    ("retry_interval_ms", "retry every ms"),
    ("start_error_ms", "start error ms"),
    ("end_error_ms", "end error ms"),
    ("duration_error_ms", "duration error ms"),
    ("mark_error_ms", "fault mark error ms"),
]


def _signed(value: Any) -> str:
    return "-" if value is None else f"{value:+.2f}"


FORMATS = {
    "outage_s": lambda v: fmt(v, 3),
    "window_duration_s": lambda v: fmt(v, 3),
    "retry_interval_ms": lambda v: fmt(v, 2),
    "start_error_ms": _signed,
    "end_error_ms": _signed,
    "duration_error_ms": _signed,
    "mark_error_ms": lambda v: "-" if v is None else f"{v:+.3f}",
}


def plans(args: argparse.Namespace) -> list[Plan]:
    """The trials: outages evenly spread over [min, max]; the last `--rate-trials` in rate mode."""
    n = args.trials
    out = []
    for i in range(n):
        share = i / (n - 1) if n > 1 else 0.0
        outage = round(args.outage_min + share * (args.outage_max - args.outage_min), 3)
        rate_mode = i >= n - args.rate_trials
        out.append(
            Plan(
                trial=i + 1,
                mode="rate" if rate_mode else "sequential",
                rate=args.rate if rate_mode else 0.0,
                concurrency=args.rate_concurrency if rate_mode else 1,
                warmup_s=args.warmup,
                outage_s=outage,
                after_s=args.after,
            )
        )
    return out


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    serve_cmd = sub.add_parser("serve", help="(internal) the trivial server of one trial")
    serve_cmd.add_argument("--port", type=int, required=True)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 short trials")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--rate-trials", type=int, default=1, help="of the trials, in rate mode")
    parser.add_argument("--rate", type=float, default=200.0, help="rate-mode req/s")
    parser.add_argument("--rate-concurrency", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the kill")
    parser.add_argument("--outage-min", type=float, default=1.0)
    parser.add_argument("--outage-max", type=float, default=2.0)
    parser.add_argument("--after", type=float, default=2.0, help="seconds after the restart")
    sandbox = parser.add_argument_group("sandbox mode (the real head pod of a Ray sandbox)")
    sandbox.add_argument(
        "--sandbox",
        action="store_true",
        help="bring up a sandbox with endpoint ports and delete its head pod instead",
    )
    sandbox.add_argument("--sandbox-trials", type=int, default=3)
    sandbox.add_argument(
        "--sandbox-warmup", type=float, default=5.0, help="seconds of traffic before the deletion"
    )
    sandbox.add_argument(
        "--sandbox-after", type=float, default=3.0, help="seconds of traffic after the recovery"
    )
    sandbox.add_argument(
        "--restart-delay", type=float, default=5.0, help="the sandbox's --restart-delay"
    )
    sandbox.add_argument(
        "--recovery-timeout", type=float, default=300.0, help="the action's timeout, seconds"
    )
    sandbox.add_argument("--up-timeout", type=float, default=300.0, help="seconds for `up`")
    parser.add_argument(
        "--out",
        help="the JSON result (default benchmarks/results/timing_precision.json, "
        "timing_precision_sandbox.json with --sandbox)",
    )
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port)
        return 0
    if args.sandbox:
        args.out = args.out or str(default_out("timing_precision_sandbox"))
        if args.quick:
            args.sandbox_trials, args.sandbox_warmup, args.sandbox_after = 1, 2.0, 1.0
        if args.sandbox_trials < 1:
            parser.error("need --sandbox-trials >= 1")
        # imported here, not at the top: timing_sandbox imports this module's shared parts
        from timing_sandbox import sandbox_main

        return sandbox_main(args)
    args.out = args.out or str(default_out("timing_precision"))
    if args.quick:
        args.trials, args.warmup, args.after = 2, 0.5, 0.5
        args.outage_min, args.outage_max = 0.3, 0.5
    if args.trials < 1 or not 0 <= args.rate_trials <= args.trials:
        parser.error("need --trials >= 1 and 0 <= --rate-trials <= --trials")
    if args.outage_min <= 0 or args.outage_max < args.outage_min:
        parser.error("need 0 < --outage-min <= --outage-max")
    signal.signal(signal.SIGTERM, _on_sigterm)

    info = machine_info()
    print(describe_machine(info), flush=True)
    rows: list[dict[str, Any]] = []
    servers = Servers()
    with tempfile.TemporaryDirectory(prefix="crs-bench-timing-") as tmp:
        work = Path(tmp)
        with open(work / "servers.stderr", "w+b") as errors:
            servers.stderr = errors
            try:
                for plan in plans(args):
                    print(
                        f"  trial {plan.trial}: {plan.mode}"
                        + (f" {plan.rate:g}/s" if plan.mode == "rate" else "")
                        + f", outage {plan.outage_s:g} s ...",
                        flush=True,
                    )
                    row = run_trial(plan, servers, work)
                    row["load_1m_after"] = round(os.getloadavg()[0], 2)
                    rows.append(row)
            finally:
                servers.kill_all()
                errors.seek(0)
                text = errors.read().decode(errors="replace").strip()
                if text:
                    print(f"server stderr:\n{text[-2000:]}", file=sys.stderr)
    from chaosraysvc.runtime.ports import port_open

    left = [s.proc.pid for s in servers.started if Path(f"/proc/{s.proc.pid}").exists()]
    open_ports = sorted({s.port for s in servers.started if port_open(s.port, timeout=0.2)})
    checks = check_targets(rows)

    print()
    print(markdown_table(COLUMNS, rows, FORMATS))
    print()
    print(
        "errors are signed: log figure minus independent clock; start = first failure vs "
        "t_kill, end = first success after it vs the new server's listening time"
    )
    print()
    print(targets_text(checks))
    if left or open_ports:
        print(f"\nWARNING: left behind: pids {left}, listening ports {open_ports}")
    out = write_result(
        Path(args.out),
        {
            "benchmark": "timing_precision",
            "machine": info,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "args": {k: v for k, v in vars(args).items() if k not in ("out", "command")},
            "target_ms": TARGET_MS,
            "max_abs_start_error_ms": _max_abs(rows, "start_error_ms"),
            "max_abs_end_error_ms": _max_abs(rows, "end_error_ms"),
            "max_abs_duration_error_ms": _max_abs(rows, "duration_error_ms"),
            "max_abs_mark_error_ms": _max_abs(rows, "mark_error_ms"),
            "servers": [
                {"pid": s.proc.pid, "port": s.port, "listening_at": s.listening_at}
                for s in servers.started
            ],
            "left_behind": {"pids": left, "ports": open_ports},
            "work_dir": str(work),
            "rows": rows,
            "targets": checks,
        },
    )
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
