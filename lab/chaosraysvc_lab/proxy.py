"""The node's userspace kube-proxy: one TCP listener per (ClusterIP, port) of every Service.

A sync thread lists Services and EndpointSlices every 0.5 s; the listeners live on one asyncio
loop in a daemon thread. Each accepted connection goes to a random ready endpoint of the
Service (the EndpointSlice port of the Service port's name, else its numeric `targetPort`);
with no ready endpoint the client's connection is closed at once. Listeners of Services that
are gone are closed. Binding a ClusterIP needs the host's `local` route for the Service range
(`ip route replace local 198.19.0.0/20 dev lo table local`), made by the node network.

    proxy = ServiceProxy(api).start()
    ...
    proxy.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import threading
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

logger = logging.getLogger("chaostoolkit")

SYNC_INTERVAL = 0.5
CONNECT_TIMEOUT = 5.0
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
Key = tuple[str, int]  # (ClusterIP, port)


def _ready(endpoint: Any) -> bool:
    conditions = endpoint.conditions
    return conditions is None or conditions.ready is None or bool(conditions.ready)


def build_table(services: list[Any], slices: list[Any]) -> dict[Key, list[Key]]:
    """Return {(ClusterIP, port): ready (endpoint IP, port)} for every TCP Service port."""
    by_service: dict[tuple[str, str], list[Any]] = {}
    for item in slices:
        name = (item.metadata.labels or {}).get(SERVICE_NAME_LABEL)
        if name and item.address_type == "IPv4":
            by_service.setdefault((item.metadata.namespace, name), []).append(item)
    table: dict[Key, list[Key]] = {}
    for svc in services:
        ip = svc.spec.cluster_ip
        if not ip or ip == "None" or svc.spec.type == "ExternalName":
            continue
        for port in svc.spec.ports or []:
            if (port.protocol or "TCP") != "TCP":
                continue
            backends: list[Key] = []
            for item in by_service.get((svc.metadata.namespace, svc.metadata.name), []):
                target = _target_port(port, item.ports or [])
                for endpoint in item.endpoints or [] if target else []:
                    if _ready(endpoint):
                        backends.extend((address, target) for address in endpoint.addresses)
            table[(ip, port.port)] = sorted(set(backends))
    return table


def _target_port(port: Any, slice_ports: list[Any]) -> int:
    """The slice's port named as the Service port, else a numeric targetPort; 0 if neither."""
    for candidate in slice_ports:
        if (candidate.name or "") == (port.name or "") and candidate.port:
            return int(candidate.port)
    target = port.target_port
    return int(target) if isinstance(target, int) or str(target or "").isdigit() else 0


class ServiceProxy:
    """Forward TCP connections to ClusterIPs to ready endpoints (kube-proxy's userspace mode)."""

    def __init__(
        self, api_client: client.ApiClient, static: dict[Key, list[Key]] | None = None
    ) -> None:
        """`static` fixes the backends of some ClusterIPs (the API server's `kubernetes`
        Service, whose endpoint is the host's loopback, which no EndpointSlice may hold)."""
        self.api_client = api_client
        self.static = dict(static or {})
        self._table: dict[Key, list[Key]] = {}
        self._listeners: dict[Key, asyncio.Server] = {}
        self._connections: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._loop_thread: threading.Thread | None = None
        self._sync_thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def listening(self) -> set[Key]:
        """The (ClusterIP, port) pairs with an open listener now."""
        return set(self._listeners)

    def start(self) -> ServiceProxy:
        """Start the loop, sync once, then keep syncing in a thread; return self."""
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="service-proxy-loop", daemon=True
        )
        self._loop_thread.start()
        self.sync()
        self._stop.clear()
        self._sync_thread = threading.Thread(
            target=self._sync_loop, name="service-proxy-sync", daemon=True
        )
        self._sync_thread.start()
        return self

    def stop(self) -> None:
        """Close every listener and connection and stop both threads (idempotent)."""
        self._stop.set()
        if self._sync_thread is not None:
            self._sync_thread.join(timeout=10)
            self._sync_thread = None
        if self._loop_thread is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(timeout=10)
            self._loop_thread = None
            self._loop.close()

    def sync(self) -> None:
        """List Services and EndpointSlices, then open and close listeners to match."""
        core = client.CoreV1Api(self.api_client)
        discovery = client.DiscoveryV1Api(self.api_client)
        services = core.list_service_for_all_namespaces(_request_timeout=5).items
        slices = discovery.list_endpoint_slice_for_all_namespaces(_request_timeout=5).items
        self._table = {**build_table(services, slices), **self.static}
        future = asyncio.run_coroutine_threadsafe(self._reconcile(set(self._table)), self._loop)
        future.result(timeout=10)

    def _sync_loop(self) -> None:
        while not self._stop.wait(SYNC_INTERVAL):
            try:
                self.sync()
            except (ApiException, HTTPError, OSError, TimeoutError) as exc:
                logger.warning("service proxy: cannot sync Services/EndpointSlices: %s", exc)

    async def _reconcile(self, wanted: set[Key]) -> None:
        for key in set(self._listeners) - wanted:
            self._listeners.pop(key).close()
        for key in wanted - set(self._listeners):
            ip, port = key
            try:
                self._listeners[key] = await asyncio.start_server(
                    functools.partial(self._accept, key), ip, port, reuse_address=True
                )
            except OSError as exc:  # retried at the next sync
                logger.warning("service proxy: cannot listen on %s:%d: %s", ip, port, exc)

    def _accept(self, key: Key, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._forward(key, reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _forward(
        self, key: Key, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        backends = self._table.get(key, [])
        upstream: asyncio.StreamWriter | None = None
        try:
            if not backends:
                return
            ip, port = random.choice(backends)
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(ip, port), CONNECT_TIMEOUT
            )
            upstream = up_writer
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, TimeoutError) as exc:
            logger.debug("service proxy: %s:%d connection ended: %s", *key, exc)
        finally:
            for end in (writer, upstream):
                if end is not None:
                    end.close()

    async def _shutdown(self) -> None:
        for server in self._listeners.values():
            server.close()
        self._listeners.clear()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close the writer (the other direction goes on)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
