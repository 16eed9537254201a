"""The standalone probe scripts, run as a Chaos Toolkit `process` probe would run them."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Fruit(BaseHTTPRequestHandler):
    answer = b"12"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        status = 200 if self.answer != b"500" else 500
        self.send_response(status)
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Fruit)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(ROOT / "probes" / "query_loop.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_query_loop_counts_requests_and_exits_0_without_failures(
    server: ThreadingHTTPServer,
) -> None:
    Fruit.answer = b"12"
    proc = run("--url", f"http://127.0.0.1:{server.server_port}", "--requests", "20")
    result = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert (result["req_index"], result["num_fail"]) == (20, 0)


def test_query_loop_exits_1_on_wrong_answers_and_server_errors(
    server: ThreadingHTTPServer,
) -> None:
    url = f"http://127.0.0.1:{server.server_port}"
    Fruit.answer = b"13"
    wrong = run("--url", url, "--requests", "5")
    assert wrong.returncode == 1
    assert json.loads(wrong.stdout)["errors"] == {"wrong_answer": 5}
    Fruit.answer = b"500"
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
