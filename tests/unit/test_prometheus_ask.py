"""One query to Prometheus (chaosraysvc.serve.prometheus.ask) against loopback servers: an
answer, an HTTP error, a refused connection, and a server that accepts and never answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from chaosraysvc.serve import prometheus
from chaosraysvc.serve.prometheus import PrometheusError, ask
from tests.support.loopback import LoopbackServer, QuietHandler

pytestmark = pytest.mark.fast


class Answers(QuietHandler):
    def do_GET(self) -> None:
        if "bad" in self.path:
            self.answer(400, {"status": "error", "error": "parse error"})
        else:
            result = [{"metric": {}, "value": [1.0, "42"]}]
            self.answer(200, {"status": "success",
                              "data": {"resultType": "vector", "result": result}})  # fmt: skip


@pytest.fixture
def silent() -> Iterator[str]:
    """A listening socket nobody accepts from: connections complete, no answer ever comes."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_an_answer_is_its_one_value_and_an_error_names_the_query() -> None:
    with LoopbackServer(Answers) as server:
        assert ask(server.url, "up") == 42.0
        with pytest.raises(PrometheusError, match=r"query 'bad\(':.*parse error"):
            ask(server.url, "bad(")


def test_a_refused_connection_says_prometheus_did_not_answer() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed at once: nothing listens there
    with pytest.raises(PrometheusError, match=rf"127.0.0.1:{port} did not answer 'up'"):
        ask(f"http://127.0.0.1:{port}", "up")


@pytest.mark.timeout(20)  # without the deadline the query hangs: this fails it then
def test_a_server_that_never_answers_fails_the_query_in_time(
    silent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prometheus, "ANSWER_GRACE_S", 0.5)
    started = time.monotonic()
    with pytest.raises(PrometheusError, match=r"did not answer 'up' within 1.5 s"):
        ask(silent, "up", timeout=1)
    assert time.monotonic() - started < 5
