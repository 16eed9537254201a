"""The sandbox's serve Service balances over ready endpoints, as kube-proxy does.

Backends are small HTTP servers on loopback, each answering its own name; nothing
else is started.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from chaosraysvc.errors import SandboxError
from chaosraysvc.runtime.ports import free_port, listening_inodes
from chaosraysvc.sandbox import service
from chaosraysvc.sandbox.service import ServeService
from tests.support.loopback import LoopbackServer, QuietHandler

PERIOD = 0.1


class Backend:
    """An HTTP server standing for one node's Serve proxy."""

    def __init__(self, name: str, healthy: bool = True) -> None:
        self.name = name
        self.healthy = healthy
        self.port = free_port()
        outer = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path == "/-/healthz":
                    ok = outer.healthy
                    self.answer(200 if ok else 503, "success" if ok else "draining")
                else:
                    self.answer(200, outer.name)

            def do_POST(self) -> None:
                self.body()
                self.answer(200, outer.name)

        self.server = LoopbackServer(Handler, port=self.port)

    def stop(self) -> None:
        self.server.close()


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    started = [Backend("a"), Backend("b")]
    yield started
    for backend in started:
        backend.stop()


@pytest.fixture
def svc() -> Iterator[ServeService]:
    balancer = ServeService(free_port(), probe_period=PERIOD)
    balancer.start()
    yield balancer
    balancer.stop()


def wait_ready(balancer: ServeService, pods: set[str], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while set(balancer.ready()) != pods:
        assert time.monotonic() < deadline, f"ready {balancer.ready()}, wanted {pods}"
        time.sleep(0.05)


def ask(balancer: ServeService) -> str:
    # A new connection per request, as the HA sample's query loop makes.
    return requests.post(
        f"http://127.0.0.1:{balancer.port}/fruit/", json=["PEAR", 1], timeout=2
    ).text


def test_connections_are_spread_over_every_ready_endpoint(
    svc: ServeService, backends: list[Backend]
) -> None:
    svc.set_candidates({b.name: (b.port, 1) for b in backends})
    wait_ready(svc, {"a", "b"})

    answers = Counter(ask(svc) for _ in range(60))

    assert set(answers) == {"a", "b"}
    assert min(answers.values()) >= 10


def test_an_endpoint_failing_its_healthz_gets_no_traffic(
    svc: ServeService, backends: list[Backend]
) -> None:
    backends[1].healthy = False
    svc.set_candidates({b.name: (b.port, 1) for b in backends})
    wait_ready(svc, {"a"})
    time.sleep(PERIOD * 3)  # more probe rounds: b stays out

    assert svc.ready() == {"a": backends[0].port}
    assert {ask(svc) for _ in range(20)} == {"a"}


def test_a_pod_no_longer_selected_leaves_the_endpoints_at_once(
    svc: ServeService, backends: list[Backend]
) -> None:
    svc.set_candidates({b.name: (b.port, 1) for b in backends})
    wait_ready(svc, {"a", "b"})

    svc.set_candidates({"b": (backends[1].port, 1)})

    assert svc.ready() == {"b": backends[1].port}
    assert {ask(svc) for _ in range(20)} == {"b"}


def test_with_no_ready_endpoint_the_connection_is_reset(svc: ServeService) -> None:
    svc.set_candidates({"gone": (free_port(), 1)})
    time.sleep(PERIOD * 3)

    assert svc.ready() == {}
    with pytest.raises(requests.ConnectionError):
        ask(svc)


def test_a_dead_endpoint_fails_requests_until_its_probe_fails(
    backends: list[Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = ServeService(free_port(), probe_period=1.0)  # the next probe comes 1 s after ready
    svc.start()
    try:
        svc.set_candidates({b.name: (b.port, 1) for b in backends})
        wait_ready(svc, {"a", "b"})
        backends[0].stop()
        # Every connection is sent to the dead endpoint while it still counts as ready.
        monkeypatch.setattr(service.random, "choice", lambda ports: backends[0].port)

        with pytest.raises(requests.ConnectionError):  # no retry elsewhere, as with iptables
            ask(svc)
        assert "a" in svc.ready()
        wait_ready(svc, {"b"})
        monkeypatch.undo()
        assert {ask(svc) for _ in range(20)} == {"b"}
    finally:
        svc.stop()


def test_a_container_restarted_in_place_must_pass_its_probe_again(
    svc: ServeService, backends: list[Backend]
) -> None:
    svc.set_candidates({b.name: (b.port, 1) for b in backends})
    wait_ready(svc, {"a", "b"})

    svc.set_candidates({"a": (backends[0].port, 2), "b": (backends[1].port, 1)})

    assert set(svc.ready()) == {"b"}  # same name and port, new process: not ready yet
    wait_ready(svc, {"a", "b"})


def test_stop_resets_open_connections_and_ends_the_thread(
    backends: list[Backend],
) -> None:
    svc = ServeService(free_port(), probe_period=PERIOD)
    svc.start()
    svc.set_candidates({"a": (backends[0].port, 1)})
    wait_ready(svc, {"a"})
    kept = requests.Session()  # a keep-alive connection stays open through the Service
    assert kept.post(f"http://127.0.0.1:{svc.port}/fruit/", timeout=2).text == "a"

    svc.stop()

    assert not svc.alive()
    with pytest.raises(requests.ConnectionError):
        kept.post(f"http://127.0.0.1:{svc.port}/fruit/", timeout=2)


def test_stop_closes_the_service_port(backends: list[Backend]) -> None:
    balancer = ServeService(free_port())
    balancer.start()
    assert listening_inodes(balancer.port)

    balancer.stop()

    assert not listening_inodes(balancer.port)
    assert not balancer.alive()


def test_a_port_in_use_is_a_clear_error(backends: list[Backend]) -> None:
    with pytest.raises(SandboxError, match=rf"could not listen on 127.0.0.1:{backends[0].port}"):
        ServeService(backends[0].port).start()


@pytest.mark.asyncio
async def test_healthz_needs_a_200(backends: list[Backend]) -> None:
    backends[1].healthy = False

    assert await service.healthz_ok(backends[0].port)
    assert not await service.healthz_ok(backends[1].port)
    assert not await service.healthz_ok(free_port())
