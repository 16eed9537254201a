"""The kubelet API's wire formats, hermetic: SPDY/3.1 frames, CRI log lines, channel messages.

The integration tests drive them with kubectl through the real API server; these pin the
details a client depends on (the SPDY/3 dictionary, the header block layout, a stream's FIN,
the CRI log's partial lines and the options of `GET /containerLogs`).
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import zlib
from pathlib import Path

from chaosraysvc_lab import podlogs, spdy, wschannel


def test_the_spdy_dictionary_is_the_spdy3_one() -> None:
    # sha256 of spdystream's headerDictionary (moby/spdystream v0.5.0 spdy/dictionary.go)
    digest = hashlib.sha256(spdy.DICTIONARY).hexdigest()
    assert (len(spdy.DICTIONARY), digest) == (
        1423,
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02",
    )


def test_header_blocks_round_trip_with_lower_case_names_and_nul_joined_values() -> None:
    block = spdy.encode_headers({"StreamType": ["stdout"], "X-Multi": ["a", "b"]})

    assert spdy.decode_headers(block) == {"streamtype": ["stdout"], "x-multi": ["a", "b"]}
    assert block[:4] == struct.pack(">I", 2)


class _Client:
    """A SPDY client side, as client-go's: one compression context for the connection."""

    def __init__(self) -> None:
        self.deflate = zlib.compressobj(zdict=spdy.DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)

    def syn_stream(self, stream_id: int, headers: dict[str, list[str]], fin: bool = False) -> bytes:
        block = self.deflate.compress(spdy.encode_headers(headers))
        block += self.deflate.flush(zlib.Z_SYNC_FLUSH)
        payload = struct.pack(">IIH", stream_id, 0, 0) + block
        flags = spdy.FLAG_FIN if fin else 0
        return struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, (flags << 24) | len(payload)) + payload

    @staticmethod
    def data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
        flags = spdy.FLAG_FIN if fin else 0
        return struct.pack(">II", stream_id, (flags << 24) | len(data)) + data

    def frames(self, raw: bytes) -> list[tuple[str, int, int, bytes]]:
        out, offset = [], 0
        while offset < len(raw):
            first, second = struct.unpack_from(">II", raw, offset)
            length = second & 0xFFFFFF
            payload = raw[offset + 8 : offset + 8 + length]
            offset += 8 + length
            if first & 0x80000000:
                kind = first & 0xFFFF
                if kind == spdy.SYN_REPLY:
                    self.inflate.decompress(payload[4:])
                out.append(("control", kind, second >> 24, payload))
            else:
                out.append(("data", first, second >> 24, payload))
        return out


def test_a_spdy_stream_is_replied_fed_closed_and_the_connection_ends_with_goaway() -> None:
    client = _Client()

    async def scenario() -> bytes:
        reader = asyncio.StreamReader()
        written = bytearray()

        class Writer:
            def write(self, data: bytes) -> None:
                written.extend(data)

            async def drain(self) -> None:
                return None

            def close(self) -> None:
                return None

            async def wait_closed(self) -> None:
                return None

        received: list[bytes] = []

        async def on_stream(stream: spdy.SpdyStream) -> None:
            assert stream.header("streamType") == "stdin"
            while data := await stream.read():
                received.append(data)
            await stream.write(b"echo:" + b"".join(received))
            await stream.close()

        conn = spdy.SpdyConnection(reader, Writer(), on_stream)  # type: ignore[arg-type]
        reader.feed_data(client.syn_stream(1, {"streamType": ["stdin"]}))
        reader.feed_data(client.data(1, b"hello "))
        reader.feed_data(client.data(1, b"world", fin=True))
        ping = struct.pack(">HHI", 0x8003, spdy.PING, 4) + struct.pack(">I", 7)
        reader.feed_data(ping)
        serving = asyncio.ensure_future(conn.serve())
        await asyncio.sleep(0.05)
        await conn.close()
        reader.feed_eof()
        await serving
        return bytes(written)

    frames = client.frames(asyncio.run(scenario()))

    kinds = [(f[0], f[1]) for f in frames]
    assert kinds[0] == ("control", spdy.SYN_REPLY)
    assert ("control", spdy.PING) in kinds
    data = [f for f in frames if f[0] == "data"]
    assert data[0][3] == b"echo:hello world"
    assert (data[-1][2], data[-1][3]) == (spdy.FLAG_FIN, b"")  # our side closed
    assert kinds[-1] == ("control", spdy.GOAWAY)


def test_cri_log_lines_carry_time_stream_and_partial_flag(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(
        b"2026-12-04T21:30:01.000000001Z stdout F one\n"
        b"2026-12-04T21:30:02.000000002Z stderr P tw\n"
        b"2026-12-04T21:30:02.500000000Z stderr F o\n"
        b"2026-12-04T21:30:03.000000003Z stdout F three\n"
        b"2026-12-04T21:30:04.000000004Z stdout F being-writ"  # no newline yet: not served
    )

    whole, offset = podlogs.read_log(path, podlogs.LogOptions())
    tail, _ = podlogs.read_log(path, podlogs.LogOptions(tail_lines=2))
    stamped, _ = podlogs.read_log(path, podlogs.LogOptions(tail_lines=1, timestamps=True))
    errors, _ = podlogs.read_log(path, podlogs.LogOptions(stream="Stderr"))
    since = podlogs.parse_time("2026-12-04T21:30:02.9Z")
    recent, _ = podlogs.read_log(path, podlogs.LogOptions(since=since))

    assert whole == b"one\ntwo\nthree\n"
    assert offset == path.read_bytes().rfind(b"\n") + 1
    assert tail == b"two\nthree\n"  # a partial entry belongs to the line it ends in
    assert stamped == b"2026-12-04T21:30:03.000000003Z three\n"
    assert errors == b"two\n"
    assert recent == b"three\n"


def test_log_options_are_read_from_the_kubelet_query() -> None:
    options = podlogs.LogOptions.from_query(
        {"follow": "true", "tailLines": "5", "sinceSeconds": "10", "timestamps": "true"},
        now=1000.0,
    )

    assert options == podlogs.LogOptions(
        follow=True, timestamps=True, tail_lines=5, since=990.0, stream="All"
    )


def test_websocket_channel_protocol_is_negotiated_in_the_kubelets_order() -> None:
    async def scenario(offered: str) -> tuple[str, bytes]:
        writer_data = bytearray()

        class Writer:
            def write(self, data: bytes) -> None:
                writer_data.extend(data)

            async def drain(self) -> None:
                return None

        headers = {"sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
                   "sec-websocket-protocol": offered}  # fmt: skip
        ws = await wschannel.accept(asyncio.StreamReader(), Writer(), headers)  # type: ignore[arg-type]
        return (ws.protocol if ws else ""), bytes(writer_data)

    chosen, answer = asyncio.run(scenario("base64.channel.k8s.io, v4.channel.k8s.io"))
    refused, refusal = asyncio.run(scenario("v5.channel.k8s.io"))

    assert chosen == "v4.channel.k8s.io"
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer  # RFC 6455's example
    assert refused == "" and refusal.startswith(b"HTTP/1.1 400")
