"""SPDY/3.1, the server side, as the kubelet's streaming server speaks it (moby/spdystream).

The API server reaches a kubelet's `/exec` and `/portForward` by upgrading an HTTPS request to
`SPDY/3.1` (kubectl's WebSocket is translated or tunnelled by the API server, see
`chaosraysvc_lab.kubeletapi`). The client opens the streams (SYN_STREAM with headers such as
`streamType: stdout` or `port: 8080`); every stream is answered with a SYN_REPLY, data goes in
DATA frames, a side is closed by the FIN flag, PINGs are echoed, GOAWAY ends the connection.
Header blocks are zlib-compressed with the SPDY/3 dictionary, one compression context per
direction for the whole connection. spdystream has no flow control: WINDOW_UPDATE and
SETTINGS are read and ignored, as it does.

    conn = SpdyConnection(reader, writer, on_stream)
    await conn.serve()        # until the client goes away; on_stream(stream) per new stream
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable

logger = logging.getLogger("chaosraysvc.kubelet")

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1, 2, 3, 4, 6, 7, 8, 9,
)  # fmt: skip
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_CANCEL = 1, 5
CHUNK = 32 * 1024  # bytes per DATA frame written (spdystream writes one frame per Write)

_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base "
    "content-encoding content-language content-length content-location content-md5 "
    "content-range content-type date etag expect expires from host if-match if-modified-since "
    "if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer "
    "transfer-encoding upgrade user-agent vary via warning www-authenticate method get status "
    "200_OK version HTTP/1.1 url public set-cookie keep-alive origin"
)
_ENTRIES = [word.replace("_", " ") for word in _WORDS.split()]  # "200 OK" is one entry
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
    "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header dictionary (draft-mbelshe-httpbis-spdy-00 section 2.6.10.1): 1423 bytes.
DICTIONARY = b"".join(len(w).to_bytes(4, "big") + w.encode() for w in _ENTRIES) + _TAIL.encode()


class SpdyError(Exception):
    """The peer broke the protocol (a frame that cannot be parsed)."""


def encode_headers(headers: dict[str, list[str]]) -> bytes:
    """Return a SPDY/3 name/value block (uncompressed): lower-case names, values NUL-joined."""
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        key, value = name.lower().encode(), "\x00".join(values).encode()
        out += [struct.pack(">I", len(key)), key, struct.pack(">I", len(value)), value]
    return b"".join(out)


def decode_headers(block: bytes) -> dict[str, list[str]]:
    """Parse an uncompressed name/value block; raise `SpdyError` when it is truncated."""
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        offset, headers = 4, dict[str, list[str]]()
        for _ in range(count):
            (size,) = struct.unpack_from(">I", block, offset)
            name = block[offset + 4 : offset + 4 + size].decode().lower()
            offset += 4 + size
            (size,) = struct.unpack_from(">I", block, offset)
            value = block[offset + 4 : offset + 4 + size].decode()
            offset += 4 + size
            headers.setdefault(name, []).extend(value.split("\x00"))
        return headers
    except (struct.error, UnicodeDecodeError) as exc:
        raise SpdyError(f"bad header block: {exc}") from exc


class SpdyStream:
    """One stream opened by the client: its headers, what it sent, and our half to write."""

    def __init__(self, conn: SpdyConnection, stream_id: int, headers: dict[str, list[str]]):
        self.conn = conn
        self.id = stream_id
        self.headers = headers
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.remote_closed = False
        self.local_closed = False

    def header(self, name: str) -> str:
        return (self.headers.get(name.lower()) or [""])[0]

    async def read(self) -> bytes:
        """Return the next bytes the client sent; b"" once it closed its side (or reset)."""
        if self.remote_closed and self._incoming.empty():
            return b""
        return await self._incoming.get()

    def _feed(self, data: bytes) -> None:
        if data and not self.remote_closed:
            self._incoming.put_nowait(data)

    def _finish(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self._incoming.put_nowait(b"")

    async def write(self, data: bytes) -> None:
        """Send `data` (in frames of at most `CHUNK` bytes); nothing once our side is closed."""
        for start in range(0, len(data), CHUNK):
            if self.local_closed or self.conn.closed:
                return
            self.conn.send_data(self.id, data[start : start + CHUNK], 0)
            await self.conn.drain()

    async def close(self) -> None:
        """Close our side (an empty DATA frame with FIN), as spdystream's Close does."""
        if not self.local_closed and not self.conn.closed:
            self.local_closed = True
            self.conn.send_data(self.id, b"", FLAG_FIN)
            await self.conn.drain()

    def reset(self) -> None:
        """Abort the stream both ways (RST_STREAM CANCEL)."""
        if not self.conn.closed:
            self.conn.send_control(RST_STREAM, 0, struct.pack(">II", self.id, RST_CANCEL))
        self.local_closed = True
        self._finish()


