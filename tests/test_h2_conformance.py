"""HTTP/2 conformance (RFC 9113, RFC 7541) and abuse resistance, frame by frame over h2c prior knowledge.

The checklist is h2spec's case list (http2/ and hpack/), rewritten as pytest functions on a raw-frame
client (tests/h2_client.py), plus the attacks of RFC 9113 section 10.5 with bounded counts. Each test names
the section it checks; where the RFC allows several answers (a stream error may be escalated to a
connection error, 5.4.1; GOAWAY before a close is SHOULD, the close is MUST; a malformed request MAY get
a 4xx response first, 8.1.1) every allowed answer passes.

The server under test is hatchway (``background(app, http2=True, <limits>)``). To check the client and the
expectations against a reference server, set ``H2_CONFORMANCE_SERVER=hypercorn``: hypercorn then serves
tests.h2_fixtures:app from a subprocess (it lacks several flood protections, so those tests fail there).
"""

from __future__ import annotations

import gc
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("h2")
pytest.importorskip("hyperframe")
pytest.importorskip("hpack")

from hyperframe.frame import (
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    SettingsFrame,
)

from tests.h2_client import (
    END_HEADERS,
    END_STREAM,
    PADDED,
    PREFACE,
    ConnectionClosed,
    ErrorCode,
    FrameType,
    H2Client,
    Setting,
    hpack_indexed,
    hpack_literal,
    hpack_string,
    hpack_table_size_update,
    huffman,
    literal_block,
    raw_frame,
)
from tests.h2_fixtures import H2Server, h2_server, pattern_body
from tests.utils import UNIT

pytestmark = pytest.mark.timeout(120)

WAIT = 5 * UNIT  # every single wait on the server
E = ErrorCode


# -- fixtures ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[H2Server]:
    """One server with the default limits for the module (each test opens its own connections)."""
    with h2_server(tmp_path_factory.mktemp("h2-server")) as running:
        yield running


@pytest.fixture
def connect(server: H2Server) -> Iterator[Any]:
    """``connect(settings=None, handshake=True, **client_options)``: a client, closed after the test."""
    clients: list[H2Client] = []

    def open_client(
        settings: dict[int, int] | None = None,
        *,
        handshake: bool = True,
        target: H2Server | None = None,
        **kw: Any,
    ) -> H2Client:
        srv = target or server
        client = H2Client(srv.host, srv.port, timeout=WAIT, **kw)
        clients.append(client)
        if handshake:
            client.handshake(settings)
        return client

    yield open_client
    for client in clients:
        client.close()


def assert_serves(host: str, port: int) -> None:
    """A fresh connection still gets a response (the server survived whatever came before)."""
    with H2Client(host, port, timeout=WAIT) as client:
        client.handshake()
        stream = client.response(client.request("GET", "/"))
        assert stream.status == 200, client.summary()
        assert bytes(stream.body) == b"ok"


def assert_connection_usable(client: H2Client) -> None:
    """The connection (and its HPACK state) still works: the next request gets its response."""
    stream = client.response(client.request("GET", "/size/5"))
    assert stream.status == 200, client.summary()
    assert bytes(stream.body) == pattern_body(5)


def open_post(client: H2Client, path: str = "/echo", extra: list[tuple[str, str]] | None = None) -> int:
    """A request whose body has not been sent yet: the stream stays open on the server."""
    sid = client.new_stream_id()
    client.send_headers(sid, client.request_headers("POST", path, extra=extra or []), end_stream=False)
    return sid


def settle(client: H2Client) -> None:
    """Wait until the server has processed everything sent so far (a PING round trip, RFC 9113 6.7)."""
    opaque = struct.pack(">d", time.monotonic())
    client.ping(opaque)
    client.collect(lambda f: isinstance(f, PingFrame) and "ACK" in f.flags and f.opaque_data == opaque)


# == 3.4 HTTP/2 connection preface ===========================================================================
def test_server_preface_is_a_settings_frame(connect: Any) -> None:
    # RFC 9113 3.4: the server connection preface is a SETTINGS frame, the first frame the server sends.
    client = connect(handshake=False)
    client.send(PREFACE + SettingsFrame(0).serialize())
    first = client.read_frame()
    assert isinstance(first, SettingsFrame), client.summary()
    assert "ACK" not in first.flags


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SettingsFrame(0).serialize(), id="corrupt-magic"),
        pytest.param(b"PRI * HTTP/2.0\r\n\r\n\r\n\r\n\r\n" + b"\0" * 16, id="truncated-magic"),
    ],
)
def test_invalid_preface_closes_the_connection(server: H2Server, data: bytes) -> None:
    # RFC 9113 3.4: an invalid connection preface is a connection error PROTOCOL_ERROR; the GOAWAY MAY be
    # omitted. A server that also speaks HTTP/1.1 on the port may answer it as a bad HTTP/1 request.
    with socket.create_connection((server.host, server.port), timeout=WAIT) as sock:
        sock.sendall(data)
        received = bytearray()
        deadline = time.monotonic() + WAIT
        while True:
            assert time.monotonic() < deadline, f"connection still open after {WAIT} s: {bytes(received)!r}"
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    if received.startswith(b"HTTP/1."):
        status = int(received.split(b" ", 2)[1])
        assert 400 <= status < 600, bytes(received[:200])
        return
    # HTTP/2 frames: anything but a GOAWAY with another code than PROTOCOL_ERROR.
    offset = 0
    while offset + 9 <= len(received):
        length = int.from_bytes(received[offset : offset + 3], "big")
        frame_type = received[offset + 3]
        payload = bytes(received[offset + 9 : offset + 9 + length])
        if frame_type == FrameType.GOAWAY and len(payload) >= 8:
            assert struct.unpack(">L", payload[4:8])[0] == E.PROTOCOL_ERROR, bytes(received)
        offset += 9 + length


def test_preface_not_followed_by_settings(connect: Any) -> None:
    # RFC 9113 3.4: the client preface is the magic followed by a SETTINGS frame (which MAY be empty);
    # anything else is an invalid preface: connection error PROTOCOL_ERROR.
    client = connect(handshake=False)
    client.send(PREFACE + PingFrame(0, opaque_data=b"preface!").serialize())
    client.expect_connection_error(E.PROTOCOL_ERROR)


# == 4.1 Frame format ========================================================================================
@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(raw_frame(0xFA, 0x5A, 0, b"extension payload"), id="unknown-type"),
        pytest.param(raw_frame(FrameType.PING, 0x16, 0, b"flagged!"), id="undefined-flags"),
        pytest.param(raw_frame(FrameType.PING, 0, 0x80000000, b"reserved"), id="reserved-bit"),
    ],
)
def test_unknown_types_flags_and_reserved_bit_are_ignored(connect: Any, frame: bytes) -> None:
    # RFC 9113 4.1: unknown frame types are ignored and discarded (also 5.5); undefined flags MUST be
    # ignored; the reserved bit of the stream identifier MUST be ignored on receipt.
    client = connect()
    client.send(frame)
    settle(client)
    assert not client.goaways, client.summary()
    assert_connection_usable(client)


