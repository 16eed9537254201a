"""The upgrade action's argument checks and the roll-out milestones, on a scripted target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from chaosraysvc import rollout
from chaosraysvc.activities import rayservice_actions
from chaosraysvc.errors import ConfigurationError, RecoveryTimeoutError
from chaosraysvc.model import Endpoint, Pod
from chaosraysvc.recovery import Baseline
from chaosraysvc.serve.dashboard import Dashboard


def _pod(name: str, ready: bool = True) -> Pod:
    role = "head" if "head" in name else "worker"
    return Pod(name=name, role=role, phase="Running", ready=ready, uid=name, created_at=0.0)


class Rolling:
    """A target whose RayService rolls out cluster 'new' over `steps` polls, as KubeRay does."""

    kind = "kubernetes"

    def __init__(self, delete_old: bool = True, create_new: bool = True) -> None:
        self.step = 0
        self.delete_old = delete_old
        self.create_new = create_new
        self.marks: list[str] = []
        self.steps: dict[str, int] = {}

    def ray_clusters(self) -> tuple[str, str]:
        self.step += 1
        if not self.create_new or self.step < 3:
            return "old", ""
        return ("old", "new") if self.step < 6 else ("new", "")

    def cluster_pods(self, cluster: str) -> list[Pod]:
        if cluster == "old":
            gone = self.delete_old and self.step >= 9
            return [] if gone else [_pod("old-head"), _pod("old-worker")]
        return [_pod("new-head", ready=self.step >= 4), _pod("new-worker")]

    def serve_endpoints(self) -> list[Endpoint]:
        pod = "new-worker" if self.step >= 8 else "old-worker"  # the slices lag the switch
        return [Endpoint(pod_name=pod, url="", ready=True, role="worker")]

    def dashboard(self) -> Dashboard:
        return Dashboard("http://127.0.0.1:9")

    # unused by the roll-out
    def pods(self) -> list[Pod]:
        return []

    def pod_names(self, nodes: Sequence[Any]) -> dict[str, str]:
        return {}

    def upgrade(self, patch: Mapping[str, Any], dry_run: bool = False) -> None:
        pass


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollout, "POLL_S", 0.0)
    monkeypatch.setattr(rollout, "apps_running", lambda target, expected: True)


def _wait(target: Rolling, timeout: float = 5.0, wait_old: bool = True) -> rollout.Rollout:
    baseline = Baseline(endpoints=1, applications={"fruit_app"}, pods=set())
    return rollout.wait_for_rollout(
        target,  # type: ignore[arg-type]
        "old",
        0.0,
        baseline,
        timeout,
        wait_old,
        mark=lambda event, **detail: (
            target.marks.append(event),
            target.steps.setdefault(event, target.step),
        ),
    )


def test_milestones_come_in_the_order_kuberay_rolls_out() -> None:
    target = Rolling()

    done = _wait(target)

    assert done.new_cluster == "new"
    assert target.marks == [
        "new_cluster_created",
        "pod_ready",
        "switched",
        "applications_running",  # read as RUNNING here from the start
        "endpoints_restored",
        "old_cluster_deleted",
    ]
    assert done.to_json()["recovered"] is True


def test_endpoints_still_on_the_old_clusters_pods_are_not_restored() -> None:
    target = Rolling()
    _wait(target)
    # Switched at step 6; the serve Service's endpoints reach the new worker at step 8.
    assert (target.steps["switched"], target.steps["endpoints_restored"]) == (6, 8)


def test_not_waiting_for_the_old_cluster_ends_once_the_new_one_serves() -> None:
    target = Rolling(delete_old=False)

    done = _wait(target, wait_old=False)

    assert "old_cluster_deleted" not in done.milestones and done.to_json()["recovered"]


def test_no_new_cluster_times_out_saying_what_kuberay_needs() -> None:
    with pytest.raises(RecoveryTimeoutError) as err:
        _wait(Rolling(create_new=False), timeout=0.05)
    message = str(err.value)
    assert "from cluster 'old'" in message and "new_cluster_created" in message
    assert "KubeRay named no new cluster" in message


def test_an_old_cluster_that_stays_times_out_naming_the_milestone() -> None:
    with pytest.raises(RecoveryTimeoutError, match="still waiting for old_cluster_deleted"):
        _wait(Rolling(delete_old=False), timeout=0.2)


def test_the_restart_patch_only_annotates_the_head_template() -> None:
    patch = rayservice_actions.restart_patch(datetime(2026, 12, 4, 13, 0, 5, tzinfo=UTC))
    assert patch == {
        "rayClusterConfig": {
            "headGroupSpec": {
                "template": {
                    "metadata": {
                        "annotations": {"chaosraysvc.io/restartedAt": "2026-12-04T13:00:05Z"}
                    }
                }
            }
        }
    }


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ("rayClusterConfig", "must be an object"),
        ([1], "must be an object"),
        ({"serveConfigV2": "x"}, "but not `rayClusterConfig`"),
    ],
)
def test_a_bad_patch_is_refused_before_any_call(patch: Any, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        rayservice_actions._checked_patch(patch)


def test_a_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="timeout must be > 0"):
        rayservice_actions.upgrade_rayservice(timeout=0)
