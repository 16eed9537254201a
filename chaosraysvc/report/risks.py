"""The doctor's HA risks as a run recorded them.

`recorded_risks(journal)` reads them from the `ha_risks` probe outputs (steady-state
probes, the method's and the rollbacks' probes) and the chaosraysvc extension's `doctor`
entry (written by the traffic control) into a frozen `Risks`, or says that the run did
not record them (`recorded` false). `to_json()` is the report's `risks` object::

    {"recorded": true, "ids": ["single-head"],
     "checks": [{"source": "`ha_risks` by a probe of the method (ha-risks)",
                 "at": "2027-01-15 08:00:01 UTC", "min_severity": "low",
                 "risks": [{"id": "single-head", "severity": "high", "title": "...",
                            "evidence": ["..."]}],
                 "error": ""}]}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from chaosraysvc.report.load import chaosraysvc_extension
from chaosraysvc.report.values import (
    activity_func,
    activity_name,
    activity_results,
    as_dict,
    as_list,
    epoch,
    mask,
    number,
    short_error,
    short_value,
    utc,
)

__all__ = ["Risk", "RiskCheck", "Risks", "recorded_risks"]


@dataclass(frozen=True)
class Risk:
    """One HA risk the doctor found (masked, its evidence shortened)."""

    id: str
    severity: str
    title: str = ""
    evidence: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RiskCheck:
    """One look the run took at its HA risks: who looked, when, and what was found."""

    source: str
    at: str
    min_severity: str
    risks: list[Risk] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class Risks:
    """Every look the run took at its HA risks, and the ids of the risks found."""

    recorded: bool = False
    checks: list[RiskCheck] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the report's `risks` object (see the module docstring)."""
        return asdict(self)


_WHEN = {
    "before": "by the steady-state probe before the fault",
    "after": "by the steady-state probe after the fault",
    "method": "by a probe of the method",
    "rollback": "by a rollback probe",
}


def _risk(raw: Any) -> Risk:
    risk = as_dict(mask(raw))
    return Risk(
        id=str(risk.get("id") or "?"),
        severity=str(risk.get("severity") or "?"),
        title=str(risk.get("title") or ""),
        evidence=[short_value(e, 200) for e in as_list(risk.get("evidence"))][:4],
    )


def recorded_risks(journal: dict[str, Any]) -> Risks:
    """Return the doctor's risks as the run recorded them (see the module docstring)."""
    checks: list[RiskCheck] = []
    states = as_dict(journal.get("steady_states"))
    found = [
        (when, r)
        for when in ("before", "after")
        for r in as_list(as_dict(states.get(when)).get("probes"))
        if isinstance(r, dict)
    ]
    found += activity_results(journal)
    for when, result in found:
        if activity_func(result) != "ha_risks" or not isinstance(result.get("output"), list):
            continue
        arguments = as_dict(
            as_dict(as_dict(result.get("activity")).get("provider")).get("arguments")
        )
        checks.append(
            RiskCheck(
                source=f"`ha_risks` {_WHEN[when]} ({activity_name(result)})",
                at=utc(epoch(result.get("start"))),
                min_severity=str(arguments.get("min_severity") or "low"),
                risks=[_risk(r) for r in result["output"]],
            )
        )
    doctor = as_dict(chaosraysvc_extension(journal).get("doctor"))
    if doctor:
        checks.append(
            RiskCheck(
                source=str(doctor.get("source") or "recorded by the traffic control"),
                at=utc(number(doctor.get("at"))),
                min_severity=str(doctor.get("min_severity") or "low"),
                risks=[_risk(r) for r in as_list(doctor.get("risks"))],
                error=short_error(doctor.get("error")),
            )
        )
    ids = sorted({r.id for c in checks for r in c.risks})
    return Risks(recorded=bool(checks), checks=checks, ids=ids)
