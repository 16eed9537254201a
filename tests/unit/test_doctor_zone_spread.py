"""Which Ray templates' zone spread counts nodes the pods cannot use (the doctor's
`zone-spread-counts-tainted` fact, read from the RayCluster spec)."""

from __future__ import annotations

from typing import Any

import pytest

from chaosraysvc.targets.kubernetes_ha import _zone_spread_counts_tainted

ZONE = "topology.kubernetes.io/zone"


def _group(*constraints: dict[str, Any]) -> dict[str, Any]:
    return {"template": {"spec": {"topologySpreadConstraints": list(constraints)}}}


@pytest.mark.parametrize(
    ("constraint", "counts_tainted"),
    [
        ({"topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule"}, True),
        ({"topologyKey": ZONE}, True),  # the API's default is DoNotSchedule
        ({"topologyKey": ZONE, "nodeTaintsPolicy": "Ignore"}, True),
        ({"topologyKey": ZONE, "nodeTaintsPolicy": "Honor"}, False),
        ({"topologyKey": ZONE, "whenUnsatisfiable": "ScheduleAnyway"}, False),
        ({"topologyKey": "kubernetes.io/hostname"}, False),  # a node spread: not a zone loss
    ],
)
def test_a_required_zone_spread_counts_tainted_nodes_unless_it_honours_taints(
    constraint: dict[str, Any], counts_tainted: bool
) -> None:
    assert _zone_spread_counts_tainted(_group(constraint)) is counts_tainted


def test_no_spread_or_a_malformed_one_is_no_fact() -> None:
    assert _zone_spread_counts_tainted({}) is False
    assert _zone_spread_counts_tainted({"template": {"spec": {}}}) is False
    bad = {"template": {"spec": {"topologySpreadConstraints": "zone"}}}
    assert _zone_spread_counts_tainted(bad) is False
    assert _zone_spread_counts_tainted(_group("zone", {"topologyKey": ZONE})) is True  # type: ignore[arg-type]
