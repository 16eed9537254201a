"""The sandbox's serve Service when each proxy has a port of its own: a kube-proxy stand-in.

With `chaosraysvc sandbox up --endpoint-ports`, every node's Serve proxy binds a port of
its own (an *endpoint*, as a pod IP is on Kubernetes) and the serve port is served by
this balancer, run inside the supervisor:

- The supervisor names the candidates: the pods selected by the Service (workers, and
  the head unless it is excluded) that run and are not being deleted, each with its
  port and its process generation. A pod being deleted leaves the endpoints at once, as
  a terminating pod does; a container restarted in place must pass its probe again.
- Readiness: each candidate's `/-/healthz` (what KubeRay's readiness probe asks) is
  probed every `PROBE_PERIOD_S` (5 s, KubeRay's period for Serve workers) with a
  `PROBE_TIMEOUT_S` timeout; one answer 200 makes it ready, one failure unready (KubeRay's
  failure threshold for Serve is 1).
- Each new connection goes to a random ready endpoint (kube-proxy's iptables mode).
  With none ready, or when the chosen one refuses, the client's connection is reset at
  once (a TCP RST, which on loopback usually fails the client's connect with ECONNRESET,
  where a Service without endpoints refuses it on Kubernetes); there is no retry, as there
  is none in the kernel's NAT. A backend that resets mid-response resets the client too.

Everything is bound to loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import threading
from collections.abc import Mapping

from chaosraysvc.errors import SandboxError

__all__ = ["PROBE_PERIOD_S", "Candidate", "ServeService", "healthz_ok"]

log = logging.getLogger("chaosraysvc.sandbox.service")
HOST = "127.0.0.1"
PROBE_PERIOD_S = 5.0
PROBE_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 1.0
CHUNK = 65536
Candidate = tuple[int, int]  # (proxy port, process generation, e.g. the pod's session id)


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
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
        return False


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close `writer`'s connection with a TCP RST (SO_LINGER 0), not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class ServeService:
    """A TCP balancer on `port` over the ready endpoints, in a thread of its own."""

    def __init__(self, port: int, probe_period: float = PROBE_PERIOD_S) -> None:
        self.port = port
        self.probe_period = probe_period
        self._lock = threading.Lock()
        self._candidates: dict[str, Candidate] = {}
        self._ready: dict[str, Candidate] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="serve-service", daemon=True)
        self._bound = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    # --- called from the supervisor's thread ---------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Bind the serve port and start serving; raise `SandboxError` if it cannot."""
        self._thread.start()
        bound = self._bound.wait(timeout)
        if not bound or self._error is not None:
            why = self._error if bound else f"not listening after {timeout:g} s"
            raise SandboxError(
                f"the serve Service could not listen on {HOST}:{self.port} ({why}): "
                "free the port or choose another with --serve-port"
            )

    def alive(self) -> bool:
        """Tell whether the balancer still serves (its thread runs)."""
        return self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        return self._error

    def set_candidates(self, candidates: Mapping[str, Candidate]) -> None:
        """Set the endpoints selected by the Service ({pod name: (port, generation)})."""
        with self._lock:
            self._candidates = dict(candidates)
            self._ready = {
                pod: key for pod, key in self._ready.items() if candidates.get(pod) == key
            }

    def ready(self) -> dict[str, int]:
        """Return the ready endpoints ({pod name: proxy port})."""
        with self._lock:
            return {pod: port for pod, (port, _) in self._ready.items()}

    def stop(self) -> None:
        """Stop accepting, reset open connections and end the thread."""
        stop = self._stop
        if self._thread.is_alive() and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                self._loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    # --- the event loop ----------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except Exception as exc:  # a failed bind, or a bug: the supervisor reports it
            self._error = exc
            log.exception("the serve Service stopped")
        finally:
            if not self._bound.is_set():
                self._error = self._error or RuntimeError("its event loop ended before binding")
                self._bound.set()
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._accept, HOST, self.port, reuse_address=True)
        self._bound.set()
        prober = asyncio.create_task(self._probe_forever())
        try:
            await self._stop.wait()
        finally:
            server.close()
            prober.cancel()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(prober, *self._handlers, return_exceptions=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    async def _probe_forever(self) -> None:
        while True:
            try:
                await self._probe_once()
            except Exception:  # never let one bad round freeze readiness
                log.exception("serve Service: probing the endpoints failed")
            await asyncio.sleep(self.probe_period)

    async def _probe_once(self) -> None:
        with self._lock:
            candidates = dict(self._candidates)
        answers = await asyncio.gather(*(healthz_ok(port) for port, _ in candidates.values()))
        with self._lock:
            self._ready = {
                pod: key
                for (pod, key), ok in zip(candidates.items(), answers, strict=True)
                if ok and self._candidates.get(pod) == key
            }

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._forward(reader, writer)
        except asyncio.CancelledError:
            _reset(writer)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            ports = [port for port, _ in self._ready.values()]
        if not ports:
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(HOST, random.choice(ports)), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            _reset(writer)
            return
        try:
            await asyncio.gather(
                _pipe(reader, up_writer, writer), _pipe(up_reader, writer, up_writer)
            )
        except asyncio.CancelledError:
            _reset(up_writer)
            raise
        finally:
            writer.close()
            up_writer.close()


async def _pipe(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, source_writer: asyncio.StreamWriter
) -> None:
    """Copy `source` to `sink` until end of stream; a reset on one side resets the other."""
    try:
        while chunk := await source.read(CHUNK):
            sink.write(chunk)
            await sink.drain()
    except OSError:
        _reset(sink)
        _reset(source_writer)
        return
    if sink.can_write_eof() and not sink.is_closing():
        with contextlib.suppress(OSError):
            sink.write_eof()
    else:
        sink.close()
