"""Preflight HA checks of a RayService: `chaosraysvc doctor` and the probe `ha_risks`.

`facts` describes what the rules need (`HaFacts`), `kube_facts` and `sandbox_facts` gather
it from a target, `live` adds the dashboard's replica placement, `rules` turns facts into
`Risk`s, and `cli` prints them. `diagnose(settings)` runs the whole chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaosraysvc.config import Settings
from chaosraysvc.doctor.facts import HaFacts
from chaosraysvc.doctor.rules import Risk, evaluate

__all__ = ["Diagnosis", "diagnose", "gather_facts"]


@dataclass(frozen=True)
class Diagnosis:
    """The facts seen on a target and the risks they show, most severe first."""

    facts: HaFacts
    risks: list[Risk]


def gather_facts(
    settings: Settings, secrets: Mapping[str, Any] | None = None, live: bool = True
) -> HaFacts:
    """Return the HA facts of the target `settings` name (a sandbox or a RayService).

    Raises a `ChaosRaySvcError` saying what to do when the target cannot be read.
    """
    if settings.target == "kubernetes":
        from chaosraysvc.doctor.kube_facts import gather_kubernetes_facts
        from chaosraysvc.kube.client import KubeApi
        from chaosraysvc.targets.kubernetes import KubernetesTarget

        api = KubeApi.from_secrets(secrets)
        try:
            return gather_kubernetes_facts(KubernetesTarget(settings, api=api), live=live)
        finally:
            api.close()
    from chaosraysvc.doctor.sandbox_facts import gather_sandbox_facts

    return gather_sandbox_facts(settings, live=live)


def diagnose(
    settings: Settings, secrets: Mapping[str, Any] | None = None, live: bool = True
) -> Diagnosis:
    """Return the facts and HA risks of the target `settings` name."""
    facts = gather_facts(settings, secrets, live)
    return Diagnosis(facts, evaluate(facts))
