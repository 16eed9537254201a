"""Cost markers: every test says what it needs, and under CI a needed thing missing fails.

A pytest plugin, loaded by `tests/conftest.py` (`pytest_plugins`). Each test carries exactly
one of the markers in `COSTS` (registered in setup.cfg), so `pytest -m fast` runs only what
needs nothing but this checkout:

- `tests/unit` tests are `fast` unless marked otherwise (the browser test is `browser`);
  every other test is marked by its module (`pytestmark`) or itself; a test with none, or
  with two, is a collection error naming it;
- a test using a fixture that starts something costly must carry that cost
  (`FIXTURE_COSTS`), so a `fast` test cannot quietly start a sandbox;
- under CI (`$CI` set and not `0`/`false`/`no`, as `.ci/run` sets it) a `node` or `browser`
  test that skips (no root, no namespaces, no nftables, no Chromium) fails instead, with the
  skip's reason: CI installs what they need, so a skip there would hide that nothing ran.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

COSTS: dict[str, str] = {
    "fast": "needs nothing but this checkout: hermetic, loopback servers at most (no Ray)",
    "sandbox": "starts the real Ray/Redis sandbox (Ray processes, minutes)",
    "apiserver": "starts the real Kubernetes control plane (built by `make controlplane`)",
    "node": "needs root: namespaces, nftables, the lab's node (skips without; fails under CI)",
    "browser": "needs headless Chromium (skips without; fails under CI)",
}
MUST_RUN_UNDER_CI = ("node", "browser")
UNIT = Path(__file__).resolve().parents[1] / "unit"
# A fixture that starts something costly, and the costs a test using it may carry.
FIXTURE_COSTS: dict[str, tuple[str, ...]] = {
    "sandbox": ("sandbox",),
    "start_sandbox": ("sandbox",),
    "real_plane": ("apiserver", "node"),
    "dashboard_heads": ("node",),
    "user_wheel": ("sandbox", "node"),
}


def under_ci() -> bool:
    """Return whether `$CI` asks for a full run (set, and not 0/false/no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def costs_of(item: pytest.Item) -> list[str]:
    """Return the cost markers `item` carries (its own, its class's and its module's)."""
    return [mark.name for mark in item.iter_markers() if mark.name in COSTS]


def _default_cost(item: pytest.Item) -> str:
    return "fast" if item.path.is_relative_to(UNIT) else ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give unit tests `fast`; refuse any test without exactly one cost, or a fixture's."""
    wrong: list[str] = []
    for item in items:
        costs = costs_of(item)
        if not costs and (default := _default_cost(item)):
            item.add_marker(default)
            costs = [default]
        if len(costs) != 1:
            have = ", ".join(costs) or "none"
            wrong.append(f"{item.nodeid}: {have}")
            continue
        fixtures = getattr(item, "fixturenames", ())
        for fixture, allowed in FIXTURE_COSTS.items():
            if fixture in fixtures and costs[0] not in allowed:
                wrong.append(f"{item.nodeid}: {costs[0]}, but fixture {fixture!r} needs "
                             f"{' or '.join(allowed)}")  # fmt: skip
    if wrong:
        raise pytest.UsageError(
            f"each test carries exactly one cost marker ({', '.join(COSTS)}; "
            "see tests/support/costs.py):\n  " + "\n  ".join(wrong)
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI, turn the skip of a `node` or `browser` test into a failure naming why."""
    report = yield
    if not (report.skipped and under_ci()) or hasattr(report, "wasxfail"):
        return report
    needs = [cost for cost in costs_of(item) if cost in MUST_RUN_UNDER_CI]
    if needs:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI: {reason}\nCI is set: a {needs[0]} test must run "
            "(.ci/run installs what it needs), a skip would hide that it did not"
        )
    return report
