"""The sandbox's serve Service when each proxy has a port of its own: a kube-proxy stand-in.

With `chaosraysvc sandbox up --endpoint-ports`, every node's Serve proxy binds a port of
its own (an *endpoint*, as a pod IP is on Kubernetes) and the serve port is served by
this balancer, run inside the supervisor:

- The supervisor names the candidates: the pods selected by the Service (workers, and
  the head unless it is excluded) that run and are not being deleted. A pod being
  deleted leaves the endpoints at once, as a terminating pod does.
- Readiness: each candidate's `/-/healthz` (what KubeRay's readiness probe asks) is
  probed every `PROBE_PERIOD_S`; one answer 200 makes it ready, one failure unready.
- Each new connection goes to a random ready endpoint (kube-proxy's iptables mode);
  with none ready, or when the chosen one refuses, the client's connection is reset at
  once: there is no retry, as there is none in the kernel's NAT.

Everything is bound to loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Mapping

from chaosraysvc.errors import SandboxError

__all__ = ["PROBE_PERIOD_S", "ServeService", "healthz_ok"]

HOST = "127.0.0.1"
PROBE_PERIOD_S = 1.0
PROBE_TIMEOUT_S = 1.0
CONNECT_TIMEOUT_S = 1.0
CHUNK = 65536


async def healthz_ok(port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Tell whether the proxy on `port` answers `GET /-/healthz` with 200."""

    async def ask() -> bool:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(
                f"GET /-/healthz HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            status = await reader.readline()
            return status.split(b" ", 2)[1:2] == [b"200"]
        finally:
            writer.close()

    try:
        return await asyncio.wait_for(ask(), timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False


class ServeService:
    """A TCP balancer on `port` over the ready endpoints, in a thread of its own."""

    def __init__(self, port: int, probe_period: float = PROBE_PERIOD_S) -> None:
        self.port = port
        self.probe_period = probe_period
        self._lock = threading.Lock()
        self._candidates: dict[str, int] = {}
        self._ready: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="serve-service", daemon=True)
        self._bound = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self.connections_total = 0

    # --- called from the supervisor's thread ---------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Bind the serve port and start serving; raise `SandboxError` if it cannot."""
        self._thread.start()
        if not self._bound.wait(timeout) or self._error is not None:
            raise SandboxError(
                f"the serve Service could not listen on {HOST}:{self.port}: {self._error!r}"
            )

    def set_candidates(self, candidates: Mapping[str, int]) -> None:
        """Set the endpoints selected by the Service ({pod name: proxy port})."""
        with self._lock:
            self._candidates = dict(candidates)
            self._ready = {
                pod: port for pod, port in self._ready.items() if candidates.get(pod) == port
            }

    def ready(self) -> dict[str, int]:
        """Return the ready endpoints ({pod name: proxy port})."""
        with self._lock:
            return dict(self._ready)

    def stop(self) -> None:
        """Stop accepting, reset open connections and end the thread."""
        if not self._thread.is_alive():
            return
        stop = self._stop
        if stop is not None:
            self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout=5)

    # --- the event loop ----------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except OSError as exc:  # start() reports a failed bind
            self._error = exc
        finally:
            if not self._bound.is_set():
                self._error = self._error or RuntimeError("its event loop ended before binding")
                self._bound.set()
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, HOST, self.port, reuse_address=True)
        self._bound.set()
        prober = asyncio.create_task(self._probe_forever())
        try:
            await self._stop.wait()
        finally:
            prober.cancel()
            server.close()
            for writer in list(self._connections):
                writer.transport.abort()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
            await server.wait_closed()

    async def _probe_forever(self) -> None:
        while True:
            with self._lock:
                candidates = dict(self._candidates)
            answers = await asyncio.gather(*(healthz_ok(port) for port in candidates.values()))
            with self._lock:
                self._ready = {
                    pod: port
                    for (pod, port), ok in zip(candidates.items(), answers, strict=True)
                    if ok and self._candidates.get(pod) == port
                }
            await asyncio.sleep(self.probe_period)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_total += 1
        with self._lock:
            ports = list(self._ready.values())
        if not ports:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(HOST, random.choice(ports)), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        self._connections.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._connections.difference_update((writer, up_writer))
            writer.close()
            up_writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy `source` to `sink` until end of stream; a broken side resets the other."""
    try:
        while chunk := await source.read(CHUNK):
            sink.write(chunk)
            await sink.drain()
    except (OSError, asyncio.IncompleteReadError):
        sink.transport.abort()
        return
    if sink.can_write_eof() and not sink.is_closing():
        with contextlib.suppress(OSError):
            sink.write_eof()
    else:
        sink.close()
