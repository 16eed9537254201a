"""How the engine paces its requests: sequential workers and the rate-mode timeline.

- `sequential`: at most one request in flight per worker, the next one sent as soon as
  the previous one ends (after `failure_pause` seconds when it failed, so a refused
  port does not spin); like KubeRay's HA sample query loop.
- `rate`: requests start on an absolute timeline, slot k at `start + k / rate`, so
  delays never accumulate into drift; at most `concurrency` are in flight. A slot that
  cannot start on time starts late; one more than `max(1 s, 1 / rate)` late is skipped
  and counted, so a long outage is not followed by a burst. `rate_monitor` reports a
  `rate_behind` mark (and a warning, at most every 30 s) when, over one second, more
  than 2 % of the slots started, or are still waiting, more than `max(20 ms, 2 / rate)`
  late or any was skipped, and `rate_caught_up` when the rate holds again.
  `RateSchedule.totals` gives the end line's `schedule`: `scheduled` (slots due by the
  stop, from the clock), `sent`, `skipped`, `pending` (due, never started), `late`,
  `max_late_ms`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

__all__ = [
    "BEHIND_RATIO",
    "RateSchedule",
    "late_threshold",
    "log_totals_at_stop",
    "rate_monitor",
    "rate_worker",
    "sequential_worker",
]

logger = logging.getLogger("chaostoolkit")

LATE_MIN_S = 0.02
SKIP_MIN_S = 1.0
MIN_SLEEP_S = 0.001
BEHIND_RATIO = 0.02
WARN_EVERY_S = 30.0

T = TypeVar("T")
Send = Callable[[T], Coroutine[Any, Any, bool]]
Spawn = Callable[[Coroutine[Any, Any, bool]], "asyncio.Task[bool]"]


def late_threshold(rate: float) -> float:
    """Return after how many seconds a slot counts as late: max(20 ms, 2 / rate)."""
    return max(LATE_MIN_S, 2.0 / rate)


class RateSchedule:
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


async def sequential_worker(send: Send[T], targets: Sequence[T], failure_pause: float) -> None:
    """Send to `targets` in turn, one request at a time, until cancelled."""
    n = len(targets)
    i = 0
    while True:
        ok = await send(targets[i % n] if n > 1 else targets[0])
        i += 1
        if not ok and failure_pause:
            await asyncio.sleep(failure_pause)


async def rate_worker(
    send: Send[T], targets: Sequence[T], sched: RateSchedule, concurrency: int, spawn: Spawn
) -> None:
    """Start one request per slot of `sched`, at most `concurrency` in flight, until cancelled.

    `spawn` turns each request into a task the engine can cancel at stop.
    """
    clock = time.monotonic
    interval = sched.interval
    skip_after = max(SKIP_MIN_S, interval)
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
            spawn(send(targets[k % n])).add_done_callback(release)
            in_flight += 1
            sched.sent += 1
            k += 1
            due = start + k * interval


async def rate_monitor(
    sched: RateSchedule,
    mark: Callable[[str, dict[str, Any]], None],
    concurrency: int,
    timeout: float,
) -> None:
    """Check every second whether `sched` holds its rate; `mark` the changes, until cancelled."""
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
            mark(
                "rate_behind",
                {"scheduled": due, "late": late, "overdue": overdue, "skipped": skipped},
            )
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
                    concurrency,
                    timeout,
                    behind_windows,
                )
        elif behind and not is_behind:
            mark("rate_caught_up", {})
        behind = is_behind


def log_totals_at_stop(totals: dict[str, Any]) -> None:
    """Warn when the run did not hold its rate (`totals` from `RateSchedule.totals`)."""
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
