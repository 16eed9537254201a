"""Run something once when a Chaos Toolkit run finishes, after every control wrote its part.

chaoslib calls each control's `after_experiment_control` in turn, so a control that reads what
another one writes into the journal (the traffic control's entry) must wait for the run's
`finish` event instead. The verdict control and the metrics control both do.
"""

from __future__ import annotations

from typing import Any

from chaoslib.run import RunEventHandler


class AtFinish(RunEventHandler):
    """Calls `run(journal)` once at the run's finish, if `arm` was called for that run."""

    def __init__(self) -> None:
        self.armed = False

    def arm(self, event_registry: Any) -> bool:
        """Register with chaoslib's `event_registry` (once) and arm; return whether armed
        (a control given no registry arms nothing)."""
        self.armed = False
        if event_registry is None:
            return False
        if self not in event_registry.handlers:
            event_registry.register(self)
        self.armed = True
        return True

    def finish(self, journal: Any) -> None:
        if self.armed:
            self.armed = False
            self.run(journal)

    def run(self, journal: Any) -> None:
        raise NotImplementedError
