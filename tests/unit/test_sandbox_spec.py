from __future__ import annotations

from pathlib import Path

import pytest

from chaosraysvc.errors import ConfigurationError
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
