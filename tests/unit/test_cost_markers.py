"""Every test carries exactly one cost marker, and under CI a needed test never just skips."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from tests.support import costs

SETUP_CFG = Path(__file__).resolve().parents[2] / "setup.cfg"


def test_every_collected_test_carries_exactly_one_cost_marker(
    request: pytest.FixtureRequest,
) -> None:
    items = request.session.items
    assert request.node in items
    wrong = {item.nodeid: costs.costs_of(item) for item in items if len(costs.costs_of(item)) != 1}
    assert not wrong


def test_the_cost_plugin_is_loaded_for_every_test_tree(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.has_plugin("tests.support.costs")
    assert request.node.get_closest_marker("fast") is not None  # a unit test's default


def test_setup_cfg_registers_each_cost_marker_as_documented() -> None:
    parser = configparser.ConfigParser()
    parser.read(SETUP_CFG)
    section = parser["tool:pytest"]
    lines = [line for line in section["markers"].splitlines() if line.strip()]
    assert dict(line.split(": ", 1) for line in lines) == costs.COSTS
    assert "--strict-markers" in section["addopts"]


MODULE = """
import pytest

@pytest.mark.node
def test_needs_root():
    pytest.skip("the node needs root")

@pytest.mark.browser
@pytest.mark.skipif(True, reason="chromium is not installed")
def test_needs_chromium():
    pass

@pytest.mark.fast
def test_fast_but_skipped():
    pytest.skip("nothing to check here")

@pytest.mark.node
def test_node_that_runs():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A tree of its own with the cost plugin, the markers registered as in setup.cfg."""
    markers = "\n".join(f"    {name}: {doc}" for name, doc in costs.COSTS.items())
    pytester.makeini(
        f"[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n{markers}\n"
    )
    pytester.makepyfile(test_costs=MODULE)
    return pytester


def test_outside_ci_node_and_browser_tests_skip_with_their_reason(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = suite.runpytest("-p", "tests.support.costs", "-rs")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["*the node needs root*", "*chromium is not installed*"])


@pytest.mark.parametrize("ci", ["1", "true"])
def test_under_ci_a_skipped_node_or_browser_test_fails_naming_why(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    result = suite.runpytest("-p", "tests.support.costs", "-rfEs")
    # The browser test's skipif acts at set-up: its failure is an error there.
    result.assert_outcomes(passed=1, failed=1, errors=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*test_needs_root*", "skipped under CI: the node needs root", "CI is set: a node test*"]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_needs_chromium*",
            "skipped under CI: chromium is not installed",
            "CI is set: a browser test*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("ci", ["", "0", "false", "no"])
def test_ci_set_to_no_keeps_the_skips(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    suite.runpytest("-p", "tests.support.costs").assert_outcomes(passed=1, skipped=3)


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("def test_unmarked():\n    pass\n", "test_unmarked: none"),
        (
            "import pytest\n\n@pytest.mark.fast\n@pytest.mark.node\ndef test_both():\n    pass\n",
            "test_both: node, fast",
        ),
        (
            "import pytest\n\n@pytest.fixture\ndef real_plane():\n    pass\n\n"
            "@pytest.mark.fast\ndef test_cheap(real_plane):\n    pass\n",
            "test_cheap: fast, but fixture 'real_plane' needs apiserver or node",
        ),
    ],
    ids=["none", "two", "fixture"],
)
def test_a_test_without_exactly_one_fitting_cost_is_a_collection_error(
    suite: pytest.Pytester, source: str, named: str
) -> None:
    suite.makepyfile(test_wrong=source)
    result = suite.runpytest("-p", "tests.support.costs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*each test carries exactly one cost marker*", f"*{named}*"])