# == 4.2 Frame size ==========================================================================================
def test_data_frame_of_the_default_max_size_is_accepted(connect: Any) -> None:
    # RFC 9113 4.2: every endpoint MUST be capable of receiving frames of up to 2^14 octets.
    client = connect()
    sid = open_post(client)
    body = pattern_body(16384)
    client.send_data(sid, body, end_stream=True)
    stream = client.response(sid)
    assert stream.status == 200, client.summary()
    assert json.loads(bytes(stream.body))["body"] == body.decode()


def test_data_frame_over_max_frame_size(connect: Any) -> None:
    # RFC 9113 4.2: a frame over SETTINGS_MAX_FRAME_SIZE is FRAME_SIZE_ERROR; on a DATA frame a stream
    # error suffices (a connection error is allowed too).
    client = connect()
    assert client.server_settings.get(Setting.MAX_FRAME_SIZE, 16384) == 16384
    sid = open_post(client)
    client.send(raw_frame(FrameType.DATA, END_STREAM, sid, b"x" * 16385))
    client.expect_stream_error(sid, E.FRAME_SIZE_ERROR)


def test_headers_frame_over_max_frame_size(connect: Any) -> None:
    # RFC 9113 4.2: a frame carrying a field block that is too large MUST be a connection error
    # FRAME_SIZE_ERROR (it could alter the state of the whole connection: HPACK).
    client = connect()
    block = literal_block(client.request_headers("GET", "/")) + hpack_literal(b"x-pad", b"p" * 16400)
    client.send(raw_frame(FrameType.HEADERS, END_STREAM | END_HEADERS, 1, block))
    client.expect_connection_error(E.FRAME_SIZE_ERROR)


def test_server_frames_fit_the_client_max_frame_size(connect: Any) -> None:
    # RFC 9113 4.2: an endpoint MUST NOT send a frame larger than the peer's SETTINGS_MAX_FRAME_SIZE.
    client = connect()
    stream = client.response(client.request("GET", "/size/100000"))
    assert stream.status == 200
    assert bytes(stream.body) == pattern_body(100000)
    assert max(stream.data_frames) <= 16384, stream.data_frames


# == 4.3 / RFC 7541: header compression =====================================================================
def _base_fields(client: H2Client) -> bytes:
    return literal_block(client.request_headers("GET", "/"))


HPACK_DECODING_ERRORS = {
    # RFC 7541 2.3.3 / 6.1: an index past both tables is a decoding error.
    "indexed-invalid-index": lambda base: base + hpack_indexed(70),
    # RFC 7541 6.1: index 0 is not used; an indexed field with index 0 is a decoding error.
    "indexed-index-zero": lambda base: base + hpack_indexed(0),
    # RFC 7541 2.3.3 / 6.2.1: a literal whose name index is past both tables.
    "literal-invalid-name-index": lambda base: base + hpack_literal(70, b"v", indexing="incremental"),
    # RFC 7541 4.2 / 6.3: a size update above SETTINGS_HEADER_TABLE_SIZE (4096 by default).
    "table-size-update-over-limit": lambda base: hpack_table_size_update(4097) + base,
    # RFC 7541 4.2: a dynamic table size update MUST come at the beginning of the first block.
    "table-size-update-after-fields": lambda base: base + hpack_table_size_update(0),
    # RFC 7541 5.2: padding longer than 7 bits, padding not of 1 bits, the EOS symbol: decoding errors.
    "huffman-padding-over-7-bits": lambda base: (
        base
        + b"\x00"
        + hpack_string(huffman(b"x-test"), huffman=True)
        + hpack_string(huffman(b"test", extra_padding_bytes=1), huffman=True)
    ),
    "huffman-padding-zeros": lambda base: (
        base
        + b"\x00"
        + hpack_string(huffman(b"x-test"), huffman=True)
        + hpack_string(huffman(b"test", padding="zeros"), huffman=True)
    ),
    "huffman-eos": lambda base: (
        base
        + b"\x00"
        + hpack_string(huffman(b"x-test"), huffman=True)
        + hpack_string(huffman(b"test", eos=True), huffman=True)
    ),
    # RFC 9113 4.3: a truncated representation (an integer cut short) is a decoding error.
    "truncated-integer": lambda base: base + b"\x7f\xff",
    # RFC 7541 5.2: a string longer than what the block holds.
    "string-past-block-end": lambda base: base + b"\x00\x05x-a",
}


@pytest.mark.parametrize("case", list(HPACK_DECODING_ERRORS))
def test_hpack_decoding_error_is_a_connection_compression_error(connect: Any, case: str) -> None:
    # RFC 9113 4.3: a decoding error in a field block MUST be a connection error COMPRESSION_ERROR.
    client = connect()
    block = HPACK_DECODING_ERRORS[case](_base_fields(client))
    client.send(raw_frame(FrameType.HEADERS, END_STREAM | END_HEADERS, 1, block))
    client.expect_connection_error(E.COMPRESSION_ERROR)


def test_hpack_table_size_update_within_limit_is_accepted(connect: Any) -> None:
    # RFC 7541 4.2 / 6.3: a size update to at most SETTINGS_HEADER_TABLE_SIZE at the start of a block is valid.
    client = connect()
    block = hpack_table_size_update(0) + hpack_table_size_update(4096) + _base_fields(client)
    client.send(raw_frame(FrameType.HEADERS, END_STREAM | END_HEADERS, 1, block))
    stream = client.response(1)
    assert stream.status == 200, client.summary()


def test_hpack_dynamic_table_entries_are_used(connect: Any) -> None:
    # RFC 7541 2.3.2 / 4: fields added with incremental indexing are referenced by index later; the
    # decoder's table follows the encoder's across requests on one connection.
    client = connect()
    for _ in range(3):
        sid = client.new_stream_id()
        block = hpack_literal(b"x-dyn", b"value", indexing="incremental") if sid == 1 else hpack_indexed(62)
        client.send(raw_frame(FrameType.HEADERS, END_STREAM | END_HEADERS, sid, _base_fields(client) + block))
        assert client.response(sid).status == 200, client.summary()
    sid = client.new_stream_id()
    fields = literal_block(client.request_headers("GET", "/echo"))
    client.send(raw_frame(FrameType.HEADERS, END_STREAM | END_HEADERS, sid, fields + hpack_indexed(62)))
    stream = client.response(sid)
    assert ["x-dyn", "value"] in json.loads(bytes(stream.body))["headers"]


# == 5.1 Stream states, 5.1.1 stream identifiers =============================================================
def test_headers_on_stream_zero(connect: Any) -> None:
    # RFC 9113 6.2: HEADERS on stream 0x0 is a connection error PROTOCOL_ERROR.
    client = connect()
    block = literal_block(client.request_headers())
    client.send(raw_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 0, block))
    client.expect_connection_error(E.PROTOCOL_ERROR)


def test_even_stream_identifier(connect: Any) -> None:
    # RFC 9113 5.1.1: client streams are odd; an even identifier from a client is a connection error
    # PROTOCOL_ERROR.
    client = connect()
    client.send_headers(2, client.request_headers(), end_stream=True)
    client.expect_connection_error(E.PROTOCOL_ERROR)


