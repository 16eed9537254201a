"""Resolve the target an activity acts on from its configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosraysvc.config import Settings, settings_from
from chaosraysvc.targets.base import Endpoint, GcsFaultTolerance, Pod, Target

__all__ = ["Endpoint", "GcsFaultTolerance", "Pod", "Target", "resolve_target"]


def resolve_target(
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> Target:
    """Return the target named by `configuration` (sandbox by default).

    Raises a `ChaosRaySvcError` subclass saying what to do when it cannot be used.
    """
    settings = settings or settings_from(configuration)
    if settings.target == "kubernetes":
        from chaosraysvc.targets.kubernetes import KubernetesTarget

        return KubernetesTarget(settings, secrets)
    from chaosraysvc.targets.sandbox import SandboxTarget

    return SandboxTarget(settings)
