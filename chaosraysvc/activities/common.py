"""What every activity shares: resolving the target and turning errors into `ActivityFailed`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.targets import Target, resolve_target

Configuration = Mapping[str, Any] | None
Secrets = Mapping[str, Any] | None


@contextmanager
def activity_errors() -> Iterator[None]:
    """Re-raise chaosraysvc's errors as Chaos Toolkit's `ActivityFailed`, message intact."""
    try:
        yield
    except ChaosRaySvcError as exc:
        raise ActivityFailed(str(exc)) from exc


def target_for(configuration: Configuration, secrets: Secrets) -> Target:
    """Resolve the target of an activity, as `ActivityFailed` when it cannot be used."""
    with activity_errors():
        return resolve_target(configuration, secrets)