def test_decreasing_stream_identifier(connect: Any) -> None:
    # RFC 9113 5.1.1: a new stream identifier MUST be greater than every one opened before: connection error
    # PROTOCOL_ERROR. (Opening 5 implicitly closed idle stream 3, so STREAM_CLOSED, 5.1, is allowed too.)
    client = connect()
    assert client.response(client.request("GET", "/", stream_id=5)).status == 200
    client.send_headers(3, client.request_headers(), end_stream=True)
    client.expect_connection_error(E.PROTOCOL_ERROR, E.STREAM_CLOSED)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(DataFrame(1, data=b"x").serialize(), id="DATA"),
        pytest.param(raw_frame(FrameType.RST_STREAM, 0, 1, struct.pack(">L", E.CANCEL)), id="RST_STREAM"),
        pytest.param(raw_frame(FrameType.WINDOW_UPDATE, 0, 1, struct.pack(">L", 100)), id="WINDOW_UPDATE"),
        pytest.param(raw_frame(FrameType.CONTINUATION, END_HEADERS, 1, b""), id="CONTINUATION"),
    ],
)
def test_frames_on_idle_stream(connect: Any, frame: bytes) -> None:
    # RFC 9113 5.1 (idle): any frame other than HEADERS or PRIORITY on an idle stream is a connection error
    # PROTOCOL_ERROR (6.4 for RST_STREAM, 6.10 for a CONTINUATION without HEADERS).
    client = connect()
    client.send(frame)
    client.expect_connection_error(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("kind", ["DATA", "HEADERS"])
def test_frames_on_half_closed_remote_stream(connect: Any, kind: str) -> None:
    # RFC 9113 5.1 (half-closed (remote)): frames other than WINDOW_UPDATE, PRIORITY and RST_STREAM MUST be
    # answered with a stream error STREAM_CLOSED (also 6.1 for DATA).
    client = connect()
    sid = client.request("GET", "/slow/1500")  # END_STREAM sent; the response is still pending
    settle(client)
    if kind == "DATA":
        client.send_data(sid, b"late", end_stream=True)
    else:
        client.send_headers(sid, [("x-trailer", "late")], end_stream=True)
    client.expect_stream_error(sid, E.STREAM_CLOSED)


@pytest.mark.parametrize("kind", ["DATA", "HEADERS"])
def test_frames_after_client_reset(connect: Any, kind: str) -> None:
    # RFC 9113 5.1 (closed): any frame other than PRIORITY after a RST_STREAM is a stream error
    # STREAM_CLOSED (a connection error is allowed, 5.4.1).
    client = connect()
    sid = open_post(client)
    client.rst_stream(sid, E.CANCEL)
    settle(client)
    if kind == "DATA":
        client.send_data(sid, b"late", end_stream=True)
    else:
        client.send_headers(sid, [("x-trailer", "late")], end_stream=True)
    client.expect_stream_error(sid, E.STREAM_CLOSED)


@pytest.mark.parametrize("kind", ["DATA", "HEADERS"])
def test_frames_on_closed_stream(connect: Any, kind: str) -> None:
    # RFC 9113 5.1 (closed): DATA or HEADERS on a stream closed by END_STREAM both ways is STREAM_CLOSED
    # (stream or connection error; 6.1 for DATA). A HEADERS reusing the identifier may also be taken as an
    # identifier that does not increase: PROTOCOL_ERROR (5.1.1).
    client = connect()
    sid = client.request("GET", "/")
    assert client.response(sid).status == 200
    settle(client)
    if kind == "DATA":
        client.send_data(sid, b"late", end_stream=True)
        client.expect_stream_error(sid, E.STREAM_CLOSED)
    else:
        client.send_headers(sid, client.request_headers(), end_stream=True)
        client.expect_stream_error(sid, E.STREAM_CLOSED, E.PROTOCOL_ERROR)


def test_window_update_and_reset_just_after_close_are_ignored(connect: Any) -> None:
    # RFC 9113 5.1 (closed): WINDOW_UPDATE or RST_STREAM received shortly after sending END_STREAM MUST be
    # ignored (the peer may have sent them before it saw the end).
    client = connect()
    sid = client.request("GET", "/")
    assert client.response(sid).status == 200
    client.window_update(sid, 1000)
    client.rst_stream(sid, E.CANCEL)
    settle(client)
    assert not client.goaways, client.summary()
    assert_connection_usable(client)


# == 5.1.2 Stream concurrency ================================================================================
def test_max_concurrent_streams(connect: Any, server: H2Server) -> None:
    # RFC 9113 5.1.2: a stream past the advertised SETTINGS_MAX_CONCURRENT_STREAMS is a stream error
    # PROTOCOL_ERROR or REFUSED_STREAM (REFUSED_STREAM tells the client it may retry, 8.7). The streams
    # already open are unaffected.
    client = connect()
    limit = client.server_settings.get(Setting.MAX_CONCURRENT_STREAMS)
    assert limit == 100, client.server_settings
    open_ids = [open_post(client) for _ in range(limit)]
    extra = open_post(client)
    outcome = client.expect_stream_error(extra, E.REFUSED_STREAM, E.PROTOCOL_ERROR)
    if outcome.kind != "rst":
        return  # escalated to a connection error (5.4.1): nothing more to check on this connection
    assert not client.goaways, client.summary()
    for sid in open_ids:
        client.send_data(sid, b"b", end_stream=True)
    for sid in open_ids:
        stream = client.response(sid)
        assert stream.status == 200, client.summary()
    assert_connection_usable(client)


# == 5.3.1 Stream dependencies ===============================================================================
@pytest.mark.parametrize("kind", ["HEADERS", "PRIORITY"])
def test_stream_depending_on_itself(connect: Any, kind: str) -> None:
    # RFC 9113 5.3.1: a stream cannot depend on itself: stream error PROTOCOL_ERROR.
    client = connect()
    if kind == "HEADERS":
        frame = HeadersFrame(
            1, data=client.encode(client.request_headers()), flags=["END_HEADERS", "END_STREAM", "PRIORITY"]
        )
        frame.depends_on, frame.stream_weight, frame.exclusive = 1, 15, False
        client.send(frame)
    else:
        client.send(PriorityFrame(1, depends_on=1, stream_weight=15))
    client.expect_stream_error(1, E.PROTOCOL_ERROR)


# == 5.4.1 Connection error handling =========================================================================
def test_connection_error_sends_goaway_then_closes(connect: Any) -> None:
    # RFC 9113 5.4.1: after a connection error the endpoint SHOULD send GOAWAY and MUST close the TCP
    # connection. (A PING with 6 octets is a connection error FRAME_SIZE_ERROR, 6.7.)
    client = connect()
    client.send(raw_frame(FrameType.PING, 0, 0, b"123456"))
    outcome = client.expect_connection_error(E.FRAME_SIZE_ERROR)
    if outcome.kind == "goaway":
        client.expect_closed()


# == 4.3 / 6.2 / 6.10: field blocks and CONTINUATION =========================================================
def test_field_block_in_several_continuation_frames(connect: Any) -> None:
    # RFC 9113 6.10: a field block may continue in any number of CONTINUATION frames.
    client = connect()
    block = literal_block([*client.request_headers("GET", "/echo"), ("x-a", "1" * 50), ("x-b", "2" * 50)])
    parts = [block[i : i + 40] for i in range(0, len(block), 40)]
    frames = [raw_frame(FrameType.HEADERS, END_STREAM, 1, parts[0])]
    frames += [raw_frame(FrameType.CONTINUATION, 0, 1, p) for p in parts[1:-1]]
    frames.append(raw_frame(FrameType.CONTINUATION, END_HEADERS, 1, parts[-1]))
    client.send(*frames)
    stream = client.response(1)
    assert stream.status == 200, client.summary()
    assert ["x-b", "2" * 50] in json.loads(bytes(stream.body))["headers"]


@pytest.mark.parametrize(
    "interruption",
    [
        pytest.param(PriorityFrame(1, depends_on=0, stream_weight=15).serialize(), id="PRIORITY"),
        pytest.param(
            raw_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 3, b"\x82\x86\x84"), id="HEADERS-other"
        ),
        pytest.param(DataFrame(1, data=b"x").serialize(), id="DATA"),
        pytest.param(raw_frame(0xFA, 0, 0, b"ext"), id="unknown-extension"),
        pytest.param(raw_frame(FrameType.CONTINUATION, END_HEADERS, 3, b""), id="CONTINUATION-other"),
    ],
)
def test_field_block_interrupted(connect: Any, interruption: bytes) -> None:
    # RFC 9113 4.3 / 6.2 / 6.10: a field block is a contiguous sequence of HEADERS + CONTINUATION on one
    # stream; any other frame (even an unknown extension, 5.5) in between is a connection error
    # PROTOCOL_ERROR.
    client = connect()
    client.send(raw_frame(FrameType.HEADERS, END_STREAM, 1, literal_block(client.request_headers())))
    client.send(interruption)
    client.expect_connection_error(E.PROTOCOL_ERROR)


