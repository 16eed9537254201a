"""Timing precision on the real Ray sandbox: the traffic log vs a head-pod deletion.

The `--sandbox` mode of timing_precision.py, which keeps the command line and calls
`sandbox_main` here (this module has none of its own):

    .venv/bin/python benchmarks/timing_precision.py --sandbox [--sandbox-trials 3]

The requirement, as in the trivial-server mode: recovery figures derived from the
traffic log agree with an independent clock (the pod's deletion time, and the moment it
serves again) to within 50 ms.

`--sandbox` checks it on the real Ray sandbox: it brings up a sandbox of its own with
endpoint ports (`Sandbox(dir).up(SandboxSpec(..., endpoint_ports=True))`, temporary state
dir, free ports), and per trial sends sequential traffic to the head pod's own Serve
proxy (its endpoint URL; a new head's proxy comes back on the same port), deletes the
head pod with the product's action
(`pod_actions.delete_head_pod(configuration=..., wait_for_recovery=True)`), lets the
traffic run `--sandbox-after` more seconds and stops it. The clocks: the deletion
request the sandbox writes before it kills the pod (`<state dir>/deleting/<pod>`, read
back as written: see `observe_deletion`), and the new head proxy's access log (its first
`POST /fruit 200`, received at its log time - its latency: see `parse_access_line`).
start error = the head endpoint's failure window start - the deletion; end error = the
window end (the first success's start) - that request's receive time at the proxy. The
sandbox is brought down in a `finally` (Ctrl-C and SIGTERM included) and `down()`'s
leftovers are reported; JSON in benchmarks/results/timing_precision_sandbox.json.

What both modes share (the targets, the table formats, the helpers) lives in
timing_precision.py and is imported from it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from common import (
    TargetCheck,
    describe_machine,
    fmt,
    machine_info,
    markdown_table,
    targets_text,
    write_result,
)
from timing_precision import (
    FORMATS,
    PATH,
    TARGET_MS,
    TIMEOUT_S,
    _max_abs,
    _ms,
    _on_sigterm,
    _signed,
    check_targets,
)

if TYPE_CHECKING:
    from chaosraysvc.sandbox.manager import Sandbox
    from chaosraysvc.traffic.log import RequestRecord, TrafficLog

# -- the sandbox mode: the real head pod ---------------------------------------------------------

HEAD_LABEL = "head"  # the traffic's one endpoint: the head pod's own Serve proxy
ROUTE = "/fruit"  # the route Serve logs for `POST /fruit/` (its route prefix)
PROXY_LOGS = "session_latest/logs/serve/proxy_*.log"  # under a pod's Ray temp dir
# Ray Serve's access log line in its proxy's log file (Ray 2.60, TEXT encoding), e.g.
#   INFO 2026-11-26 03:32:31,902 proxy 192.0.2.2 23ef5923-2241-4c23-8104-416f99397562 -- \
#     POST /fruit 200 124.9ms    (one line: level, time, "proxy", node IP, request id, message)
# The time is the log record's (`asctime`: local time, truncated to the millisecond), taken
# right after the latency, which Serve measures from the start of its `proxy_request` to
# the end of the response: so the proxy received the request at time - latency. With
# RAY_SERVE_LOG_CLIENT_ADDRESS the client's address comes before the method.
_ACCESS_LINE = re.compile(
    r"^(?P<level>[A-Z]+) (?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{2}:\d{2}:\d{2}),(?P<msec>\d{3}) "
    r"proxy (?P<node>\S+) (?P<request_id>\S+) -- (?:(?P<client>\S+:\d+) )?"
    r"(?P<method>[A-Z]+) (?P<route>\S*) (?P<status>\S+) (?P<latency>\d+(?:\.\d+)?)ms(?:\s.*)?$"
)


@dataclass(frozen=True)
class AccessLine:
    """One access log line of a Serve proxy (times are epoch seconds)."""

    logged: float  # the record's time, truncated to the millisecond
    latency_ms: float
    method: str
    route: str
    status: str
    request_id: str
    raw: str = field(default="", compare=False)

    @property
    def received(self) -> float:
        """When the proxy started handling the request: the record's time - the latency."""
        return self.logged - self.latency_ms / 1000.0


