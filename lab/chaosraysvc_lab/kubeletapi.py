"""The kubelet API (HTTPS on the node's address, port 10250): logs, exec and port-forward.

`kubectl logs/exec/port-forward` go to the API server, which reaches the kubelet of the pod's
node at the Node's `InternalIP` (`--kubelet-preferred-address-types`) and
`status.daemonEndpoints.kubeletEndpoint.Port`, verifies its serving certificate against the
cluster CA (`--kubelet-certificate-authority`) and presents its kubelet-client certificate.
This server does what the kubelet's does for those paths:

- authentication by client certificate (signed by the cluster CA; none: 401) and
  authorization by a SubjectAccessReview (`create`/`get` on `nodes/proxy` of this node, as
  the kubelet's Webhook mode asks; answers cached 5 min when allowed, 30 s when denied);
- `GET /containerLogs/{ns}/{pod}/{container}` with `follow`, `previous`, `timestamps`,
  `tailLines`, `sinceSeconds`/`sinceTime`, `limitBytes`, `stream` (`chaosraysvc_lab.podlogs`);
- `/exec/{ns}/{pod}/{container}?command=..&input=&output=&error=&tty=` over SPDY/3.1
  (`v4.channel.k8s.io` .. `channel.k8s.io`: what the API server speaks after translating
  kubectl's WebSocket v5, or the Python client's) or over a WebSocket (`v4.channel.k8s.io`,
  passed through by the API server from clients that offer no v5);
- `/portForward/{ns}/{pod}` over SPDY/3.1 (`portforward.k8s.io`: kubectl's WebSocket tunnel is
  unwrapped by the API server), one data and one error stream per connection, or over a
  WebSocket (`?ports=`, the Python client's `portforward()`);
- `GET /pods`: the pods this kubelet runs, as it last saw them (a PodList);
- `GET /healthz`.

It runs an asyncio loop in a thread of the kubelet (`start()`, `stop()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from chaosraysvc_lab import podexec, podlogs, spdy, wschannel

logger = logging.getLogger("chaosraysvc.kubelet")
PORT = 10250
STREAM_CREATION_TIMEOUT_S = 30.0  # the kubelet's default
ALLOW_TTL_S, DENY_TTL_S = 300.0, 30.0  # the kubelet's webhook authorization cache
EXEC_PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                  "channel.k8s.io")  # fmt: skip
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
         "DELETE": "delete"}  # fmt: skip


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ContainerView(Protocol):
    """What the API needs from a pod the kubelet runs (`podrun.PodRun` implements it)."""

    netns: str

    def log_file(self, container: str, previous: bool) -> tuple[Path, Callable[[], bool]]: ...

    def exec_target(self, container: str) -> podexec.ExecTarget: ...


class PodSource(Protocol):
    def find_pod(self, namespace: str, name: str) -> ContainerView | None: ...

    def pod_objects(self) -> list[dict[str, Any]]: ...


REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           500: "Internal Server Error"}  # fmt: skip


class KubeletApi:
    """The kubelet's HTTPS server for `source`'s pods on `address:port`."""

    def __init__(
        self,
        source: PodSource,
        api_client: Any,
        node_name: str,
        address: str,
        cert: Path,
        key: Path,
        client_ca: Path,
        port: int = PORT,
    ) -> None:
        self.source = source
        self.api = api_client
        self.node_name = node_name
        self.address = address
        self.port = port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.context.load_verify_locations(client_ca)
        self.context.verify_mode = ssl.CERT_OPTIONAL  # no certificate: 401, as the kubelet
        self._decisions: dict[tuple[str, tuple[str, ...], str], tuple[bool, float]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> KubeletApi:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self.address, self.port, ssl=self.context)
                )
            except BaseException as exc:  # noqa: BLE001 - handed to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="kubelet-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)

    # -- HTTP -------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._request(reader, writer)
        except HttpError as exc:
            await _respond(writer, exc.status, exc.message.encode())
        except (TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:
            logger.exception("kubelet API request failed")
            self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
            with contextlib.suppress(Exception):
                await _respond(writer, 500, str(exc).encode())
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await asyncio.wait_for(reader.readline(), 30)
        if not line:
            return
        method, target, _version = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        while (raw := await asyncio.wait_for(reader.readline(), 30)) not in (b"\r\n", b"\n", b""):
            name, _, value = raw.decode("latin-1").partition(":")
            key = name.strip().lower()
            multi.setdefault(key, []).append(value.strip())
            headers[key] = ", ".join(multi[key])
        url = urlsplit(target)
        query = {k: v for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        path = [unquote(p) for p in url.path.split("/") if p]
        user, groups = _identity(writer)
        if not user:
            raise HttpError(401, "Unauthorized")
        if path == ["healthz"]:
            await _respond(writer, 200, b"ok")
            return
        await self._authorize(user, groups, method)
        route = path[0] if path else ""
        if route == "containerLogs" and len(path) == 4:
            await self._logs(writer, path[1], path[2], path[3], query)
        elif route == "exec" and len(path) in (4, 5):
            await self._exec(reader, writer, headers, multi, path[1], path[2], path[-1], query)
        elif route == "portForward" and len(path) in (3, 4):
            await self._port_forward(reader, writer, headers, multi, path[1], path[2], query)
        elif route == "pods" and len(path) == 1 and method == "GET":
            body = {"kind": "PodList", "apiVersion": "v1", "metadata": {},
                    "items": self.source.pod_objects()}  # fmt: skip
            await _respond(writer, 200, json.dumps(body).encode(), "application/json")
        else:
            raise HttpError(404, f"404 page not found: {url.path}")

    async def _authorize(self, user: str, groups: tuple[str, ...], method: str) -> None:
        verb = VERBS.get(method, "get")
        key = (user, groups, verb)
        cached = self._decisions.get(key)
        if cached is not None and cached[1] > time.monotonic():
            allowed = cached[0]
        else:
            loop = asyncio.get_running_loop()
            allowed = await loop.run_in_executor(None, self._review, user, groups, verb)
            ttl = ALLOW_TTL_S if allowed else DENY_TTL_S
            self._decisions[key] = (allowed, time.monotonic() + ttl)
        if not allowed:
            raise HttpError(
                403,
                f"Forbidden (user={user}, verb={verb}, resource=nodes, subresource(s)=[proxy])",
            )

    def _review(self, user: str, groups: tuple[str, ...], verb: str) -> bool:
        from kubernetes import client

        body: Any = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": list(groups),
                "resourceAttributes": {
                    "verb": verb,
                    "resource": "nodes",
                    "subresource": "proxy",
                    "name": self.node_name,
                },
            },
        }
        answer = client.AuthorizationV1Api(self.api).create_subject_access_review(body)
        return bool(answer.status and answer.status.allowed)

    def _pod(self, namespace: str, name: str) -> ContainerView:
        pod = self.source.find_pod(namespace, name)
        if pod is None:
            raise HttpError(404, f'pod "{name}" in namespace "{namespace}" not found')
        return pod

    # -- logs -------------------------------------------------------------------------------

    async def _logs(
        self,
        writer: asyncio.StreamWriter,
        namespace: str,
        name: str,
        container: str,
        query: dict[str, list[str]],
    ) -> None:
        try:
            options = podlogs.LogOptions.from_query({k: v[0] for k, v in query.items()})
        except ValueError as exc:
            raise HttpError(400, f"invalid log options: {exc}") from exc
        pod = self._pod(namespace, name)
        try:
            path, running = pod.log_file(container, options.previous)
        except LookupError as exc:
            raise HttpError(400, str(exc.args[0])) from exc
        loop = asyncio.get_running_loop()
        body, offset = await loop.run_in_executor(None, podlogs.read_log, path, options)
        limit = options.limit_bytes
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n"
        )
        sent = 0

        async def send(data: bytes) -> bool:
            nonlocal sent
            if limit is not None:
                data = data[: max(limit - sent, 0)]
            if data:
                writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                await writer.drain()
                sent += len(data)
            return limit is None or sent < limit

        more = await send(body)
        if options.follow and more and not options.previous:
            follow = podlogs.follow_log(path, options, offset, running)
            while more:
                chunk = await loop.run_in_executor(None, next, follow, None)
                if chunk is None or writer.is_closing():
                    break
                more = await send(chunk)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    # -- exec -------------------------------------------------------------------------------

    async def _exec(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: dict[str, str],
        multi: dict[str, list[str]],
        namespace: str,
        name: str,
        container: str,
        query: dict[str, list[str]],
    ) -> None:
        argv = query.get("command") or []
        if not argv:
            raise HttpError(400, "you must specify at least 1 command")

        def flag(key: str) -> bool:
            return (query.get(key) or ["false"])[0].lower() in ("true", "1")

        stdin, stdout, stderr, tty = flag("input"), flag("output"), flag("error"), flag("tty")
        stderr = stderr and not tty
        if not (stdin or stdout or stderr):
            raise HttpError(400, "you must specify at least 1 of stdin, stdout, stderr")
        pod = self._pod(namespace, name)
        try:
            target = pod.exec_target(container)
        except LookupError as exc:
            raise HttpError(404, str(exc.args[0])) from exc
        if wschannel.is_websocket(headers):
            await self._exec_websocket(reader, writer, headers, target, argv,
                                       (stdin, stdout, stderr, tty))  # fmt: skip
            return
        protocol = _handshake(multi, EXEC_PROTOCOLS)
        if protocol is None:
            raise HttpError(400, _no_protocol(multi, EXEC_PROTOCOLS))
        _upgrade(writer, protocol)
        expected = {"error"} | {s for s, on in (("stdin", stdin), ("stdout", stdout),
                                                ("stderr", stderr)) if on}  # fmt: skip
        if tty and protocol in ("v4.channel.k8s.io", "v3.channel.k8s.io"):
            expected.add("resize")
        streams: dict[str, spdy.SpdyStream] = {}
        complete = asyncio.Event()

        def on_stream(stream: spdy.SpdyStream) -> None:
            streams[stream.header("streamType")] = stream
            if expected <= set(streams):
                complete.set()

        conn = spdy.SpdyConnection(reader, writer, on_stream)
        serving = asyncio.ensure_future(conn.serve())
        try:
            await asyncio.wait_for(complete.wait(), STREAM_CREATION_TIMEOUT_S)
        except TimeoutError:
            logger.info("exec: timed out waiting for client to create streams")
            await conn.close()
            return

        def reader_of(kind: str) -> Callable[[], Awaitable[bytes]] | None:
            return streams[kind].read if kind in streams else None

        def writer_of(kind: str) -> Callable[[bytes], Awaitable[None]] | None:
            return streams[kind].write if kind in streams else None

        io = podexec.ExecStreams(reader_of("stdin"), writer_of("stdout"), writer_of("stderr"),
                                 reader_of("resize"), conn.gone)  # fmt: skip
        status = await _run_exec(target, argv, io, tty)
        error = streams["error"]
        if protocol == "v4.channel.k8s.io":
            await error.write(json.dumps(status, separators=(",", ":")).encode())
        elif status["status"] != "Success":
            await error.write(status["message"].encode())
        for kind in ("stdout", "stderr", "error"):
            if kind in streams:
                await streams[kind].close()
        await conn.close()
        serving.cancel()

    async def _exec_websocket(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: dict[str, str],
        target: podexec.ExecTarget,
        argv: list[str],
        wanted: tuple[bool, bool, bool, bool],
    ) -> None:
        stdin, stdout, stderr, tty = wanted
        ws = await wschannel.accept(reader, writer, headers)
        if ws is None:
            return
        # The kubelet's hello: an empty message on the lowest writable channel.
        first = wschannel.STDOUT if stdout else wschannel.STDERR if stderr else wschannel.ERROR
        await ws.send(first, b"")
        inputs: asyncio.Queue[bytes] = asyncio.Queue()
        resizes: asyncio.Queue[bytes] = asyncio.Queue()
        gone = asyncio.Event()

        async def receive() -> None:
            while True:
                channel, data = await ws.recv()
                if channel < 0:
                    break
                if channel == wschannel.STDIN and data:
                    inputs.put_nowait(data)
                elif channel == wschannel.RESIZE and data:
                    resizes.put_nowait(data)
            inputs.put_nowait(b"")
            resizes.put_nowait(b"")
            gone.set()

        receiving = asyncio.ensure_future(receive())

        def sender(channel: int) -> Callable[[bytes], Awaitable[None]]:
            return lambda data: ws.send(channel, data)

        io = podexec.ExecStreams(
            inputs.get if stdin else None,
            sender(wschannel.STDOUT) if stdout else None,
            sender(wschannel.STDERR) if stderr else None,
            resizes.get if tty else None,
            gone,
        )
        status = await _run_exec(target, argv, io, tty)
        if ws.v4:
            await ws.send(wschannel.ERROR, json.dumps(status, separators=(",", ":")).encode())
        elif status["status"] != "Success":
            await ws.send(wschannel.ERROR, status["message"].encode())
        await ws.close()
        receiving.cancel()

    # -- port-forward -----------------------------------------------------------------------

    async def _port_forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: dict[str, str],
        multi: dict[str, list[str]],
        namespace: str,
        name: str,
        query: dict[str, list[str]],
    ) -> None:
        pod = self._pod(namespace, name)
        if wschannel.is_websocket(headers):
            await self._port_forward_websocket(reader, writer, headers, pod, name, query)
            return
        protocol = _handshake(multi, (PORTFORWARD_PROTOCOL,))
        if protocol is None:
            raise HttpError(400, _no_protocol(multi, (PORTFORWARD_PROTOCOL,)))
        _upgrade(writer, protocol)
        pairs: dict[str, dict[str, spdy.SpdyStream]] = {}
        tasks: set[asyncio.Task[None]] = set()

        def on_stream(stream: spdy.SpdyStream) -> None:
            kind = stream.header("streamType")
            request = stream.header("requestID") or str(
                stream.id if kind == "error" else stream.id - 2
            )
            pair = pairs.setdefault(request, {})
            pair[kind] = stream
            if {"data", "error"} <= set(pair):
                del pairs[request]
                task = asyncio.ensure_future(_forward(pod.netns, pair["data"], pair["error"],
                                                      name))  # fmt: skip
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        conn = spdy.SpdyConnection(reader, writer, on_stream)
        await conn.serve()
        for task in list(tasks):
            task.cancel()
        await conn.close()

    async def _port_forward_websocket(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: dict[str, str],
        pod: ContainerView,
        name: str,
        query: dict[str, list[str]],
    ) -> None:
        """The kubelet's WebSocket port-forward (the Python client's): `?ports=a,b`, port i on
        channels 2i (data) and 2i+1 (error), each opened by the port as 2 little-endian bytes."""
        try:
            given = query.get("port", []) + query.get("ports", [])  # the API server sends `port`
            ports = [int(p) for v in given for p in v.split(",")]
        except ValueError as exc:
            raise HttpError(400, f"unable to parse the ports: {exc}") from exc
        if not ports or not all(0 < p < 65536 for p in ports):
            raise HttpError(400, 'query parameter "port" is required')
        ws = await wschannel.accept(reader, writer, headers, wschannel.PORTFORWARD_PROTOCOLS)
        if ws is None:
            return
        loop = asyncio.get_running_loop()
        sinks: dict[int, asyncio.StreamWriter] = {}
        pumps: list[asyncio.Future[None]] = []
        for index, port in enumerate(ports):
            for channel in (2 * index, 2 * index + 1):
                await ws.send(channel, port.to_bytes(2, "little"))
            try:
                sock = await loop.run_in_executor(None, podexec.dial_in_pod, pod.netns, port)
            except OSError as exc:
                message = f"error forwarding port {port} to pod {name}: {exc}"
                await ws.send(2 * index + 1, message.encode())
                continue
            conn_reader, sinks[index] = await asyncio.open_connection(sock=sock)
            pumps.append(asyncio.ensure_future(_socket_to_channel(conn_reader, ws, 2 * index)))

        async def receive() -> None:
            while True:
                channel, data = await ws.recv()
                if channel < 0:
                    return
                sink = sinks.get(channel // 2)
                if sink is not None and channel % 2 == 0 and data:
                    sink.write(data)
                    with contextlib.suppress(ConnectionError, OSError):
                        await sink.drain()

        # Done when the client goes away, or when every forwarded connection has ended.
        receiving: asyncio.Future[Any] = asyncio.ensure_future(receive())
        forwarded: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*pumps))
        await asyncio.wait([receiving, forwarded], return_when=asyncio.FIRST_COMPLETED)
        for sink in sinks.values():
            sink.close()
        for task in (receiving, forwarded, *pumps):
            task.cancel()
        await asyncio.gather(receiving, forwarded, *pumps, return_exceptions=True)
        await ws.close()


async def _socket_to_channel(
    conn_reader: asyncio.StreamReader, ws: wschannel.ChannelSocket, channel: int
) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await conn_reader.read(65536):
            await ws.send(channel, chunk)


async def _run_exec(
    target: podexec.ExecTarget, argv: list[str], io: podexec.ExecStreams, tty: bool
) -> dict[str, Any]:
    """Run the command; return the Status the kubelet writes on the error stream."""
    try:
        code = await podexec.exec_in(target, argv, io, tty)
    except OSError as exc:
        message = f"error executing command in container: {exc}"
        return {"metadata": {}, "status": "Failure", "message": message,
                "reason": "InternalError", "code": 500}  # fmt: skip
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: command '{' '.join(argv)}' "
        f"exited with {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


async def _forward(
    netns: str, data: spdy.SpdyStream, error: spdy.SpdyStream, pod_name: str
) -> None:
    """Copy one forwarded connection between the data stream and localhost:port in the pod."""
    port = int(data.header("port") or 0)
    loop = asyncio.get_running_loop()
    try:
        sock = await loop.run_in_executor(None, podexec.dial_in_pod, netns, port)
    except OSError as exc:
        message = f"error forwarding port {port} to pod {pod_name}: {exc}"
        await error.write(message.encode())
        data.reset()
        error.reset()
        return
    conn_reader, conn_writer = await asyncio.open_connection(sock=sock)

    async def upstream() -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await data.read():
                conn_writer.write(chunk)
                await conn_writer.drain()
            if conn_writer.can_write_eof():
                conn_writer.write_eof()

    async def downstream() -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await conn_reader.read(65536):
                await data.write(chunk)
        await data.close()

    up = asyncio.ensure_future(upstream())
    try:
        await downstream()
        await asyncio.wait([up], timeout=1)
    finally:
        up.cancel()
        conn_writer.close()
        await error.close()


def _identity(writer: asyncio.StreamWriter) -> tuple[str, tuple[str, ...]]:
    """The verified client certificate's user (CN) and groups (O); ("", ()) without one."""
    ssl_object = writer.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return "", ()
    user, groups = "", []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                user = value
            elif key == "organizationName":
                groups.append(value)
    return user, tuple(groups)


def _handshake(multi: dict[str, list[str]], supported: tuple[str, ...]) -> str | None:
    """`httpstream.Handshake`: the first protocol the client asked for that we support (the
    client's order); "" when it asked for none (v1 fallback); None when none matches."""
    asked = [p.strip() for v in multi.get("x-stream-protocol-version", []) for p in v.split(",")]
    if not asked:
        return ""
    return next((p for p in asked if p in supported), None)


def _no_protocol(multi: dict[str, list[str]], supported: tuple[str, ...]) -> str:
    asked = multi.get("x-stream-protocol-version", [])
    return f"unable to upgrade: unable to negotiate protocol: client supports {asked}, " + (
        f"server supports {list(supported)}"
    )


def _upgrade(writer: asyncio.StreamWriter, protocol: str) -> None:
    lines = ["HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Upgrade: SPDY/3.1"]
    if protocol:
        lines.append(f"X-Stream-Protocol-Version: {protocol}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())


async def _respond(
    writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str = ""
) -> None:
    reason = REASONS.get(status, "OK" if status == 200 else "Error")
    kind = content_type or "text/plain; charset=utf-8"
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
        f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body) + 1}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
        + b"\n"
    )
    await writer.drain()
