"""The traffic engine against a real HTTP server on loopback, and the control under `chaos run`.

The server runs in a thread of the test process and can be told to answer, be slow,
answer 500 or a wrong body, close connections, or refuse them; experiments switch it
over HTTP (`POST /-/mode/<mode>`) and it counts every other `/-/hit/<name>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc.errors import ConfigurationError
from chaosraysvc.runtime.ports import free_port
from chaosraysvc.traffic import (
    TrafficEngine,
    build_settings,
    current_engine,
    mark,
    read_traffic_log,
    registry,
)
from chaosraysvc.traffic.log import FLUSH_INTERVAL_S
from tests.support.polling import wait_for

pytestmark = pytest.mark.fast

CHAOS = Path(sys.executable).with_name("chaos")
MODES = ("ok", "slow", "500", "wrong", "close", "refuse")


class _Conn(asyncio.Protocol):
    def __init__(self, server: FaultyServer) -> None:
        self.server = server
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.transports.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.server.transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
                if name.strip().lower() == "authorization":
                    self.server.auth_seen.add(value.strip())
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            self.server.handle(self, head.split(" ")[1])

    def reply(self, status: str, body: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )


class FaultyServer:
    """An HTTP/1.1 keep-alive server in a thread whose behaviour tests can switch."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = "ok"
        self.delay = 0.3
        self.hits: Counter[str] = Counter()
        self.auth_seen: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.transports: set[asyncio.Transport] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._call(self._listen())

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            assert not self._thread.is_alive()
        self._loop.close()

    def set_mode(self, mode: str) -> None:
        assert mode in MODES
        if mode == "refuse":
            self._call(self._close())
        elif self._server is None:
            self._call(self._listen())
        self.mode = mode

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    async def _listen(self) -> None:
        self._server = await self._loop.create_server(
            lambda: _Conn(self), "127.0.0.1", self.port, reuse_address=True
        )

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self.transports):
            transport.abort()

    def handle(self, conn: _Conn, path: str) -> None:
        if path.startswith("/-/mode/"):
            mode = path.rsplit("/", 1)[1]
            self.mode = mode
            self.hits[path] += 1
            conn.reply("200 OK", b'"ok"')
            return
        if path.startswith("/-/hit/"):
            self.hits[path] += 1
            conn.reply("200 OK", b'"ok"')
            return
        mode = self.mode
        if mode == "close":
            assert conn.transport is not None
            conn.transport.close()
        elif mode == "500":
            conn.reply("500 Internal Server Error", b'"boom"')
        elif mode == "wrong":
            conn.reply("200 OK", b"13")
        elif mode == "slow":
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

            def later() -> None:
                self.in_flight -= 1
                conn.reply("200 OK", b"12")

            self._loop.call_later(self.delay, later)
        else:
            conn.reply("200 OK", b"12\n")


@pytest.fixture
def server() -> Iterator[FaultyServer]:
    srv = FaultyServer()
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def run_engine(engines: list[TrafficEngine], tmp_path: Path, **kwargs: Any) -> TrafficEngine:
    kwargs.setdefault("log_path", str(tmp_path / "traffic.jsonl"))
    engine = TrafficEngine(build_settings(**kwargs))
    engines.append(engine)
    engine.start()
    return engine


