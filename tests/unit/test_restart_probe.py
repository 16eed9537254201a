"""restarts_only_in_role: KubeRay's HA assertion (only the faulted head restarted) as a probe."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chaosraysvc.activities import pod_probes
from chaosraysvc.model import Pod


def _pod(name: str, role: str, restarts: int = 0) -> Pod:
    return Pod(name, role, "Running", True, f"uid-{name}", 0.0, restarts)  # type: ignore[arg-type]


class _Target:
    def __init__(self, pods: list[Pod]) -> None:
        self.listed = pods

    def pods(self) -> list[Pod]:
        return self.listed


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> _Target:
    monkeypatch.setattr(pod_probes, "_FIRST_SEEN", {})
    found = _Target([_pod("head", "head", 2), _pod("w1", "worker", 3), _pod("redis", "redis")])
    monkeypatch.setattr(pod_probes, "target_for", lambda *_: found)
    return found


def test_restarts_before_the_experiment_do_not_count(target: _Target) -> None:
    assert pod_probes.restarts_only_in_role() is True  # the hypothesis before the method
    assert pod_probes.restarts_only_in_role() is True


def test_the_head_may_restart_once_and_nothing_else(target: _Target) -> None:
    pod_probes.restarts_only_in_role()
    head, worker, redis = target.listed

    target.listed = [replace(head, restarts=3), worker, replace(redis, restarts=5)]
    assert pod_probes.restarts_only_in_role() is True  # KubeRay's: head restartCount + 1

    target.listed = [replace(head, restarts=4), worker, redis]
    assert pod_probes.restarts_only_in_role() is False  # twice

    target.listed = [replace(head, restarts=3), replace(worker, restarts=4), redis]
    assert pod_probes.restarts_only_in_role() is False  # a worker restarted too


def test_a_replacement_pod_counts_from_zero(target: _Target) -> None:
    pod_probes.restarts_only_in_role()
    head, _, redis = target.listed

    target.listed = [head, _pod("w2", "worker", 0), redis]
    assert pod_probes.restarts_only_in_role() is True
    target.listed = [head, _pod("w2", "worker", 1), redis]
    assert pod_probes.restarts_only_in_role(role="head") is False
