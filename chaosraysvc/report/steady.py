"""The steady-state hypothesis of a run: each probe's tolerance and its results before and after.

`steady_state(journal)` reads the journal's `steady-state-hypothesis` and `steady_states`
into a frozen `SteadyState`; `to_json()` is the report's `steady_state` object::

    {"title": "...", "before_met": true, "after_met": false,
     "probes": [{"name": "...", "tolerance": "3", "tolerance_written": "${expected_endpoints}",
                 "tolerance_known": true, "tolerance_notes": ["${expected_endpoints}: ..."],
                 "before": {"value": "3", "met": true, "status": "succeeded", "error": ""},
                 "after": null}],
     "during": {"checks": 4, "not_met": 0} | null}

A tolerance written as a configuration placeholder (`"${expected_endpoints}"`) shows
its value: recorded by the run (the chaosraysvc extension's `configuration`), written
in the experiment, or inferred from a probe result that met it; else it says that the
value is unknown and which environment variable held it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from chaosraysvc.report.load import chaosraysvc_extension
from chaosraysvc.report.values import (
    activity_name,
    as_dict,
    as_list,
    mask,
    output_text,
    short_error,
    short_value,
)

__all__ = ["DuringChecks", "ProbeCell", "ProbeRow", "SteadyState", "steady_state"]


@dataclass(frozen=True)
class ProbeCell:
    """A probe's result at one check: its value shown, whether it met its tolerance."""

    value: str = ""
    met: bool | None = None
    status: str = ""
    error: str = ""


@dataclass(frozen=True)
class ProbeRow:
    """A probe of the hypothesis: its tolerance (placeholders resolved) and its results."""

    name: str
    tolerance: str = ""
    tolerance_written: str = ""  # as written, when it held placeholders
    tolerance_known: bool = True
    tolerance_notes: list[str] = field(default_factory=list)
    before: ProbeCell | None = None
    after: ProbeCell | None = None


@dataclass(frozen=True)
class DuringChecks:
    """The hypothesis checks made while the method ran (`chaos run --hypothesis-strategy`)."""

    checks: int
    not_met: int


@dataclass(frozen=True)
class SteadyState:
    """The steady-state hypothesis of a run and whether it held before and after."""

    title: str = ""
    before_met: bool | None = None
    after_met: bool | None = None
    probes: list[ProbeRow] = field(default_factory=list)
    during: DuringChecks | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the report's `steady_state` object (see the module docstring)."""
        return asdict(self)


def _probe_cell(result: dict[str, Any]) -> ProbeCell:
    status = str(result.get("status") or "")
    met = result.get("tolerance_met")
    return ProbeCell(
        value=output_text(result, 80) if status != "failed" else "",
        met=met if isinstance(met, bool) else None,
        status=status,
        error=short_error(result.get("exception")),
    )


_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
_SCALARS = (bool, int, float, str)


def _known_value(
    key: str, configuration: dict[str, Any], recorded: dict[str, Any], results: list[Any]
) -> tuple[Any, str]:
    """Return the value a `${key}` placeholder had in the run and where it comes from.

    The value is None (and the source says why) when the run did not record it and it
    cannot be inferred.
    """
    if key in recorded:
        return mask({key: recorded[key]})[key], "recorded by the run"
    raw = configuration.get(key)
    if key not in configuration:
        return None, f"unknown: `{key}` is not in the experiment's configuration"
    if not isinstance(raw, dict):
        return mask({key: raw})[key], "from the experiment's configuration"
    env, default = str(raw.get("key") or ""), raw.get("default")
    where = f"${env}" if env else "its provider"
    shown_default = "" if default is None else f"; its default is {short_value(default, 30)}"
    for result in results:  # a scalar tolerance is met by an equal value only
        output = result.get("output")
        if result.get("tolerance_met") is True and isinstance(output, _SCALARS):
            return (
                output,
                f"{where} at run time, inferred from the probe that met it{shown_default}",
            )
    return None, f"unknown: {where} at run time was not recorded{shown_default}"


def _tolerance(
    name: str, raw: Any, configuration: dict[str, Any], recorded: dict[str, Any], results: list[Any]
) -> ProbeRow:
    """Return a tolerance for display: its value with placeholders resolved, and notes."""
    notes: list[str] = []
    unknown = False

    def resolve(value: Any) -> Any:
        nonlocal unknown
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if not isinstance(value, str) or "${" not in value:
            return value
        whole = _PLACEHOLDER.fullmatch(value)
        keys = [whole.group(1)] if whole else _PLACEHOLDER.findall(value)
        found: dict[str, Any] = {}
        for key in keys:
            known, source = _known_value(key, configuration, recorded, results)
            notes.append(f"${{{key}}}: {source}")
            if known is None:
                unknown = True
            else:
                found[key] = known
        if whole:
            return found.get(whole.group(1), value)
        return _PLACEHOLDER.sub(lambda m: str(found.get(m.group(1), m.group(0))), value)

    resolved = resolve(raw)
    return ProbeRow(
        name=name,
        tolerance=short_value(resolved, 60),
        tolerance_written=short_value(raw, 60) if notes else "",
        tolerance_known=not unknown,
        tolerance_notes=notes,
    )


def steady_state(journal: dict[str, Any]) -> SteadyState:
    """Return the steady-state hypothesis of `journal`: its probes before and after."""
    experiment = as_dict(journal.get("experiment"))
    hypothesis = as_dict(experiment.get("steady-state-hypothesis"))
    configuration = as_dict(experiment.get("configuration"))
    recorded = as_dict(chaosraysvc_extension(journal).get("configuration"))
    states = as_dict(journal.get("steady_states"))
    raw_tolerances: dict[str, Any] = {}
    for probe in as_list(hypothesis.get("probes")):
        probe = as_dict(probe)
        raw_tolerances[str(probe.get("name") or "(unnamed)")] = probe.get("tolerance")
    cells: dict[str, dict[str, ProbeCell]] = {}
    results: dict[str, list[dict[str, Any]]] = {}
    met: dict[str, bool | None] = {}
    for when in ("before", "after"):
        state = as_dict(states.get(when))
        value = state.get("steady_state_met")
        met[when] = value if isinstance(value, bool) else None
        for result in as_list(state.get("probes")):
            if not isinstance(result, dict):
                continue
            name = activity_name(result)
            if name not in raw_tolerances:
                raw_tolerances[name] = as_dict(result.get("activity")).get("tolerance")
            cells.setdefault(name, {})[when] = _probe_cell(result)
            results.setdefault(name, []).append(result)
    during = [r for r in as_list(states.get("during")) if isinstance(r, dict)]
    return SteadyState(
        title=str(hypothesis.get("title") or ""),
        before_met=met["before"],
        after_met=met["after"],
        probes=[
            replace(
                _tolerance(name, raw, configuration, recorded, results.get(name, [])),
                before=cells.get(name, {}).get("before"),
                after=cells.get(name, {}).get("after"),
            )
            for name, raw in raw_tolerances.items()
        ],
        during=DuringChecks(
            checks=len(during),
            not_met=sum(1 for r in during if r.get("steady_state_met") is False),
        )
        if during
        else None,
    )
