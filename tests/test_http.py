"""HTTP/1.1 behaviour over real sockets with both parsers: scope, framing, keep-alive, flow control, errors."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hatchway import Server
from hatchway._state import ServerState
from tests.http_cases import OK, ResponseReader
from tests.utils import UNIT, port_of, serve_in_thread

Scope = dict[str, Any]


@pytest.fixture(params=["httptools", "h11"])
def http(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port_of(server)), timeout=5 * UNIT)


def exchange(
    server: Server, raw: bytes, count: int = 1, head_request: bool = False
) -> tuple[list[Any], ResponseReader]:
    sock = connect(server)
    sock.sendall(raw)
    reader = ResponseReader(sock, 5 * UNIT)
    return [reader.read(head_request) for _ in range(count)], reader


def alive(server: Server) -> None:
    """The server still answers a normal request on a new connection."""
    response = httpx.get(server.url + "/alive", timeout=5 * UNIT)  # type: ignore[operator]
    assert response.status_code == 200


async def read_body(receive: Any) -> bytes:
    data = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        data += message["body"]
        if not message["more_body"]:
            return data


async def respond(
    send: Any, status: int = 200, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


# -- the http scope ------------------------------------------------------------------------------------
def test_scope_complete(http: str) -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["answer"] = 42
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        scopes.append(scope)
        await respond(send, body=b"ok")

    with serve_in_thread(app, http=http, root_path="/root") as server:
        with httpx.Client(timeout=5 * UNIT) as client:
            response = client.get(server.url + "/a%20b/%E2%82%AC?x=1&y=%2F", headers={"X-Test": "Value"})  # type: ignore[operator]
        assert response.status_code == 200
        port = port_of(server)
    scope = scopes[0]
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    # As uvicorn: root_path is prepended to path and raw_path; path is percent-decoded, raw_path is not.
    assert scope["root_path"] == "/root"
    assert scope["path"] == "/root/a b/\u20ac"
    assert scope["raw_path"] == b"/root/a%20b/%E2%82%AC"
    assert scope["query_string"] == b"x=1&y=%2F"
    assert (b"x-test", b"Value") in scope["headers"]
    assert (b"host", b"127.0.0.1:%d" % port) in scope["headers"]
    assert all(name == name.lower() and isinstance(value, bytes) for name, value in scope["headers"])
    assert scope["server"] == ("127.0.0.1", port)
    assert scope["client"][0] == "127.0.0.1"
    assert isinstance(scope["client"][1], int)
    assert scope["state"] == {"answer": 42}
    assert isinstance(scope["extensions"], dict)


def test_scope_state_is_a_copy_per_request(http: str) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["n"] = 0
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        scope["state"]["n"] += 1
        seen.append(dict(scope["state"]))
        await respond(send)

    with serve_in_thread(app, http=http) as server, httpx.Client(timeout=5 * UNIT) as client:
        for _ in range(2):
            client.get(server.url)  # type: ignore[arg-type]
    assert seen == [{"n": 1}, {"n": 1}]


def test_scope_changes_stay_with_their_request(http: str) -> None:
    # Each scope is a copy of one template per connection: what an app writes into a scope (or the dicts in
    # it) must not reach the next request on the same connection.
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append({key: scope.get(key) for key in ("marker", "path", "method", "http_version")})
        seen[-1]["asgi"] = dict(scope["asgi"])
        seen[-1]["extensions"] = sorted(scope["extensions"])
        scope["marker"] = scope["path"]
        scope["asgi"]["version"] = "changed"
        scope["extensions"]["x-changed"] = {}
        scope["headers"].append((b"x-added", b"1"))
        await respond(send)

    with serve_in_thread(app, http=http, lifespan="off") as server, connect(server) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        reader = ResponseReader(sock, 5 * UNIT)
        for _ in range(2):
            response = reader.read()
            assert response is not None
            assert response.status == 200
    assert [(s["marker"], s["path"], s["method"], s["http_version"]) for s in seen] == [
        (None, "/a", "GET", "1.1"),
        (None, "/b", "POST", "1.0"),
    ]
    assert seen[0]["asgi"] == seen[1]["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert seen[0]["extensions"] == seen[1]["extensions"]
    assert "x-changed" not in seen[1]["extensions"]


# -- a shared router app for the tests below -------------------------------------------------------------
class Router:
    """One app for many tests: the path picks the behaviour; events let tests observe the app."""

    def __init__(self) -> None:
        self.disconnected = threading.Event()
        self.release = threading.Event()
        self.sent_parts = 0
        self.consumed = threading.Event()
        self.proceed = threading.Event()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        handler = getattr(self, "do_" + path.strip("/").split("/")[0].replace("-", "_"), None)
        if handler is None:
            await respond(send, body=b"alive")
        else:
            await handler(scope, receive, send)

    async def do_waits(self, scope: Scope, receive: Any, send: Any) -> None:
        # A head and a chunk, then a wait that yields to the loop until the test lets it finish.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        deadline = time.monotonic() + 10 * UNIT
        while not self.proceed.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        await send({"type": "http.response.body", "body": b"last"})

    async def do_cancelled(self, scope: Scope, receive: Any, send: Any) -> None:
        # What asyncio.timeout and anyio cancel scopes do: cancel the current task, catch, carry on.
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().call_later(0.01, task.cancel)
        try:
            await asyncio.sleep(10 * UNIT)
        except asyncio.CancelledError:
            if hasattr(task, "uncancel"):  # Python 3.11+
                task.uncancel()
            await respond(send, body=b"cancelled and recovered")
            return
        await respond(send, status=500, body=b"not cancelled")

    async def do_echo(self, scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, body=await read_body(receive))

    async def do_port(self, scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, body=str(scope["client"][1]).encode())

    async def do_streamed(self, scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one", b"two", b""):
            await send({"type": "http.response.body", "body": part, "more_body": bool(part)})

    async def do_app_chunked(self, scope: Scope, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"transfer-encoding", b"chunked")]}
        )
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})

    async def do_sized(self, scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})

    async def do_sleep(self, scope: Scope, receive: Any, send: Any) -> None:
        delay = float(scope["query_string"] or b"0")
        await asyncio.sleep(delay)
        await respond(send, body=scope["path"].encode())

    async def do_wait_disconnect(self, scope: Scope, receive: Any, send: Any) -> None:
        await read_body(receive)
        message = await receive()
        if message["type"] == "http.disconnect":
            self.disconnected.set()

    async def do_no_read(self, scope: Scope, receive: Any, send: Any) -> None:
        # Holds the body unread until the test releases it, then consumes it all.
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        size = len(await read_body(receive))
        self.consumed.set()
        await respond(send, body=str(size).encode())

    async def do_big_response(self, scope: Scope, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % (64 << 20))],
            }
        )
        part = b"x" * (1 << 20)
        for _ in range(64):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            self.sent_parts += 1
        await send({"type": "http.response.body", "body": b""})

    async def do_close_header(self, scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, body=b"bye", headers=[(b"connection", b"close")])

    async def do_no_content(self, scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, status=204, body=b"")

    async def do_raise_before(self, scope: Scope, receive: Any, send: Any) -> None:
        raise ValueError("boom before start")

    async def do_raise_after(self, scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})
        raise ValueError("boom after start")

    async def do_raise_streaming(self, scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})
        await asyncio.sleep(0.01)
        raise ValueError("boom while streaming")

    async def do_no_response(self, scope: Scope, receive: Any, send: Any) -> None:
        return None

    async def do_body_first(self, scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.body", "body": b"x"})

    async def do_wrong_type(self, scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "websocket.accept"})

    async def do_bad_status(self, scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": "200"})

    async def do_start_twice(self, scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.start", "status": 200})

    async def do_crlf_name(self, scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, headers=[(b"x-a\r\ninjected", b"1")])

    async def do_crlf_value(self, scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, headers=[(b"x-a", b"1\r\ninjected: 1")])

    async def do_lf_value(self, scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, headers=[(b"x-a", b"1\ninjected: 1")])

    async def do_nul_value(self, scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, headers=[(b"x-a", b"1\x00injected")])

    async def do_too_long(self, scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, body=b"0123456789INJECTED", headers=[(b"content-length", b"10")])

    async def do_too_short(self, scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, body=b"01234", headers=[(b"content-length", b"10")])

    async def do_too_long_streamed(self, scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"dINJECTED", "more_body": True})


@pytest.fixture
def router() -> Router:
    return Router()


@pytest.fixture
def server(router: Router, http: str) -> Iterator[Server]:
    with serve_in_thread(router, http=http) as server:
        yield server


# -- connections -----------------------------------------------------------------------------------------
def test_keep_alive_reuses_the_connection(server: Server) -> None:
    with httpx.Client(timeout=5 * UNIT) as client:
        ports = {client.get(server.url + "/port").text for _ in range(3)}  # type: ignore[operator]
    assert len(ports) == 1


def test_pipelined_requests_answered_in_order(server: Server) -> None:
    # Earlier requests take longer, so answering in completion order would scramble them.
    raw = b"".join(
        b"GET /sleep/%d?%.2f HTTP/1.1\r\nHost: a\r\n\r\n" % (i, (10 - i) * 0.01) for i in range(10)
    )
    responses, _ = exchange(server, raw, 10)
    assert [r.body for r in responses] == [b"/sleep/%d" % i for i in range(10)]


@pytest.fixture
def in_flight(server: Server) -> Iterator[None]:
    """A slow request on another connection, so that finished responses are queued for the next turn."""
    slow = connect(server)
    slow.sendall(b"GET /sleep/slow?%.2f HTTP/1.1\r\nHost: a\r\n\r\n" % (0.5 * UNIT))
    time.sleep(0.1 * UNIT)
    yield
    response = ResponseReader(slow, 5 * UNIT).read()
    slow.close()
    assert response is not None
    assert response.body == b"/sleep/slow"


@pytest.mark.usefixtures("in_flight")
def test_a_queued_response_goes_out_before_a_later_immediate_one(server: Server) -> None:
    # A finished response waits for the loop's next turn (another request is in flight); the 400 for the
    # malformed request pipelined behind it is written at once, from the same call. The first must still
    # come first, and the close after the 400 must not drop it.
    raw = b"GET /sleep/0?0 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n"
    responses, reader = exchange(server, raw, 2)
    assert [(r.status, r.body) for r in responses] == [(200, b"/sleep/0"), (400, responses[1].body)]
    assert reader.closed()


def test_pipelined_requests_then_half_close_are_all_answered(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    sock = connect(server)
    sock.sendall(b"".join(b"GET /sleep/%d?0 HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(3)))
    sock.shutdown(socket.SHUT_WR)
    reader = ResponseReader(sock, 5 * UNIT)
    responses = [reader.read() for _ in range(3)]
    assert [(r.status, r.body) for r in responses] == [(200, b"/sleep/%d" % i) for i in range(3)]
    assert reader.closed()
    assert _errors(caplog) == []


@pytest.mark.usefixtures("in_flight")
def test_a_queued_response_survives_the_client_half_closing(server: Server) -> None:
    # The client shuts down its side right after its request: the transport closes itself once the
    # response is done, and the queued response must have been handed to it first.
    # /port answers without waiting, so the end of the request usually arrives after the response is done.
    for _ in range(5):
        sock = connect(server)
        sock.sendall(b"GET /port HTTP/1.1\r\nHost: a\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        reader = ResponseReader(sock, 5 * UNIT)
        response = reader.read()
        assert response is not None
        assert response.body == str(sock.getsockname()[1]).encode()
        assert reader.closed()
        sock.close()


@pytest.mark.usefixtures("in_flight")
def test_a_queued_response_goes_out_before_a_pipelined_upgrade(server: Server) -> None:
    # The router refuses WebSockets (403); what matters is that the response queued before the hand-off
    # to the WebSocket protocol is not dropped.
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    responses, _ = exchange(server, b"GET /sleep/0?0 HTTP/1.1\r\nHost: a\r\n\r\n" + upgrade, 2)
    assert responses[0] is not None
    assert (responses[0].status, responses[0].body) == (200, b"/sleep/0")
    assert responses[1] is not None
    assert responses[1].status == 403


def test_request_bodies(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"hello "
        yield b"chunked"

    with httpx.Client(timeout=5 * UNIT) as client:
        sized = client.post(server.url + "/echo", content=b"x" * 100_000)  # type: ignore[operator]
        chunked = client.post(server.url + "/echo", content=chunks())  # type: ignore[operator]
    assert sized.content == b"x" * 100_000
    assert chunked.content == b"hello chunked"
    assert chunked.request.headers["transfer-encoding"] == "chunked"


def test_unread_body_is_dropped_and_the_connection_reused(server: Server) -> None:
    big = 4 << 20
    raw = b"POST /port HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % big
    with connect(server) as sock:
        sock.sendall(raw)
        reader = ResponseReader(sock, 10 * UNIT)
        first = reader.read()
        assert first is not None
        assert first.status == 200
        sock.sendall(b"x" * big + b"GET /port HTTP/1.1\r\nHost: a\r\n\r\n")
        second = reader.read()
    assert second is not None
    assert second.body == first.body


def test_response_framing(server: Server) -> None:
    (streamed,), _ = exchange(server, b"GET /streamed HTTP/1.1\r\nHost: a\r\n\r\n")
    assert streamed.header(b"transfer-encoding") == b"chunked"
    assert streamed.header(b"content-length") is None
    assert streamed.body == b"onetwo"
    (sized,), _ = exchange(server, b"GET /sized HTTP/1.1\r\nHost: a\r\n\r\n")
    assert sized.header(b"content-length") == b"6"
    assert sized.header(b"transfer-encoding") is None
    assert sized.body == b"abcdef"
    (single,), _ = exchange(server, b"GET /alive HTTP/1.1\r\nHost: a\r\n\r\n")
    assert single.header(b"content-length") == b"5"
    assert single.body == b"alive"


def test_no_content_has_no_framing(server: Server) -> None:
    (response, after), _ = exchange(server, b"GET /no-content HTTP/1.1\r\nHost: a\r\n\r\n" + OK, 2)
    assert response.status == 204
    assert response.header(b"content-length") is None
    assert response.header(b"transfer-encoding") is None
    assert after.status == 200


def test_expect_100_continue(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        reader = ResponseReader(sock, 5 * UNIT)
        interim = reader._until(b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        response = reader.read()
        assert response is not None
        assert (response.status, response.body) == (200, b"hello")


def test_no_100_continue_when_the_app_does_not_read(server: Server) -> None:
    raw = b"POST /alive HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    (response,), _ = exchange(server, raw)
    assert response.status == 200
    assert b"100 Continue" not in response.raw_head


def test_no_100_continue_for_an_http_1_0_client(server: Server) -> None:
    # RFC 9110 10.1.1: an HTTP/1.0 client cannot read a 1xx response, so the expectation is ignored.
    with connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
        sock.settimeout(5 * UNIT)
        data = b""
        while chunk := sock.recv(65536):  # HTTP/1.0 without keep-alive: the server closes after the response
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data[:40]
    assert b"100 Continue" not in data
    assert data.endswith(b"hello")


def test_head_sends_no_body(server: Server) -> None:
    raw = b"HEAD /sized HTTP/1.1\r\nHost: a\r\n\r\nHEAD /streamed HTTP/1.1\r\nHost: a\r\n\r\n" + OK
    with connect(server) as sock:
        sock.sendall(raw)
        reader = ResponseReader(sock, 5 * UNIT)
        first, second = reader.read(head_request=True), reader.read(head_request=True)
        third = reader.read()
    assert first is not None
    assert second is not None
    assert third is not None
    assert first.header(b"content-length") == b"6"
    # No body bytes on the wire: the next response starts right after each head.
    assert third.status == 200
    assert third.body == b"alive"


def test_http_1_0(server: Server) -> None:
    (response,), reader = exchange(server, b"GET /streamed HTTP/1.0\r\n\r\n")
    # No chunked encoding for an HTTP/1.0 client: the body ends when the connection closes.
    assert response.header(b"transfer-encoding") is None
    assert response.body == b"onetwo"
    assert reader.eof
    (chunked,), reader = exchange(server, b"GET /app-chunked HTTP/1.0\r\n\r\n")
    assert chunked.header(b"transfer-encoding") is None
    assert chunked.body == b"onetwo"
    (sized,), reader = exchange(server, b"GET /alive HTTP/1.0\r\n\r\n")
    assert sized.header(b"connection") == b"close"
    assert reader.closed()


def test_http_1_0_keep_alive(server: Server) -> None:
    raw = b"GET /port HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /port HTTP/1.0\r\n\r\n"
    (first, second), reader = exchange(server, raw, 2)
    assert first.body == second.body
    assert first.header(b"connection") == b"keep-alive"
    assert second.header(b"connection") == b"close"
    assert reader.closed()


def test_connection_close_from_client(server: Server) -> None:
    (response,), reader = exchange(server, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + OK)
    assert response.header(b"connection") == b"close"
    assert reader.closed()


def test_connection_close_from_app(server: Server) -> None:
    (response,), reader = exchange(server, b"GET /close-header HTTP/1.1\r\nHost: a\r\n\r\n" + OK)
    assert response.body == b"bye"
    assert response.header(b"connection") == b"close"
    assert reader.closed()


def test_http_disconnect_when_client_goes_away(server: Server, router: Router) -> None:
    sock = connect(server)
    sock.sendall(b"GET /wait-disconnect HTTP/1.1\r\nHost: a\r\n\r\n")
    time.sleep(0.05 * UNIT)
    sock.close()
    assert router.disconnected.wait(5 * UNIT)
    alive(server)


def test_half_closed_client_gets_its_answers(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /sleep?0.05 HTTP/1.1\r\nHost: a\r\n\r\n" + OK)
        sock.shutdown(socket.SHUT_WR)
        reader = ResponseReader(sock, 5 * UNIT)
        assert [reader.read().status, reader.read().status] == [200, 200]  # type: ignore[union-attr]
        assert reader.closed()


# -- flow control ----------------------------------------------------------------------------------------
def test_reading_pauses_while_the_body_is_not_consumed(server: Server, router: Router) -> None:
    total = 32 << 20
    with connect(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
        sock.sendall(b"POST /no-read HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % total)
        sock.setblocking(False)
        sent = 0
        stalled_at = time.monotonic() + 10 * UNIT
        chunk = b"x" * 65536
        # Push until the kernel buffers are full: the server must have stopped reading well before 32 MiB.
        idle_since = time.monotonic()
        while sent < total and time.monotonic() < stalled_at:
            try:
                sent += sock.send(chunk[: total - sent])
                idle_since = time.monotonic()
            except BlockingIOError:
                if time.monotonic() - idle_since > 0.3 * UNIT:
                    break
                time.sleep(0.005)
        assert sent < total // 2, "the server kept reading a body nobody consumed"
        router.release.set()
        sock.setblocking(True)
        sock.settimeout(10 * UNIT)
        while sent < total:
            sent += sock.send(chunk[: total - sent])
        response = ResponseReader(sock, 10 * UNIT).read()
    assert response is not None
    assert response.body == str(total).encode()


def test_send_waits_while_the_client_does_not_read(server: Server, router: Router) -> None:
    with connect(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        sock.sendall(b"GET /big-response HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.5 * UNIT)
        # 64 MiB were offered; with a client that reads nothing, only a few MiB may be buffered.
        assert router.sent_parts < 16
        received = 0
        sock.settimeout(10 * UNIT)
        while received < (64 << 20):
            data = sock.recv(1 << 20)
            if not data:
                break
            received += len(data)
    assert received > 64 << 20  # body plus head
    assert router.sent_parts == 64


def test_what_the_app_sent_goes_out_while_it_waits(server: Server, router: Router) -> None:
    # Head and chunks are held only until the app yields to the loop: the client sees them during the wait.
    with connect(server) as sock:
        sock.sendall(b"GET /waits HTTP/1.1\r\nHost: a\r\n\r\n")
        received = b""
        while b"first" not in received:
            data = sock.recv(65536)  # the socket's 5 s timeout bounds each wait
            assert data, received
            received += data
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding: chunked\r\n" in received
        assert b"last" not in received
        router.proceed.set()
        while not received.endswith(b"0\r\n\r\n"):
            data = sock.recv(65536)
            assert data, received
            received += data
    assert received.endswith(b"5\r\nfirst\r\n4\r\nlast\r\n0\r\n\r\n")


@pytest.mark.filterwarnings("error")
def test_an_app_cancelled_mid_await_gets_the_cancellation(server: Server) -> None:
    # The CancelledError must reach the app as it is, with no warning on the way (a warning turned into an
    # error would replace it): hatchway's own code sits between the request task and the app.
    response = httpx.get(server.url + "/cancelled", timeout=5 * UNIT)  # type: ignore[operator]
    assert (response.status_code, response.text) == (200, "cancelled and recovered")


# -- default headers -------------------------------------------------------------------------------------
def test_default_headers(server: Server) -> None:
    (first, _second), _ = exchange(server, OK + OK, 2)
    assert first.header(b"server") == b"hatchway"
    date = first.header(b"date")
    assert date is not None
    parsed = email.utils.parsedate_to_datetime(date.decode())
    assert abs(parsed.timestamp() - time.time()) < 5


def test_date_header_cached_per_second() -> None:
    from hatchway import Config

    state = ServerState(Config("tests.http_cases:echo_app"))
    first = state.default_headers()
    second = state.default_headers()
    if first is not second:  # the second boundary fell between the two calls
        second = state.default_headers()
        first = state.default_headers()
    assert first is second
    assert first.startswith(b"date: ")


def test_server_header_off_and_custom_headers(http: str, router: Router) -> None:
    with serve_in_thread(
        router, http=http, server_header=False, date_header=False, headers=[("X-A", "b")]
    ) as server:
        (response,), _ = exchange(server, OK)
    assert response.header(b"server") is None
    assert response.header(b"date") is None
    assert response.header(b"x-a") == b"b"


def test_custom_server_header_replaces_default(http: str, router: Router) -> None:
    with serve_in_thread(router, http=http, headers=[("Server", "custom")]) as server:
        (response,), _ = exchange(server, OK)
    assert [v for n, v in response.headers if n.lower() == b"server"] == [b"custom"]


# -- limits and timers -----------------------------------------------------------------------------------
def test_limit_concurrency(http: str, router: Router) -> None:
    with serve_in_thread(router, http=http, limit_concurrency=1) as server:
        busy = connect(server)
        busy.sendall(b"GET /no-read HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.1 * UNIT)
        (response,), _ = exchange(server, OK)
        assert response.status == 503
        router.release.set()
        assert ResponseReader(busy, 5 * UNIT).read().status == 200  # type: ignore[union-attr]
        busy.close()


def test_limit_max_requests_stops_the_server(http: str, router: Router) -> None:
    with serve_in_thread(router, http=http, limit_max_requests=3) as server:
        with httpx.Client(timeout=5 * UNIT) as client:
            for _ in range(3):
                assert client.get(server.url).status_code == 200  # type: ignore[arg-type]
        assert server.finished.wait(5 * UNIT)


def test_keep_alive_timeout_closes_idle_connections(http: str, router: Router) -> None:
    with serve_in_thread(router, http=http, timeout_keep_alive=0.2 * UNIT) as server:
        (response,), reader = exchange(server, OK)
        assert response.status == 200
        started = time.monotonic()
        assert reader.closed()
        assert time.monotonic() - started < 3 * UNIT


def test_head_timeout_closes_a_silent_client(http: str, router: Router) -> None:
    with serve_in_thread(router, http=http, timeout_request_header=0.2 * UNIT) as server:
        (response,), reader = exchange(server, b"GET / HTTP/1.1\r\nHost: a\r\n")
        assert response.status == 408
        assert reader.closed()
        # A connection that never sends a byte is closed too.
        with connect(server) as sock:
            assert ResponseReader(sock, 5 * UNIT).read().status == 408  # type: ignore[union-attr]


def test_head_timeout_applies_to_the_next_request_too(http: str, router: Router) -> None:
    with serve_in_thread(
        router, http=http, timeout_request_header=0.3 * UNIT, timeout_keep_alive=5
    ) as server:
        (first, second), reader = exchange(server, OK + b"GET / HTTP/1.1\r\n", 2)
        assert first.status == 200
        assert second.status == 408
        assert reader.closed()


# -- broken applications ---------------------------------------------------------------------------------
def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "hatchway.error" and r.levelno >= logging.ERROR]


def test_exception_before_start_is_500(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    (response,), reader = exchange(server, b"GET /raise-before HTTP/1.1\r\nHost: a\r\n\r\n")
    assert response.status == 500
    assert response.body == b"Internal Server Error"
    assert reader.closed()
    errors = _errors(caplog)
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "boom before start" in str(errors[0].exc_info[1])
    alive(server)


@pytest.mark.parametrize("path", ["/raise-after", "/raise-streaming"])
def test_exception_after_start_truncates(server: Server, caplog: pytest.LogCaptureFixture, path: str) -> None:
    _, reader = exchange(server, b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode(), count=0)
    raw = reader._until(b"12345")
    assert raw is not None
    assert raw.startswith(b"HTTP/1.1 200 ")
    while reader._more():
        pass
    # Closed without completing the body: no more data and no terminating chunk.
    assert reader.eof
    assert reader.buffer in (b"", b"\r\n")
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url + path, timeout=5 * UNIT)  # type: ignore[operator]
    assert any(r.exc_info for r in _errors(caplog))
    alive(server)


@pytest.mark.parametrize(
    "path", ["/no-response", "/body-first", "/wrong-type", "/bad-status", "/start-twice"]
)
def test_broken_app_gets_500(server: Server, caplog: pytest.LogCaptureFixture, path: str) -> None:
    (response,), reader = exchange(server, b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode())
    if path == "/start-twice":
        # The first start was valid and is on the wire; the second cannot be taken back: truncated.
        assert response is None or response.status == 200
    else:
        assert response.status == 500
    assert reader.closed()
    assert _errors(caplog)
    alive(server)


@pytest.mark.parametrize("path", ["/crlf-name", "/crlf-value", "/lf-value", "/nul-value"])
def test_response_splitting_refused(server: Server, caplog: pytest.LogCaptureFixture, path: str) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode())
        reader = ResponseReader(sock, 5 * UNIT)
        reader.closed()
        wire = reader.buffer
    assert wire.startswith(b"HTTP/1.1 500 ")
    assert b"injected" not in wire.lower()
    assert _errors(caplog)
    alive(server)


@pytest.mark.parametrize("path", ["/too-long", "/too-short", "/too-long-streamed"])
def test_body_not_matching_content_length(
    server: Server, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode() + OK)
        reader = ResponseReader(sock, 5 * UNIT)
        reader.closed()
        wire = reader.buffer
    head, _, body = wire.partition(b"\r\n\r\n")
    length = int(dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])[b"content-length"])
    assert len(body) <= length  # never an extra byte, never the pipelined request's answer
    assert b"INJECTED" not in body
    assert any("Content-Length" in r.getMessage() for r in _errors(caplog))
    alive(server)


# -- bounded buffering of what the app has not asked for ---------------------------------------------------
async def slow_unread(scope: Scope, receive: Any, send: Any) -> None:
    """Answers after a pause without reading the body (``/slow``), or at once (``/fast``)."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(0.3 * UNIT)
    await respond(send, body=scope["path"].encode())


