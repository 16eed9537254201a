"""Preflight probe: the RayService's HA risks, as `chaosraysvc doctor` lists them.

A steady-state check that no high-severity risk is present (the tolerance `[[]]` accepts
only the empty list; it needs no JSONPath package)::

    {"type": "probe", "name": "no-high-ha-risk",
     "provider": {"type": "python", "module": "chaosraysvc.activities.doctor_probes",
                  "func": "ha_risks", "arguments": {"min_severity": "high"}},
     "tolerance": [[]]}
"""

from __future__ import annotations

import logging
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosraysvc.activities.common import activity_errors
from chaosraysvc.config import settings_from
from chaosraysvc.doctor import diagnose
from chaosraysvc.doctor.rules import at_least, severity_rank

__all__ = ["ha_risks"]

logger = logging.getLogger("chaostoolkit")


def ha_risks(
    min_severity: str = "low",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> list[dict[str, Any]]:
    """List the target's HA risks of `min_severity` ("low", "medium", "high") or worse.

    Inspects the RayService spec, its pods, its GCS fault-tolerance store and, when the
    dashboard answers, the live replica placement. Returns one dict per risk, most severe
    first: `id`, `severity`, `title`, `evidence` (list of what was seen), `consequence` and
    `fix`. Raises `ActivityFailed` when `min_severity` is unknown or the target cannot be
    inspected.
    """
    with activity_errors():
        severity_rank(min_severity)
        diagnosis = diagnose(settings_from(configuration), secrets)
    for note in diagnosis.facts.notes:
        logger.info("HA check: %s", note)
    risks = at_least(diagnosis.risks, min_severity)
    logger.info(
        "HA risks on %s: %s",
        diagnosis.facts.target,
        ", ".join(f"{r.id} ({r.severity})" for r in risks) or "none",
    )
    return [r.to_json() for r in risks]
