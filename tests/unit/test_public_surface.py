"""Every activity is discovered as the right kind, with a docstring and annotations."""

from __future__ import annotations

import importlib
import inspect

import pytest
from chaoslib.exceptions import ActivityFailed

import chaosraysvc
from chaosraysvc.discovery import ACTION_MODULES, PROBE_MODULES

CONTRACT = {
    "probe": {
        "serve_endpoint_count",
        "serve_applications_healthy",
        "serve_replica_placement",
        "serve_replicas_spread",
        "serve_proxies_healthy",
        "head_pod_ready",
        "gcs_fault_tolerance_enabled",
        "redis_storage_persistent",
        "restarts_only_in_role",
        "traffic_failures",
        "traffic_summary",
        "traffic_latency_ms",
        "traffic_sent_at_least",
        "ha_risks",
        "serve_error_ratio",
        "serve_request_rate",
        "serve_request_rate_change",
        "serve_latency_ms",
        "rayservice_ready_throughout",
    },
    "action": {
        "delete_head_pod",
        "delete_worker_pod",
        "delete_redis_pod",
        "upgrade_rayservice",
        "kill_gcs_server",
        "delete_pods",
        "partition_redis",
        "heal_redis_partition",
        "hang_redis",
        "unpause_redis",
        "kill_redis_primary",
        "drain_node",
        "uncordon_node",
        "lose_node",
        "restore_node",
        "wait_for_recovery",
        "start_traffic",
        "stop_traffic",
    },
}


def test_discover_lists_each_public_activity_with_its_kind() -> None:
    discovery = chaosraysvc.discover(discover_system=False)
    kinds: dict[str, set[str]] = {"probe": set(), "action": set()}
    for activity in discovery["activities"]:  # type: ignore[union-attr]
        kinds[activity["type"]].add(activity["name"])
    assert kinds["probe"] == CONTRACT["probe"]
    assert kinds["action"] == CONTRACT["action"]
    assert not kinds["probe"] & kinds["action"]


@pytest.mark.parametrize("module_name", PROBE_MODULES + ACTION_MODULES)
def test_activities_are_documented_and_annotated(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        func = getattr(module, name)
        assert func.__doc__ and func.__doc__.strip().splitlines()[0].endswith("."), name
        signature = inspect.signature(func)
        assert signature.return_annotation is not inspect.Signature.empty, name
        for param in signature.parameters.values():
            assert param.annotation is not inspect.Parameter.empty, f"{name}({param.name})"
        params = list(signature.parameters)
        if "configuration" in params:
            assert params[-2:] == ["configuration", "secrets"], name


def test_probe_against_a_sandbox_that_is_not_up_fails_with_what_to_do(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from chaosraysvc.activities.serve_probes import serve_endpoint_count

    with pytest.raises(ActivityFailed, match="run `chaosraysvc sandbox up` first"):
        serve_endpoint_count({"sandbox_state_dir": str(tmp_path)})


def test_unknown_target_fails_the_activity() -> None:
    from chaosraysvc.activities.pod_probes import head_pod_ready

    with pytest.raises(ActivityFailed, match="unknown target 'nomad'"):
        head_pod_ready({"raysvc_target": "nomad"})
