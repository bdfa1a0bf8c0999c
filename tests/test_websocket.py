"""WebSockets over loopback with the websockets asyncio client: ASGI messages, limits, keepalive and shutdown."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Coroutine
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close

import hatchway._ws.protocol as ws_module
from hatchway import Server
from tests.test_websocket_conformance import CLOSE, RawClient, close_payload, frame, serve
from tests.utils import UNIT

Message = dict[str, Any]


def run(coro: Coroutine[Any, Any, Any], timeout: float = 5 * UNIT) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def ws_url(server: Server, path: str = "/ws") -> str:
    assert server.url is not None
    return server.url.replace("http://", "ws://") + path


@pytest.fixture(params=["httptools", "h11"])
def http(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Recorder:
    """What the app saw, shared between the server thread and the test."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.messages: list[Message] = []
        self.done = threading.Event()

    def wait(self) -> None:
        assert self.done.wait(5 * UNIT), "the app did not finish"


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})


def close_of(exc: ConnectionClosed) -> Close:
    assert exc.rcvd is not None, "no close frame received"
    return exc.rcvd


# -- the ASGI exchange -------------------------------------------------------------------------------------
def test_echo_and_scope(http: str) -> None:
    seen = Recorder()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.scopes.append(scope)
        await echo_app(scope, receive, send)
        seen.done.set()

    async def client(server: Server) -> None:
        async with connect(ws_url(server, "/chat%20room?x=1"), subprotocols=["p1", "p2"]) as ws:  # type: ignore[list-item]
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
            big = b"x" * 300_000
            await ws.send(big)
            assert await ws.recv() == big

    with serve(app, http=http) as server:
        run(client(server))
        seen.wait()
    scope = seen.scopes[0]
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/chat room"
    assert scope["raw_path"] == b"/chat%20room"
    assert scope["query_string"] == b"x=1"
    assert scope["subprotocols"] == ["p1", "p2"]
    assert scope["http_version"] == "1.1"
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert (b"upgrade", b"websocket") in [(k, v.lower()) for k, v in scope["headers"]]
    assert scope["client"][0] == "127.0.0.1"


def test_subprotocol_and_extra_headers(http: str) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "p2", "headers": [(b"x-extra", b"yes")]})
        await send({"type": "websocket.close"})

    async def client(server: Server) -> None:
        async with connect(ws_url(server), subprotocols=["p1", "p2"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "p2"
            assert ws.response is not None
            assert ws.response.headers["x-extra"] == "yes"
            assert ws.response.headers["server"] == "hatchway"
            assert "date" in ws.response.headers
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert close_of(info.value).code == 1000

    with serve(app, http=http) as server:
        run(client(server))


def test_close_with_code_and_reason_and_peer_disconnect_code(http: str) -> None:
    seen = Recorder()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        if message.get("text") == "close me":
            await send({"type": "websocket.close", "code": 4321, "reason": "bye now"})
        else:
            seen.messages.append(await receive())
        seen.messages.append(await receive())  # disconnect, repeated once the connection is gone
        seen.done.set()

    async def server_closes(server: Server) -> None:
        async with connect(ws_url(server)) as ws:
            await ws.send("close me")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert (close_of(info.value).code, close_of(info.value).reason) == (4321, "bye now")

    async def client_closes(server: Server) -> None:
        async with connect(ws_url(server)) as ws:
            await ws.send("stay")
            await ws.close(4001, "client leaving")

    with serve(app, http=http) as server:
        run(server_closes(server))
        seen.wait()
        seen.done.clear()
        assert seen.messages[-1] == {"type": "websocket.disconnect", "code": 4321, "reason": "bye now"}
        run(client_closes(server))
        seen.wait()
    assert seen.messages[-2] == {"type": "websocket.disconnect", "code": 4001, "reason": "client leaving"}
    assert seen.messages[-1] == seen.messages[-2]


def test_denial_response(http: str) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"entry"})

    async def client(server: Server) -> None:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server)):
                pass
        response = info.value.response
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.body == b"no entry"

    with serve(app, http=http) as server:
        run(client(server))


@pytest.mark.parametrize("how", ["close", "return"])
def test_close_or_return_before_accept_is_403(http: str, how: str, caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        if how == "close":
            await send({"type": "websocket.close"})

    async def client(server: Server) -> None:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server, "/ws?q=1")):
                pass
        assert info.value.response.status_code == 403

    caplog.set_level(logging.INFO, "hatchway.error")
    with serve(app, http=http) as server:
        run(client(server))
    assert any('"WebSocket /ws?q=1" 403' in r.getMessage() for r in caplog.records)


