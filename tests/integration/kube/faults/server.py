"""Run the API double on loopback in its own thread and event loop, and reach it by kubeconfig.

The `kubernetes` client is synchronous: it would block an event loop shared with the server,
so the server gets a thread of its own. Anything that touches the double's state from a test
goes through `DoubleServer.call`, which runs it on that loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import kmock
import yaml

from .apidouble import ApiDouble
from .standin import EndpointsStandIn

T = TypeVar("T")

TOKEN = "chaosraysvc-test-token"


class DoubleServer:
    """An `ApiDouble` served over HTTP on 127.0.0.1, its seeded endpoints filled from the pods."""

    def __init__(self, double: ApiDouble, objects: list[dict[str, Any]]) -> None:
        self.double = double
        self._objects = objects
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="k8s-api-double", daemon=True)

    def __enter__(self) -> DoubleServer:
        self._thread.start()
        if not self._ready.wait(15):
            self.__exit__(None, None, None)
            raise RuntimeError("the Kubernetes API double did not start within 15 s")
        if self._error is not None:
            self._thread.join(5)
            raise RuntimeError("the Kubernetes API double failed to start") from self._error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        if self._thread.is_alive():
            raise RuntimeError("the Kubernetes API double's thread did not stop")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        for obj in self._objects:
            self.double.put(obj)
        EndpointsStandIn(self.double).reconcile()
        async with self.double, kmock.Server(self.double) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the server's loop and return its result."""
        assert self._loop is not None
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=10)


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_kubeconfig(
    path: Path, server: str, token: str = TOKEN, namespace: str = "default"
) -> Path:
    """Write a kubeconfig whose current context reaches `server` with bearer `token`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "double", "cluster": {"server": server}}],
        "users": [{"name": "chaosraysvc", "user": {"token": token}}],
        "contexts": [
            {
                "name": "double",
                "context": {"cluster": "double", "user": "chaosraysvc", "namespace": namespace},
            }
        ],
        "current-context": "double",
    }
    path.write_text(yaml.safe_dump(config))
    return path
