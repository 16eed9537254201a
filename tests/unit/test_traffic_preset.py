"""The `kuberay-ha` traffic preset: KubeRay's HA e2e load (issue 22 item 5)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from chaosraysvc import config
from chaosraysvc.errors import ConfigurationError
from chaosraysvc.traffic import build_settings
from chaosraysvc.traffic.engine import TrafficEngine
from chaosraysvc.traffic.settings import parse_options
from tests.support.loopback import LoopbackServer, QuietHandler


def test_kuberay_ha_sets_ten_users_at_one_request_a_second_with_upstreams_run_as_timeout() -> None:
    o = parse_options({"preset": "kuberay-ha"})
    assert (o.mode, o.rate, o.concurrency, o.timeout) == ("rate", 10.0, 10, 150.0)
    assert o.preset == "kuberay-ha"


def test_an_explicit_argument_wins_over_the_preset() -> None:
    o = parse_options({"preset": "kuberay-ha", "timeout": 5, "path": "/"})
    assert (o.rate, o.concurrency, o.timeout, o.path) == (10.0, 10, 5.0, "/")


def test_the_configured_preset_applies_when_the_arguments_name_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAYSVC_TRAFFIC_PRESET", "kuberay-ha")
    settings = build_settings(url="http://127.0.0.1:9", log_path="/dev/null")
    assert settings.options.rate == 10.0 and settings.describe()["preset"] == "kuberay-ha"
    assert config.setting({"traffic_preset": ""}, "traffic_preset") == "kuberay-ha"
    monkeypatch.delenv("RAYSVC_TRAFFIC_PRESET")
    assert build_settings(url="http://127.0.0.1:9", log_path="/dev/null").options.mode == (
        "sequential"
    )


def test_an_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="'locust' .* kuberay-ha"):
        parse_options({"preset": "locust"})


def test_ten_keep_alive_users_send_ten_requests_a_second_on_at_most_ten_connections(
    tmp_path: Path,
) -> None:
    peers: list[tuple[str, int]] = []
    lock = threading.Lock()

    class Fruit(QuietHandler):
        protocol_version = "HTTP/1.1"  # keep the connection open between requests

        def do_POST(self) -> None:  # http.server's name
            self.body()
            with lock:
                peers.append(self.client_address)
            self.answer(200, "12")

    with LoopbackServer(Fruit) as server:
        settings = build_settings(
            url=server.url, preset="kuberay-ha", log_path=str(tmp_path / "t.jsonl")
        )
        engine = TrafficEngine(settings)
        engine.start()
        time.sleep(3.0)
        summary = engine.stop()
    assert engine.failures == 0, summary
    rate = len(peers) / 3.0
    assert 8.0 <= rate <= 12.0, f"{len(peers)} requests in 3 s"
    assert 1 <= len(set(peers)) <= 10, f"{len(set(peers))} connections"