def test_every_failure_kind_gets_its_error_class(
    server: FaultyServer, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    engine = run_engine(engines, tmp_path, url=server.url, timeout=0.15)
    server.delay = 0.5
    for mode in ("ok", "500", "wrong", "close", "slow", "refuse", "ok"):
        server.set_mode(mode)
        before = engine.requests
        wait_for(lambda before=before: engine.requests >= before + 2)
    summary = engine.stop()
    log = read_traffic_log(engine.log_path)
    errors = {r["err"] for r in log.requests}
    assert {
        None,
        "http_500",
        "wrong_answer",
        "disconnected",
        "timeout",
        "connect_refused",
    } <= errors
    codes = {r["err"]: r["code"] for r in log.requests}
    assert codes["http_500"] == 500 and codes["wrong_answer"] == 200 and codes["timeout"] is None
    timeouts = [r["ms"] for r in log.requests if r["err"] == "timeout"]
    assert all(140 <= ms < 400 for ms in timeouts)
    assert summary["failures"] == sum(not r["ok"] for r in log.requests) == engine.failures
    assert log.requests[-1]["ok"] is True  # served again after refusing
    assert log.end is not None and log.end["requests"] == len(log.requests)


def test_sequential_keeps_one_request_in_flight_and_rate_mode_up_to_concurrency(
    server: FaultyServer, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    server.set_mode("slow")
    server.delay = 0.05
    seq = run_engine(engines, tmp_path, url=server.url, log_path=str(tmp_path / "seq.jsonl"))
    time.sleep(0.5)
    seq.stop()
    assert server.max_in_flight == 1
    assert 5 <= seq.requests <= 11  # one after another, each 50 ms

    wait_for(lambda: server.in_flight == 0)  # the request cancelled by stop() is still served
    server.max_in_flight = 0
    rate = run_engine(
        engines,
        tmp_path,
        url=server.url,
        mode="rate",
        rate=100,
        concurrency=3,
        log_path=str(tmp_path / "rate.jsonl"),
    )
    time.sleep(0.6)
    summary = rate.stop()
    assert server.max_in_flight == 3
    assert summary["rate_check"]["requested_rps"] == 100.0


def test_rate_mode_holds_its_timeline(
    server: FaultyServer, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    engine = run_engine(engines, tmp_path, url=server.url, mode="rate", rate=200, concurrency=4)
    time.sleep(1.5)
    summary = engine.stop()
    end = read_traffic_log(engine.log_path).end
    assert end is not None
    schedule = end["schedule"]
    assert summary["requests"] == schedule["sent"] - end["cancelled_at_stop"]
    assert schedule["sent"] + schedule["skipped"] + schedule["pending"] == schedule["scheduled"]
    assert 295 <= schedule["scheduled"] <= 320  # 200 req/s for ~1.5 s, from the clock
    rc = summary["rate_check"]
    assert rc["achieved_rps"] <= 200 * 1.02  # never faster than asked
    # on a quiet machine it holds the rate; on a starved one it must say it did not
    assert rc["kept_up"] is (rc["achieved_rps"] >= 196 and schedule["skipped"] == 0)
    assert summary["failures"] == 0


def test_rate_mode_says_when_it_cannot_keep_up(
    server: FaultyServer,
    engines: list[TrafficEngine],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.set_mode("slow")
    server.delay = 0.2  # 2 in flight can do 10 req/s, not 100
    caplog.set_level(logging.WARNING, logger="chaostoolkit")
    engine = run_engine(
        engines, tmp_path, url=server.url, mode="rate", rate=100, concurrency=2, timeout=1.0
    )
    wait_for(lambda: any("cannot hold" in r.getMessage() for r in caplog.records), timeout=4)
    time.sleep(1.2)  # long enough for slots over 1 s late to be skipped
    summary = engine.stop()
    rc = summary["rate_check"]
    assert rc["kept_up"] is False and rc["behind_marks"] >= 1
    assert rc["skipped"] > 0 and rc["late"] > 0
    assert any("did not hold its rate" in r.getMessage() for r in caplog.records)
    assert "rate_behind" in [m["event"] for m in summary["marks"]]


def test_log_is_flushed_while_running_and_marks_land_at_once(
    server: FaultyServer, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    engine = run_engine(engines, tmp_path, url=server.url)
    wait_for(lambda: engine.requests > 10)
    done = engine.requests
    time.sleep(FLUSH_INTERVAL_S + 0.2)  # the flush period, plus slack for a busy machine
    running = read_traffic_log(engine.log_path)
    assert running.header["mode"] == "sequential" and running.end is None
    assert len(running.requests) >= done, "requests counted 0.4 s ago are not on disk yet"
    assert engine.mark("fault", pod="head-0", role="head")
    wait_for(lambda: read_traffic_log(engine.log_path).marks != [], timeout=1.0)
    marks = read_traffic_log(engine.log_path).marks
    assert [(m["event"], m["detail"]) for m in marks] == [
        ("fault", {"pod": "head-0", "role": "head"})
    ]


def test_stop_is_clean_idempotent_and_leaves_no_thread(
    server: FaultyServer, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    engine = run_engine(engines, tmp_path, url=server.url)
    time.sleep(0.2)
    first = engine.stop()
    assert not engine.running
    assert not [t for t in threading.enumerate() if t.name == "chaosraysvc-traffic"]
    assert engine.stop() == first
    assert engine.mark("late") is False
    lines = engine.log_path.read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "run" and json.loads(lines[-1])["kind"] == "end"
    assert (
        first["run"]["complete"] is True and first["requests"] == json.loads(lines[-1])["requests"]
    )


def test_failures_are_attributed_to_endpoints(
    server: FaultyServer, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    engine = run_engine(engines, tmp_path, endpoints=[f"good={server.url}", f"bad={dead}"])
    time.sleep(0.4)
    summary = engine.stop()
    log = read_traffic_log(engine.log_path)
    assert log.header["endpoints"] == ["good", "bad"]
    assert {r["ep"] for r in log.requests if r["ok"]} == {"good"}
    assert summary["failures_by_endpoint"] == {"bad": summary["failures"]}
    assert summary["failures_by_error"] == {"connect_refused": summary["failures"]}
    assert summary["by_endpoint"]["good"]["failures"] == 0

    per = run_engine(
        engines,
        tmp_path,
        endpoints=[f"good={server.url}", f"bad={dead}"],
        endpoint_mode="per_endpoint",
        log_path=str(tmp_path / "per.jsonl"),
    )
    time.sleep(0.4)
    by_ep = per.stop()["by_endpoint"]
    # one worker per endpoint: the refused one does not slow the good one down
    assert by_ep["good"]["requests"] > summary["by_endpoint"]["good"]["requests"]


def test_credentials_never_reach_the_log(
    server: FaultyServer, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    url = server.url.replace("http://", "http://admin:hunter2@")
    engine = run_engine(engines, tmp_path, url=url)
    time.sleep(0.2)
    summary = engine.stop()
    assert summary["requests"] > 0 and summary["failures"] == 0
    assert server.auth_seen == {"Basic YWRtaW46aHVudGVyMg=="}  # admin:hunter2, sent
    assert "hunter2" not in engine.log_path.read_text()
    assert "hunter2" not in json.dumps(summary)


def test_activities_share_one_engine_per_process(
    server: FaultyServer, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    from chaoslib.exceptions import ActivityFailed

    from chaosraysvc.activities import traffic as act

    log = str(tmp_path / "act.jsonl")
    assert mark("fault") is False and current_engine() is None
    started = act.start_traffic(url=server.url, log_path=log)
    assert started["started"] is True and started["log"] == log
    assert act.start_traffic(url=server.url, log_path=log)["started"] is False
    with pytest.raises(ActivityFailed, match="already running with other settings"):
        act.start_traffic(url=server.url, log_path=log, timeout=1.0)
    wait_for(lambda: act.traffic_failures() == 0 and current_engine().requests > 5)  # type: ignore[union-attr]
    server.set_mode("500")
    wait_for(lambda: act.traffic_failures() >= 1)
    assert mark("fault", pod="w-1", role="worker") is True
    failed = act.traffic_failures()
    wait_for(lambda: act.traffic_failures() >= failed + 3)
    with pytest.raises(ActivityFailed, match="no 'pod_ready'|no 'recovery' phase"):
        act.traffic_latency_ms(99, phase="recovery")
    assert act.traffic_latency_ms(50, phase="baseline") > 0
    with pytest.raises(ActivityFailed, match="no successful request in phase 'outage'"):
        act.traffic_latency_ms(99, phase="outage")
    with pytest.raises(ActivityFailed, match="unknown phase"):
        act.traffic_latency_ms(99, phase="during")
    live = act.traffic_summary()
    assert live["running"] is True and "timeline" not in live
    summary = act.stop_traffic()
    assert summary["failures"] >= 3 and summary["phases"]["outage"]["failures"] >= 3
    assert act.stop_traffic() == summary
    assert act.traffic_failures() == summary["failures"]
    with pytest.raises(ConfigurationError):
        registry.start_engine(build_settings(url=server.url, mode="rate", rate=-1))


# --------------------------------------------------------------------- chaos run
def experiment(
    server: FaultyServer, method: list[dict[str, Any]], **control_args: Any
) -> dict[str, Any]:
    def http(name: str, path: str) -> dict[str, Any]:
        return {
            "type": "action",
            "name": name,
            "provider": {"type": "http", "url": server.url + path, "method": "POST", "timeout": 2},
        }

    failures_probe = {
        "type": "probe",
        "name": "no-failure-yet",
        "tolerance": 0,
        "provider": {
            "type": "python",
            "module": "chaosraysvc.activities.traffic",
            "func": "traffic_failures",
        },
    }
    steps = {
        "break": http("make-it-fail", "/-/mode/500"),
        "after": http("after", "/-/hit/after"),
        "pause": {**failures_probe, "name": "wait", "pauses": {"after": 1.5}},
        "mark": {
            "type": "action",
            "name": "mark-fault",
            "provider": {
                "type": "python",
                "module": "chaosraysvc.traffic.registry",
                "func": "mark",
                "arguments": {"event": "fault", "pod": "h", "role": "head"},
            },
        },
        "long": {**failures_probe, "name": "long-wait", "pauses": {"after": 30}},
    }
    return {
        "version": "1.0.0",
        "title": "traffic control under chaos run",
        "description": "test",
        "controls": [
            {
                "name": "traffic",
                "provider": {
                    "type": "python",
                    "module": "chaosraysvc.controls.traffic",
                    "arguments": {"url": server.url, **control_args},
                },
            }
        ],
        "steady-state-hypothesis": {"title": "serving", "probes": [failures_probe]},
        "method": [steps[m] for m in method],
        "rollbacks": [http("repair", "/-/mode/ok"), http("rollback-ran", "/-/hit/rollback")],
    }


def chaos_run(
    tmp_path: Path, exp: dict[str, Any], interrupt_after: float = 0.0
) -> tuple[dict[str, Any], int]:
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(exp))
    journal = tmp_path / "out" / "run.json"
    journal.parent.mkdir(exist_ok=True)
    (tmp_path / "settings.yaml").write_text("{}\n")
    cmd = [
        str(CHAOS),
        "--log-file",
        str(tmp_path / "chaostoolkit.log"),
        "--settings",
        str(tmp_path / "settings.yaml"),
        "run",
        "--journal-path",
        str(journal),
        str(path),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAYSVC_")}
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        if interrupt_after:
            log = journal.with_name("run-traffic.jsonl")
            wait_for(lambda: log.exists() and log.stat().st_size > 2000, timeout=20)
            time.sleep(interrupt_after)
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert journal.exists(), out
    return json.loads(journal.read_text()), proc.returncode


def traffic_extension(journal: dict[str, Any]) -> dict[str, Any]:
    [entry] = [e for e in journal.get("extensions", []) if e.get("name") == "chaosraysvc"]
    return dict(entry["traffic"])


def test_control_measures_the_whole_run_and_writes_into_the_journal(
    server: FaultyServer, tmp_path: Path
) -> None:
    journal, code = chaos_run(tmp_path, experiment(server, ["mark", "pause"]))
    assert code == 0 and journal["status"] == "completed"
    ext = traffic_extension(journal)
    assert ext["log"] == str(tmp_path / "out" / "run-traffic.jsonl")  # beside the journal
    log = read_traffic_log(ext["log"])
    assert log.end is not None and log.requests
    # traffic started before the steady-state hypothesis: a baseline exists
    assert ext["summary"]["phases"]["baseline"]["requests"] > 0
    assert [m["event"] for m in log.marks] == ["fault"]
    assert ext["summary"]["requests"] == log.end["requests"]
    assert "timeline" not in ext["summary"]


def test_max_failures_aborts_the_run_and_rollbacks_still_run(
    server: FaultyServer, tmp_path: Path
) -> None:
    journal, code = chaos_run(
        tmp_path, experiment(server, ["break", "pause", "after"], max_failures=5)
    )
    assert code == 1 and journal["status"] == "aborted"
    names = [r["activity"]["name"] for r in journal["run"]]
    assert names[0] == "make-it-fail" and "after" not in names
    assert server.hits["/-/hit/after"] == 0  # the method stopped
    assert server.hits["/-/hit/rollback"] == 1  # the rollbacks ran
    assert [r["status"] for r in journal["rollbacks"]] == ["succeeded", "succeeded"]
    assert journal["steady_states"]["after"] is None
    ext = traffic_extension(journal)
    assert "exceeded max_failures (5)" in ext["aborted"]
    assert ext["summary"]["max_failures_exceeded"] is True
    log = read_traffic_log(ext["log"])
    assert "max_failures" in [m["event"] for m in log.marks] and log.end is not None


def test_ctrl_c_still_stops_the_traffic_and_records_it(
    server: FaultyServer, tmp_path: Path
) -> None:
    journal, code = chaos_run(tmp_path, experiment(server, ["long"]), interrupt_after=0.3)
    assert journal["status"] == "interrupted"
    log = read_traffic_log(traffic_extension(journal)["log"])
    assert log.end is not None and log.end["requests"] == len(log.requests) > 0


def test_a_traffic_that_cannot_start_interrupts_before_anything_runs(
    server: FaultyServer, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    journal, code = chaos_run(
        tmp_path, experiment(server, ["after"], log_path=str(tmp_path / "a-file" / "t.jsonl"))
    )
    assert code == 1 and journal["status"] == "interrupted"
    assert journal["run"] == [] and server.hits["/-/hit/after"] == 0


# --------------------------------------------------------------------- process exit
ENGINE_SCRIPT = """
import sys, time
from chaosraysvc.traffic import TrafficEngine, build_settings
from chaosraysvc.traffic.log import FLUSH_INTERVAL_S
engine = TrafficEngine(build_settings(url=sys.argv[1], log_path=sys.argv[2]))
engine.start()
deadline = time.monotonic() + 20
while engine.requests < 20 and time.monotonic() < deadline:
    time.sleep(0.01)
done = engine.requests
time.sleep(2 * FLUSH_INTERVAL_S + 0.05)  # more than a flush period
print(done, flush=True)
if sys.argv[3] == "hang":
    time.sleep(60)
"""


def run_script(tmp_path: Path, url: str, how: str) -> tuple[Path, int]:
    log = tmp_path / f"{how}.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", ENGINE_SCRIPT, url, str(log), how], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        done = int(proc.stdout.readline())
        if how == "hang":
            proc.kill()
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return log, done


def test_interpreter_exit_stops_the_engine_and_writes_the_end_line(
    server: FaultyServer, tmp_path: Path
) -> None:
    log, done = run_script(tmp_path, server.url, "exit")
    parsed = read_traffic_log(log)
    assert parsed.end is not None and parsed.end["requests"] == len(parsed.requests) >= done


def test_a_killed_run_keeps_everything_measured_before_the_last_flush(
    server: FaultyServer, tmp_path: Path
) -> None:
    log, done = run_script(tmp_path, server.url, "hang")
    parsed = read_traffic_log(log)
    assert parsed.end is None
    assert len(parsed.requests) >= done >= 20  # counted 0.45 s before the kill: on disk
