"""Fail a run that proves nothing: its fault was not injected, or its evidence is incomplete.

Chaos Toolkit records a failed action in the journal and goes on: a run whose fault
action was refused (say `kill_gcs_server` on the kubernetes target) ends `completed`, not
deviated, and `chaos run` exits 0. This control takes the report's verdict
(`chaosraysvc.report.verdict`) of the finished journal and, when it is `inconclusive`
(the fault was not injected, another action of the method failed, the traffic log
disagrees with the journal) or `failed` (the fault action failed after its fault, e.g. no
recovery in time), sets the journal's `status` to "failed", the status chaoslib gives a
run that could not do what it set out to. `chaos run` then exits 1, writes the journal
with that status, and sends `run-failed` instead of `run-completed` to its notification
channels. The verdict (`outcome`, `headline`, `facts`) goes to the journal's chaosraysvc
extension as `verdict`; a deviated, aborted or interrupted run keeps its status.

Declare it in the experiment, after the traffic control (every experiment in
experiments/ does), or for every run in the Chaos Toolkit settings file::

    "controls": [
        {"name": "traffic", "provider": {"type": "python",
                                         "module": "chaosraysvc.controls.traffic"}},
        {"name": "verdict", "provider": {"type": "python",
                                         "module": "chaosraysvc.report.verdict_control"}}
    ]

    # settings.yaml
    controls:
      verdict:
        provider: {type: python, module: chaosraysvc.report.verdict_control}

It lives with the report, not in `chaosraysvc.controls`, because it judges the run with
the report's verdict (one place decides it) and the layers put the report above the
controls.

It works when the run finishes, after every control wrote into the journal (the traffic
control's log and summary, which tell whether the fault happened), through the run's
event registry; without one, in `after_experiment_control`. A failure to compute the
verdict is logged and leaves the journal as chaoslib wrote it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from chaosraysvc.report.at_finish import AtFinish
from chaosraysvc.report.figures import run_figures
from chaosraysvc.report.load import writable_extension
from chaosraysvc.report.metrics import run_input_of
from chaosraysvc.report.verdict import FAILS_THE_RUN, Verdict

__all__ = [
    "after_experiment_control",
    "cleanup_control",
    "configure_control",
    "settle",
]

logger = logging.getLogger("chaostoolkit")


def settle(journal: dict[str, Any], verdict: Verdict | None = None) -> dict[str, Any]:
    """Set `journal["status"]` to "failed" when its verdict must not count as completed.

    `verdict` is the report's verdict of `journal` (computed from it and its traffic
    log when not given). Returns what is recorded in the journal's chaosraysvc extension
    as `verdict`: `outcome`, `headline`, `facts` and `status_was` (the status chaoslib
    gave the run, when it was changed).
    """
    if verdict is None:
        verdict = run_figures(run_input_of(journal)).verdict
    record: dict[str, Any] = {
        "outcome": verdict.outcome,
        "headline": verdict.headline,
        "facts": list(verdict.facts),
    }
    entry = writable_extension(journal)
    earlier = entry.get("verdict")
    if isinstance(earlier, dict) and "status_was" in earlier:  # settled before (metrics control)
        record["status_was"] = earlier["status_was"]
    if verdict.outcome in FAILS_THE_RUN and journal.get("status") == "completed":
        record["status_was"] = journal["status"]
        journal["status"] = "failed"
        logger.error("The run is marked failed: %s", verdict.headline)
    entry["verdict"] = record
    return record


def settle_safely(journal: Any, verdict: Verdict | None = None) -> None:
    """Settle `journal` (see `settle`), logging instead of raising: a bug must not end the run."""
    if not isinstance(journal, dict):
        logger.error("The verdict control got no journal: the run's status is unchanged")
        return
    try:
        settle(journal, verdict)
    except Exception:
        logger.exception("The verdict control could not judge the run: its status is unchanged")


class _AtFinish(AtFinish):
    """Settles the run when it finishes, after every control wrote into the journal."""

    def run(self, journal: Any) -> None:
        settle_safely(journal)


_at_finish = _AtFinish()


def configure_control(
    experiment: Any = None,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    settings: Any = None,
    event_registry: Any = None,
    **arguments: Any,
) -> None:
    """Arrange to settle the run when it finishes (after the traffic control's journal entry)."""
    _at_finish.arm(event_registry)


def after_experiment_control(
    context: Any,
    state: Any = None,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    **arguments: Any,
) -> None:
    """Settle the run from the final journal `state`, unless done when the run finishes."""
    if _at_finish.armed:
        return
    settle_safely(state)


def cleanup_control() -> None:
    """Nothing to release: the run is settled once, when it finishes."""
