"""RFC 6455 / RFC 7692 conformance from hand-built frames over raw sockets, after Autobahn's test sections.

Each case sends client frames and names what the server must answer: echoes (and pongs), or the close code
it must fail the connection with. After every case the server must still serve a new connection.
The table is documented in docs/websockets.md.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from hatchway import Server
from tests.utils import UNIT, serve_in_thread

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
MAX_SIZE = 1 << 20


# -- a tiny raw client: just enough framing to send what a real client never would -----------------------
def _mask(data: bytes, key: bytes) -> bytes:
    if not data:
        return data
    n = len(data)
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(keys, "big")).to_bytes(n, "big")


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    length: int | None = None,
) -> bytes:
    """One client frame; ``rsv`` is the 3 reserved bits (4 = RSV1), ``length`` overrides the declared length."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _mask(payload, key)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


class RawClient:
    """A socket with a read buffer; reads frames the server sends (never masked)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.buffer += data
        return bool(data)

    def _take(self, n: int) -> bytes | None:
        while len(self.buffer) < n:
            if not self._fill():
                return None
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def handshake(self, path: str = "/", extra: str = "", method: str = "GET") -> tuple[int, str]:
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n".encode()
        )
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), "connection closed during the handshake"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        return int(lines[0].split()[1]), "\r\n".join(lines[1:]).lower()

    def send(self, *frames: bytes) -> None:
        self.sock.sendall(b"".join(frames))

    def read_frame(self) -> tuple[bool, int, bytes, int] | None:
        """(fin, opcode, payload, rsv) or None at EOF."""
        head = self._take(2)
        if head is None:
            return None
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2) or b"\0\0")[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8) or b"\0" * 8)[0]
        payload = self._take(n)
        if payload is None:
            return None
        return bool(head[0] & 0x80), head[0] & 0x0F, payload, (head[0] >> 4) & 0x7

    def expect_close(self) -> int | None:
        """Read until the server's close frame; its code (None for an empty payload); then EOF must follow."""
        while True:
            got = self.read_frame()
            assert got is not None, "EOF before a close frame"
            if got[1] == CLOSE:
                code = struct.unpack("!H", got[2][:2])[0] if got[2] else None
                break
        assert self.read_frame() is None, "the server did not close TCP after the close frame"
        return code


def serve(app: Any, **options: Any) -> contextlib.AbstractContextManager[Server]:
    """``serve_in_thread`` without lifespan, so test apps see only their WebSocket scopes."""
    options.setdefault("lifespan", "off")
    return serve_in_thread(app, **options)


def raw_connection(server: Server) -> socket.socket:
    host, port = server.sockets[0].getsockname()[:2]
    return socket.create_connection((host, port), timeout=5 * UNIT)


# -- the server under test ---------------------------------------------------------------------------------
async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serve(echo_app, ws_max_size=MAX_SIZE, ws_ping_interval=None) as started:
        yield started


def assert_serves(server: Server) -> None:
    with raw_connection(server) as sock:
        client = RawClient(sock)
        assert client.handshake()[0] == 101
        client.send(frame(TEXT, b"alive"))
        assert client.read_frame() == (True, TEXT, b"alive", 0)
        client.send(frame(CLOSE, close_payload(1000)))
        assert client.expect_close() == 1000


# -- the table ---------------------------------------------------------------------------------------------
@dataclass
class Case:
    section: str
    frames: list[bytes]
    close: int | None = None  # the close code the server must send; None: it echoes, then closes normally
    replies: list[tuple[int, bytes]] = field(default_factory=list)


def _ids(cases: dict[str, Case]) -> list[str]:
    return list(cases)


_INVALID_UTF8 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"  # a UTF-16 surrogate
_EURO = "€".encode()

