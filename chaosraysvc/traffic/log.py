"""The traffic log: one JSON object per line (JSONL), written as requests complete.

This module owns every line format (`run_line`, `request_line`, `mark_line`,
`end_line`), the writer (`LogWriter`) and the reader (`read_traffic_log`). The engine
writes from its event-loop thread in batches flushed every `FLUSH_INTERVAL_S` (0.2 s),
on every mark and on stop, so a killed run loses at most the last 0.2 s. Readers (the
statistics in `chaosraysvc.traffic.stats`, the report) rely on this contract, version 1.

First line, the run header::

    {"kind": "run", "version": 1, "started": 1767000000.123, "url": "",
     "path": "/fruit/", "mode": "rate", "rate": 100.0, "concurrency": 4, "timeout_s": 2.0,
     "endpoints": ["worker-1", "worker-2"],
     "endpoint_urls": ["http://10.0.0.5:8000", "http://10.0.0.6:8000"],
     "endpoint_mode": "round_robin", "method": "POST", "expected_status": [],
     "secret_headers": ["Authorization"], "request_id_header": "X-Request-Id",
     "request_id_prefix": "crs-1f2e3d4c"}

`mode` is "sequential" or "rate"; `rate` is the requested req/s (0 in sequential mode);
`url` is the base URL when there is one, else ""; `endpoints` lists the endpoint labels
and `endpoint_urls` their URLs (both empty when the engine targets one URL). `method` is
"POST" or "GET"; `expected_status` the accepted status codes ([]: any 2xx);
`secret_headers` the names of the headers sent from the experiment's secrets. These
three were added within version 1: logs without them are POST, any 2xx, no secret
header. `request_id_header` names the header that carries each request's id (null when
the experiment's secrets set `X-Request-Id` themselves: then no id is recorded) and
`request_id_prefix` the ids' prefix; both were added within version 1 too. URLs never
carry credentials (userinfo is stripped) and no header value is ever recorded (the
request ids are ours, not the user's).

One line per request, in completion order (sort by `t` for start order)::

    {"kind": "req", "t": 1767000000.5, "ms": 9.731, "ok": true, "code": 200, "err": null,
     "ep": "worker-1", "id": "crs-1f2e3d4c-17"}

`t` is the epoch second the request started, `ms` its latency in milliseconds (3
decimals), `code` the HTTP status or null when none was received, `ep` the endpoint
label or null, `id` the `X-Request-Id` sent (`<request_id_prefix>-<n>`, n counting the
requests sent from 1; Ray Serve writes it in its proxy and replica logs) or null; logs
written before it have no `id`. `err` is null on success, otherwise one of:

- `connect_refused`: the TCP connection was refused;
- `connect_error`: any other failure to connect (unreachable, DNS, reset on connect);
- `timeout`: no complete answer within the per-request timeout;
- `disconnected`: the server closed or reset the connection mid-request;
- `http_<code>`: an answer whose status is not expected: not 2xx, or not one of the
  header's `expected_status` when it lists some (e.g. `http_500`, or `http_200` when
  only 201 is expected); `code` holds the status;
- `wrong_answer`: an answer with an expected status whose body is not the expected one;
- `other:<ExceptionName>`: anything else.

Markers written by actions through the engine's API (`chaosraysvc.traffic.mark`)::

    {"kind": "mark", "t": 1767000010.0, "event": "fault",
     "detail": {"pod": "head-0", "role": "head"}}

Events with a meaning for the statistics: `fault` (a pod was deleted), `pod_ready`,
`endpoints_restored`, `applications_running`. The engine itself writes `rate_behind`
and `rate_caught_up` in rate mode when it cannot hold the requested rate, and
`max_failures` when the failure limit is crossed. Other names are free.

Last line, on a clean stop only::

    {"kind": "end", "t": 1767000060.0, "requests": 6000, "failures": 3, "cancelled_at_stop": 1,
     "schedule": {"requested_rps": 100.0, "achieved_rps": 99.99, "scheduled": 6001,
                  "sent": 6001, "skipped": 0, "pending": 0, "late": 0,
                  "late_threshold_ms": 20.0, "max_late_ms": 1.2}}

`cancelled_at_stop` counts requests in flight at the stop (not recorded); `schedule` is
present in rate mode only (see `chaosraysvc.traffic.schedule`). Readers
ignore unknown fields and unknown kinds, so fields may be added without a new version.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NotRequired, TypedDict

from chaosraysvc.errors import ChaosRaySvcError, ConfigurationError

__all__ = [
    "ERROR_CLASSES",
    "FLUSH_INTERVAL_S",
    "FORMAT_VERSION",
    "HEADER_FIELDS",
    "LogWriter",
    "RequestRecord",
    "TrafficLog",
    "TrafficLogError",
    "end_line",
    "mark_line",
    "read_traffic_log",
    "request_line",
    "run_header",
    "run_line",
]

logger = logging.getLogger("chaostoolkit")

FORMAT_VERSION = 1
FLUSH_INTERVAL_S = 0.2
# The settings (`TrafficSettings.describe()`) recorded in the run header, in order.
HEADER_FIELDS = (
    "url",
    "path",
    "mode",
    "rate",
    "concurrency",
    "timeout_s",
    "endpoints",
    "endpoint_urls",
    "endpoint_mode",
    "method",
    "expected_status",
    "secret_headers",
    "request_id_header",
)

# Fixed error classes; `http_<code>` and `other:<ExceptionName>` are open-ended.
ERROR_CLASSES = ("connect_refused", "connect_error", "timeout", "disconnected", "wrong_answer")


class TrafficLogError(ChaosRaySvcError):
    """A traffic log cannot be read: names the file, the line and what is wrong."""


class RequestRecord(TypedDict):
    """One `req` line of the traffic log."""

    kind: str
    t: float
    ms: float
    ok: bool
    code: int | None
    err: str | None
    ep: str | None
    id: NotRequired[str | None]


@dataclass
class TrafficLog:
    """A parsed traffic log.

    `header` is the `run` line (empty for an empty file), `requests` the `req` lines
    sorted by start time, `marks` the `mark` lines sorted by time, `end` the `end`
    line or None when the run did not stop cleanly, and `truncated` tells that the
    last line was cut mid-write (and ignored).
    """

    path: Path
    header: dict[str, Any] = field(default_factory=dict)
    requests: list[RequestRecord] = field(default_factory=list)
    marks: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None
    truncated: bool = False


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)


def run_header(started: float, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return the run header's fields: `started` and the `HEADER_FIELDS` of `settings`."""
    return {"started": round(started, 6), **{k: settings[k] for k in HEADER_FIELDS}}