StreamHandler = Callable[[SpdyStream], Awaitable[None] | None]


class SpdyConnection:
    """A server-side SPDY/3.1 connection over an upgraded (TLS) stream."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_stream: StreamHandler,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.on_stream = on_stream
        self.streams: dict[int, SpdyStream] = {}
        self.closed = False
        self.gone = asyncio.Event()  # the client went away (EOF, GOAWAY or an error)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zdict=DICTIONARY)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- writing ---------------------------------------------------------------------------

    def send_control(self, kind: int, flags: int, payload: bytes) -> None:
        head = struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload))
        self.writer.write(head + payload)

    def send_data(self, stream_id: int, data: bytes, flags: int) -> None:
        self.writer.write(struct.pack(">II", stream_id, (flags << 24) | len(data)) + data)

    def _compress(self, headers: dict[str, list[str]]) -> bytes:
        block = encode_headers(headers)
        return self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            self._gone()

    # -- reading ---------------------------------------------------------------------------

    async def serve(self) -> None:
        """Read frames until the client goes away; start `on_stream` for each new stream."""
        try:
            while not self.closed:
                head = await self.reader.readexactly(8)
                first, second = struct.unpack(">II", head)
                flags, length = second >> 24, second & 0xFFFFFF
                payload = await self.reader.readexactly(length) if length else b""
                if first & 0x80000000:
                    await self._control(first & 0xFFFF, flags, payload)
                else:
                    found = self.streams.get(first & 0x7FFFFFFF)
                    if found is not None:
                        found._feed(payload)
                        if flags & FLAG_FIN:
                            found._finish()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except SpdyError as exc:
            logger.info("spdy: closing the connection: %s", exc)
        finally:
            self._gone()

    async def _control(self, kind: int, flags: int, payload: bytes) -> None:
        if kind == SYN_STREAM:
            stream_id, _assoc = struct.unpack_from(">II", payload, 0)
            stream_id &= 0x7FFFFFFF
            try:
                block = self._inflate.decompress(payload[10:])
            except zlib.error as exc:
                raise SpdyError(f"header block of stream {stream_id}: {exc}") from exc
            stream = SpdyStream(self, stream_id, decode_headers(block))
            self.streams[stream_id] = stream
            if flags & FLAG_FIN:
                stream._finish()
            # spdystream replies once the handler accepted the stream; the client waits for it.
            self.send_control(SYN_REPLY, 0, struct.pack(">I", stream_id) + self._compress({}))
            result = self.on_stream(stream)
            if result is not None:
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        elif kind == RST_STREAM:
            (stream_id,) = struct.unpack_from(">I", payload, 0)
            if (reset := self.streams.get(stream_id & 0x7FFFFFFF)) is not None:
                reset.local_closed = True
                reset._finish()
        elif kind == PING:
            self.send_control(PING, 0, payload)  # echoed with its id, as spdystream does
        elif kind == GOAWAY:
            self._gone()
        elif kind == HEADERS:
            with contextlib.suppress(zlib.error):
                self._inflate.decompress(payload[4:])  # keep the compression context in step
            if flags & FLAG_FIN:
                (stream_id,) = struct.unpack_from(">I", payload, 0)
                if (ended := self.streams.get(stream_id & 0x7FFFFFFF)) is not None:
                    ended._finish()
        # SETTINGS, WINDOW_UPDATE: spdystream does no flow control; nor do we.

    def _gone(self) -> None:
        self.gone.set()
        for stream in self.streams.values():
            stream._finish()

    async def close(self) -> None:
        """Say GOAWAY and close the connection (what the kubelet does once a request is done)."""
        if self.closed:
            return
        with contextlib.suppress(ConnectionError, OSError):
            last = max(self.streams, default=0)
            self.send_control(GOAWAY, 0, struct.pack(">II", last, 0))
            await self.writer.drain()
        self.closed = True
        self._gone()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 2)