CASES: dict[str, Case] = {
    # 1. Framing
    "1.1.1 empty text": Case("framing", [frame(TEXT)], replies=[(TEXT, b"")]),
    "1.1.2 text 125": Case("framing", [frame(TEXT, b"a" * 125)], replies=[(TEXT, b"a" * 125)]),
    "1.1.3 text 126 (16-bit length)": Case(
        "framing", [frame(TEXT, b"b" * 126)], replies=[(TEXT, b"b" * 126)]
    ),
    "1.1.4 text 65535": Case("framing", [frame(TEXT, b"c" * 65535)], replies=[(TEXT, b"c" * 65535)]),
    "1.1.5 text 65536 (64-bit length)": Case(
        "framing", [frame(TEXT, b"d" * 65536)], replies=[(TEXT, b"d" * 65536)]
    ),
    "1.2.1 binary": Case(
        "framing", [frame(BINARY, bytes(range(256)))], replies=[(BINARY, bytes(range(256)))]
    ),
    "1.3 unmasked client frame": Case("framing", [frame(TEXT, b"x", mask=False)], close=1002),
    # 2. Pings and pongs
    "2.1 ping answered with its payload": Case(
        "ping", [frame(PING, b"p" * 125)], replies=[(PONG, b"p" * 125)]
    ),
    "2.2 empty ping": Case("ping", [frame(PING)], replies=[(PONG, b"")]),
    "2.3 unsolicited pong ignored": Case(
        "ping", [frame(PONG, b"nobody asked"), frame(TEXT, b"ok")], replies=[(TEXT, b"ok")]
    ),
    "2.5 ping payload 126 (control frame too long)": Case("ping", [frame(PING, b"p" * 126)], close=1002),
    "2.6 fragmented ping": Case("ping", [frame(PING, b"p", fin=False)], close=1002),
    # 3. Reserved bits
    "3.1 RSV1 without an extension": Case("rsv", [frame(TEXT, b"x", rsv=4)], close=1002),
    "3.2 RSV2": Case("rsv", [frame(TEXT, b"x", rsv=2)], close=1002),
    "3.3 RSV3 on a ping": Case("rsv", [frame(PING, b"x", rsv=1)], close=1002),
    "3.4 all RSV bits": Case("rsv", [frame(BINARY, b"x", rsv=7)], close=1002),
    # 4. Reserved opcodes
    **{f"4.1 data opcode {op}": Case("opcode", [frame(op, b"x")], close=1002) for op in (3, 4, 5, 6, 7)},
    **{
        f"4.2 control opcode {op:#x}": Case("opcode", [frame(op, b"x")], close=1002)
        for op in range(0xB, 0x10)
    },
    # 5. Fragmentation
    "5.1 fragmented text": Case(
        "fragments",
        [frame(TEXT, b"frag", fin=False), frame(CONT, b"men", fin=False), frame(CONT, b"ted")],
        replies=[(TEXT, b"fragmented")],
    ),
    "5.2 ping between fragments": Case(
        "fragments",
        [frame(BINARY, b"a", fin=False), frame(PING, b"mid"), frame(CONT, b"b")],
        replies=[(PONG, b"mid"), (BINARY, b"ab")],
    ),
    "5.3 continuation with nothing to continue": Case("fragments", [frame(CONT, b"x")], close=1002),
    "5.4 new message inside a fragmented one": Case(
        "fragments", [frame(TEXT, b"a", fin=False), frame(TEXT, b"b")], close=1002
    ),
    # RFC 6455 5.4: control frames, Close among them, may come between fragments; the close is echoed.
    "5.5 close inside a fragmented message": Case(
        "fragments", [frame(TEXT, b"a", fin=False), frame(CLOSE, close_payload(1000))], close=1000
    ),
    "5.5 close 1001 inside a fragmented binary message": Case(
        "fragments",
        [frame(BINARY, b"a", fin=False), frame(CONT, b"b", fin=False), frame(CLOSE, close_payload(1001))],
        close=1001,
    ),
    "5.5 empty close inside a fragmented message": Case(
        "fragments", [frame(TEXT, b"a", fin=False), frame(CLOSE)], replies=[(CLOSE, b"")]
    ),
    # 6. UTF-8
    "6.1 valid multi-byte text": Case(
        "utf8", [frame(TEXT, "κόσμε".encode())], replies=[(TEXT, "κόσμε".encode())]
    ),
    "6.2 code point split across fragments": Case(
        "utf8", [frame(TEXT, _EURO[:1], fin=False), frame(CONT, _EURO[1:])], replies=[(TEXT, _EURO)]
    ),
    "6.3 invalid UTF-8 text": Case("utf8", [frame(TEXT, _INVALID_UTF8)], close=1007),
    "6.4 invalid UTF-8 fails fast in the first fragment": Case(
        "utf8", [frame(TEXT, b"ok\xff", fin=False)], close=1007
    ),
    "6.5 truncated code point at the end": Case("utf8", [frame(TEXT, _EURO[:2])], close=1007),
    "6.6 binary is not UTF-8 checked": Case(
        "utf8", [frame(BINARY, b"\xff\xfe")], replies=[(BINARY, b"\xff\xfe")]
    ),
    # 7. Close handling
    "7.1 close 1000 echoed": Case("close", [frame(CLOSE, close_payload(1000))], close=1000),
    "7.2 empty close echoed empty": Case("close", [frame(CLOSE)], close=None, replies=[(CLOSE, b"")]),
    "7.3 close with a 1-byte payload": Case("close", [frame(CLOSE, b"\x03")], close=1002),
    "7.4 close reason 123 bytes": Case("close", [frame(CLOSE, close_payload(1000, b"r" * 123))], close=1000),
    "7.5 close reason invalid UTF-8": Case("close", [frame(CLOSE, close_payload(1000, b"\xff"))], close=1007),
    "7.6 data after close is ignored": Case(
        "close", [frame(CLOSE, close_payload(1000)), frame(TEXT, b"late")], close=1000
    ),
    **{
        f"7.7 valid close code {code}": Case("close", [frame(CLOSE, close_payload(code))], close=code)
        for code in (1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999)
    },
    **{
        f"7.8 invalid close code {code}": Case("close", [frame(CLOSE, close_payload(code))], close=1002)
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)
    },
    # 9. Limits
    "9.1 message over ws_max_size": Case("limits", [frame(BINARY, length=MAX_SIZE + 1)], close=1009),
    "9.2 fragments adding up over ws_max_size": Case(
        "limits",
        [frame(BINARY, b"x" * (MAX_SIZE // 2), fin=False), frame(CONT, b"x" * (MAX_SIZE // 2 + 1))],
        close=1009,
    ),
    "9.3 absurd declared length 2**63 - 1": Case("limits", [frame(BINARY, length=2**63 - 1)], close=1009),
    "9.4 declared length with the top bit set": Case("limits", [frame(TEXT, length=2**64 - 1)], close=1009),
    "9.5 message exactly ws_max_size": Case(
        "limits", [frame(BINARY, b"m" * MAX_SIZE)], replies=[(BINARY, b"m" * MAX_SIZE)]
    ),
}


def _run_case(server: Server, case: Case, extensions: str = "") -> RawClient:
    sock = raw_connection(server)
    client = RawClient(sock)
    status, _ = client.handshake(extra=extensions)
    assert status == 101
    client.send(*case.frames)
    return client


@pytest.mark.parametrize("name", _ids(CASES))
def test_case(server: Server, name: str) -> None:
    case = CASES[name]
    client = _run_case(server, case)
    with client.sock:
        for opcode, payload in case.replies:
            got = client.read_frame()
            assert got is not None, f"EOF instead of {opcode:#x}"
            assert (got[1], got[2]) == (opcode, payload)
            if opcode == CLOSE:
                assert client.read_frame() is None
                break
        else:
            if case.close is None:
                client.send(frame(CLOSE, close_payload(1000)))
                assert client.expect_close() == 1000
            else:
                assert client.expect_close() == case.close
    assert_serves(server)


# -- 12/13. permessage-deflate (RFC 7692) ------------------------------------------------------------------
DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-12)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate(data: bytes) -> bytes:
    return zlib.decompressobj(wbits=-15).decompress(data + b"\x00\x00\xff\xff")


def test_deflate_negotiated_and_echoed(server: Server) -> None:
    with raw_connection(server) as sock:
        client = RawClient(sock)
        status, headers = client.handshake(extra=DEFLATE)
        assert status == 101
        assert "permessage-deflate" in headers
        message = b"compress me " * 100
        client.send(frame(TEXT, deflate(message), rsv=4))
        got = client.read_frame()
        assert got is not None
        assert got[1] == TEXT
        assert got[3] == 4
        assert inflate(got[2]) == message
        client.send(frame(CLOSE, close_payload(1000)))
        assert client.expect_close() == 1000


COMPRESSED_CASES: dict[str, Case] = {
    "12.1 compression bomb stopped while inflating": Case(
        "deflate", [frame(BINARY, deflate(b"\x00" * (4 * MAX_SIZE)), rsv=4)], close=1009
    ),
    "12.2 RSV1 on a continuation frame": Case(
        "deflate", [frame(TEXT, deflate(b"ab"), rsv=4, fin=False), frame(CONT, b"c", rsv=4)], close=1002
    ),
    "12.3 corrupt deflate data": Case("deflate", [frame(BINARY, b"\xff\xff\xff\xff", rsv=4)], close=1002),
    "12.4 RSV1 on a control frame": Case("deflate", [frame(PING, b"x", rsv=4)], close=1002),
}


@pytest.mark.parametrize("extensions", ["", DEFLATE], ids=["plain", "deflate"])
def test_close_between_fragments_reaches_the_app_as_a_clean_disconnect(extensions: str) -> None:
    """RFC 6455 5.4: the Close is echoed, and the app gets the client's code, never the unfinished message."""
    received: list[dict[str, Any]] = []
    done = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        received.append(await receive())
        done.set()

    first = (
        frame(TEXT, deflate(b"half a message"), rsv=4, fin=False)
        if extensions
        else frame(TEXT, b"a", fin=False)
    )
    with serve(app) as started, raw_connection(started) as sock:
        client = RawClient(sock)
        assert client.handshake(extra=extensions)[0] == 101
        client.send(first, frame(CLOSE, close_payload(4001, b"bye")))
        assert client.expect_close() == 4001
        assert done.wait(5 * UNIT)
    assert received == [{"type": "websocket.disconnect", "code": 4001, "reason": "bye"}]


@pytest.mark.parametrize("name", _ids(COMPRESSED_CASES))
def test_compressed_case(server: Server, name: str) -> None:
    case = COMPRESSED_CASES[name]
    client = _run_case(server, case, DEFLATE)
    with client.sock:
        assert client.expect_close() == case.close
    assert_serves(server)


# -- the opening handshake, through both HTTP parsers ------------------------------------------------------
@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize(
    ("method", "extra_headers", "status"),
    [
        ("GET", "", 101),
        ("POST", "Content-Length: 0\r\n", 405),
        ("GET", "Sec-WebSocket-Version: 8\r\n", 400),  # two versions: refused
    ],
)
def test_handshake(http: str, method: str, extra_headers: str, status: int) -> None:
    with serve(echo_app, http=http) as started, raw_connection(started) as sock:
        client = RawClient(sock)
        assert client.handshake(extra=extra_headers, method=method)[0] == status
        if status != 101:
            while client._fill():  # the refusal's body, then the server closes
                pass
        else:
            client.send(frame(CLOSE, close_payload(1000)))
            assert client.expect_close() == 1000


@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize("version", ["8", "14", "13.0"])
def test_unsupported_version_is_426_with_the_version_spoken(http: str, version: str) -> None:
    """RFC 6455 4.4: a version the server does not understand gets an error such as 426 Upgrade Required and
    a Sec-WebSocket-Version header listing the versions it does."""
    with serve(echo_app, http=http) as started, raw_connection(started) as sock:
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: "
            + version.encode()
            + b"\r\n\r\n"
        )
        client = RawClient(sock)
        while client._fill():  # the whole refusal; the server closes after it
            pass
        head = client.buffer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower().split("\r\n")
        assert head[0] == "http/1.1 426 upgrade required"
        assert "sec-websocket-version: 13" in head[1:]
        assert "upgrade: websocket" in head[1:]


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_frames_sent_with_the_handshake_are_kept(http: str) -> None:
    """A client that pipelines its first frame behind the request (the HTTP parser's trailing data)."""
    with serve(echo_app, http=http) as started, raw_connection(started) as sock:
        request = (
            b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        sock.sendall(request + frame(TEXT, b"early"))
        client = RawClient(sock)
        while b"\r\n\r\n" not in client.buffer:
            assert client._fill()
        head, client.buffer = client.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101")
        assert client.read_frame() == (True, TEXT, b"early", 0)
