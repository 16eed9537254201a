"""The standalone probe scripts, run as a Chaos Toolkit `process` probe would run them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.loopback import LoopbackServer, QuietHandler

ROOT = Path(__file__).resolve().parents[2]


class Fruit(QuietHandler):
    fruit = b"12"

    def do_POST(self) -> None:
        self.body()
        self.answer(200 if self.fruit != b"500" else 500, self.fruit)


@pytest.fixture()
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(Fruit) as httpd:
        yield httpd


def run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(ROOT / "probes" / "query_loop.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_query_loop_counts_requests_and_exits_0_without_failures(
    server: LoopbackServer,
) -> None:
    Fruit.fruit = b"12"
    proc = run("--url", server.url, "--requests", "20")
    result = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert (result["req_index"], result["num_fail"]) == (20, 0)


def test_query_loop_exits_1_on_wrong_answers_and_server_errors(
    server: LoopbackServer,
) -> None:
    url = server.url
    Fruit.fruit = b"13"
    wrong = run("--url", url, "--requests", "5")
    assert wrong.returncode == 1
    assert json.loads(wrong.stdout)["errors"] == {"wrong_answer": 5}
    Fruit.fruit = b"500"
    failing = run("--url", url, "--requests", "3")
    assert json.loads(failing.stdout)["errors"] == {"http_500": 3}


def test_query_loop_counts_refused_connections() -> None:
    from chaosraysvc.runtime.ports import free_port

    proc = run("--url", f"http://127.0.0.1:{free_port()}", "--requests", "2", "--timeout", "0.5")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["num_fail"] == 2


def test_query_loop_rejects_a_body_that_is_not_json() -> None:
    proc = run("--body", "{oops", "--requests", "1")
    assert proc.returncode == 2 and "must be JSON" in proc.stderr