@pytest.mark.parametrize(
    "after", ["HEADERS-with-END_HEADERS", "CONTINUATION-with-END_HEADERS", "DATA", "stream-0"]
)
def test_misplaced_continuation(connect: Any, after: str) -> None:
    # RFC 9113 6.10: a CONTINUATION not preceded by HEADERS, PUSH_PROMISE or CONTINUATION without
    # END_HEADERS, or on stream 0x0, is a connection error PROTOCOL_ERROR.
    client = connect()
    block = literal_block(client.request_headers("POST", "/echo"))
    if after == "HEADERS-with-END_HEADERS":
        client.send(raw_frame(FrameType.HEADERS, END_HEADERS, 1, block))
    elif after == "CONTINUATION-with-END_HEADERS":
        client.send(
            raw_frame(FrameType.HEADERS, 0, 1, block[:5]),
            raw_frame(FrameType.CONTINUATION, END_HEADERS, 1, block[5:]),
        )
    elif after == "DATA":
        client.send(raw_frame(FrameType.HEADERS, END_HEADERS, 1, block), DataFrame(1, data=b"x").serialize())
    else:
        client.send(raw_frame(FrameType.HEADERS, 0, 1, block[:5]))
        client.send(raw_frame(FrameType.CONTINUATION, END_HEADERS, 0, block[5:]))
        client.expect_connection_error(E.PROTOCOL_ERROR)
        return
    client.send(raw_frame(FrameType.CONTINUATION, END_HEADERS, 1, literal_block([("x-late", "1")])))
    client.expect_connection_error(E.PROTOCOL_ERROR)


