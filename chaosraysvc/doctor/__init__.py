"""Preflight HA checks of a RayService: `chaosraysvc doctor` and the probe `ha_risks`.

`chaosraysvc.model.ha.HaFacts` is what the rules need; each target gathers it
(`Target.ha_facts`), `rules` turns facts into `Risk`s, and `cli` prints them.
`diagnose(settings)` runs the whole chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaosraysvc.config import Settings
from chaosraysvc.doctor.rules import Risk, evaluate
from chaosraysvc.model.ha import HaFacts
from chaosraysvc.targets import resolve_target

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

    A stopped sandbox is inspected too (its spec alone). Raises a `ChaosRaySvcError` saying
    what to do when the target cannot be read.
    """
    target = resolve_target(secrets=secrets, settings=settings, running=False)
    try:
        return target.ha_facts(live=live)
    finally:
        target.close()


def diagnose(
    settings: Settings, secrets: Mapping[str, Any] | None = None, live: bool = True
) -> Diagnosis:
    """Return the facts and HA risks of the target `settings` name."""
    facts = gather_facts(settings, secrets, live)
    return Diagnosis(facts, evaluate(facts))
