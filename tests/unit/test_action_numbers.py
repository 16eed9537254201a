"""Arguments the actions read as numbers (`timeout`, `grace_period`, `count`, ...) may be
numbers or text holding one; anything else is one line naming the action and the argument,
not a `TypeError` from a comparison deep inside. Checked before any target is touched."""

from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosraysvc.activities.pod_actions import delete_head_pod
from chaosraysvc.activities.pod_probes import restarts_only_in_role
from chaosraysvc.activities.process_actions import kill_gcs_server
from chaosraysvc.activities.repeated_actions import delete_pods
from chaosraysvc.activities.serve_probes import serve_replicas_spread
from chaosraysvc.activities.traffic_probes import traffic_latency_ms, traffic_summary
from chaosraysvc.config import number
from chaosraysvc.errors import ConfigurationError


@pytest.mark.parametrize(
    ("value", "integer", "expected"),
    [("180", False, 180.0), (" 2 ", True, 2.0), (2.5, False, 2.5), (3, True, 3.0)],
)
def test_numbers_may_come_as_text(value: object, integer: bool, expected: float) -> None:
    assert number(value, "x", integer=integer) == expected


@pytest.mark.parametrize("value", ["two", True, None, [1], "nan", "1.5"])
def test_anything_else_is_refused_naming_the_argument(value: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^delete_pods `count` must be an integer, got"):
        number(value, "delete_pods `count`", integer=True)


def test_the_actions_name_the_argument_that_is_no_number() -> None:
    with pytest.raises(
        ConfigurationError, match=r"delete_pods `timeout` must be a number, got 'soon'"
    ):
        delete_pods(timeout="soon")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"kill_gcs_server `timeout` must be a number"):
        kill_gcs_server(timeout="3 minutes")  # type: ignore[arg-type]
    with pytest.raises(
        ActivityFailed, match=r"delete_head_pod `grace_period` must be an integer, got 'two'"
    ):
        delete_head_pod(grace_period="two")  # type: ignore[arg-type]


def test_the_probes_name_the_argument_that_is_no_number() -> None:
    with pytest.raises(
        ActivityFailed, match=r"restarts_only_in_role `max_restarts` must be an integer, got 'once'"
    ):
        restarts_only_in_role(max_restarts="once")  # type: ignore[arg-type]
    with pytest.raises(
        ActivityFailed, match=r"serve_replicas_spread `max_per_node` must be an integer, got 'x'"
    ):
        serve_replicas_spread(max_per_node="x")  # type: ignore[arg-type]


def test_the_traffic_probes_name_the_argument_that_is_no_number() -> None:
    with pytest.raises(
        ActivityFailed, match=r"traffic_latency_ms `percentile` must be a number, got 'p99'"
    ):
        traffic_latency_ms(percentile="p99")  # type: ignore[arg-type]
    with pytest.raises(
        ActivityFailed, match=r"traffic_summary `brownout_ratio` must be a number, got 'half'"
    ):
        traffic_summary(brownout_ratio="half")  # type: ignore[arg-type]
