"""Traffic settings: clear configuration errors, secrets kept out, where the log goes."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc.activities import traffic_actions, traffic_probes
from chaosraysvc.errors import ConfigurationError
from chaosraysvc.traffic.resolve import build_settings, journal_path, resolve_log_path

URL = "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "burst"}, "`mode` 'burst' is not one of sequential, rate"),
        ({"mode": "rate"}, "needs `rate` > 0"),
        ({"rate": 10}, "only used in mode 'rate'"),
        ({"mode": "rate", "rate": 10, "concurrency": 0}, "`concurrency` must be >= 1"),
        ({"concurrency": 4}, "needs mode 'rate'"),
        ({"timeout": 0}, "`timeout` must be > 0"),
        ({"timeout": "soon"}, "`timeout` must be a number"),
        ({"mode": "rate", "rate": 10, "concurrency": 1.5}, "`concurrency` must be an integer"),
        ({"max_failures": -2}, "`max_failures` must be -1"),
        ({"path": "fruit/"}, "`path` must start with '/'"),
        ({"url": "127.0.0.1:8000"}, "not an http(s) URL"),
        ({"endpoint_mode": "random"}, "`endpoint_mode` 'random'"),
        ({"endpoints": "all"}, "'serve_endpoints'"),
        ({"endpoints": [{"label": "a"}]}, "endpoint #1"),
        ({"endpoints": ["a=http://h:1", "a=http://h:2"]}, "labels must be unique"),
        ({"body": {1, 2}}, "`body` must be text or JSON"),
    ],
)
def test_invalid_knobs_say_which_argument_and_what_to_do(
    kwargs: dict[str, Any], message: str, tmp_path: Path
) -> None:
    kwargs.setdefault("url", URL)
    with pytest.raises(ConfigurationError) as err:
        build_settings(log_path=str(tmp_path / "t.jsonl"), **kwargs)
    assert message in str(err.value)


def test_credentials_in_urls_are_sent_but_never_described(tmp_path: Path) -> None:
    s = build_settings(url="http://user:s3cret@127.0.0.1:8000/", log_path=str(tmp_path / "t"))
    assert s.url == "http://127.0.0.1:8000"
    assert s.endpoints[0].auth == ("user", "s3cret")
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.describe())
    with pytest.raises(ConfigurationError) as err:
        build_settings(url="ftp://user:s3cret@host", log_path=str(tmp_path / "t"))
    assert "s3cret" not in str(err.value)


def test_endpoints_get_labels_and_body_defaults(tmp_path: Path) -> None:
    s = build_settings(
        endpoints=[
            "w1=http://127.0.0.1:8001",
            {"label": "w2", "url": "http://127.0.0.1:8002"},
            "http://127.0.0.1:8003",
        ],
        expected=12,
        body=["PEAR", 12],
        mode="rate",
        rate="50",
        concurrency=4.0,
        log_path=str(tmp_path / "t"),
    )
    assert s.labels == ["w1", "w2", "127.0.0.1:8003"]
    assert s.url == "" and s.options.expected == "12" and s.options.body == '["PEAR", 12]'
    assert s.options.rate == 50.0 and s.options.concurrency == 4


def test_journal_path_comes_from_the_chaos_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["chaos", "run", "--journal-path", "out/run1.json", "e.json"])
    assert journal_path() == Path("out/run1.json")
    assert resolve_log_path("", {}) == (Path("out/run1-traffic.jsonl"), True)
    monkeypatch.setattr(sys, "argv", ["chaos", "run", "--journal-path=j2.json", "e.json"])
    assert resolve_log_path("", None)[0] == Path("j2-traffic.jsonl")
    monkeypatch.setattr(sys, "argv", ["chaos", "run", "e.json"])
    assert resolve_log_path("", None)[0] == Path("journal-traffic.jsonl")


def test_journal_path_comes_from_the_click_context() -> None:
    import click

    seen: list[Path] = []

    @click.command()
    @click.option("--journal-path", default="./journal.json")
    def run(journal_path: str) -> None:
        seen.append(resolve_log_path("", None)[0])

    run.main(["--journal-path", "/tmp/x/j.json"], standalone_mode=False)
    assert seen == [Path("/tmp/x/j-traffic.jsonl")]


def test_log_path_overrides_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAYSVC_TRAFFIC_LOG", "/env.jsonl")
    assert resolve_log_path("", {}) == (Path("/env.jsonl"), False)
    assert resolve_log_path("", {"traffic_log": "/conf.jsonl"})[0] == Path("/conf.jsonl")
    assert resolve_log_path("/arg.jsonl", {"traffic_log": "/conf.jsonl"})[0] == Path("/arg.jsonl")
    with pytest.raises(ConfigurationError, match="'traffic_log' must be a file path"):
        resolve_log_path("", {"traffic_log": 3})


def test_every_activity_is_documented_annotated_and_of_one_kind() -> None:
    assert set(traffic_actions.__all__) == {"start_traffic", "stop_traffic"}
    assert set(traffic_probes.__all__) == {
        "traffic_failures",
        "traffic_summary",
        "traffic_latency_ms",
        "traffic_sent_at_least",
    }
    for module in (traffic_actions, traffic_probes):
        for name in module.__all__:
            func = getattr(module, name)
            doc = inspect.getdoc(func)
            assert doc and doc.splitlines()[0].endswith("."), name
            sig = inspect.signature(func)
            assert sig.return_annotation is not inspect.Signature.empty, name
            params = list(sig.parameters)
            assert params[-2:] == ["configuration", "secrets"], name
            for p in sig.parameters.values():
                assert p.annotation is not inspect.Parameter.empty, (name, p.name)
    for name in traffic_actions.__all__:
        assert name.split("_")[0] in {"start", "stop"}
    for name in traffic_probes.__all__:
        assert name.startswith("traffic_")
