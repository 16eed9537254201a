"""Small helpers shared by the Kubernetes integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from .apidouble import ApiDouble

T = TypeVar("T")


def wait_for(
    what: str, read: Callable[[], T], done: Callable[[T], bool], timeout: float = 10.0
) -> T:
    """Poll `read()` every 0.1 s until `done(value)`; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {value}")
        time.sleep(0.1)
        value = read()
    return value


def patch_object(
    double: ApiDouble,
    resource: str,
    namespace: str,
    name: str,
    change: Callable[[dict[str, Any]], None],
) -> None:
    """Apply `change` to a stored object (run it on the double's loop via `server.call`)."""
    obj = double.get(resource, namespace, name)
    assert obj is not None, f"{resource} {namespace}/{name} not seeded"
    change(obj)
    double.put(obj)