def run_line(header: dict[str, Any]) -> str:
    """Return the `run` header line for `header` (adds kind and version)."""
    return _dumps({"kind": "run", "version": FORMAT_VERSION, **header}) + "\n"


# Request lines are formatted by hand: the engine writes thousands per second.
_OK_LINE = '{"kind":"req","t":%.6f,"ms":%.3f,"ok":true,"code":%d,"err":null,"ep":%s,"id":%s}\n'
_FAIL_LINE = '{"kind":"req","t":%.6f,"ms":%.3f,"ok":false,"code":%s,"err":%s,"ep":%s,"id":%s}\n'


def request_line(
    t: float,
    ms: float,
    code: int | None,
    err: str | None,
    ep_json: str,
    request_id: str | None = None,
) -> str:
    """Return a `req` line; `err` None means success, `ep_json` is the label as JSON."""
    rid = "null" if request_id is None else json.dumps(request_id)
    if err is None:
        return _OK_LINE % (t, ms, code, ep_json, rid)
    code_json = "null" if code is None else code
    return _FAIL_LINE % (t, ms, code_json, json.dumps(err), ep_json, rid)


def mark_line(t: float, event: str, detail: dict[str, Any]) -> str:
    """Return a `mark` line."""
    return _dumps({"kind": "mark", "t": round(t, 6), "event": event, "detail": detail}) + "\n"


def end_line(t: float, requests: int, failures: int, **extra: Any) -> str:
    """Return the `end` line; `extra` fields (e.g. `schedule`) are appended."""
    record = {"kind": "end", "t": round(t, 6), "requests": requests, "failures": failures}
    record.update(extra)
    return _dumps(record) + "\n"


