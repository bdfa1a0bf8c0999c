"""Behaviour that deliberately differs from uvicorn: each difference is shown against a real uvicorn, so the
list in docs/configuration.md ("Meanings that differ") stays true when either server changes."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import hatchway
from tests.utils import UNIT

uvicorn = pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parent.parent


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.contextmanager
def uvicorn_server(**options: Any) -> Iterator[int]:
    """A uvicorn server in a thread; its port."""
    server = uvicorn.Server(uvicorn.Config(app, port=0, lifespan="off", log_level="critical", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10 * UNIT
        while not server.started:  # uvicorn has no readiness event
            assert thread.is_alive(), "uvicorn did not start"
            assert time.monotonic() < deadline, "uvicorn did not start in time"
            time.sleep(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10 * UNIT)


def status_of(port: int, request: bytes) -> int | None:
    """The status the server answers ``request`` with, or None when it closes without answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=5 * UNIT) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
    return int(data.split(b" ", 2)[1])


def meanings_that_differ() -> str:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    return doc.split("### Meanings that differ", 1)[1].split("\n### ", 1)[0]


def test_limit_concurrency_counts_like_its_help_text() -> None:
    # uvicorn counts the connection the request came on: with 1, even a lone request is refused.
    with uvicorn_server(limit_concurrency=1) as port:
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5 * UNIT).status_code == 503
    # hatchway serves up to N: one client at a time with 1 (tests/test_http.py shows the second one refused).
    with hatchway.background(app, lifespan="off", limit_concurrency=1) as server:
        assert httpx.get(f"{server.url}/", timeout=5 * UNIT).status_code == 200
    assert "| `limit_concurrency` |" in meanings_that_differ()


HEAD_START = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: "


def test_a_head_over_the_limit_is_431_with_both_parsers() -> None:
    incomplete = HEAD_START + b"a" * 20_000  # never ends: 20 KB and counting
    with uvicorn_server(http="h11") as port:
        assert status_of(port, incomplete) == 400  # past h11's 16 KiB, whatever h11's hint says
    with hatchway.background(app, lifespan="off", http="h11", h11_max_incomplete_event_size=16384) as server:
        assert server.url is not None
        assert status_of(int(server.url.rsplit(":", 1)[1]), incomplete) == 431
    too_large = HEAD_START + b"a" * 70_000  # past hatchway's default limit_request_head_size (64 KiB)
    for http in ("h11", "httptools"):
        with hatchway.background(app, lifespan="off", http=http) as server:
            assert server.url is not None
            assert status_of(int(server.url.rsplit(":", 1)[1]), too_large) == 431, http
    assert "| `h11_max_incomplete_event_size` |" in meanings_that_differ()
