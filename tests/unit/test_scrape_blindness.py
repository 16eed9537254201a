"""benchmarks/scrape_blindness.py's exporter: what each kind of failure exports, and when (its
pure parts; the benchmark itself runs Prometheus for ~4 minutes)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.fast
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("scrape_blindness")


def _values(lines: list[str]) -> dict[str, float]:
    """{'<metric>{<NodeAddress or condition>}': value} of exposition lines."""
    found = {}
    for line in lines:
        name, labels, value = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line).groups()  # type: ignore[union-attr]
        key = re.search(r'(?:NodeAddress|condition)="([^"]*)"', labels).group(1)  # type: ignore[union-attr]
        found[f"{name}{{{key}}}"] = float(value)
    return found


def test_a_scrape_reads_what_was_counted_at_the_last_export(bench: ModuleType) -> None:
    lane = bench.Lane("hole", 10, 0, start=100.0, export_phase=3.0)
    assert lane.exported_at(12.9) == 3.0 and lane.exported_at(13.0) == 13.0
    # 20/s, nothing counted from 100 to 110 s: 105 s exported at 103 s, 120 s at 113 s
    assert _values(lane.lines(105.0)) == {"ray_serve_num_http_requests_total{a}": 20 * 100 + 1}
    assert _values(lane.lines(120.0))["ray_serve_num_http_requests_total{a}"] == 20 * 103 + 1


def test_every_proxy_gone_exports_nothing_then_a_new_proxy_from_zero(bench: ModuleType) -> None:
    lane = bench.Lane("gone", 10, 0, start=100.0, export_phase=0.0)
    assert _values(lane.lines(99.0)) == {"ray_serve_num_http_requests_total{a}": 20 * 90 + 1}
    assert lane.lines(105.0) == [] and lane.lines(109.9) == []  # both exported at 100 s
    assert _values(lane.lines(125.0)) == {"ray_serve_num_http_requests_total{new}": 20 * 10 + 1}


def test_errors_are_a_series_born_at_the_failure_and_a_dying_proxy_s_vanish(
    bench: ModuleType,
) -> None:
    errors = bench.Lane("errors", 5, 0, start=100.0, export_phase=0.0)
    assert "ray_serve_num_http_error_requests_total{a}" not in _values(errors.lines(99.0))
    assert _values(errors.lines(131.0))["ray_serve_num_http_error_requests_total{a}"] == 25
    dying = bench.Lane("dying", 5, 0, start=100.0, export_phase=2.0)
    assert _values(dying.lines(103.0))["ray_serve_num_http_error_requests_total{dying}"] == 10
    assert "ray_serve_num_http_error_requests_total{dying}" not in _values(dying.lines(113.0))


def test_ready_is_a_gauge_of_the_moment_not_of_the_last_export(bench: ModuleType) -> None:
    lane = bench.Lane("not_ready", 2, 0, start=100.0, export_phase=0.0)
    assert _values(lane.lines(101.0))["kuberay_service_condition_ready{false}"] == 1
    assert _values(lane.lines(102.5))["kuberay_service_condition_ready{false}"] == 0
    assert _values(lane.lines(102.5))["kuberay_service_condition_ready{true}"] == 1
