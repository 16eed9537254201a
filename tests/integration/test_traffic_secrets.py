"""Traffic the way services are called, against a real HTTP server on loopback (no Ray).

The server, in a thread of the test process, answers only requests that carry the bearer
token and the API key (401 otherwise) and records every request it gets: method, path,
headers and body. The engine's requests are checked there; then real `chaos run`s take
the token and the key from the experiment's env-backed `secrets`, and every file the run
writes (journal, traffic log, chaostoolkit log, console output, reports in HTML, Markdown
and JSON) is searched for both values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc.activities import traffic_actions, traffic_probes
from chaosraysvc.traffic import TrafficEngine, build_settings, read_traffic_log, registry
from tests.support.loopback import LoopbackServer, QuietHandler
from tests.support.polling import wait_for

pytestmark = pytest.mark.fast

BIN = Path(sys.executable).parent
TOKEN = "tok-5e0c2b9f41d7a6"
KEY = "key-91a7f3c08e"
SECRETS = {"traffic": {"authorization_token": TOKEN, "headers": {"X-Api-Key": KEY}}}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Service:
    """The loopback service: what it has seen, and a delay before its answers."""

    url: str
    seen: list[Seen] = field(default_factory=list)
    delay: float = 0.0


@pytest.fixture
def service() -> Iterator[Service]:
    svc = Service(url="")

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes

        def _handle(self) -> None:
            body = self.body()
            svc.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            if svc.delay:
                time.sleep(svc.delay)
            authorized = self.headers.get("Authorization") == f"Bearer {TOKEN}"
            if not authorized or self.headers.get("X-Api-Key") != KEY:
                self.answer(401, b'"who are you?"')
            elif self.path == "/created":
                self.answer(201, b'"made"')
            elif self.path == "/fruit/" and self.command == "POST":
                self.answer(200, b"12" if json.loads(body) == ["PEAR", 12] else b"0")
            else:
                self.answer(200, b'"ok"')

        do_GET = do_POST = _handle

    with LoopbackServer(Handler) as server:
        svc.url = server.url
        yield svc


def run_for(engines: list[TrafficEngine], tmp_path: Path, seconds: float, **kwargs: Any) -> Any:
    """Send traffic for `seconds`; return the parsed traffic log."""
    name = f"t{len(engines)}.jsonl"
    settings = build_settings(log_path=str(tmp_path / name), secrets=SECRETS, **kwargs)
    engine = TrafficEngine(settings)
    engines.append(engine)
    engine.start()
    wait_for(lambda: engine.requests >= 3)
    time.sleep(seconds)
    engine.stop()
    return read_traffic_log(engine.log_path)


def test_get_and_post_carry_the_secret_headers_and_the_configured_body(
    service: Service, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    get = run_for(engines, tmp_path, 0.1, url=service.url, method="GET", path="/health")
    assert get.requests and all(r["ok"] for r in get.requests)
    assert get.header["method"] == "GET"
    assert get.header["secret_headers"] == ["X-Api-Key", "Authorization"]
    gets = list(service.seen)
    assert {(s.method, s.path, s.body) for s in gets} == {("GET", "/health", b"")}
    assert all("Content-Type" not in s.headers for s in gets)
    assert all(s.headers["Authorization"] == f"Bearer {TOKEN}" for s in gets)
    assert all(s.headers["X-Api-Key"] == KEY for s in gets)

    service.seen.clear()
    post = run_for(engines, tmp_path, 0.1, url=service.url, path="/note", body="hello", expected="")
    assert post.requests and all(r["ok"] for r in post.requests)
    assert {(s.method, s.body) for s in service.seen} == {("POST", b"hello")}
    assert {s.headers["Content-Type"] for s in service.seen} == {"text/plain; charset=utf-8"}

    service.seen.clear()
    fruit = run_for(engines, tmp_path, 0.1, url=service.url)  # the defaults: the fruit app
    assert fruit.requests and all(r["ok"] for r in fruit.requests)
    assert {s.headers["Content-Type"] for s in service.seen} == {"application/json"}


def test_every_request_carries_its_own_id_and_the_log_records_it(
    service: Service, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    log = run_for(engines, tmp_path, 0.2, url=service.url, path="/ok", expected="")
    sent = [s.headers.get("X-Request-Id") for s in service.seen]
    prefix = log.header["request_id_prefix"]
    assert log.header["request_id_header"] == "X-Request-Id"
    assert prefix.startswith("crs-") and len(sent) == len(set(sent)) >= 3
    assert all(isinstance(i, str) and i.startswith(prefix + "-") for i in sent)
    # what the log says of each request is what the service got (the last one sent may
    # have been in flight at the stop, which the log does not record)
    logged = [r.get("id") for r in log.requests]
    assert set(logged) <= set(sent) and len(logged) >= len(sent) - 1
    # a second engine numbers its own requests under another prefix
    service.seen.clear()
    other = run_for(engines, tmp_path, 0.1, url=service.url, path="/ok", expected="")
    assert other.header["request_id_prefix"] != prefix

    # an X-Request-Id of the experiment's own is sent as it is, and no id is recorded
    service.seen.clear()
    own = {"traffic": {**SECRETS["traffic"], "headers": {"X-Api-Key": KEY, "x-request-id": "mine"}}}
    settings = build_settings(
        url=service.url, path="/ok", expected="", log_path=str(tmp_path / "own.jsonl"), secrets=own
    )
    engine = TrafficEngine(settings)
    engines.append(engine)
    engine.start()
    wait_for(lambda: engine.requests >= 3)
    engine.stop()
    mine = read_traffic_log(engine.log_path)
    ids = [{k.lower(): v for k, v in s.headers.items()}.get("x-request-id") for s in service.seen]
    # (a request of the previous engine still in flight at its stop may land after the clear)
    late = {i for i in ids if i != "mine"}
    assert ids.count("mine") >= 3 and all(
        str(i).startswith(other.header["request_id_prefix"] + "-") for i in late
    ), ids
    assert mine.header["request_id_header"] is None and mine.header["request_id_prefix"] is None
    assert mine.requests and {r.get("id") for r in mine.requests} == {None}


def test_a_status_outside_the_expected_ones_is_a_failure_named_by_its_code(
    service: Service, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    def errors(**kwargs: Any) -> set[tuple[Any, Any]]:
        log = run_for(engines, tmp_path, 0.1, url=service.url, expected="", **kwargs)
        return {(r["err"], r["code"]) for r in log.requests}

    assert errors(path="/created") == {(None, 201)}  # any 2xx by default
    assert errors(path="/created", expected_status=[201]) == {(None, 201)}
    assert errors(path="/created", expected_status="200") == {("http_201", 201)}
    log = read_traffic_log(engines[-1].log_path)
    assert log.header["expected_status"] == [200]
    assert log.end is not None and log.end["failures"] == len(log.requests)
    # without the token the service says 401: a failure like any unexpected status
    settings = build_settings(url=service.url, log_path=str(tmp_path / "anon.jsonl"))
    anonymous = TrafficEngine(settings)
    engines.append(anonymous)
    anonymous.start()
    wait_for(lambda: anonymous.requests >= 3)
    summary = anonymous.stop()
    assert summary["failures_by_error"] == {"http_401": summary["requests"]}


def test_sent_at_least_waits_for_the_first_requests_and_not_after_the_stop(
    service: Service, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    service.delay = 1.0  # the first answer comes 1 s after the traffic started
    log = str(tmp_path / "probe.jsonl")
    traffic_actions.start_traffic(url=service.url, log_path=log, timeout=3, secrets=SECRETS)
    engine = registry.current_engine()
    assert engine is not None and engine.requests == 0  # what a hypothesis-before sees
    assert traffic_probes.traffic_sent_at_least(1, timeout=0) is False
    t0 = time.monotonic()
    assert traffic_probes.traffic_sent_at_least(1, timeout=10) is True
    assert 0.5 < time.monotonic() - t0 < 5
    service.delay = 0.0
    t0 = time.monotonic()
    assert traffic_probes.traffic_sent_at_least(10**9, timeout=0.3) is False
    assert 0.25 < time.monotonic() - t0 < 2
    summary = traffic_actions.stop_traffic()
    assert summary["failures"] == 0
    sent = summary["requests"]
    assert traffic_probes.traffic_sent_at_least(sent) is True
    t0 = time.monotonic()
    assert traffic_probes.traffic_sent_at_least(sent + 1, timeout=30) is False  # stopped
    assert time.monotonic() - t0 < 1


# --------------------------------------------------------------------- chaos run
def probe(name: str, func: str, **arguments: Any) -> dict[str, Any]:
    return {
        "type": "probe",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosraysvc.activities.traffic_probes",
            "func": func,
            "arguments": arguments,
        },
    }


def action(name: str, func: str, **arguments: Any) -> dict[str, Any]:
    return {
        "type": "action",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosraysvc.activities.traffic_actions",
            "func": func,
            "arguments": arguments,
        },
    }


def experiment(service: Service, how: str) -> dict[str, Any]:
    """An experiment whose traffic carries env-backed secrets, from the control or an action."""
    exp: dict[str, Any] = {
        "version": "1.0.0",
        "title": f"authenticated traffic ({how})",
        "description": "the token and the API key come from the environment",
        "secrets": {
            "traffic": {
                "authorization_token": {"type": "env", "key": "CRS_TEST_SERVE_TOKEN"},
                "headers": {"X-Api-Key": {"type": "env", "key": "CRS_TEST_SERVE_KEY"}},
            }
        },
    }
    sent = {**probe("traffic-sent", "traffic_sent_at_least", min_requests=1), "tolerance": True}
    no_failure = {**probe("zero-failed-requests", "traffic_failures"), "tolerance": 0}
    summary = {**probe("summary", "traffic_summary"), "pauses": {"before": 1}}
    if how == "control":
        control: dict[str, Any] = {"type": "python", "module": "chaosraysvc.controls.traffic"}
        control["arguments"] = {"url": service.url, "expected_status": [200]}
        exp["controls"] = [{"name": "traffic", "provider": control}]
        exp["steady-state-hypothesis"] = {"title": "served", "probes": [sent, no_failure]}
        exp["method"] = [summary]
    else:
        start = action("start", "start_traffic", url=service.url, expected_status=[200])
        start["provider"]["secrets"] = ["traffic"]
        exp["method"] = [start, summary, sent, no_failure, action("stop", "stop_traffic")]
    return exp


def everything_written(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("how", ["control", "action"])
def test_no_secret_reaches_any_file_a_run_writes(
    service: Service, tmp_path: Path, how: str
) -> None:
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment(service, how)))
    (tmp_path / "settings.yaml").write_text("{}\n")
    journal = tmp_path / "out" / "journal.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAYSVC_")}
    env |= {"CRS_TEST_SERVE_TOKEN": TOKEN, "CRS_TEST_SERVE_KEY": KEY}
    chaos = [str(BIN / "chaos"), "--verbose", "--no-version-check"]
    chaos += ["--log-file", str(tmp_path / "chaostoolkit.log")]
    chaos += ["--settings", str(tmp_path / "settings.yaml"), "run"]
    proc = subprocess.run(
        [*chaos, "--journal-path", str(journal), str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    (tmp_path / "chaos-console.txt").write_text(proc.stdout + proc.stderr)
    assert journal.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    run = json.loads(journal.read_text())
    assert proc.returncode == 0 and run["status"] == "completed" and not run["deviated"]
    for fmt in ("html", "md", "json"):
        report = [str(BIN / "chaosraysvc"), "report", str(journal), "-o"]
        done = subprocess.run(
            [*report, str(tmp_path / "out" / f"report.{fmt}")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        (tmp_path / f"report-{fmt}-console.txt").write_text(done.stdout + done.stderr)

    # every request carried both secrets, so none failed; the run was measured
    traffic = read_traffic_log(tmp_path / "out" / "journal-traffic.jsonl")
    assert traffic.end is not None and len(traffic.requests) == traffic.end["requests"] > 10
    assert len(traffic.requests) <= len(service.seen)  # + the one in flight at the stop
    assert all(s.headers["Authorization"] == f"Bearer {TOKEN}" for s in service.seen)
    assert all(s.headers["X-Api-Key"] == KEY for s in service.seen)
    assert traffic.header["secret_headers"] == ["X-Api-Key", "Authorization"]
    assert (tmp_path / "chaostoolkit.log").stat().st_size > 0
    written = everything_written(tmp_path)
    assert {"journal.json", "journal-traffic.jsonl", "report.html", "report.json"} <= {
        p.name for p in written
    }
    assert any(p.suffix == ".png" for p in written)  # the Markdown report's chart
    for secret in (TOKEN, KEY):
        leaks = [
            str(p.relative_to(tmp_path)) for p, data in written.items() if secret.encode() in data
        ]
        assert not leaks, f"the secret {secret[:4]}... is written in {leaks}"
