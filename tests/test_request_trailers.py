"""Request trailers are never merged into the request headers the app was given (a header-injection hole)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

import hatchway
from tests.utils import UNIT


async def headers_after_body_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    # Read the headers only after the whole body, as middleware that checks them late would.
    names = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]
    payload = json.dumps({"body": body.decode(), "headers": names}).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": payload})


def exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5 * UNIT) as sock:
        sock.sendall(raw)
        received = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return received
            received += data


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_trailer_fields_do_not_become_request_headers(http: str) -> None:
    raw = (
        b"POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\nAuthorization: Bearer evil\r\n\r\n"
    )
    with hatchway.background(headers_after_body_app, http=http) as server:
        port = server.port
        response = exchange(port, raw)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), response
    seen = json.loads(body)
    assert seen["body"] == "abc"
    assert seen["headers"] == [["host", "a"], ["transfer-encoding", "chunked"], ["connection", "close"]]


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_long_chunk_extension_is_refused(http: str) -> None:
    raw = (
        b"POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;e=" + b"x" * 100_000 + b"\r\nabc\r\n0\r\n\r\n"
    )
    with hatchway.background(headers_after_body_app, http=http) as server:
        response = exchange(server.port, raw)
    assert response.startswith(b"HTTP/1.1 400 "), response[:200]
    assert b"connection: close" in response.lower()
