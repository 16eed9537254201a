"""What every activity shares: resolving the target and turning errors into `ActivityFailed`.

The contract of every activity: a yes/no probe returns False only when the system answered
"not healthy"; when it cannot answer (dashboard or API unreachable, target not up), the
activity raises `ActivityFailed` saying what to do. In a steady-state hypothesis both fail the
tolerance; elsewhere the journal then tells an unhealthy service from an unknown one. Every
`ChaosRaySvcError` crosses the activity boundary through `activity_errors`, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.targets import Target, resolve_target

__all__ = ["activity_errors", "target_for"]


@contextmanager
def activity_errors() -> Iterator[None]:
    """Re-raise chaosraysvc's errors as Chaos Toolkit's `ActivityFailed`, message intact."""
    try:
        yield
    except ChaosRaySvcError as exc:
        raise ActivityFailed(str(exc)) from exc


def target_for(configuration: Configuration | None, secrets: Secrets | None) -> Target:
    """Resolve the target of an activity, as `ActivityFailed` when it cannot be used."""
    with activity_errors():
        return resolve_target(configuration, secrets)