class LogWriter:
    """The traffic log file, written in buffered batches by one thread.

    `open` creates the file with its run header; `add` buffers a line; `flush` writes
    the buffer (a write error is logged once, never raised, so traffic keeps running);
    `close` flushes and closes. Only the thread that owns the writer may call `add`,
    `flush` and `close` once the engine runs.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._buffer: list[str] = []
        self._error_logged = False

    def open(self, header: dict[str, Any]) -> None:
        """Create the file and write the run header; raise `ConfigurationError` if it cannot."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigurationError(
                f"cannot write the traffic log {self.path}: {reason}; give a writable "
                "`log_path` (or configuration 'traffic_log' / $RAYSVC_TRAFFIC_LOG)"
            ) from exc
        self._file.write(run_line(header))
        self._file.flush()

    def add(self, line: str) -> None:
        """Buffer `line` until the next flush."""
        self._buffer.append(line)

    def flush(self) -> None:
        """Write the buffered lines now."""
        if not self._buffer or self._file is None or self._file.closed:
            return
        data = "".join(self._buffer)
        self._buffer.clear()
        try:
            self._file.write(data)
            self._file.flush()
        except OSError as exc:
            if not self._error_logged:
                self._error_logged = True
                logger.error("Cannot write the traffic log %s: %s", self.path, exc)

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if self._file is not None and not self._file.closed:
            self.flush()
            self._file.close()


def _garbage(path: Path, lineno: int, what: str, line: str) -> TrafficLogError:
    shown = line if len(line) <= 80 else line[:77] + "..."
    return TrafficLogError(
        f"traffic log {path}, line {lineno}: {what}: {shown!r}; "
        "this file is not a chaosraysvc traffic log or was damaged"
    )


def read_traffic_log(path: str | Path) -> TrafficLog:
    """Read the traffic log at `path`.

    Tolerates an empty file and a last line cut mid-write (`truncated` is then True);
    raises `TrafficLogError` naming the file and line for anything else that is not
    a log record, or when the file cannot be read (missing, unreadable).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrafficLogError(f"traffic log {path} cannot be read: {exc.strerror or exc}") from exc
    log = TrafficLog(path=path)
    if not data.strip():
        return log
    lines = data.split(b"\n")
    complete_end = data.endswith(b"\n")
    last_index = len(lines) - 1
    decode = json.JSONDecoder().decode
    for index, raw in enumerate(lines):
        if not raw.strip():
            continue
        lineno = index + 1
        text = raw.decode("utf-8", errors="replace")
        try:
            record = decode(text)
        except ValueError:
            if index == last_index and not complete_end:
                log.truncated = True
                break
            raise _garbage(path, lineno, "not JSON", text) from None
        if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
            raise _garbage(path, lineno, "not a record with a 'kind'", text)
        kind = record["kind"]
        if kind == "req":
            if not isinstance(record.get("t"), int | float) or "ok" not in record:
                raise _garbage(path, lineno, "request record without 't' or 'ok'", text)
            log.requests.append(record)  # type: ignore[arg-type]
        elif kind == "mark":
            if not isinstance(record.get("t"), int | float) or "event" not in record:
                raise _garbage(path, lineno, "mark without 't' or 'event'", text)
            record.setdefault("detail", {})
            log.marks.append(record)
        elif kind == "run":
            if log.header:
                raise _garbage(path, lineno, "a second 'run' header", text)
            version = record.get("version")
            if version != FORMAT_VERSION:
                raise TrafficLogError(
                    f"traffic log {path}, line {lineno}: format version {version!r} "
                    f"is not supported (this chaosraysvc reads version {FORMAT_VERSION})"
                )
            log.header = record
        elif kind == "end":
            log.end = record
        # unknown kinds are skipped: fields and kinds may be added within a version
    if not log.header and (log.requests or log.marks or log.end):
        raise TrafficLogError(
            f"traffic log {path}: no 'run' header line; "
            "this file is not a chaosraysvc traffic log"
        )
    log.requests.sort(key=lambda r: r["t"])
    log.marks.sort(key=lambda m: m["t"])
    return log


def injected_fault(log: TrafficLog) -> dict[str, Any] | None:
    """Return the first `fault` mark whose fault happened: not one followed, before the next
    `fault`, by a `fault_not_injected` mark for its pod (an action refused or failed)."""
    marks = list(log.marks)
    for i, mark in enumerate(marks):
        if mark["event"] != "fault":
            continue
        pod = (mark.get("detail") or {}).get("pod")
        refused = False
        for later in marks[i + 1 :]:
            if later["event"] == "fault":
                break
            if (
                later["event"] == "fault_not_injected"
                and (later.get("detail") or {}).get("pod") == pod
            ):
                refused = True
                break
        if not refused:
            return mark
    return None
