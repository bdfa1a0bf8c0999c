"""The PROXY protocol: the parser in memory (a table, split at every byte), raw sockets, and a real HAProxy."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import hatchway
from hatchway._proxy_protocol import (
    V1_MAX,
    V2_MAX_LENGTH,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyProtocolError,
    build_v1,
    build_v2,
    parse,
)
from tests.daemons import binary, daemon, free_port
from tests.utils import UNIT

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "examples" / "deploy"
REQUEST = b"GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def _v2(command: int, family: int, block: bytes) -> bytes:
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(block)) + block


_INET_BLOCK = bytes([192, 0, 2, 1, 198, 51, 100, 7]) + struct.pack("!HH", 40000, 443)
_TLV = bytes([0x04, 0x00, 0x03]) + b"abc"  # PP2_TYPE_NOOP, skipped

# (name, bytes, mode, expected header; its length is the whole input's)
VALID: list[tuple[str, bytes, str, ProxyHeader]] = [
    (
        "v1 tcp4",
        b"PROXY TCP4 192.0.2.1 198.51.100.7 40000 443\r\n",
        "v1",
        ProxyHeader(1, 0, False, ("192.0.2.1", 40000), ("198.51.100.7", 443)),
    ),
    (
        "v1 tcp6",
        b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n",
        "auto",
        ProxyHeader(1, 0, False, ("2001:db8::1", 1), ("2001:db8::2", 65535)),
    ),
    ("v1 unknown", b"PROXY UNKNOWN\r\n", "v1", ProxyHeader(1, 0, True)),
    ("v1 unknown with addresses", b"PROXY UNKNOWN ::1 ::1 1 2\r\n", "auto", ProxyHeader(1, 0, True)),
    (
        "v1 longest line",
        b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        b"65535 65535\r\n",
        "v1",
        ProxyHeader(
            1,
            V1_MAX,
            False,
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
        ),
    ),
    (
        "v2 tcp4",
        _v2(1, 0x11, _INET_BLOCK),
        "v2",
        ProxyHeader(2, 0, False, ("192.0.2.1", 40000), ("198.51.100.7", 443)),
    ),
    (
        "v2 tcp4 with a TLV",
        _v2(1, 0x11, _INET_BLOCK + _TLV),
        "auto",
        ProxyHeader(2, 0, False, ("192.0.2.1", 40000), ("198.51.100.7", 443)),
    ),
    (
        "v2 tcp6",
        build_v2(("2001:db8::1", 5), ("::1", 8000)),
        "v2",
        ProxyHeader(2, 0, False, ("2001:db8::1", 5), ("::1", 8000)),
    ),
    ("v2 local", _v2(0, 0x00, b""), "v2", ProxyHeader(2, 0, True)),
    ("v2 local with addresses", _v2(0, 0x11, _INET_BLOCK), "auto", ProxyHeader(2, 0, True)),
    ("v2 unspec family", _v2(1, 0x00, _TLV), "v2", ProxyHeader(2, 0, True)),
    (
        "v2 unix",
        _v2(1, 0x31, b"/a".ljust(108, b"\0") + b"/b".ljust(108, b"\0")),
        "v2",
        ProxyHeader(2, 0, False),
    ),
]

# (name, bytes, mode, part of the message)
INVALID: list[tuple[str, bytes, str, str]] = [
    ("plain HTTP", b"GET / HTTP/1.1\r\n", "auto", "expected a PROXY protocol header"),
    ("HTTP method starting with P", b"POST / HTTP/1.1\r\n", "v1", "expected a PROXY protocol header"),
    ("TLS client hello", b"\x16\x03\x01\x02\x00", "auto", "expected a PROXY protocol header"),
    ("v2 where v1 expected", build_v2(None, None), "v1", "expected a PROXY protocol v1 line, got a v2"),
    ("v1 where v2 expected", build_v1(None, None), "v2", "expected a PROXY protocol v2 header, got a v1"),
    ("lowercase", b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "v1", "expected a PROXY protocol"),
    ("v1 unknown family", b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n", "v1", "expected 'PROXY TCP4|TCP6"),
    ("v1 missing port", b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", "v1", "expected 'PROXY TCP4|TCP6"),
    ("v1 double space", b"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n", "v1", "expected 'PROXY TCP4|TCP6"),
    ("v1 family mismatch", b"PROXY TCP4 ::1 ::1 1 2\r\n", "v1", "expected an IPv4 address"),
    ("v1 bad address", b"PROXY TCP4 1.2.3.400 1.2.3.4 1 2\r\n", "v1", "expected an IPv4 address"),
    ("v1 leading zero address", b"PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", "v1", "expected an IPv4 address"),
    ("v1 port too big", b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n", "v1", "expected a port number"),
    ("v1 port leading zero", b"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n", "v1", "expected a port number"),
    ("v1 port sign", b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n", "v1", "expected a port number"),
    ("v1 bare LF", b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", "v1", "stray CR or LF"),
    ("v1 bare CR", b"PROXY TCP4 1.2.3.4\r1.2.3.4 1 2\r\n", "v1", "stray CR or LF"),
    ("v1 control character", b"PROXY TCP4 1.2.3.4\t1.2.3.4 1 2\r\n", "v1", "control characters"),
    ("v1 not ASCII", b"PROXY TCP4 1.2.3.4 1.2.3.\xc3\xa9 1 2\r\n", "v1", "not ASCII"),
    ("v1 too long", b"PROXY UNKNOWN " + b"x" * 100, "v1", f"no CRLF within {V1_MAX} bytes"),
    ("v1 too long by one", b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n", "v1", f"no CRLF within {V1_MAX}"),
    ("v2 bad signature", V2_SIGNATURE[:5] + b"X" + V2_SIGNATURE[6:], "v2", "v2 signature"),
    ("v2 version 1", V2_SIGNATURE + b"\x11\x11\x00\x0c", "v2", "version 2, got version 1"),
    ("v2 command 2", V2_SIGNATURE + b"\x22\x11\x00\x0c", "v2", "LOCAL (0) or PROXY (1), got 2"),
    ("v2 family 4", V2_SIGNATURE + b"\x21\x41\x00\x0c", "v2", "unknown address family"),
    ("v2 datagram", _v2(1, 0x12, _INET_BLOCK), "v2", "datagram"),
    ("v2 block too short", V2_SIGNATURE + b"\x21\x11\x00\x0b", "v2", "address block is 11 bytes"),
    ("v2 too long", V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", V2_MAX_LENGTH + 1), "v2", "more than"),
]


@pytest.mark.parametrize(("name", "data", "mode", "expected"), VALID, ids=[v[0] for v in VALID])
def test_valid_headers_at_every_split(name: str, data: bytes, mode: str, expected: ProxyHeader) -> None:
    # Every prefix needs more bytes; the whole header (with the client's bytes after it) is the header.
    for cut in range(len(data)):
        assert parse(data[:cut], mode) is None, cut
    expected = dataclasses.replace(expected, length=len(data))
    assert parse(data, mode) == expected
    assert parse(data + REQUEST, mode) == expected


@pytest.mark.parametrize(("name", "data", "mode", "message"), INVALID, ids=[v[0] for v in INVALID])
def test_invalid_headers_are_refused_as_early_as_possible(
    name: str, data: bytes, mode: str, message: str
) -> None:
    with pytest.raises(ProxyProtocolError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(data + REQUEST, mode)
    # Fed byte by byte, the parser never waits beyond the complete bad input, and never accepts a prefix.
    raised_at = None
    for cut in range(1, len(data) + 1):
        try:
            assert parse(data[:cut], mode) is None
        except ProxyProtocolError:
            raised_at = cut
            break
    assert raised_at is not None, name


def test_v1_needs_no_more_than_its_maximum() -> None:
    assert parse(b"PROXY UNKNOWN " + b"x" * (V1_MAX - 15), "v1") is None  # 106 bytes: may still end
    with pytest.raises(ProxyProtocolError, match="no CRLF within 107 bytes"):
        parse(b"PROXY UNKNOWN " + b"x" * (V1_MAX - 14), "v1")


def test_builders_round_trip() -> None:
    for client, server in [(("10.0.0.1", 1), ("10.0.0.2", 2)), (("::1", 3), ("fe80::1", 4))]:
        v1 = parse(build_v1(client, server), "v1")
        v2 = parse(build_v2(client, server), "v2")
        assert v1 is not None
        assert v2 is not None
        assert (v1.client, v1.server) == (v2.client, v2.server) == (client, server)


# -- over real sockets ----------------------------------------------------------------------------------------
async def who(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": repr(scope["client"])})
        await send({"type": "websocket.close"})
        return
    body = repr((scope["client"], scope["server"], scope["scheme"])).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def _port(server: Any) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _exchange(port: int, data: bytes, timeout: float = 5 * UNIT) -> bytes:
    """Send ``data``, read until the server closes; what it sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received


