"""Resolve the target an activity, the doctor or the traffic acts on: targets are built here only.

- `base`: the `Target` protocol every target implements.
- `sandbox` (+ `sandbox_ha`): the local sandbox, and its HA facts.
- `kubernetes` (+ `kubernetes_ha`): a RayService through the Kubernetes API, and its HA facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosraysvc.config import Settings, settings_from
from chaosraysvc.targets.base import Target

__all__ = ["Target", "resolve_target"]


def resolve_target(
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    running: bool = True,
) -> Target:
    """Return the target named by `configuration` (sandbox by default), validated.

    Every caller (activities, the traffic, the doctor) comes through here, so every one
    checks the target once with `Target.validate()`: a RayService or namespace that does
    not exist (on Kubernetes, or other than the sandbox's own) raises `NotFoundError`
    naming them, rather than being read as an outage. `running=False` accepts a stopped
    sandbox, for inspection (the doctor). Raises a `ChaosRaySvcError` subclass saying what
    to do when the target cannot be used.
    """
    settings = settings or settings_from(configuration)
    target: Target
    if settings.target == "kubernetes":
        from chaosraysvc.targets.kubernetes import KubernetesTarget

        target = KubernetesTarget(settings, secrets)
    else:
        from chaosraysvc.targets.sandbox import SandboxTarget

        target = SandboxTarget(settings, running=running)
    try:
        target.validate()
    except BaseException:
        target.close()
        raise
    return target
