"""The traffic engine: requests on an asyncio loop in a daemon thread, each one logged.

A `TrafficEngine` owns one thread running one event loop (uvloop when installed). It
wires the parts: `http.Sender` sends and judges each request, `schedule` paces them
(sequential or rate), `log.LogWriter` records them. With several endpoints,
`round_robin` spreads one worker's requests over them in turn; `per_endpoint` runs one
worker per endpoint (each with the full `rate` and `concurrency` in rate mode).

The thread is a daemon and an `atexit` hook stops the engine, so it never keeps the
process alive and a normal interpreter exit still writes the end line.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.traffic import schedule
from chaosraysvc.traffic.http import Request, Sender
from chaosraysvc.traffic.log import (
    FLUSH_INTERVAL_S,
    LogWriter,
    end_line,
    mark_line,
    read_traffic_log,
    request_line,
    run_header,
)
from chaosraysvc.traffic.settings import TrafficSettings
from chaosraysvc.traffic.stats import summarize

__all__ = ["TrafficEngine"]

logger = logging.getLogger("chaostoolkit")


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
    failures exceed `max_failures` (>= 0); it must return quickly.
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
        self._log = LogWriter(settings.log_path)
        self._sender = Sender(settings.options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._startup_error: BaseException | None = None
        self._stop_requested: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_flight = 0
        self._schedule: schedule.RateSchedule | None = None
        self._final_schedule: dict[str, Any] | None = None
        self._summary: dict[str, Any] | None = None
        self._lock = threading.Lock()

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
        self.started_at = time.time()
        header = run_header(self.started_at, self.settings.describe())
        header["request_id_prefix"] = (
            self._sender.request_id_prefix if header["request_id_header"] else None
        )
        self._log.open(header)
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
        s, o = self.settings, self.settings.options
        where = (
            f"{s.url}{o.path}"
            if s.url
            else f"{o.path} of {len(s.endpoints)} endpoints ({o.endpoint_mode}: "
            + ", ".join(s.labels)
            + ")"
        )
        logger.info(
            "Traffic %s, %s to %s started, log %s",
            o.mode + (f" at {o.rate:g} req/s" if o.mode == "rate" else ""),
            o.method,
            where,
            s.log_path,
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
        if thread is None:
            self._log.close()
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
            self._log.flush()
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

    # ------------------------------------------------------------------ the loop thread
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
                self._log.close()
            finally:
                self._done.set()
                self._ready.set()
                loop.close()

    def _request_stop(self) -> None:
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def _main(self) -> None:
        s, o = self.settings, self.settings.options
        self._stop_requested = asyncio.Event()
        requests = [Request.to(ep, s) for ep in s.endpoints]
        groups = len(requests) if o.endpoint_mode == "per_endpoint" else 1
        request_groups = [[r] for r in requests] if groups > 1 else [requests]
        self._sender.open(connections=(o.concurrency if o.mode == "rate" else 1) * groups)
        coros: list[Coroutine[Any, Any, None]] = [self._flusher()]
        if o.mode == "rate":
            sched = schedule.RateSchedule(o.rate, groups, schedule.late_threshold(o.rate))
            self._schedule = sched
            coros.extend(
                schedule.rate_worker(self._send, group, sched, o.concurrency, self._spawn)
                for group in request_groups
            )
            coros.append(schedule.rate_monitor(sched, self._mark_now, o.concurrency, o.timeout))
        else:
            coros.extend(
                schedule.sequential_worker(self._send, group, o.failure_pause)
                for group in request_groups
            )
        loop = asyncio.get_running_loop()
        workers = [loop.create_task(c) for c in coros]
        for worker in workers:
            worker.add_done_callback(self._worker_done)
        self._ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            in_flight = [t for t in self._tasks if not t.done()]
            # rate mode: one task per request (maybe not started yet); sequential: in workers
            cancelled = len(in_flight) if o.mode == "rate" else self._in_flight
            for task in [*workers, *in_flight]:
                task.cancel()
            await asyncio.gather(*workers, *in_flight, return_exceptions=True)
            await self._sender.close()
            self.stopped_at = time.time()
            extra: dict[str, Any] = {"cancelled_at_stop": cancelled}
            if self._schedule is not None:
                self._final_schedule = self._schedule.totals(time.monotonic())
                extra["schedule"] = self._final_schedule
                schedule.log_totals_at_stop(self._final_schedule)
            self._log.add(end_line(self.stopped_at, self.requests, self.failures, **extra))
            self._log.flush()

    def _spawn(self, coro: Coroutine[Any, Any, bool]) -> asyncio.Task[bool]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _worker_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("A traffic worker crashed: %r", task.exception())

    async def _send(self, request: Request) -> bool:
        """Send one request, record it and return whether it succeeded."""
        self._in_flight += 1
        try:
            t, ms, code, err, request_id = await self._sender.send(request)
        finally:
            self._in_flight -= 1
        self.requests += 1
        self._log.add(request_line(t, ms, code, err, request.label_json, request_id))
        if err is None:
            return True
        self.failures += 1
        limit = self.settings.options.max_failures
        if limit >= 0 and self.failures > limit and not self.max_failures_exceeded:
            self._max_failures_crossed(limit)
        return False

    def _max_failures_crossed(self, limit: int) -> None:
        self.max_failures_exceeded = True
        logger.error("Traffic failures (%d) exceeded max_failures (%d)", self.failures, limit)
        self._mark_now("max_failures", {"failures": self.failures, "limit": limit})
        if self.on_max_failures is not None:
            try:
                self.on_max_failures(self)
            except Exception:
                logger.error("The max_failures callback failed", exc_info=True)

    def _mark_now(self, event: str, detail: dict[str, Any]) -> None:
        self._write_now(mark_line(time.time(), event, detail))

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            self._log.flush()

    def _write_now(self, line: str) -> None:
        self._log.add(line)
        self._log.flush()
