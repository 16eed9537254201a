"""The background traffic engine: HTTP requests on an asyncio loop in a daemon thread.

A `TrafficEngine` owns one thread running one event loop (uvloop when installed) with
one aiohttp session (a keep-alive connection pool). It sends `POST <url><path>` with
the configured body and checks the answer, in one of two modes:

- `sequential`: at most one request in flight per worker, the next one sent as soon as
  the previous one ends (after `failure_pause` seconds when it failed, so a refused
  port does not spin); like KubeRay's HA sample query loop.
- `rate`: requests start on an absolute timeline, slot k at `start + k / rate`, so
  delays never accumulate into drift; at most `concurrency` are in flight. A slot that
  cannot start on time (all `concurrency` requests busy, or the loop too slow) starts
  late; one that is more than `max(1 s, 1 / rate)` late is skipped and counted, so a
  long outage is not followed by a burst. The engine writes a `rate_behind` mark (and
  logs a warning, at most every 30 s) when, over a one-second window, more than 2 % of
  the slots started, or are still waiting, more than `max(20 ms, 2 / rate)` late or any
  was skipped, and a `rate_caught_up` mark when it holds the rate again. The end line's
  `schedule` gives the totals: `scheduled` (slots due by the stop, from the clock),
  `sent`, `skipped`, `pending` (due but never started), `late`, `max_late_ms`.

With several endpoints, `round_robin` spreads the requests of one worker over them in
turn; `per_endpoint` runs one worker per endpoint (each with the full `rate` and
`concurrency` in rate mode). Every request is recorded in the traffic log
(`chaosraysvc.traffic.log` describes the format) from the loop thread, buffered and
flushed every 0.2 s, on every mark and on stop.

The thread is a daemon and an `atexit` hook stops the engine, so it never keeps the
process alive and a normal interpreter exit still writes the end line.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import errno
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp
from yarl import URL

from chaosraysvc.errors import ChaosRaySvcError, ConfigurationError
from chaosraysvc.traffic.log import end_line, mark_line, read_traffic_log, run_line
from chaosraysvc.traffic.settings import TargetEndpoint, TrafficSettings
from chaosraysvc.traffic.stats import summarize

__all__ = ["FLUSH_INTERVAL_S", "TrafficEngine", "classify_error"]

logger = logging.getLogger("chaostoolkit")

FLUSH_INTERVAL_S = 0.2
LATE_MIN_S = 0.02
WARN_EVERY_S = 30.0
SKIP_MIN_S = 1.0
MIN_SLEEP_S = 0.001
BEHIND_RATIO = 0.02
_DISCONNECT_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ESHUTDOWN}

_OK_LINE = '{"kind":"req","t":%.6f,"ms":%.3f,"ok":true,"code":%d,"err":null,"ep":%s}\n'
_FAIL_LINE = '{"kind":"req","t":%.6f,"ms":%.3f,"ok":false,"code":%s,"err":%s,"ep":%s}\n'


def classify_error(exc: BaseException) -> str:
    """Return the traffic log error class of an exception raised by a request."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = getattr(exc, "os_error", None)
        if isinstance(os_error, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
            return "connect_refused"
        return "connect_error"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "disconnected"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "disconnected"
    if isinstance(exc, OSError) and exc.errno in _DISCONNECT_ERRNOS:
        return "disconnected"
    if isinstance(exc, aiohttp.ServerConnectionError):
        return "disconnected"
    if isinstance(exc, aiohttp.ClientOSError):
        # An established connection failed at the OS level without an errno (e.g. aiohttp's
        # "Cannot write to closing transport" when the server's process died).
        return "disconnected"
    return f"other:{type(exc).__name__}"


@dataclass
class _Target:
    url: URL
    label_json: str
    headers: dict[str, str]


class _Schedule:
    """The rate-mode timeline and its counters (shared by the workers and the monitor).

    Each of `groups` workers starts slot k at `started_at + k * interval`; `scheduled`
    counts the slots whose time has come, from the clock, so a worker stuck waiting
    for a free request still shows as falling behind.
    """

    def __init__(self, rate_per_group: float, groups: int, late_after: float) -> None:
        self.interval = 1.0 / rate_per_group
        self.groups = groups
        self.rate = rate_per_group * groups
        self.late_after = late_after
        self.started_at = time.monotonic()
        self.sent = 0
        self.late = 0
        self.skipped = 0
        self.max_late = 0.0

    def scheduled(self, now: float) -> int:
        """Return how many slots were due by `now` (monotonic clock)."""
        if now < self.started_at:
            return 0
        return (int((now - self.started_at) / self.interval) + 1) * self.groups

    def overdue(self, now: float) -> int:
        """Return how many slots are more than `late_after` late and not started yet."""
        return max(self.scheduled(now - self.late_after) - self.sent - self.skipped, 0)

    def totals(self, now: float) -> dict[str, Any]:
        """Return the counters as JSON, as of `now`."""
        elapsed = max(now - self.started_at, 1e-9)
        scheduled = self.scheduled(now)
        return {
            "requested_rps": self.rate,
            "achieved_rps": round(self.sent / elapsed, 3),
            "scheduled": scheduled,
            "sent": self.sent,
            "skipped": self.skipped,
            "pending": max(scheduled - self.sent - self.skipped, 0),
            "late": self.late,
            "late_threshold_ms": round(self.late_after * 1000, 3),
            "max_late_ms": round(self.max_late * 1000, 3),
        }


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


class TrafficEngine:
    """Send traffic in a background thread and record every request.

    `start()` opens the log and starts the thread; `stop()` ends it, writes the end
    line and returns `summary()`. `mark(event, **detail)` adds a marker from any
    thread. `on_max_failures(engine)` is called once, from the loop thread, when the
    failures exceed `settings.max_failures` (>= 0); it must return quickly.
    """

    def __init__(
        self,
        settings: TrafficSettings,
        on_max_failures: Callable[[TrafficEngine], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_max_failures = on_max_failures
        self.requests = 0
        self.failures = 0
        self.started_at = 0.0
        self.stopped_at = 0.0
        self.max_failures_exceeded = False
        self._file: IO[str] | None = None
        self._buf: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._startup_error: BaseException | None = None
        self._stop_requested: asyncio.Event | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cancelled = 0
        self._write_error_logged = False
        self._schedule: _Schedule | None = None
        self._final_schedule: dict[str, Any] | None = None
        self._in_flight = 0
        self._summary: dict[str, Any] | None = None
        self._lock = threading.Lock()
        body = settings.body.encode()
        self._body = body
        self._expected_bytes = settings.expected.encode()
        try:
            self._expected_json: Any = json.loads(settings.expected) if settings.expected else None
            self._expected_is_json = bool(settings.expected)
        except ValueError:
            self._expected_json, self._expected_is_json = None, False

    # ------------------------------------------------------------------ public API
    @property
    def log_path(self) -> Path:
        """Return the traffic log file."""
        return self.settings.log_path

    @property
    def running(self) -> bool:
        """Return whether the loop thread is sending traffic."""
        return self._thread is not None and self._ready.is_set() and not self._done.is_set()

    def start(self, timeout: float = 10.0) -> None:
        """Open the log, write its header and start the loop thread.

        Raises `ConfigurationError` when the log cannot be written and
        `ChaosRaySvcError` when the loop does not come up within `timeout` seconds.
        """
        if self._thread is not None:
            raise ChaosRaySvcError("this traffic engine was already started; create a new one")
        path = self.settings.log_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigurationError(
                f"cannot write the traffic log {path}: {reason}; give a writable "
                "`log_path` (or configuration 'traffic_log' / $RAYSVC_TRAFFIC_LOG)"
            ) from exc
        self.started_at = time.time()
        s = self.settings
        header = {
            "started": round(self.started_at, 6),
            "url": s.url,
            "path": s.path,
            "mode": s.mode,
            "rate": s.rate,
            "concurrency": s.concurrency,
            "timeout_s": s.timeout,
            "endpoints": s.labels,
            "endpoint_urls": [e.url for e in s.endpoints] if s.labels else [],
            "endpoint_mode": s.endpoint_mode,
        }
        self._file.write(run_line(header))
        self._file.flush()
        self._thread = threading.Thread(
            target=self._thread_main, name="chaosraysvc-traffic", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout) or self._startup_error is not None:
            error = self._startup_error
            self.stop(timeout=2.0)
            raise ChaosRaySvcError(
                f"the traffic engine did not start: {error or 'timed out'}"
            ) from error
        atexit.register(self._at_exit)
        where = (
            f"{s.url}{s.path}"
            if s.url
            else f"{s.path} of {len(s.endpoints)} endpoints ({s.endpoint_mode}: "
            + ", ".join(s.labels)
            + ")"
        )
        logger.info(
            "Traffic %s to %s started, log %s",
            s.mode + (f" at {s.rate:g} req/s" if s.mode == "rate" else ""),
            where,
            path,
        )

    def stop(self, timeout: float = 5.0) -> dict[str, Any]:
        """Stop sending, write the end line, close the log and return `summary()`.

        Requests still in flight are cancelled and not recorded (counted as
        `cancelled_at_stop`). Safe to call more than once and from any thread but the
        loop's own.
        """
        with self._lock:
            thread, loop = self._thread, self._loop
            if thread is not None and loop is not None and not self._done.is_set():
                with contextlib.suppress(RuntimeError):  # loop already closed
                    loop.call_soon_threadsafe(self._request_stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("The traffic thread did not stop within %.1f s", timeout)
        atexit.unregister(self._at_exit)
        if thread is None and self._file is not None and not self._file.closed:
            self._file.close()
        if not self.stopped_at:
            self.stopped_at = time.time()
        if self._summary is None:
            self._summary = self._make_summary()
            logger.info(
                "Traffic stopped: %d requests, %d failures, log %s",
                self.requests,
                self.failures,
                self.log_path,
            )
        return self._summary

    def mark(self, event: str, **detail: Any) -> bool:
        """Write a `mark` line now (from any thread); return False when not running."""
        line = mark_line(time.time(), str(event), detail)
        loop = self._loop
        if loop is None or not self.running:
            return False
        try:
            loop.call_soon_threadsafe(self._write_now, line)
        except RuntimeError:
            return False
        logger.debug("traffic mark %s %s", event, detail)
        return True

    def flush(self, timeout: float = 1.0) -> None:
        """Ask the loop thread to write its buffer now and wait up to `timeout` s."""
        loop = self._loop
        if loop is None or not self.running:
            return
        done = threading.Event()

        def _flush_and_signal() -> None:
            self._flush()
            done.set()

        try:
            loop.call_soon_threadsafe(_flush_and_signal)
        except RuntimeError:
            return
        done.wait(timeout)

    def summary(self, brownout_ratio: float = 0.5) -> dict[str, Any]:
        """Return the statistics of the run so far (see `chaosraysvc.traffic.stats`)."""
        if self._summary is not None and brownout_ratio == 0.5:
            return self._summary
        self.flush()
        return self._make_summary(brownout_ratio)

    def schedule_totals(self) -> dict[str, Any] | None:
        """Return the rate-mode schedule counters so far (None in sequential mode)."""
        if self._final_schedule is not None:
            return self._final_schedule
        return None if self._schedule is None else self._schedule.totals(time.monotonic())

    # ------------------------------------------------------------------ internals
    def _make_summary(self, brownout_ratio: float = 0.5) -> dict[str, Any]:
        summary = summarize(read_traffic_log(self.log_path), brownout_ratio=brownout_ratio)
        summary["log"] = str(self.log_path)
        summary["settings"] = self.settings.describe()
        summary["max_failures_exceeded"] = self.max_failures_exceeded
        summary["running"] = self.running
        return summary

    def _at_exit(self) -> None:
        try:
            self.stop(timeout=2.0)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            logger.debug("stopping the traffic at exit failed", exc_info=True)

    def _thread_main(self) -> None:
        loop = _new_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:
            if not self._ready.is_set():
                self._startup_error = exc
            logger.error("The traffic engine failed: %r", exc, exc_info=True)
        finally:
            try:
                self._close_file()
            finally:
                self._done.set()
                self._ready.set()
                loop.close()

    def _request_stop(self) -> None:
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def _main(self) -> None:
        s = self.settings
        self._stop_requested = asyncio.Event()
        targets = [_target(ep, s.path) for ep in s.endpoints]
        workers_per_group = s.concurrency if s.mode == "rate" else 1
        groups = len(targets) if s.endpoint_mode == "per_endpoint" else 1
        connector = aiohttp.TCPConnector(
            limit=workers_per_group * groups, limit_per_host=0, ttl_dns_cache=None
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=s.timeout),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent",),
            trust_env=False,
        )
        loop = asyncio.get_running_loop()
        coros: list[Coroutine[Any, Any, None]] = [self._flusher()]
        target_groups = [[t] for t in targets] if groups > 1 else [targets]
        if s.mode == "rate":
            late_after = max(LATE_MIN_S, 2.0 / s.rate)
            self._schedule = _Schedule(s.rate, groups, late_after)
            for group in target_groups:
                coros.append(self._rate_worker(group, self._schedule))
            coros.append(self._rate_monitor(self._schedule))
        else:
            coros.extend(self._sequential_worker(group) for group in target_groups)
        workers = [loop.create_task(c) for c in coros]
        for worker in workers:
            worker.add_done_callback(self._worker_done)
        self._ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            in_flight = [t for t in self._tasks if not t.done()]
            # rate mode: one task per request (maybe not started yet); sequential: in workers
            self._cancelled = len(in_flight) if s.mode == "rate" else self._in_flight
            for task in [*workers, *in_flight]:
                task.cancel()
            await asyncio.gather(*workers, *in_flight, return_exceptions=True)
            await self._session.close()
            self.stopped_at = time.time()
            extra: dict[str, Any] = {"cancelled_at_stop": self._cancelled}
            if self._schedule is not None:
                self._final_schedule = self._schedule.totals(time.monotonic())
                extra["schedule"] = self._final_schedule
                self._log_schedule_at_stop(self._final_schedule)
            self._buf.append(end_line(self.stopped_at, self.requests, self.failures, **extra))
            self._flush()

    def _worker_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("A traffic worker crashed: %r", task.exception())

    def _log_schedule_at_stop(self, totals: dict[str, Any]) -> None:
        requested = totals["requested_rps"]
        if totals["skipped"] or totals["achieved_rps"] < requested * (1 - BEHIND_RATIO):
            logger.warning(
                "Traffic did not hold its rate: %.1f req/s sent of %.1f requested; of %d "
                "slots %d were skipped, %d started late, %d never started",
                totals["achieved_rps"],
                requested,
                totals["scheduled"],
                totals["skipped"],
                totals["late"],
                totals["pending"],
            )

    async def _send(self, target: _Target) -> bool:
        """Send one request, record it and return whether it succeeded."""
        session = self._session
        assert session is not None
        t = time.time()
        p0 = time.perf_counter()
        code: int | None = None
        err: str | None = None
        self._in_flight += 1
        try:
            response = await session.post(target.url, data=self._body, headers=target.headers)
            try:
                data = await response.read()
            finally:
                response.release()
            code = response.status
            if code < 200 or code > 299:
                err = f"http_{code}"
            elif self._expected_bytes and not self._answer_ok(data):
                err = "wrong_answer"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
            err = classify_error(exc)
        finally:
            self._in_flight -= 1
        ms = (time.perf_counter() - p0) * 1000.0
        self.requests += 1
        if err is None:
            self._buf.append(_OK_LINE % (t, ms, code, target.label_json))
            return True
        self._buf.append(
            _FAIL_LINE
            % (t, ms, "null" if code is None else code, json.dumps(err), target.label_json)
        )
        self.failures += 1
        limit = self.settings.max_failures
        if limit >= 0 and self.failures > limit and not self.max_failures_exceeded:
            self._max_failures_crossed(limit)
        return False

    def _answer_ok(self, data: bytes) -> bool:
        if data.strip() == self._expected_bytes:
            return True
        if not self._expected_is_json:
            return False
        try:
            return bool(json.loads(data) == self._expected_json)
        except ValueError:
            return False

    def _max_failures_crossed(self, limit: int) -> None:
        self.max_failures_exceeded = True
        logger.error("Traffic failures (%d) exceeded max_failures (%d)", self.failures, limit)
        self._buf.append(
            mark_line(time.time(), "max_failures", {"failures": self.failures, "limit": limit})
        )
        self._flush()
        if self.on_max_failures is not None:
            try:
                self.on_max_failures(self)
            except Exception:
                logger.error("The max_failures callback failed", exc_info=True)

    async def _sequential_worker(self, targets: list[_Target]) -> None:
        pause = self.settings.failure_pause
        n = len(targets)
        i = 0
        send = self._send
        while True:
            ok = await send(targets[i % n] if n > 1 else targets[0])
            i += 1
            if not ok and pause:
                await asyncio.sleep(pause)

    async def _rate_worker(self, targets: list[_Target], sched: _Schedule) -> None:
        loop = asyncio.get_running_loop()
        clock = time.monotonic
        s = self.settings
        interval = 1.0 / s.rate
        skip_after = max(SKIP_MIN_S, interval)
        concurrency = s.concurrency
        n = len(targets)
        start = sched.started_at
        slot_free = asyncio.Event()
        in_flight = 0
        k = 0

        def release(_: asyncio.Task[Any]) -> None:
            nonlocal in_flight
            in_flight -= 1
            slot_free.set()

        while True:
            due = start + k * interval
            now = clock()
            if due > now:
                # timers have about 1 ms resolution: sleep at least that long and start
                # every slot that came due meanwhile, rather than spin on sub-ms sleeps
                await asyncio.sleep(max(due - now, MIN_SLEEP_S))
                now = clock()
            while due <= now:
                if in_flight >= concurrency:
                    slot_free.clear()
                    await slot_free.wait()
                    now = clock()
                    continue
                late = now - due
                if late > skip_after:
                    missed = int((late - skip_after) / interval) + 1
                    k += missed
                    sched.skipped += missed
                    due = start + k * interval
                    continue
                if late > sched.late_after:
                    sched.late += 1
                if late > sched.max_late:
                    sched.max_late = late
                task = loop.create_task(self._send(targets[k % n]))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(release)
                in_flight += 1
                sched.sent += 1
                k += 1
                due = start + k * interval

    async def _rate_monitor(self, sched: _Schedule) -> None:
        behind = False
        warned_at = -WARN_EVERY_S
        behind_windows = 0
        last = (sched.scheduled(time.monotonic()), sched.late, sched.skipped)
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            current = (sched.scheduled(now), sched.late, sched.skipped)
            due, late, skipped = (a - b for a, b in zip(current, last, strict=True))
            last = current
            overdue = sched.overdue(now)
            is_behind = skipped > 0 or late + overdue > BEHIND_RATIO * max(due, 1)
            if is_behind:
                behind_windows += 1
            if is_behind and not behind:
                detail = {"scheduled": due, "late": late, "overdue": overdue, "skipped": skipped}
                self._write_now(mark_line(time.time(), "rate_behind", detail))
                if time.monotonic() - warned_at >= WARN_EVERY_S:
                    warned_at = time.monotonic()
                    logger.warning(
                        "Traffic cannot hold %.1f req/s: in the last second %d of %d slots "
                        "started over %.0f ms late, %d are overdue, %d were skipped "
                        "(concurrency %d, timeout %.1f s); %d such second(s) so far",
                        sched.rate,
                        late,
                        due,
                        sched.late_after * 1000,
                        overdue,
                        skipped,
                        self.settings.concurrency,
                        self.settings.timeout,
                        behind_windows,
                    )
            elif behind and not is_behind:
                self._write_now(mark_line(time.time(), "rate_caught_up", {}))
            behind = is_behind

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            self._flush()

    def _write_now(self, line: str) -> None:
        self._buf.append(line)
        self._flush()

    def _flush(self) -> None:
        if not self._buf or self._file is None or self._file.closed:
            return
        data = "".join(self._buf)
        self._buf.clear()
        try:
            self._file.write(data)
            self._file.flush()
        except OSError as exc:
            if not self._write_error_logged:
                self._write_error_logged = True
                logger.error("Cannot write the traffic log %s: %s", self.log_path, exc)

    def _close_file(self) -> None:
        if self._file is not None and not self._file.closed:
            self._flush()
            self._file.close()


def _target(ep: TargetEndpoint, path: str) -> _Target:
    headers = {"Content-Type": "application/json"}
    if ep.auth is not None:  # credentials from the URL's userinfo, never logged
        token = base64.b64encode(f"{ep.auth[0]}:{ep.auth[1]}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    return _Target(
        url=URL(ep.url + path, encoded=False), label_json=json.dumps(ep.label), headers=headers
    )
