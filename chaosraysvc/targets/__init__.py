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
    """Return the target named by `configuration` (sandbox by default).

    `running=False` accepts a stopped sandbox, for inspection (the doctor). Nothing is read
    from Kubernetes yet: call `validate()` to check the RayService exists. Raises a
    `ChaosRaySvcError` subclass saying what to do when the target cannot be used.
    """
    settings = settings or settings_from(configuration)
    if settings.target == "kubernetes":
        from chaosraysvc.targets.kubernetes import KubernetesTarget

        return KubernetesTarget(settings, secrets)
    from chaosraysvc.targets.sandbox import SandboxTarget

    return SandboxTarget(settings, running=running)