def test_app_error_before_accept_is_500_and_after_is_1011(
    http: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        if scope["path"] == "/late":
            await send({"type": "websocket.accept"})
            await receive()
        raise ValueError("boom " + scope["path"])

    async def client(server: Server) -> None:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server, "/early")):
                pass
        assert info.value.response.status_code == 500
        async with connect(ws_url(server, "/late")) as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert close_of(closed.value).code == 1011

    with serve(app, http=http) as server:
        run(client(server))
    errors = [r for r in caplog.records if r.getMessage().startswith("Exception in ASGI application")]
    assert {str(r.exc_info[1]) for r in errors if r.exc_info} == {"boom /early", "boom /late"}


def test_access_line_and_client_drop_is_1006(caplog: pytest.LogCaptureFixture) -> None:
    seen = Recorder()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        seen.messages.append(await receive())
        seen.done.set()

    caplog.set_level(logging.INFO, "hatchway.error")
    with serve(app) as server:
        host, port = server.sockets[0].getsockname()[:2]
        with socket.create_connection((host, port), timeout=5 * UNIT) as sock:
            assert RawClient(sock).handshake("/drop?a=b")[0] == 101
        seen.wait()
    assert seen.messages == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]
    assert any('"WebSocket /drop?a=b" [accepted]' in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("how", ["close", "drop"])
def test_app_error_after_the_client_left_is_logged_with_its_traceback(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    # uvicorn logs it as an error with its traceback, and so does hatchway (docs/websockets.md).
    seen = Recorder()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        seen.messages.append(await receive())
        try:
            raise ValueError("boom after the client left")
        finally:
            seen.done.set()

    caplog.set_level(logging.INFO, "hatchway.error")
    with serve(app) as server:
        host, port = server.sockets[0].getsockname()[:2]
        with socket.create_connection((host, port), timeout=5 * UNIT) as sock:
            client = RawClient(sock)
            assert client.handshake()[0] == 101
            if how == "close":
                client.send(frame(CLOSE, close_payload(1000)))
                assert client.expect_close() == 1000
        seen.wait()
    assert seen.messages[0]["type"] == "websocket.disconnect"
    errors = [r for r in caplog.records if r.getMessage().startswith("Exception in ASGI application")]
    assert [r.levelno for r in errors] == [logging.ERROR]
    assert errors[0].exc_info is not None
    assert str(errors[0].exc_info[1]) == "boom after the client left"


# -- compression and limits --------------------------------------------------------------------------------
def test_permessage_deflate_negotiation() -> None:
    async def client(server: Server, expect: bool) -> None:
        async with connect(ws_url(server)) as ws:
            assert ws.response is not None
            assert ("permessage-deflate" in ws.response.headers.get("sec-websocket-extensions", "")) is expect
            await ws.send("a" * 10_000)
            assert await ws.recv() == "a" * 10_000

    with serve(echo_app) as server:
        run(client(server, True))
    with serve(echo_app, ws_per_message_deflate=False) as server:
        run(client(server, False))


@pytest.mark.parametrize("compression", ["deflate", None])
def test_oversized_message_closes_1009(compression: str | None) -> None:
    async def client(server: Server) -> None:
        async with connect(ws_url(server), compression=compression, max_size=None) as ws:
            await ws.send(b"y" * 1024)
            assert await ws.recv() == b"y" * 1024

            # Zeros compress about 1000:1, so with deflate this is the compression bomb: small on the wire,
            # stopped by the limit while inflating.
            async def send_then_receive() -> None:
                # Uncompressed, the server may close with 1009 while the client is still sending: then the
                # send itself reports the close.
                await ws.send(b"\x00" * 1_000_000)
                await ws.recv()

            with pytest.raises(ConnectionClosed) as info:
                await send_then_receive()
            assert close_of(info.value).code == 1009

    with serve(echo_app, ws_max_size=65536) as server:
        run(client(server))
        run(client(server))  # the server is fine afterwards


def test_ws_none_serves_upgrade_as_http(http: str) -> None:
    seen = Recorder()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    headers = {"upgrade": "websocket", "connection": "upgrade", "sec-websocket-version": "13"}
    headers["sec-websocket-key"] = "dGhlIHNhbXBsZSBub25jZQ=="
    with serve(app, http=http, ws="none") as server:
        response = httpx.get(f"{server.url}/ws", headers=headers, timeout=5 * UNIT)
    assert response.status_code == 200
    assert response.text == "ok"
    assert seen.scopes[0]["type"] == "http"


def test_wsproto_is_served_by_websockets_with_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_module, "_notice_given", False)

    async def client(server: Server) -> None:
        for _ in range(2):
            async with connect(ws_url(server)) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"

    with serve(echo_app, ws="wsproto") as server:
        run(client(server))
    warnings = [r for r in caplog.records if "wsproto" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


# -- keepalive, flow control, shutdown ---------------------------------------------------------------------
def test_ping_timeout_drops_a_silent_peer() -> None:
    with serve(echo_app, ws_ping_interval=0.1 * UNIT, ws_ping_timeout=0.2 * UNIT) as server:
        host, port = server.sockets[0].getsockname()[:2]
        with socket.create_connection((host, port), timeout=5 * UNIT) as sock:
            client = RawClient(sock)
            assert client.handshake()[0] == 101
            opcodes = []
            start = time.monotonic()
            while True:
                frame = client.read_frame()
                if frame is None:
                    break
                opcodes.append(frame[1])
                if frame[1] == 0x8:
                    assert int.from_bytes(frame[2][:2], "big") == 1011
            assert opcodes[0] == 0x9
            assert opcodes[-1] == 0x8
            assert time.monotonic() - start < 3 * UNIT


def test_keepalive_keeps_an_answering_peer() -> None:
    async def client(server: Server) -> None:
        async with connect(ws_url(server)) as ws:
            await asyncio.sleep(0.5 * UNIT)  # several ping intervals; the client answers each ping
            await ws.send("still here")
            assert await ws.recv() == "still here"

    with serve(echo_app, ws_ping_interval=0.05 * UNIT, ws_ping_timeout=0.5 * UNIT) as server:
        run(client(server))


def _only_connection(server: Server) -> Any:
    assert server.state is not None
    deadline = time.monotonic() + 5 * UNIT
    while time.monotonic() < deadline:
        conns = [c for c in list(server.state.connections) if c.__class__.__name__ == "WebSocketProtocol"]
        if conns:
            return conns[0]
        time.sleep(0.01)
    raise AssertionError("no WebSocket connection")


def test_slow_reader_does_not_grow_server_memory() -> None:
    sent: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        chunk = b"z" * 65536
        for i in range(2000):  # 128 MiB if nothing held the app back
            await send({"type": "websocket.send", "bytes": chunk})
            sent.append(i)

    with serve(app, ws_per_message_deflate=False) as server:
        host, port = server.sockets[0].getsockname()[:2]
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.settimeout(5 * UNIT)
            sock.connect((host, port))
            assert RawClient(sock).handshake()[0] == 101  # then read nothing
            conn = _only_connection(server)
            time.sleep(0.5 * UNIT)
            stalled_at = len(sent)
            time.sleep(0.3 * UNIT)
            assert len(sent) == stalled_at < 2000, "the app's send did not wait"
            assert conn.flow.paused
            assert conn.transport.get_write_buffer_size() <= 4 * 65536


def test_max_queue_stops_reading() -> None:
    release = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.get_running_loop().run_in_executor(
            None, release.wait, 5 * UNIT
        )  # read nothing meanwhile
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async def client(server: Server) -> None:
        async with connect(ws_url(server), compression=None) as ws:
            payload = b"q" * 16384
            sender = asyncio.ensure_future(
                _send_many(ws, payload, 2000)
            )  # 32 MiB: more than loopback buffers
            await asyncio.sleep(0.5 * UNIT)
            conn = _only_connection(server)
            assert conn.reading_paused
            # Bounded: the queue limit plus what one read can hold (a read is at most 256 KiB).
            assert len(conn.session.inbox) <= 4 + 256 * 1024 // 16384 + 1
            assert not sender.done()
            release.set()
            await asyncio.wait_for(sender, 10 * UNIT)

    with serve(app, ws_max_queue=4) as server:
        run(client(server), timeout=15 * UNIT)


async def _send_many(ws: Any, payload: bytes, count: int) -> None:
    for _ in range(count):
        await ws.send(payload)


def test_shutdown_closes_1012_within_the_timeout(http: str) -> None:
    stubborn_started = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/stubborn":
            await receive()
            await send({"type": "websocket.accept"})
            stubborn_started.set()
            await asyncio.sleep(3600)  # ignores the disconnect: cancelled at the shutdown timeout
        await echo_app(scope, receive, send)

    codes: list[int] = []

    async def client(server: Server) -> None:
        async with connect(ws_url(server)) as ws, connect(ws_url(server, "/stubborn")) as stubborn:
            await ws.send("x")
            assert await ws.recv() == "x"
            assert stubborn_started.wait(5 * UNIT)
            server.stop()
            for conn in (ws, stubborn):
                with pytest.raises(ConnectionClosed) as info:
                    await conn.recv()
                codes.append(close_of(info.value).code)

    start = time.monotonic()
    with serve(app, http=http, timeout_graceful_shutdown=1.0 * UNIT) as server:
        run(client(server))
    assert codes == [1012, 1012]
    assert time.monotonic() - start < 4 * UNIT


def test_shutdown_before_accept_answers_503() -> None:
    decided, finished = threading.Event(), threading.Event()
    outcome: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        decided.set()
        await asyncio.sleep(0.3 * UNIT)  # still deciding when the server stops
        try:
            await send({"type": "websocket.accept"})
        except OSError:
            outcome.append("ClientDisconnected")
        finished.set()

    async def client(server: Server) -> None:
        task = asyncio.ensure_future(connect(ws_url(server)).__aenter__())
        await asyncio.get_running_loop().run_in_executor(None, decided.wait, 5 * UNIT)
        server.stop()
        with pytest.raises(InvalidStatus) as info:
            await task
        assert info.value.response.status_code == 503

    with serve(app, timeout_graceful_shutdown=2.0 * UNIT) as server:
        run(client(server))
        assert finished.wait(5 * UNIT)
    assert outcome == ["ClientDisconnected"]


def test_wss_over_tls(certificates: Any) -> None:
    seen = Recorder()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.scopes.append(scope)
        await echo_app(scope, receive, send)

    async def client(server: Server) -> None:
        assert server.url is not None
        url = server.url.replace("https://", "wss://") + "/secure"
        async with connect(url, ssl=certificates.client_context()) as ws:
            await ws.send("secret")
            assert await ws.recv() == "secret"

    with serve(app, ssl_certfile=certificates.certfile, ssl_keyfile=certificates.keyfile) as server:
        run(client(server))
    assert seen.scopes[0]["scheme"] == "wss"


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"type": "websocket.send", "text": "too early"}], "Unexpected ASGI message 'websocket.send'"),
        (
            [{"type": "websocket.accept"}, {"type": "websocket.accept"}],
            "Unexpected ASGI message 'websocket.accept'",
        ),
        (
            [{"type": "websocket.accept"}, {"type": "websocket.close", "code": 1006}],
            "Invalid WebSocket close code",
        ),
        ([{"type": "websocket.accept", "headers": [(b"x-bad", b"a\r\nb")]}], "Invalid HTTP header"),
        ([{"type": "websocket.http.response.start", "status": 99}], "Invalid HTTP status code"),
    ],
)
def test_app_misuse_is_reported(
    messages: list[Message], error: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        for message in messages:
            await send(message)

    async def client(server: Server) -> None:
        with pytest.raises((ConnectionClosed, InvalidStatus)) as info:
            async with connect(ws_url(server)) as ws:
                await ws.recv()
        if isinstance(info.value, InvalidStatus):
            assert info.value.response.status_code == 500  # failed before accepting
        else:
            assert close_of(info.value).code == 1011

    with serve(app) as server:
        run(client(server))
    failures = [r for r in caplog.records if r.exc_info and r.getMessage().startswith("Exception in ASGI")]
    assert failures
    assert error in str(failures[0].exc_info[1])  # type: ignore[index]


def test_message_assembler_in_memory() -> None:
    from websockets.frames import Frame, Opcode

    from hatchway._ws.session import MessageAssembler

    assembler = MessageAssembler()
    assert assembler.feed(Frame(Opcode.BINARY, b"ab")) == {"type": "websocket.receive", "bytes": b"ab"}
    euro = "€".encode()
    assert assembler.feed(Frame(Opcode.TEXT, euro[:1], fin=False)) is None
    assert assembler.feed(Frame(Opcode.CONT, euro[1:2], fin=False)) is None
    assert assembler.feed(Frame(Opcode.CONT, euro[2:])) == {"type": "websocket.receive", "text": "€"}
    assert assembler.feed(Frame(Opcode.BINARY, b"x", fin=False)) is None
    assert assembler.feed(Frame(Opcode.CONT, b"y")) == {"type": "websocket.receive", "bytes": b"xy"}
    with pytest.raises(UnicodeDecodeError):
        assembler.feed(Frame(Opcode.TEXT, b"\xff", fin=False))  # fails on the first fragment


def test_send_timeout_drops_a_client_that_reads_nothing() -> None:
    ended: list[str] = []
    done = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            while True:
                await send({"type": "websocket.send", "bytes": b"z" * 65536})
        except OSError:
            ended.append("ClientDisconnected")
        done.set()

    with serve(app, ws_per_message_deflate=False, timeout_send=0.3 * UNIT) as server:
        host, port = server.sockets[0].getsockname()[:2]
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.settimeout(5 * UNIT)
            sock.connect((host, port))
            assert RawClient(sock).handshake()[0] == 101  # then read nothing
            assert done.wait(5 * UNIT)
    assert ended == ["ClientDisconnected"]


def test_limit_concurrency_answers_503() -> None:
    async def client(server: Server) -> None:
        async with connect(ws_url(server)) as first:
            with pytest.raises(InvalidStatus) as info:
                async with connect(ws_url(server)):
                    pass
            assert info.value.response.status_code == 503
            await first.send("still fine")
            assert await first.recv() == "still fine"

    with serve(echo_app, limit_concurrency=1) as server:
        run(client(server))