# == 6.1 DATA, 6.2 HEADERS: stream 0 and padding =============================================================
def test_data_on_stream_zero(connect: Any) -> None:
    # RFC 9113 6.1: DATA on stream 0x0 is a connection error PROTOCOL_ERROR.
    client = connect()
    client.send(raw_frame(FrameType.DATA, 0, 0, b"x"))
    client.expect_connection_error(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("kind", ["DATA", "HEADERS"])
def test_padding_as_long_as_the_payload(connect: Any, kind: str) -> None:
    # RFC 9113 6.1 / 6.2: a pad length equal to or greater than the rest of the payload is a connection
    # error PROTOCOL_ERROR.
    client = connect()
    if kind == "DATA":
        sid = open_post(client)
        client.send(raw_frame(FrameType.DATA, PADDED | END_STREAM, sid, bytes([6]) + b"abcde"))
    else:
        block = literal_block(client.request_headers())
        client.send(
            raw_frame(
                FrameType.HEADERS, PADDED | END_HEADERS | END_STREAM, 1, bytes([len(block) + 1]) + block
            )
        )
    client.expect_connection_error(E.PROTOCOL_ERROR)


def test_padded_frames_are_accepted(connect: Any) -> None:
    # RFC 9113 6.1 / 6.2: padding is removed; padded HEADERS and DATA carry the same request.
    client = connect()
    block = literal_block(client.request_headers("POST", "/echo"))
    client.send(raw_frame(FrameType.HEADERS, PADDED | END_HEADERS, 1, bytes([3]) + block + b"\0\0\0"))
    client.send(raw_frame(FrameType.DATA, PADDED | END_STREAM, 1, bytes([4]) + b"body" + b"\0" * 4))
    stream = client.response(1)
    assert stream.status == 200, client.summary()
    assert json.loads(bytes(stream.body))["body"] == "body"


# == 6.3 PRIORITY, 6.4 RST_STREAM ============================================================================
@pytest.mark.parametrize(
    ("frame", "code", "stream_level"),
    [
        pytest.param(
            raw_frame(FrameType.PRIORITY, 0, 0, b"\0\0\0\1\x0f"),
            E.PROTOCOL_ERROR,
            False,
            id="PRIORITY-stream-0",
        ),
        pytest.param(
            raw_frame(FrameType.PRIORITY, 0, 1, b"\0\0\0\3"), E.FRAME_SIZE_ERROR, True, id="PRIORITY-length-4"
        ),
        pytest.param(
            raw_frame(FrameType.RST_STREAM, 0, 0, b"\0\0\0\x08"),
            E.PROTOCOL_ERROR,
            False,
            id="RST_STREAM-stream-0",
        ),
        pytest.param(
            raw_frame(FrameType.RST_STREAM, 0, 1, b"\0\0\x08"),
            E.FRAME_SIZE_ERROR,
            False,
            id="RST_STREAM-length-3",
        ),
    ],
)
def test_invalid_priority_and_rst_stream(connect: Any, frame: bytes, code: int, stream_level: bool) -> None:
    # RFC 9113 6.3: PRIORITY on stream 0 -> connection error PROTOCOL_ERROR; a PRIORITY length other than 5
    # -> stream error FRAME_SIZE_ERROR. 6.4: RST_STREAM on stream 0 -> connection error PROTOCOL_ERROR; a
    # length other than 4 -> connection error FRAME_SIZE_ERROR.
    client = connect()
    if frame[5:9] == b"\0\0\0\1" and frame[3] == FrameType.RST_STREAM:
        open_post(client)  # stream 1 exists, so only the length is wrong
    client.send(frame)
    if stream_level:
        client.expect_stream_error(1, code)
    else:
        client.expect_connection_error(code)


# == 6.5 SETTINGS ============================================================================================
def test_settings_are_acknowledged(connect: Any) -> None:
    # RFC 9113 6.5.3: on a SETTINGS frame without ACK the receiver MUST apply it and reply with an ACK.
    client = connect(handshake=False)
    client.handshake({Setting.MAX_CONCURRENT_STREAMS: 10}, wait_ack=True)
    client.send(SettingsFrame(0, settings={Setting.INITIAL_WINDOW_SIZE: 70000}))
    acks = client.settings_acks
    client.pump_until(lambda: client.settings_acks > acks)


def test_settings_ack_with_payload(connect: Any) -> None:
    # RFC 9113 6.5: a SETTINGS with ACK and a non-empty payload is a connection error FRAME_SIZE_ERROR.
    client = connect()
    client.send(raw_frame(FrameType.SETTINGS, 0x1, 0, struct.pack(">HL", Setting.ENABLE_PUSH, 0)))
    client.expect_connection_error(E.FRAME_SIZE_ERROR)


def test_settings_on_a_stream(connect: Any) -> None:
    # RFC 9113 6.5: SETTINGS on a stream other than 0x0 is a connection error PROTOCOL_ERROR.
    client = connect()
    client.send(raw_frame(FrameType.SETTINGS, 0, 1, struct.pack(">HL", Setting.ENABLE_PUSH, 0)))
    client.expect_connection_error(E.PROTOCOL_ERROR)


def test_settings_length_not_a_multiple_of_six(connect: Any) -> None:
    # RFC 9113 6.5: a SETTINGS length that is not a multiple of 6 is a connection error FRAME_SIZE_ERROR.
    client = connect()
    client.send(raw_frame(FrameType.SETTINGS, 0, 0, b"\0\2\0"))
    client.expect_connection_error(E.FRAME_SIZE_ERROR)


@pytest.mark.parametrize(
    ("setting", "value", "code"),
    [
        pytest.param(Setting.ENABLE_PUSH, 2, E.PROTOCOL_ERROR, id="ENABLE_PUSH-2"),
        pytest.param(Setting.INITIAL_WINDOW_SIZE, 2**31, E.FLOW_CONTROL_ERROR, id="INITIAL_WINDOW_SIZE-2^31"),
        pytest.param(Setting.MAX_FRAME_SIZE, 16383, E.PROTOCOL_ERROR, id="MAX_FRAME_SIZE-16383"),
        pytest.param(Setting.MAX_FRAME_SIZE, 2**24, E.PROTOCOL_ERROR, id="MAX_FRAME_SIZE-2^24"),
    ],
)
def test_invalid_setting_values(connect: Any, setting: int, value: int, code: int) -> None:
    # RFC 9113 6.5.2: ENABLE_PUSH other than 0/1 -> PROTOCOL_ERROR; INITIAL_WINDOW_SIZE above 2^31-1 ->
    # FLOW_CONTROL_ERROR; MAX_FRAME_SIZE outside 2^14..2^24-1 -> PROTOCOL_ERROR (all connection errors).
    client = connect()
    client.send(raw_frame(FrameType.SETTINGS, 0, 0, struct.pack(">HL", setting, value)))
    client.expect_connection_error(code)


def test_unknown_setting_is_ignored(connect: Any) -> None:
    # RFC 9113 6.5.2: an unknown setting identifier MUST be ignored.
    client = connect()
    acks = client.settings_acks
    client.send(raw_frame(FrameType.SETTINGS, 0, 0, struct.pack(">HL", 0xFF, 1)))
    client.pump_until(lambda: client.settings_acks > acks)
    assert not client.goaways
    assert_connection_usable(client)


def test_settings_values_are_processed_in_order(connect: Any) -> None:
    # RFC 9113 6.5.3: the values in a SETTINGS frame MUST be processed in the order they appear; the last
    # INITIAL_WINDOW_SIZE (1) wins, so the response arrives a byte at a time.
    client = connect(handshake=False, auto_window=False)
    client.send(
        PREFACE
        + raw_frame(
            FrameType.SETTINGS,
            0,
            0,
            struct.pack(">HL", Setting.INITIAL_WINDOW_SIZE, 100)
            + struct.pack(">HL", Setting.INITIAL_WINDOW_SIZE, 1),
        )
    )
    client.pump_until(lambda: client.server_settings_seen and client.settings_acks > 0)
    sid = client.request("GET", "/size/10")
    client.pump_until(lambda: len(client.stream(sid).body) >= 1)
    client.quiet_for(0.3 * UNIT)
    assert bytes(client.stream(sid).body) == pattern_body(1), client.summary()


# == 6.7 PING ================================================================================================
def test_ping_is_answered_with_the_same_payload(connect: Any) -> None:
    # RFC 9113 6.7: the receiver of a PING without ACK MUST send a PING with ACK and an identical payload.
    client = connect()
    client.ping(b"\x00h2spec\xff")
    frames = client.collect(lambda f: isinstance(f, PingFrame) and "ACK" in f.flags)
    assert frames[-1].opaque_data == b"\x00h2spec\xff"


def test_ping_ack_is_not_answered(connect: Any) -> None:
    # RFC 9113 6.7: an endpoint MUST NOT respond to a PING with ACK.
    client = connect()
    client.send(PingFrame(0, opaque_data=b"unprompt", flags=["ACK"]))
    client.ping(b"prompted")
    pings = [f for f in client.collect(lambda f: isinstance(f, PingFrame)) if isinstance(f, PingFrame)]
    assert [p.opaque_data for p in pings] == [b"prompted"], client.summary()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        pytest.param(raw_frame(FrameType.PING, 0, 1, b"12345678"), E.PROTOCOL_ERROR, id="on-stream-1"),
        pytest.param(raw_frame(FrameType.PING, 0, 0, b"123456"), E.FRAME_SIZE_ERROR, id="length-6"),
    ],
)
def test_invalid_ping(connect: Any, frame: bytes, code: int) -> None:
    # RFC 9113 6.7: PING on a stream -> connection error PROTOCOL_ERROR; a length other than 8 ->
    # connection error FRAME_SIZE_ERROR.
    client = connect()
    client.send(frame)
    client.expect_connection_error(code)


# == 6.8 GOAWAY, 7 error codes, 8.4 push ====================================================================
def test_goaway_on_a_stream(connect: Any) -> None:
    # RFC 9113 6.8: GOAWAY on a stream other than 0x0 is a connection error PROTOCOL_ERROR.
    client = connect()
    client.send(raw_frame(FrameType.GOAWAY, 0, 1, struct.pack(">LL", 0, 0)))
    client.expect_connection_error(E.PROTOCOL_ERROR)


def test_unknown_error_codes_trigger_nothing_special(connect: Any) -> None:
    # RFC 9113 7: unknown or unsupported error codes MUST NOT trigger any special behavior.
    client = connect()
    sid = open_post(client)
    client.rst_stream(sid, 0xFF)
    assert_connection_usable(client)
    # After a GOAWAY (unknown code) from the client, a PING is still answered, or the server closes the
    # connection the client is leaving anyway (h2spec 7 accepts either).
    client.send(GoAwayFrame(0, last_stream_id=0, error_code=0xFF))
    client.ping(b"afterGA!")
    try:
        client.collect(lambda f: isinstance(f, PingFrame) and "ACK" in f.flags)
    except ConnectionClosed:
        pass