@pytest.mark.parametrize("mode", ["v1", "v2", "auto"])
def test_client_and_server_come_from_the_header(mode: str) -> None:
    with hatchway.background(who, proxy_protocol=mode) as server:
        port = _port(server)
        build = build_v2 if mode == "v2" else build_v1
        got = _exchange(port, build(("203.0.113.9", 51000), ("198.51.100.1", 443)) + REQUEST)
        assert got.startswith(b"HTTP/1.1 200 ")
        assert got.endswith(b"(('203.0.113.9', 51000), ('198.51.100.1', 443), 'http')")
        # Byte by byte, with the request in the same writes: the header is found wherever the reads split.
        with socket.create_connection(("127.0.0.1", port), timeout=5 * UNIT) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for byte in build(("2001:db8::7", 9), ("2001:db8::8", 80)) + REQUEST[:5]:
                sock.sendall(bytes([byte]))
                time.sleep(0.001)
            sock.sendall(REQUEST[5:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.endswith(b"(('2001:db8::7', 9), ('2001:db8::8', 80), 'http')")


def test_local_command_and_unknown_keep_the_real_peer() -> None:
    with hatchway.background(who, proxy_protocol="auto") as server:
        port = _port(server)
        for header in (build_v2(None, None), build_v1(None, None)):
            got = _exchange(port, header + REQUEST)
            assert b"(('127.0.0.1', " in got, got
            assert f"('127.0.0.1', {port})".encode() in got


def test_keep_alive_requests_after_the_header_keep_its_client() -> None:
    with hatchway.background(who, proxy_protocol="v1") as server:
        keep = REQUEST.replace(b"Connection: close\r\n", b"")
        got = _exchange(_port(server), build_v1(("192.0.2.5", 7), ("192.0.2.6", 8)) + keep + keep + REQUEST)
        assert got.count(b"(('192.0.2.5', 7), ('192.0.2.6', 8), 'http')") == 3


def test_missing_or_malformed_header_closes_without_an_http_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with hatchway.background(who, proxy_protocol="v1") as server:
        port = _port(server)
        assert _exchange(port, REQUEST) == b""
        assert _exchange(port, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n" + REQUEST) == b""
        assert _exchange(port, build_v2(("1.2.3.4", 1), ("1.2.3.4", 2)) + REQUEST) == b""
    text = caplog.text
    assert "Invalid PROXY protocol header from 127.0.0.1:" in text
    assert "expected a PROXY protocol v1 line, got 'GET /who HTTP/1.'" in text
    assert "got '99999'" in text


def test_header_must_arrive_within_the_request_head_timeout(caplog: pytest.LogCaptureFixture) -> None:
    with hatchway.background(who, proxy_protocol="v2", timeout_request_header=0.3) as server:
        started = time.monotonic()
        assert _exchange(_port(server), V2_SIGNATURE[:6]) == b""
        assert 0.25 < time.monotonic() - started < 3 * UNIT
    assert "No PROXY protocol header from 127.0.0.1:" in caplog.text


def test_the_request_head_gets_only_the_time_the_proxy_header_left() -> None:
    # One timeout_request_header from connecting to the end of the first request's head, the PROXY header
    # included: a header sent late leaves the HTTP head only the rest.
    with (
        hatchway.background(who, proxy_protocol="v1", timeout_request_header=1.0 * UNIT) as server,
        socket.create_connection(("127.0.0.1", _port(server)), timeout=5 * UNIT) as sock,
    ):
        started = time.monotonic()
        time.sleep(0.8 * UNIT)
        sock.sendall(build_v1(("192.0.2.5", 7), ("192.0.2.6", 8)) + REQUEST[:8])  # a head begun, never ended
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 0.95 * UNIT < elapsed < 1.4 * UNIT  # not 1.8: the header's 0.8 counted


def test_untrusted_peer_is_refused_even_with_a_valid_header(caplog: pytest.LogCaptureFixture) -> None:
    with hatchway.background(who, proxy_protocol="v1", forwarded_allow_ips="10.0.0.0/8") as server:
        assert _exchange(_port(server), build_v1(("1.2.3.4", 1), ("5.6.7.8", 2)) + REQUEST) == b""
    assert "not in forwarded_allow_ips" in caplog.text


def test_forwarded_headers_count_only_when_the_proxied_client_is_trusted() -> None:
    forged = REQUEST.replace(
        b"Host: x\r\n", b"Host: x\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n"
    )
    with hatchway.background(who, proxy_protocol="v1") as server:
        port = _port(server)
        # A TCP load balancer passes the client's bytes through: its X-Forwarded-For is the client's own.
        got = _exchange(port, build_v1(("203.0.113.9", 1), ("127.0.0.1", 2)) + forged)
        assert got.endswith(b"(('203.0.113.9', 1), ('127.0.0.1', 2), 'http')")
        # A trusted proxy behind the load balancer (here nginx on 127.0.0.1) is believed, as without PROXY.
        got = _exchange(port, build_v1(("127.0.0.1", 1), ("127.0.0.1", 2)) + forged)
        assert got.endswith(b"(('6.6.6.6', 0), ('127.0.0.1', 2), 'https')")


def test_websocket_upgrade_after_the_header_sees_the_proxied_client() -> None:
    from websockets.sync.client import connect

    with hatchway.background(who, proxy_protocol="v2") as server:
        sock = socket.create_connection(("127.0.0.1", _port(server)), timeout=5 * UNIT)
        sock.sendall(build_v2(("192.0.2.44", 4444), ("192.0.2.1", 80)))
        with connect(f"ws://127.0.0.1:{_port(server)}/", sock=sock, open_timeout=5 * UNIT) as ws:
            assert ws.recv(timeout=5 * UNIT) == "('192.0.2.44', 4444)"


def test_unix_socket_peer_is_trusted_by_its_path(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    with hatchway.background(who, uds=path, proxy_protocol="v1", forwarded_allow_ips=path):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5 * UNIT)
            sock.connect(path)
            sock.sendall(build_v1(("192.0.2.9", 9), ("192.0.2.1", 80)) + REQUEST)
            got = b""
            while chunk := sock.recv(65536):
                got += chunk
        assert got.endswith(b"(('192.0.2.9', 9), ('192.0.2.1', 80), 'http')")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"proxy_protocol": "v3"}, "expected one of 'off', 'v1', 'v2', 'auto', got 'v3'"),
        ({"proxy_protocol": "v1", "forwarded_allow_ips": ""}, "needs trusted peers"),
        (
            {"proxy_protocol": "auto", "ssl_certfile": __file__, "ssl_keyfile": __file__},
            "cannot be combined with TLS",
        ),
    ],
)
def test_misconfiguration_stops_start_up(options: dict[str, Any], message: str) -> None:
    with pytest.raises(hatchway.ConfigError, match=message):
        hatchway.Config(who, **options)