def parse_access_line(line: str) -> AccessLine | None:
    """Return the access log entry of a Serve proxy log line, None for any other line."""
    found = _ACCESS_LINE.match(line.rstrip("\r\n"))
    if found is None:
        return None
    # local time, as the logging module's asctime (time.localtime)
    second = datetime.datetime.strptime(f"{found['date']} {found['time']}", "%Y-%m-%d %H:%M:%S")
    return AccessLine(
        logged=second.timestamp() + int(found["msec"]) / 1000.0,
        latency_ms=float(found["latency"]),
        method=found["method"],
        route=found["route"],
        status=found["status"],
        request_id=found["request_id"],
        raw=line.rstrip("\r\n"),
    )


def read_proxy_access(temp_dir: Path) -> tuple[list[AccessLine], list[Path]]:
    """Return the access lines of the proxy logs under a pod's Ray temp dir, by time."""
    files = sorted(temp_dir.glob(PROXY_LOGS))
    lines: list[AccessLine] = []
    for path in files:
        with open(path, errors="replace") as handle:
            lines += [a for a in map(parse_access_line, handle) if a is not None]
    return sorted(lines, key=lambda a: a.logged), files


@contextlib.contextmanager
def observe_deletion() -> Iterator[dict[str, Any]]:
    """Read back what the sandbox records when a pod is deleted, without changing it.

    In this process only (the action runs here), wraps `request_deletion` as the
    sandbox manager calls it, to read the deletion request file right after it is
    written (the supervisor removes it once the pod's processes are gone, long before
    the action returns), and `Sandbox.delete_pod`, to note when it returns (every
    process of the pod killed).
    """
    from chaosraysvc.sandbox import manager
    from chaosraysvc.sandbox.state import deleting_dir

    seen: dict[str, Any] = {"requests": []}
    request_deletion = manager.request_deletion
    delete_pod = manager.Sandbox.delete_pod

    def requesting(state_dir: Path, pod_name: str, grace_period: float) -> None:
        request_deletion(state_dir, pod_name, grace_period)
        written = json.loads((deleting_dir(state_dir) / pod_name).read_text())
        seen["requests"].append({"pod": pod_name, **written})

    def deleting(self: Any, name: str, grace_period: float = 0.0) -> float:
        try:
            return delete_pod(self, name, grace_period)
        finally:
            seen["delete_pod_returned_at"] = time.time()

    with (
        mock.patch.object(manager, "request_deletion", requesting),
        mock.patch.object(manager.Sandbox, "delete_pod", deleting),
    ):
        yield seen


def _event_time(events: list[dict[str, Any]], kind: str, pod: str) -> float | None:
    return next((e["t"] for e in events if e.get("type") == kind and e.get("pod") == pod), None)