def _bytes_accepted(sock: socket.socket, total: int, seconds: float) -> int:
    """Push up to ``total`` bytes for at most ``seconds``; how many the server side took."""
    sock.setblocking(False)
    chunk = b"x" * 65536
    sent = 0
    deadline = time.monotonic() + seconds
    while sent < total and time.monotonic() < deadline:
        try:
            sent += sock.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
    sock.setblocking(True)
    return sent


@pytest.mark.parametrize(
    "first",
    [
        b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /slow HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
        b"GET /slow HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ],
    ids=["pipelined", "declined-upgrade", "http-1.0-keep-alive"],
)
def test_bytes_behind_a_request_in_progress_are_bounded(http: str, first: bytes) -> None:
    # Whatever follows the request being served waits in the kernel's buffers, not in the server's memory:
    # the server stops reading, so a client cannot make it buffer without bound.
    with serve_in_thread(slow_unread, http=http, lifespan="off") as server, connect(server) as sock:
        sock.sendall(first)
        accepted = _bytes_accepted(sock, 64 * 1024 * 1024, 0.25 * UNIT)
    # Loopback socket buffers hold a few MiB at most; without the bound the server reads all 64 MiB.
    assert accepted < 24 * 1024 * 1024, accepted


def test_unread_body_that_arrived_before_the_response_is_dropped(http: str) -> None:
    with serve_in_thread(slow_unread, http=http, lifespan="off") as server, connect(server) as sock:
        body = b"y" * 200_000
        sock.sendall(b"POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        reader = ResponseReader(sock, 5 * UNIT)
        first = reader.read()
        sock.sendall(b"GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
        second = reader.read()
    assert first is not None
    assert second is not None
    assert (first.body, second.body) == (b"/slow", b"/fast")


def test_body_that_never_arrives_after_the_response_times_out(http: str) -> None:
    with serve_in_thread(slow_unread, http=http, lifespan="off", timeout_request_body=0.3 * UNIT) as server:
        with connect(server) as sock:
            sock.sendall(b"POST /fast HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
            reader = ResponseReader(sock, 5 * UNIT)
            response = reader.read()
            assert response is not None
            assert response.body == b"/fast"
            sock.settimeout(5 * UNIT)
            assert sock.recv(1) == b""  # closed by the server within the body timeout, not held forever
        alive(server)


def test_unread_body_after_expect_100_continue_closes(http: str) -> None:
    with serve_in_thread(slow_unread, http=http, lifespan="off") as server, connect(server) as sock:
        sock.sendall(b"POST /fast HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
        reader = ResponseReader(sock, 5 * UNIT)
        response = reader.read()
        assert response is not None
        assert response.status == 200
        sock.settimeout(5 * UNIT)
        assert sock.recv(1) == b""


# -- apps that are valid but unusual ------------------------------------------------------------------------
def test_an_app_returning_a_task_instead_of_a_coroutine_is_awaited(http: str) -> None:
    async def handler(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, body=b"from a task")

    def app(scope: Scope, receive: Any, send: Any) -> Any:
        # Any awaitable is a valid ASGI return value, not only a coroutine.
        return asyncio.ensure_future(handler(scope, receive, send))

    with serve_in_thread(app, http=http, lifespan="off", interface="asgi3") as server:
        response = httpx.get(server.url or "", timeout=5 * UNIT)
    assert (response.status_code, response.text) == (200, "from a task")


def test_a_start_sent_from_another_task_after_the_app_returned_fails_cleanly(
    http: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["path"] == "/alive":
            await respond(send)
            return
        asyncio.get_running_loop().create_task(
            send({"type": "http.response.start", "status": 200, "headers": []})
        )
        await asyncio.sleep(0)

    caplog.set_level(logging.ERROR)
    with serve_in_thread(app, http=http, lifespan="off") as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        sock.settimeout(5 * UNIT)
        assert sock.recv(1000) == b""  # closed, never a half-written head
        alive(server)
    messages = [r.getMessage() for r in caplog.records]
    assert any("returned without completing response" in m for m in messages), messages
    # One clear line from hatchway, no raw traceback from its internals via asyncio's handler.
    assert not any(r.name == "asyncio" for r in caplog.records), messages


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.eager_task_factory is new in Python 3.12")
def test_requests_finished_by_an_eager_task_factory_are_not_counted_as_in_flight(http: str) -> None:
    # An app may install an eager task factory at start-up: a request task then runs, and may finish, inside
    # the call that creates it. Had it stayed counted, limit_concurrency would answer 503 to later requests.
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
            await send({"type": "lifespan.shutdown.complete"})
            return
        await respond(send, body=b"done")

    with (
        # asyncio's own loop: uvloop's create_task and Python 3.13's eager factory disagree on arguments.
        serve_in_thread(app, http=http, loop="asyncio", limit_concurrency=2) as server,
        httpx.Client(timeout=5 * UNIT) as client,
    ):
        statuses = [client.get(server.url + "/").status_code for _ in range(5)]  # type: ignore[operator]
    assert statuses == [200] * 5