# -- behind a real HAProxy ------------------------------------------------------------------------------------
def haproxy_config(app_port: int, front_port: int, send_proxy: str) -> str:
    """examples/deploy/haproxy.cfg, as docs/deployment.md shows it, with the test's ports."""
    text = (DEPLOY / "haproxy.cfg").read_text()
    for needle in ("bind :80", "127.0.0.1:8000", "send-proxy-v2"):
        assert needle in text
    text = text.replace("bind :80", f"bind 127.0.0.1:{front_port}")
    text = text.replace("127.0.0.1:8000", f"127.0.0.1:{app_port}")
    return text.replace("send-proxy-v2", send_proxy)


@contextlib.contextmanager
def haproxy(config_text: str, tmp_path: Path, front_port: int) -> Iterator[subprocess.Popen[bytes]]:
    haproxy_binary = binary("haproxy")
    path = tmp_path / "haproxy.cfg"
    path.write_text(config_text)
    check = subprocess.run([haproxy_binary, "-c", "-f", str(path)], capture_output=True, timeout=10 * UNIT)
    assert check.returncode == 0, check.stderr.decode() + check.stdout.decode()
    with daemon([haproxy_binary, "-db", "-f", str(path)], [front_port], "haproxy") as proc:
        yield proc


@pytest.mark.slow
@pytest.mark.parametrize(
    ("send_proxy", "mode"), [("send-proxy", "v1"), ("send-proxy-v2", "v2"), ("send-proxy", "auto")]
)
def test_behind_haproxy_the_app_sees_the_real_client(tmp_path: Path, send_proxy: str, mode: str) -> None:
    front = free_port()
    with hatchway.background(who, proxy_protocol=mode, ready_path="/ready") as server:
        text = haproxy_config(_port(server), front, send_proxy)
        with haproxy(text, tmp_path, front):
            # The client connects from 127.0.0.2 (all of 127/8 is loopback): HAProxy's PROXY header names it,
            # while hatchway's TCP peer is HAProxy on 127.0.0.1.
            transport = httpx.HTTPTransport(local_address="127.0.0.2")
            with httpx.Client(transport=transport, timeout=5 * UNIT) as client:
                for _ in range(3):
                    response = client.get(f"http://127.0.0.1:{front}/who")
                    assert response.status_code == 200
                    client_address, server_address, scheme = ast.literal_eval(response.text)
                    assert client_address[0] == "127.0.0.2"
                    assert server_address == ("127.0.0.1", front)
                    assert scheme == "http"
                ready = client.get(f"http://127.0.0.1:{front}/ready")
                assert (ready.status_code, ready.text) == (200, "ok")


def test_curl_haproxy_protocol_as_an_exec_probe() -> None:
    # docs/deployment.md suggests it where a probe must reach a port that requires the header.
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    with hatchway.background(who, proxy_protocol="auto", ready_path="/ready") as server:
        done = subprocess.run(
            [curl, "-fsS", "--haproxy-protocol", server.url + "/ready"],
            capture_output=True,
            timeout=10 * UNIT,
            check=False,
        )
        assert (done.returncode, done.stdout) == (0, b"ok")
        plain = subprocess.run([curl, "-fsS", server.url + "/ready"], capture_output=True, timeout=10 * UNIT)
        assert plain.returncode != 0  # without the header: closed
