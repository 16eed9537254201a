"""delete_pods refuses bad arguments before touching any target, naming each problem."""

from __future__ import annotations

import pytest

from chaosraysvc.activities.repeated_actions import delete_pods
from chaosraysvc.errors import ConfigurationError


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"role": "proxy"}, "role must be one of head, worker, redis (got 'proxy')"),
        ({"count": 0}, "count must be >= 1 (got 0)"),
        ({"role": "head", "count": 2}, "one head pod: count must be 1 (got 2)"),
        ({"role": "redis", "count": 3}, "one redis pod: count must be 1 (got 3)"),
        ({"interval": -1}, "interval must be >= 0 seconds (got -1)"),
        ({"repeat": 0}, "repeat must be >= 1 (got 0)"),
        ({"grace_period": -5}, "grace_period must be >= 0"),
        ({"timeout": 0}, "timeout must be > 0 (got 0)"),
    ],
)
def test_bad_arguments_are_refused_with_what_was_wrong(kwargs: dict, expected: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigurationError) as err:
        delete_pods(**kwargs)
    assert expected in str(err.value)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as err:
        delete_pods(count=0, repeat=0)
    assert "count must be" in str(err.value) and "repeat must be" in str(err.value)
