"""The Grafana dashboard in deploy/grafana/: its structure (Grafana itself is not run here;
its queries run against the real Prometheus in tests/integration/test_metrics_run.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.support.promstack import DASHBOARD, dashboard, dashboard_queries

pytestmark = pytest.mark.fast


def _panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def test_every_panel_has_a_unique_id_and_a_place_of_its_own() -> None:
    panels = dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), ids
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_query_asks_the_chosen_prometheus_and_uses_only_defined_variables() -> None:
    board = dashboard()
    defined = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "namespace", "experiment"} <= defined
    for panel in _panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= defined | {"__rate_interval", "__range", "__interval"}, used
            assert 'namespace=~"$namespace"' in target["expr"], panel["title"]


def test_queries_are_listed_with_every_variable_replaced() -> None:
    queries = dashboard_queries({"namespace": "ns", "experiment": ".*"}, "1m", "1h")
    assert len(queries) == sum(len(p["targets"]) for p in _panels()) + 1  # + the annotation
    assert all("$" not in expr for _, expr in queries), queries
    with pytest.raises(AssertionError, match=r"\$experiment"):
        dashboard_queries({"namespace": "ns"}, "1m", "1h")


def test_the_kustomization_ships_the_dashboard_to_grafana_s_sidecar() -> None:
    kustomization = yaml.safe_load((DASHBOARD.parent / "kustomization.yaml").read_text())
    [generated] = kustomization["configMapGenerator"]
    assert generated["files"] == [DASHBOARD.name]
    assert kustomization["generatorOptions"]["labels"] == {"grafana_dashboard": "1"}
