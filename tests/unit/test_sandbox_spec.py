from __future__ import annotations

from pathlib import Path

import pytest

from chaosraysvc.errors import ConfigurationError
from chaosraysvc.sandbox import podspec
from chaosraysvc.sandbox.spec import SandboxSpec


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"serve_port": 70000}, "serve-port 70000"),
        ({"workers": 0}, "workers 0"),
        ({"restart_delay": -1.0}, "restart-delay"),
        ({"redis_storage": "tmpfs"}, "redis-storage 'tmpfs'"),
        ({"serve_port": 9000, "dashboard_port": 9000}, "ports must differ"),
    ],
)
def test_bad_settings_are_named(changes: dict[str, object], message: str) -> None:
    spec = SandboxSpec(state_dir=Path("/tmp/x"), **changes)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=message):
        spec.validate()


def test_spec_round_trips_through_its_file(tmp_path: Path) -> None:
    spec = SandboxSpec(state_dir=tmp_path, workers=3, redis_storage="ephemeral", gcs_port=1234)
    spec.save()
    assert SandboxSpec.load(tmp_path) == spec


@pytest.mark.parametrize(
    ("head_in_svc", "endpoint_ports", "head_port", "worker_port"),
    [
        (True, False, 8000, None),  # every proxy shares the serve port
        (False, False, 7001, "8000"),  # head on its own port, workers share the serve port
        (True, True, 7001, "7002"),  # every proxy on a port of its own
        (False, True, 7001, "7002"),
    ],
)
def test_which_port_each_proxy_binds(
    tmp_path: Path,
    head_in_svc: bool,
    endpoint_ports: bool,
    head_port: int,
    worker_port: str | None,
) -> None:
    spec = SandboxSpec(
        state_dir=tmp_path,
        head_in_serve_svc=head_in_svc,
        endpoint_ports=endpoint_ports,
        head_proxy_port=7001,
    )
    _, env = podspec.worker_command(spec, tmp_path, {}, proxy_port=7002)

    assert podspec.head_proxy_port(spec) == head_port
    assert env.get("RAY_SERVE_WORKER_PROXY_HTTP_PORT") == worker_port
    assert SandboxSpec.from_json(spec.to_json()) == spec
