from __future__ import annotations

from pathlib import Path

import pytest

from chaosraysvc.config import settings_from
from chaosraysvc.errors import ConfigurationError


def test_defaults_target_the_sandbox_and_the_ha_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAYSVC_TARGET", "RAYSVC_NAME", "RAYSVC_NAMESPACE", "RAYSVC_SANDBOX_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", "/srv/state")
    settings = settings_from(None)
    assert settings.target == "sandbox"
    assert (settings.rayservice_name, settings.rayservice_namespace) == ("rayservice-ha", "default")
    assert settings.sandbox_state_dir == Path("/srv/state/chaosraysvc/sandbox")


def test_configuration_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAYSVC_TARGET", "kubernetes")
    monkeypatch.setenv("RAYSVC_NAME", "from-env")
    settings = settings_from({"rayservice_name": "from-config", "serve_url": "http://x:8000/"})
    assert settings.target == "kubernetes"
    assert settings.rayservice_name == "from-config"
    assert settings.serve_url == "http://x:8000"


def test_unknown_target_names_the_key_and_the_choices() -> None:
    with pytest.raises(
        ConfigurationError, match=r"unknown target 'docker'.*raysvc_target.*sandbox"
    ):
        settings_from({"raysvc_target": "docker"})


def test_non_scalar_value_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="rayservice_name"):
        settings_from({"rayservice_name": ["a"]})