def test_push_promise_from_client(connect: Any) -> None:
    # RFC 9113 8.4: a client cannot push: a PUSH_PROMISE received by a server is a connection error
    # PROTOCOL_ERROR.
    client = connect()
    sid = open_post(client)
    payload = struct.pack(">L", 2) + literal_block(client.request_headers())
    client.send(raw_frame(FrameType.PUSH_PROMISE, END_HEADERS, sid, payload))
    client.expect_connection_error(E.PROTOCOL_ERROR)


# == 6.9 WINDOW_UPDATE and flow control ======================================================================
@pytest.mark.parametrize("on", ["connection", "stream"])
def test_window_update_of_zero(connect: Any, on: str) -> None:
    # RFC 9113 6.9: an increment of 0 is a stream error PROTOCOL_ERROR; on the connection window (stream 0)
    # a connection error PROTOCOL_ERROR.
    client = connect()
    if on == "connection":
        client.window_update(0, 0)
        client.expect_connection_error(E.PROTOCOL_ERROR)
    else:
        sid = open_post(client)
        client.window_update(sid, 0)
        client.expect_stream_error(sid, E.PROTOCOL_ERROR)


def test_window_update_of_wrong_length(connect: Any) -> None:
    # RFC 9113 6.9: a WINDOW_UPDATE length other than 4 is a connection error FRAME_SIZE_ERROR.
    client = connect()
    client.send(raw_frame(FrameType.WINDOW_UPDATE, 0, 0, b"\0\0\1"))
    client.expect_connection_error(E.FRAME_SIZE_ERROR)


@pytest.mark.parametrize("on", ["connection", "stream"])
def test_window_overflow(connect: Any, on: str) -> None:
    # RFC 9113 6.9.1: a window above 2^31-1 is a FLOW_CONTROL_ERROR: connection error for the connection
    # window, stream error (RST_STREAM) for a stream window.
    client = connect()
    if on == "connection":
        client.window_update(0, 2**31 - 1)
        client.window_update(0, 2**31 - 1)
        client.expect_connection_error(E.FLOW_CONTROL_ERROR)
    else:
        sid = open_post(client)
        client.window_update(sid, 2**31 - 1)
        client.window_update(sid, 2**31 - 1)
        client.expect_stream_error(sid, E.FLOW_CONTROL_ERROR)


def test_server_respects_the_client_window(connect: Any) -> None:
    # RFC 9113 6.9.1: a sender MUST NOT send a flow-controlled frame longer than the space in the receiver's
    # window; with INITIAL_WINDOW_SIZE 10, a 100-byte body arrives 10 bytes per WINDOW_UPDATE.
    client = connect({Setting.INITIAL_WINDOW_SIZE: 10}, auto_window=False)
    sid = client.request("GET", "/size/100")
    stream = client.stream(sid)
    credit = 10
    while not stream.ended:
        client.pump_until(lambda limit=credit: stream.ended or len(stream.body) >= limit)
        assert len(stream.body) <= credit, (stream.data_frames, client.summary())
        if stream.ended:
            break
        late = client.quiet_for(0.2 * UNIT)  # nothing more until the window opens
        assert len(stream.body) == credit, (late, client.summary())
        client.window_update(0, 10)
        client.window_update(sid, 10)
        credit += 10
    assert bytes(stream.body) == pattern_body(100)
    assert all(0 < n <= 10 for n in stream.data_frames[:-1]), stream.data_frames


def test_initial_window_size_change_applies_to_open_streams(connect: Any) -> None:
    # RFC 9113 6.9.2: a change of SETTINGS_INITIAL_WINDOW_SIZE adjusts every open stream's window, even
    # below zero; the sender MUST track the negative window and wait until it is positive again.
    client = connect({Setting.INITIAL_WINDOW_SIZE: 10}, auto_window=False)
    sid = client.request("GET", "/size/100")
    stream = client.stream(sid)
    client.pump_until(lambda: len(stream.body) >= 10)
    client.send(SettingsFrame(0, settings={Setting.INITIAL_WINDOW_SIZE: 5}))  # window 10 - 10 - 5 = -5
    client.window_update(sid, 8)  # -5 + 8 = 3
    client.quiet_for(0.3 * UNIT)
    assert len(stream.body) == 13, (stream.data_frames, client.summary())
    client.send(SettingsFrame(0, settings={Setting.INITIAL_WINDOW_SIZE: 200}))  # +195
    client.pump_until(lambda: stream.ended)
    assert bytes(stream.body) == pattern_body(100)


# == 8 HTTP message exchanges ================================================================================
def test_get_round_trip(connect: Any, server: H2Server) -> None:
    # RFC 9113 8.3.1: the request pseudo-headers carry method, scheme, authority and path; the ASGI scope
    # (http_version "2", :authority as the host header) follows from them. 8.1: one HEADERS with END_STREAM.
    client = connect()
    authority = f"example.test:{server.port}"
    sid = client.request("GET", "/echo/a%2Fb?x=1&y=%20z", authority=authority, extra=[("x-custom", "v")])
    stream = client.response(sid)
    assert stream.status == 200, client.summary()
    seen = json.loads(bytes(stream.body))
    assert seen["http_version"] == "2"
    assert seen["method"] == "GET"
    assert seen["scheme"] == "http"
    assert seen["path"] == "/echo/a/b"
    assert seen["raw_path"] == "/echo/a%2Fb"
    assert seen["query_string"] == "x=1&y=%20z"
    headers = seen["headers"]
    assert ["host", authority] in headers, headers
    assert ["x-custom", "v"] in headers
    assert not [n for n, _ in headers if n.startswith(":")], headers


def test_post_with_body_and_trailers(connect: Any) -> None:
    # RFC 9113 8.1: request = HEADERS, DATA frames, then a trailer HEADERS with END_STREAM; "te: trailers"
    # is the one TE value allowed (8.2.2). Trailers never join the request headers.
    client = connect()
    body = pattern_body(40000)
    sid = client.request(
        "POST",
        "/echo",
        body=body,
        trailers=[("x-checksum", "abc")],
        extra=[("te", "trailers"), ("content-type", "text/plain")],
    )
    stream = client.response(sid)
    assert stream.status == 200, client.summary()
    seen = json.loads(bytes(stream.body))
    assert seen["method"] == "POST"
    assert seen["body"] == body.decode()
    assert ["te", "trailers"] in seen["headers"]
    assert "x-checksum" not in [n for n, _ in seen["headers"]]


def test_streams_are_multiplexed(connect: Any) -> None:
    # RFC 9113 5: many concurrent streams on one connection, each answered on its own stream.
    client = connect()
    sizes = {client.request("GET", f"/size/{n}"): n for n in range(1, 60, 3)}
    for sid, n in sizes.items():
        stream = client.response(sid)
        assert stream.status == 200
        assert bytes(stream.body) == pattern_body(n)


def _request(method: str = "GET", path: str = "/echo", scheme: str = "http") -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", scheme), (":authority", "localhost"), (":path", path)]