def measure_sandbox(
    trial: int,
    log: TrafficLog,
    t_deletion: float | None,
    access: list[AccessLine],
    action: dict[str, Any],
    events: list[dict[str, Any]],
    observed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compare the head endpoint's failure window with the deletion and the new proxy's log.

    `t_deletion`: the deletion request's time; `access`: the new head proxy's access
    lines; `action`: what `delete_head_pod` returned; `events`: the supervisor's.
    """
    from chaosraysvc.traffic.stats import summarize

    observed = observed or {}
    summary = summarize(log)
    head = summary["by_endpoint"].get(HEAD_LABEL) or {}
    window = head.get("longest_failure_window") or {}
    start, end = window.get("start"), window.get("end")
    served = [
        a
        for a in access
        if a.method == "POST" and a.route.rstrip("/") == ROUTE and a.status == "200"
    ]
    first_200 = served[0] if served else None
    mine = [r for r in log.requests if (r.get("ep") or "-") == HEAD_LABEL]
    after = [r for r in mine if r["ok"] and end is not None and r["t"] >= end]
    first_ok = after[0] if after else None
    first_failure = next((r for r in mine if not r["ok"] and r["t"] == start), None)
    fault = next((m["t"] for m in log.marks if m["event"] == "fault"), None)

    def since_deletion_ms(t: float | None) -> float | None:
        return _ms(t - t_deletion) if t is not None and t_deletion is not None else None

    def inside(request: RequestRecord, entry: AccessLine) -> bool:
        # the proxy's receive time falls within the client's request (1 ms: the truncation)
        return request["t"] - 0.001 <= entry.received <= request["t"] + request["ms"] / 1000.0

    # The successes after the outage and the new proxy's 200s, in order (the proxy may
    # log one more: the request cancelled when the traffic stopped).
    pairs = list(zip(after, served, strict=False)) if len(served) >= len(after) else []
    offsets = sorted((p.received - r["t"]) * 1000.0 for r, p in pairs[1:])
    start_err = since_deletion_ms(start)
    end_err = _ms(end - first_200.received) if end is not None and first_200 is not None else None
    recovery = action.get("recovery") or {}
    seconds_to = recovery.get("seconds_to") or {}
    deleted = (action.get("deleted") or {}).get("name", "")
    new_pod = recovery.get("new_pod", "")
    return {
        "trial": trial,
        "mode": "sequential",
        "deleted_pod": deleted,
        "new_pod": new_pod,
        "t_deletion": t_deletion,
        "t_first_200_received": first_200.received if first_200 else None,
        "outage_s": (
            round(first_200.received - t_deletion, 6)
            if first_200 is not None and t_deletion is not None
            else None
        ),
        "window_start": start,
        "window_end": end,
        "window_duration_s": window.get("duration_s"),
        "window_ongoing": window.get("ongoing"),
        "failure_windows": head.get("failure_windows"),
        "requests": head.get("requests"),
        "failures": head.get("failures"),
        "failures_by_error": summary["failures_by_error"],
        "start_error_ms": start_err,
        "end_error_ms": end_err,
        "duration_error_ms": (
            round(end_err - start_err, 3) if start_err is not None and end_err is not None else None
        ),
        "mark_error_ms": since_deletion_ms(fault),
        # the action's own deletion time (taken before it calls the sandbox), for comparison
        "action_deleted_at_ms": since_deletion_ms(action.get("deleted_at")),
        # every process of the old head killed (Sandbox.delete_pod returned)
        "kill_returned_ms": since_deletion_ms(observed.get("delete_pod_returned_at")),
        # the supervisor saw the pod's processes gone and removed the deletion request
        "deleted_event_ms": since_deletion_ms(_event_time(events, "Deleted", deleted)),
        "new_pod_started_s": (
            round(t - t_deletion, 3)
            if (t := _event_time(events, "Started", new_pod)) is not None and t_deletion
            else None
        ),
        # the request in flight at the deletion: how it failed and when the client saw it
        "first_failure": (
            {
                "err": first_failure["err"],
                "ms": first_failure["ms"],
                "ended_after_deletion_ms": since_deletion_ms(
                    first_failure["t"] + first_failure["ms"] / 1000.0
                ),
            }
            if first_failure
            else None
        ),
        # requests that started after the deletion and still succeeded (the kill takes effect
        # late: the head's proxy serves until its process is gone)
        "ok_after_deletion": sum(
            1
            for r in mine
            if r["ok"] and t_deletion is not None and t_deletion <= r["t"] < (start or t_deletion)
        ),
        "first_success_client_ms": first_ok["ms"] if first_ok else None,
        "first_success_proxy_ms": first_200.latency_ms if first_200 else None,
        "first_200_line": first_200.raw if first_200 else None,
        "first_200_matches": (
            first_ok is not None and first_200 is not None and inside(first_ok, first_200)
        ),
        "proxy_200s": len(served),
        "log_successes_after": len(after),
        "pairs_inside": sum(1 for r, p in pairs if inside(r, p)),
        "pairs": len(pairs),
        # client start to the proxy's receive time for the later requests (a warm proxy)
        "warm_receive_delay_ms_p50": round(statistics.median(offsets), 3) if offsets else None,
        "warm_receive_delay_ms_max": round(offsets[-1], 3) if offsets else None,
        "recovery_seconds_to": seconds_to,
        "pod_ready_s": seconds_to.get("pod_ready"),
        "endpoints_restored_s": seconds_to.get("endpoints_restored"),
        "applications_running_s": seconds_to.get("applications_running"),
        "recovered": recovery.get("recovered"),
    }


def run_sandbox_trial(
    trial: int, box: Sandbox, configuration: dict[str, Any], args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """Traffic on the head's endpoint, delete the head pod through the action, measure."""
    from chaosraysvc.activities.pod_actions import delete_head_pod
    from chaosraysvc.traffic import build_settings, read_traffic_log, start_engine
    from chaosraysvc.traffic import stop_engine as stop_traffic

    heads = [e for e in box.status(check_serve=False).endpoints if e.role == "head" and e.url]
    if not heads or not heads[0].ready:
        raise RuntimeError(f"the head's endpoint is not ready: {heads}")
    url = heads[0].url
    settings = build_settings(
        url=url,
        endpoints=[f"{HEAD_LABEL}={url}"],
        path=PATH,
        mode="sequential",
        timeout=TIMEOUT_S,
        log_path=str(work / f"sandbox-trial-{trial}.jsonl"),
    )
    engine, _ = start_engine(settings)
    try:
        time.sleep(args.sandbox_warmup)
        print(f"    deleting the head pod {heads[0].pod} (traffic on {url}) ...", flush=True)
        with observe_deletion() as observed:
            action = delete_head_pod(
                configuration=configuration, wait_for_recovery=True, timeout=args.recovery_timeout
            )
        time.sleep(args.sandbox_after)
    finally:
        stop_traffic()
    log = read_traffic_log(engine.log_path)
    state = box.state()
    new_pod = (action.get("recovery") or {}).get("new_pod", "")
    new_head = state.pod(new_pod) if state else None
    if state is None or new_head is None:
        raise RuntimeError(f"the new head pod {new_pod!r} is not in the sandbox's state")
    access, files = read_proxy_access(Path(new_head.temp_dir))
    deleted = action["deleted"]["name"]
    written = [r for r in observed["requests"] if r["pod"] == deleted]
    row = measure_sandbox(
        trial,
        log,
        float(written[0]["t"]) if written else None,
        access,
        action,
        state.events,
        observed,
    )
    new_urls = [e.url for e in box.status(check_serve=False).endpoints if e.pod == new_pod]
    row.update(
        deletion_request=written[0] if written else None,
        head_url=url,
        new_head_url=new_urls[0] if new_urls else None,
        proxy_logs=[str(p) for p in files],
        log=str(engine.log_path),
    )
    return row


# -- the sandbox mode: targets and main ----------------------------------------------------------


def check_sandbox_targets(rows: list[dict[str, Any]]) -> list[TargetCheck]:
    """The trivial mode's targets, and that the proxy's first 200 is the log's first success."""
    checks = check_targets(rows)
    bad = [r["trial"] for r in rows if not r.get("first_200_matches")]
    detail = f"all {len(rows)} matched" if rows else "no trial ran"
    checks.append(
        TargetCheck(
            "each trial: the new proxy's first 200 falls within the log's first success after "
            "the outage (the two clocks are about the same request)",
            bool(rows) and not bad,
            f"trials {bad} did not match" if bad else detail,
        )
    )
    return checks


SANDBOX_COLUMNS = [
    ("trial", "trial"),
    ("outage_s", "outage s (deletion to first 200 at the proxy)"),
    ("window_duration_s", "failure window s"),
    ("failures", "failures"),
    ("ok_after_deletion", "ok after deletion"),
    ("start_error_ms", "start error ms"),
    ("end_error_ms", "end error ms"),
    ("duration_error_ms", "duration error ms"),
    ("mark_error_ms", "fault mark error ms"),
    ("first_success_client_ms", "first success ms (client)"),
    ("first_success_proxy_ms", "first success ms (proxy)"),
    ("pod_ready_s", "pod_ready s"),
    ("applications_running_s", "apps RUNNING s"),
    ("endpoints_restored_s", "endpoints s"),
    ("load_1m_after", "load 1m"),
]
SANDBOX_FORMATS = {
    **FORMATS,
    "first_success_client_ms": lambda v: fmt(v, 1),
    "first_success_proxy_ms": lambda v: fmt(v, 1),
    "pod_ready_s": lambda v: fmt(v, 1),
    "applications_running_s": lambda v: fmt(v, 1),
    "endpoints_restored_s": lambda v: fmt(v, 1),
    "load_1m_after": lambda v: fmt(v, 2),
}
CLOCKS = {
    "deletion": (
        "the sandbox's deletion request file (<state dir>/deleting/<pod>, `t` = time.time() "
        "when the deletion is requested, before the pod's processes are killed: Kubernetes' "
        "deletionTimestamp), read back right after it is written"
    ),
    "first_success": (
        "the new head's Serve proxy access log (<temp dir>/" + PROXY_LOGS + "): the first "
        "`POST /fruit 200`, received at its time - its latency"
    ),
}


def _trial_line(row: dict[str, Any]) -> str:
    if row.get("error"):
        return f"    trial {row['trial']} failed: {row['error']}"
    return (
        f"    failure window {fmt(row['window_duration_s'], 3)} s, {row['failures']} failures; "
        f"start error {_signed(row['start_error_ms'])} ms, end error "
        f"{_signed(row['end_error_ms'])} ms; pod_ready {fmt(row['pod_ready_s'], 1)} s, "
        f"apps RUNNING {fmt(row['applications_running_s'], 1)} s, endpoints "
        f"{fmt(row['endpoints_restored_s'], 1)} s"
    )


def sandbox_main(args: argparse.Namespace) -> int:
    """Bring a sandbox up, run the head-deletion trials, bring it down (always)."""
    from chaosraysvc.activities.pod_actions import wait_for_recovery
    from chaosraysvc.runtime.ports import free_port
    from chaosraysvc.sandbox.manager import DownResult, Sandbox
    from chaosraysvc.sandbox.spec import SandboxSpec

    signal.signal(signal.SIGTERM, _on_sigterm)
    # the actions' progress ("Recovery: pod_ready after 21.0 s"), as `chaos run` shows it
    progress = logging.StreamHandler(sys.stdout)
    progress.setFormatter(logging.Formatter("      %(message)s"))
    logging.getLogger("chaostoolkit").addHandler(progress)
    logging.getLogger("chaostoolkit").setLevel(logging.INFO)
    info = machine_info()
    print(describe_machine(info), flush=True)
    out = Path(args.out)
    state_dir = Path(tempfile.mkdtemp(prefix="crs-bench-timing-sbx-"))
    spec = SandboxSpec(
        state_dir=state_dir,
        serve_port=free_port(),
        dashboard_port=free_port(),
        endpoint_ports=True,
        restart_delay=args.restart_delay,
    )
    box = Sandbox(state_dir)
    configuration = {"raysvc_target": "sandbox", "sandbox_state_dir": str(state_dir)}
    rows: list[dict[str, Any]] = []
    up_s: float | None = None
    stopped_by, code = "", 0
    down: DownResult | None = None
    payload: dict[str, Any] = {
        "benchmark": "timing_precision_sandbox",
        "machine": info,
        "args": {k: v for k, v in vars(args).items() if k not in ("out", "command")},
        "target_ms": TARGET_MS,
        "clocks": CLOCKS,
        "proxy_access_line": _ACCESS_LINE.pattern,
    }
    with tempfile.TemporaryDirectory(prefix="crs-bench-timing-") as tmp:
        work = Path(tmp)
        try:
            print(f"sandbox: up in {state_dir} (endpoint ports) ...", flush=True)
            started = time.monotonic()
            box.up(spec, timeout=args.up_timeout, progress=lambda m: print(f"    {m}", flush=True))
            up_s = round(time.monotonic() - started, 1)
            payload["sandbox"] = {"spec": box.spec().to_json(), "up_s": up_s}
            for trial in range(1, args.sandbox_trials + 1):
                print(f"  trial {trial}/{args.sandbox_trials}: waiting until healthy", flush=True)
                wait_for_recovery(timeout=args.recovery_timeout, configuration=configuration)
                try:
                    row = run_sandbox_trial(trial, box, configuration, args, work)
                except Exception as exc:  # noqa: BLE001 - recorded; the next trial waits for health
                    row = {"trial": trial, "error": f"{type(exc).__name__}: {exc}"}
                row["load_1m_after"] = round(os.getloadavg()[0], 2)
                rows.append(row)
                print(_trial_line(row), flush=True)
                write_result(out, payload | {"rows": rows, "partial": True})
        except KeyboardInterrupt:
            stopped_by, code = "interrupted (Ctrl-C)", 130
        except SystemExit as exc:  # SIGTERM (`_on_sigterm`)
            stopped_by = f"terminated (exit {exc.code})"
            code = exc.code if isinstance(exc.code, int) and exc.code else 1
        except Exception as exc:  # noqa: BLE001 - reported; the sandbox still goes down
            stopped_by, code = f"{type(exc).__name__}: {exc}", 1
        finally:
            # a second Ctrl-C must not cut the clean-up short
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                print("sandbox: down ...", flush=True)
                down = box.down()
                print(
                    f"sandbox: down in {down.seconds:.1f} s, {down.pods_ended} pods ended, "
                    f"processes left: {down.leftovers or 'none'}",
                    flush=True,
                )
            finally:
                signal.signal(signal.SIGINT, previous)
    if stopped_by:
        print(f"stopped early: {stopped_by}", flush=True)
    from chaosraysvc.runtime.ports import port_open

    final = box.state()
    supervisor_alive = bool(final and final.supervisor_alive())
    ports = [spec.serve_port, spec.dashboard_port]
    if final is not None:
        ports += [p.ports["proxy"] for p in final.pods if p.ports.get("proxy")]
    open_ports = sorted({p for p in ports if port_open(p, timeout=0.2)})
    leftovers = list(down.leftovers) if down else []
    if not leftovers and not supervisor_alive:
        shutil.rmtree(state_dir, ignore_errors=True)
    checks = check_sandbox_targets(rows)

    print()
    print(markdown_table(SANDBOX_COLUMNS, rows, SANDBOX_FORMATS))
    print()
    print(
        "errors are signed: log figure minus independent clock; start = first failure vs the "
        "deletion request's time, end = first success after it vs its receive time in the new "
        "head proxy's access log"
    )
    for row in rows:
        if row.get("error"):
            print(f"trial {row['trial']}: {row['error']}")
    print()
    print(targets_text(checks))
    if leftovers or supervisor_alive or open_ports:
        print(
            f"\nWARNING: left behind: pids {leftovers}, supervisor alive {supervisor_alive}, "
            f"listening ports {open_ports}; state dir kept: {state_dir}"
        )
    payload["sandbox"] = payload.get("sandbox", {}) | {
        "state_dir": str(state_dir),
        "down": asdict(down) if down else None,
    }
    out = write_result(
        out,
        payload
        | {
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "stopped_by": stopped_by or None,
            "max_abs_start_error_ms": _max_abs(rows, "start_error_ms"),
            "max_abs_end_error_ms": _max_abs(rows, "end_error_ms"),
            "max_abs_duration_error_ms": _max_abs(rows, "duration_error_ms"),
            "max_abs_mark_error_ms": _max_abs(rows, "mark_error_ms"),
            "left_behind": {
                "pids": leftovers,
                "supervisor_alive": supervisor_alive,
                "ports": open_ports,
            },
            "work_dir": str(work),
            "rows": rows,
            "targets": checks,
        },
    )
    print(f"\nresults: {out}")
    return code
