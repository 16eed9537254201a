"""Wait until a condition holds: the one polling loop of the test suites."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    timeout: float = 5.0,
    *,
    what: str = "the condition",
    state: Callable[[], object] | None = None,
    interval: float = 0.05,
) -> T:
    """Call `condition()` every `interval` s until it returns a true value; return that value.

    Fails the test (AssertionError) after `timeout` s, naming `what` and, when given,
    the last `state()` seen, so a timeout says what was awaited and where things stood.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            seen = f"; last seen: {state()!r}" if state is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{seen}")
        time.sleep(interval)
    return value