MALFORMED_REQUESTS: dict[str, list[tuple[str, str]]] = {
    # RFC 9113 8.3.1: :method, :scheme and :path MUST be present (non-CONNECT), exactly once.
    "missing-method": [f for f in _request() if f[0] != ":method"],
    "missing-scheme": [f for f in _request() if f[0] != ":scheme"],
    "missing-path": [f for f in _request() if f[0] != ":path"],
    "duplicate-method": [*_request(), (":method", "GET")],
    "duplicate-scheme": [*_request(), (":scheme", "http")],
    "duplicate-path": [*_request(), (":path", "/")],
    # RFC 9113 8.3.1: :path MUST NOT be empty for http/https URIs.
    "empty-path": _request(path=""),
    # RFC 9113 8.3: only the defined pseudo-headers; response ones (:status) not in requests.
    "unknown-pseudo-header": [*_request(), (":foo", "bar")],
    "response-pseudo-header": [*_request(), (":status", "200")],
    # RFC 9113 8.3: all pseudo-headers come before the regular fields.
    "pseudo-after-regular": [*_request()[:3], ("x-a", "1"), _request()[3]],
    # RFC 9113 8.2.1 / 8.2: field names MUST be lowercase; values without NUL, CR or LF; no whitespace
    # at either end of a value.
    "uppercase-name": [*_request(), ("X-Upper", "1")],
    "name-with-space": [*_request(), ("x bad", "1")],
    "value-with-crlf": [*_request(), ("x-a", "1\r\nx-b: 2")],
    "value-with-nul": [*_request(), ("x-a", "1\x002")],
    # RFC 9113 8.2.2: connection-specific fields MUST NOT appear; TE only with "trailers".
    "connection": [*_request(), ("connection", "keep-alive")],
    "keep-alive": [*_request(), ("keep-alive", "timeout=5")],
    "proxy-connection": [*_request(), ("proxy-connection", "keep-alive")],
    "transfer-encoding": [*_request(), ("transfer-encoding", "chunked")],
    "upgrade": [*_request(), ("upgrade", "websocket")],
    "te-not-trailers": [*_request(), ("te", "gzip")],
}


@pytest.mark.parametrize("case", list(MALFORMED_REQUESTS))
def test_malformed_request_is_a_stream_error(connect: Any, case: str) -> None:
    # RFC 9113 8.1.1: a malformed request MUST be treated as a stream error PROTOCOL_ERROR (a server MAY
    # send a 4xx response first; 5.4.1 allows a connection error instead). The field block is still
    # decoded (4.3), so after a stream error the connection and its HPACK state keep working.
    client = connect()
    sid = client.new_stream_id()
    client.send_headers(sid, client.encode(MALFORMED_REQUESTS[case]), end_stream=True)
    outcome = client.expect_stream_error(sid, E.PROTOCOL_ERROR, allow_response=True)
    if outcome.kind in ("rst", "response"):
        assert_connection_usable(client)


def test_te_trailers_is_allowed(connect: Any) -> None:
    # RFC 9113 8.2.2: TE MAY be present with the value "trailers".
    client = connect()
    assert client.response(client.request("GET", "/", extra=[("te", "trailers")])).status == 200


def test_pseudo_header_in_trailers(connect: Any) -> None:
    # RFC 9113 8.1 / 8.3: pseudo-header fields MUST NOT appear in a trailer section: malformed, stream error
    # PROTOCOL_ERROR.
    client = connect()
    sid = open_post(client)
    client.send_data(sid, b"body")
    client.send_headers(sid, [(":method", "POST")], end_stream=True)
    client.expect_stream_error(sid, E.PROTOCOL_ERROR, allow_response=True)


def test_second_headers_without_end_stream(connect: Any) -> None:
    # RFC 9113 8.1: a HEADERS after the header section that does not end the stream (a trailer section
    # without END_STREAM) is malformed: stream error PROTOCOL_ERROR.
    client = connect()
    sid = open_post(client)
    client.send_data(sid, b"body")
    client.send_headers(sid, [("x-trailer", "1")], end_stream=False)
    client.expect_stream_error(sid, E.PROTOCOL_ERROR, allow_response=True)


@pytest.mark.parametrize(
    ("declared", "chunks"),
    [
        pytest.param(10, [b"12345"], id="fewer-bytes"),
        pytest.param(2, [b"12345"], id="more-bytes"),
        pytest.param(10, [b"123", b"456", b"78"], id="sum-of-frames-short"),
    ],
)
def test_content_length_mismatch(connect: Any, declared: int, chunks: list[bytes]) -> None:
    # RFC 9113 8.1.1: a content-length that does not equal the sum of the DATA payloads is malformed:
    # stream error PROTOCOL_ERROR.
    client = connect()
    sid = open_post(client, extra=[("content-length", str(declared))])
    for index, chunk in enumerate(chunks):
        client.send_data(sid, chunk, end_stream=index == len(chunks) - 1)
    outcome = client.expect_stream_error(sid, E.PROTOCOL_ERROR, allow_response=True)
    assert outcome.kind != "response" or outcome.status == 400


# == 10.5 Denial-of-service: floods and bombs ================================================================
def _flood_then_expect_calm(client: H2Client, frames: Iterator[bytes], server: H2Server) -> None:
    # RFC 9113 10.5: an endpoint MAY treat activity that looks like abuse as a connection error
    # ENHANCE_YOUR_CALM. The flood must be stopped by the server (a GOAWAY ENHANCE_YOUR_CALM, or a close).
    sent = client.flood(frames)
    outcome = client.expect_connection_error(E.ENHANCE_YOUR_CALM)
    assert outcome.kind in ("goaway", "closed"), (sent, client.summary())
    assert_serves(server.host, server.port)


def test_rapid_reset(connect: Any, server: H2Server) -> None:
    # RFC 9113 10.5 (CVE-2023-44487): streams opened and cancelled at once cost the server work the
    # concurrency limit does not bound; past h2_max_resets_per_second the connection gets GOAWAY
    # ENHANCE_YOUR_CALM. The server keeps serving new connections.
    client = connect()
    block = literal_block(client.request_headers("GET", "/"))

    def frames() -> Iterator[bytes]:
        for n in range(1000):
            sid = 2 * n + 1
            yield raw_frame(FrameType.HEADERS, END_HEADERS | END_STREAM, sid, block) + raw_frame(
                FrameType.RST_STREAM, 0, sid, struct.pack(">L", E.CANCEL)
            )

    _flood_then_expect_calm(client, frames(), server)


@pytest.mark.parametrize("kind", ["PING", "SETTINGS", "empty-DATA", "WINDOW_UPDATE"])
def test_control_frame_flood(connect: Any, server: H2Server, kind: str) -> None:
    # RFC 9113 10.5 (CVE-2019-9512 ping, -9515 settings, -9518 empty frames; window updates): frames that
    # cost the server work (an ACK to write, a state update) past h2_max_control_frames_per_second end the
    # connection with ENHANCE_YOUR_CALM.
    client = connect()
    count = 5000
    if kind == "PING":
        frames = (raw_frame(FrameType.PING, 0, 0, struct.pack(">Q", n)) for n in range(count))
    elif kind == "SETTINGS":
        frames = (raw_frame(FrameType.SETTINGS, 0, 0, b"") for _ in range(count))
    elif kind == "empty-DATA":
        sid = open_post(client)
        frames = (raw_frame(FrameType.DATA, 0, sid, b"") for _ in range(count))
    else:
        frames = (raw_frame(FrameType.WINDOW_UPDATE, 0, 0, struct.pack(">L", 1)) for _ in range(count))
    _flood_then_expect_calm(client, frames, server)


