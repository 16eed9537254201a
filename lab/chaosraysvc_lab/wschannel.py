"""The kubelet's WebSocket channel protocols (`channel.k8s.io`), the server side (RFC 6455).

A client that offers only `v4.channel.k8s.io` to the API server (older Python clients' exec,
the Python client's `portforward()`) is proxied through unchanged to the kubelet (only a
`v5.channel.k8s.io` exec and kubectl's port-forward tunnel are translated to SPDY): the
kubelet answers the WebSocket itself. Every message carries one channel: 0 stdin, 1 stdout,
2 stderr, 3 error (a JSON `Status` from v4 on), 4 resize. The binary protocols prefix the
channel as one byte; the `base64.` ones as an ASCII digit before the base64 of the data.

    ws = await accept(reader, writer, request_headers, PROTOCOLS)   # None: not upgraded
    await ws.send(STDOUT, b"hi")
    channel, data = await ws.recv()                                  # (-1, b"") once closed
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STDIN, STDOUT, STDERR, ERROR, RESIZE = range(5)
# What the kubelet's exec server accepts, its preference first.
PROTOCOLS = (
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
)
# Port-forward over a WebSocket: port i on channels 2i (data) and 2i + 1 (error).
PORTFORWARD_PROTOCOLS = ("v4.channel.k8s.io", "v4.base64.channel.k8s.io")
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def is_websocket(headers: dict[str, str]) -> bool:
    """Tell whether the request asks for a WebSocket (what `wsstream.IsWebSocketRequest` says)."""
    return "websocket" in headers.get("upgrade", "").lower() and "upgrade" in headers.get(
        "connection", ""
    ).lower().replace(" ", "").split(",")


class ChannelSocket:
    """An accepted WebSocket speaking one of the channel protocols."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = protocol
        self.base64 = "base64" in protocol
        self.v4 = protocol.startswith("v4.")
        self.closed = False

    async def send(self, channel: int, data: bytes) -> None:
        if self.closed:
            return
        if self.base64:
            await self._frame(OP_TEXT, str(channel).encode() + base64.b64encode(data))
        else:
            await self._frame(OP_BINARY, bytes([channel]) + data)

    async def _frame(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        if size < 126:
            head = struct.pack(">BB", 0x80 | opcode, size)
        elif size < 1 << 16:
            head = struct.pack(">BBH", 0x80 | opcode, 126, size)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 127, size)
        try:
            self.writer.write(head + payload)
            await self.writer.drain()
        except (ConnectionError, OSError):
            self.closed = True

    async def recv(self) -> tuple[int, bytes]:
        """Return the next (channel, data) the client sent; (-1, b"") once it closed."""
        message = bytearray()
        while True:
            try:
                first, second = await self.reader.readexactly(2)
                size = second & 0x7F
                if size == 126:
                    (size,) = struct.unpack(">H", await self.reader.readexactly(2))
                elif size == 127:
                    (size,) = struct.unpack(">Q", await self.reader.readexactly(8))
                mask = await self.reader.readexactly(4) if second & 0x80 else b""
                payload = bytearray(await self.reader.readexactly(size))
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                self.closed = True
                return -1, b""
            if mask:
                for i in range(len(payload)):
                    payload[i] ^= mask[i % 4]
            opcode = first & 0x0F
            if opcode == OP_CLOSE:
                await self.close()
                return -1, b""
            if opcode == OP_PING:
                await self._frame(OP_PONG, bytes(payload))
                continue
            if opcode == OP_PONG:
                continue
            message += payload
            if first & 0x80:  # FIN: the message is complete
                break
        if not message:
            return await self.recv()
        if self.base64:
            return int(chr(message[0])), base64.b64decode(bytes(message[1:]))
        return message[0], bytes(message[1:])

    async def close(self, code: int = 1000) -> None:
        if self.closed:
            return
        await self._frame(OP_CLOSE, struct.pack(">H", code))
        self.closed = True
        with contextlib.suppress(ConnectionError, OSError):
            self.writer.close()


async def accept(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    headers: dict[str, str],
    protocols: tuple[str, ...] = PROTOCOLS,
) -> ChannelSocket | None:
    """Answer the upgrade with 101 and the first protocol of `protocols` the client offered
    (none offered: the binary protocol, as the kubelet's "" entry); None (after a 400) when
    the client offered only protocols this server does not speak."""
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p]
    chosen = next((p for p in protocols if p in offered), "" if not offered else None)
    if chosen is None:
        body = f"unable to upgrade: no supported protocol among {offered}".encode()
        writer.write(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        return None
    key = headers.get("sec-websocket-key", "")
    digest = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {digest}",
    ]
    if chosen:
        lines.append(f"Sec-WebSocket-Protocol: {chosen}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    return ChannelSocket(reader, writer, chosen or "channel.k8s.io")
