"""The lab's changes to KubeRay's HA sample: the Serve app imported locally, the head out of
the serve Service on request, and Ray settings for a measured comparison."""

from __future__ import annotations

import yaml

from chaosraysvc_lab.stack import IMPORT_PATH, adapt_sample

SAMPLE = """
apiVersion: ray.io/v1
kind: RayService
metadata: {name: rayservice-ha}
spec:
  serveConfigV2: |
    applications:
      - name: fruit_app
        import_path: fruit.deployment_graph
        runtime_env: {working_dir: "https://example.invalid/x.zip"}
  rayClusterConfig:
    headGroupSpec:
      template:
        spec:
          containers:
            - name: ray-head
              env: [{name: RAY_gcs_rpc_server_reconnect_timeout_s, value: "60"}]
    workerGroupSpecs:
      - template:
          spec:
            containers:
              - name: ray-worker
---
apiVersion: v1
kind: Service
metadata: {name: redis}
"""


def _env(doc: dict, group: str) -> list[dict[str, str]]:  # type: ignore[type-arg]
    cluster = doc["spec"]["rayClusterConfig"]
    spec = cluster["headGroupSpec"] if group == "head" else cluster["workerGroupSpecs"][0]
    return spec["template"]["spec"]["containers"][0].get("env", [])


def test_the_sample_as_published_but_its_serve_app() -> None:
    service, redis = adapt_sample(SAMPLE)
    [app] = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    assert app == {"name": "fruit_app", "import_path": IMPORT_PATH}
    assert "excludeHeadPodFromServeSvc" not in service["spec"]
    assert _env(service, "head") == [{"name": "RAY_gcs_rpc_server_reconnect_timeout_s",
                                      "value": "60"}]  # fmt: skip
    assert _env(service, "worker") == [] and redis["kind"] == "Service"


def test_ray_env_reaches_every_ray_container_and_replaces_a_variable_of_its_name() -> None:
    service, _ = adapt_sample(
        SAMPLE,
        exclude_head=True,
        ray_env={"RAY_gcs_grpc_max_reconnect_backoff_ms": "200",
                 "RAY_gcs_rpc_server_reconnect_timeout_s": "120"},
    )  # fmt: skip
    assert service["spec"]["excludeHeadPodFromServeSvc"] is True
    for group in ("head", "worker"):
        assert {e["name"]: e["value"] for e in _env(service, group)} == {
            "RAY_gcs_grpc_max_reconnect_backoff_ms": "200",
            "RAY_gcs_rpc_server_reconnect_timeout_s": "120",
        }