def _rss_growth_mb(server: H2Server, before: int) -> float:
    gc.collect()
    return (server.rss() - before) / 2**20


@pytest.mark.parametrize(("frame_payload", "count"), [(0, 10000), (16384, 1000)], ids=["empty", "16KiB"])
def test_continuation_flood(connect: Any, server: H2Server, frame_payload: int, count: int) -> None:
    # RFC 9113 10.5 / 10.5.1 (the 2024 CONTINUATION flood): a field block that never ends must not be
    # buffered without bound; past h2_max_header_frames CONTINUATION frames or h2_max_header_list_size the
    # connection ends with an error (GOAWAY with one of these codes, or a close).
    client = connect()
    gc.collect()
    before = server.rss()
    first = literal_block(client.request_headers("GET", "/"))
    filler = hpack_literal(b"x-f", b"f" * (frame_payload - 8)) if frame_payload else b""
    frames = iter(
        [raw_frame(FrameType.HEADERS, END_STREAM, 1, first)]
        + [raw_frame(FrameType.CONTINUATION, 0, 1, filler)] * count
    )
    sent = client.flood(frames, batch=20 if frame_payload else 200)
    outcome = client.expect_connection_error(
        E.ENHANCE_YOUR_CALM, E.PROTOCOL_ERROR, E.COMPRESSION_ERROR, E.FRAME_SIZE_ERROR
    )
    assert outcome.kind in ("goaway", "closed"), (sent, client.summary())
    assert not client.stream(1).headers, "the endless field block was answered"
    assert _rss_growth_mb(server, before) < 8, f"RSS grew {_rss_growth_mb(server, before):.1f} MB"
    assert_serves(server.host, server.port)


def test_hpack_bomb(connect: Any, server: H2Server) -> None:
    # RFC 9113 10.5.1 / RFC 7541 7.3: one 4000-byte entry in the dynamic table referenced ~60000 times
    # (a 1-byte index each) decodes to ~240 MB. The server must refuse past SETTINGS_MAX_HEADER_LIST_SIZE
    # without building the expanded list: COMPRESSION_ERROR or ENHANCE_YOUR_CALM (stream or connection),
    # or a 431 response; its RSS must not grow by the expanded size.
    client = connect()
    gc.collect()
    before = server.rss()
    bomb = hpack_literal(b"x-bomb", b"a" * 4000, indexing="incremental")
    block = bomb + literal_block(client.request_headers("GET", "/")) + hpack_indexed(62) * 61000
    parts = [block[i : i + 16384] for i in range(0, len(block), 16384)]
    frames = [
        raw_frame(FrameType.HEADERS, END_STREAM if len(parts) > 1 else END_STREAM | END_HEADERS, 1, parts[0])
    ]
    for index, part in enumerate(parts[1:], start=2):
        frames.append(raw_frame(FrameType.CONTINUATION, END_HEADERS if index == len(parts) else 0, 1, part))
    client.send(*frames)
    outcome = client.expect_stream_error(
        1, E.COMPRESSION_ERROR, E.ENHANCE_YOUR_CALM, E.REFUSED_STREAM, allow_response=True
    )
    if outcome.kind == "response":
        assert outcome.status == 431, client.summary()
    growth = _rss_growth_mb(server, before)
    assert growth < 32, f"RSS grew {growth:.1f} MB"
    assert_serves(server.host, server.port)


# == Timeouts and shutdown (RFC 9113 9.1, 6.8) ===============================================================
@pytest.fixture
def short_timeout_server(tmp_path: Path) -> Iterator[H2Server]:
    with h2_server(tmp_path, timeout_request_header=1.0) as running:
        yield running


@pytest.mark.parametrize("sent", ["nothing", "preface-only", "unfinished-field-block"])
def test_idle_connection_is_closed(short_timeout_server: H2Server, sent: str) -> None:
    # RFC 9113 9.1: a server MAY close an idle connection; it SHOULD send GOAWAY first (6.8), naming the last
    # stream it processed (none here). timeout_request_header bounds how long a request head may take.
    srv = short_timeout_server
    with H2Client(srv.host, srv.port, timeout=WAIT) as client:
        started = time.monotonic()
        if sent != "nothing":
            client.handshake()
        if sent == "unfinished-field-block":
            client.send(raw_frame(FrameType.HEADERS, END_STREAM, 1, literal_block(client.request_headers())))
        client.expect_closed(timeout=1.0 + WAIT)
        elapsed = time.monotonic() - started
        assert elapsed >= 0.5, f"closed after {elapsed:.2f} s, before the timeout"
        for goaway in client.goaways:
            assert goaway.last_stream_id == 0, client.summary()
        assert not client.stream(1).headers


@pytest.fixture
def graceful_server(tmp_path: Path) -> Iterator[H2Server]:
    with h2_server(tmp_path, timeout_graceful_shutdown=5.0) as running:
        yield running


def assert_not_served(srv: H2Server) -> None:
    """A connection attempt is refused, closed, reset or left unanswered; never served a 200."""
    try:
        newcomer = H2Client(srv.host, srv.port, timeout=WAIT)
    except OSError:
        return
    with newcomer:
        newcomer.send(PREFACE + SettingsFrame(0).serialize())
        sid = newcomer.new_stream_id()
        newcomer.send_headers(sid, newcomer.request_headers(), end_stream=True)
        try:
            stream = newcomer.response(sid, timeout=1.0 * UNIT)
        except (ConnectionClosed, TimeoutError):
            return
        assert stream.status != 200, newcomer.summary()


def test_graceful_shutdown(graceful_server: H2Server) -> None:
    # RFC 9113 6.8: a graceful shutdown sends GOAWAY (NO_ERROR) naming the last stream processed; streams up
    # to it complete, streams above it are not processed (ignored or refused with REFUSED_STREAM, 8.7),
    # and the connection closes once they are done. New connections are refused meanwhile.
    srv = graceful_server
    with H2Client(srv.host, srv.port, timeout=WAIT) as client:
        client.handshake()
        sid = open_post(client)
        client.send_data(sid, b"part one, ")
        settle(client)  # the server has seen stream 1
        stopper = threading.Thread(target=srv.begin_stop, daemon=True)
        stopper.start()
        goaway = client.expect_goaway(E.NO_ERROR)
        if goaway.last_stream_id == 2**31 - 1:  # the two-step shutdown of 6.8: the final GOAWAY follows
            goaway = client.expect_goaway(E.NO_ERROR)
        assert goaway.last_stream_id >= sid, client.summary()
        assert goaway.last_stream_id < 2**31 - 1

        # A stream above the last stream id is not processed.
        late = client.request("GET", "/", stream_id=goaway.last_stream_id + 2)
        # New connections are not served while draining.
        assert_not_served(srv)

        # The in-flight stream completes.
        client.send_data(sid, b"part two", end_stream=True)
        stream = client.response(sid)
        assert stream.status == 200, client.summary()
        assert json.loads(bytes(stream.body))["body"] == "part one, part two"
        late_stream = client.stream(late)
        assert late_stream.headers is None or late_stream.status != 200, client.summary()
        assert late_stream.reset in (None, E.REFUSED_STREAM, E.CANCEL), client.summary()
        client.expect_closed(timeout=WAIT + 5)
        stopper.join(WAIT)
