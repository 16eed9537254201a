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
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosraysvc.config import number
from chaosraysvc.errors import ChaosRaySvcError, ConfigurationError
from chaosraysvc.targets import Target, resolve_target

__all__ = ["activity_errors", "limits", "target_for"]


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


def limits(action: str, grace_period: Any, timeout: Any) -> tuple[int, float]:
    """Return `grace_period` (whole seconds, >= 0) and `timeout` (seconds, > 0) as numbers.

    Text holding a number is accepted (`"180"`); anything else raises `ConfigurationError`
    naming `action` and the argument.
    """
    grace = int(number(grace_period, f"{action} `grace_period`", integer=True))
    wait = number(timeout, f"{action} `timeout`")
    problems = [f"grace_period must be >= 0 (got {grace_period})"] if grace < 0 else []
    problems += [f"timeout must be > 0 (got {timeout})"] if wait <= 0 else []
    if problems:
        raise ConfigurationError(f"{action}: {'; '.join(problems)}")
    return grace, wait
