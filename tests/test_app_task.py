"""An app cancelled at any of hatchway's waits gets its cancellation as it is, with no warning on the way.

The compiled build must behave as the pure one (see hatchway/_app_task.py for why it could not): these tests run
under ``-W error`` against whichever build is installed, at every point where the app's task can be waiting
inside hatchway (the body, the disconnect, room in the write buffer; HTTP and WebSocket), with the three ways
apps are cancelled (``Task.cancel``, ``asyncio.timeout``, an anyio cancel scope).
"""

from __future__ import annotations

import ast
import asyncio
import socket
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.test_websocket_conformance import RawClient, serve
from tests.utils import UNIT, port_of, serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
STYLES = ["task.cancel", "asyncio.timeout", "anyio"]
DELAY = 0.1 * UNIT  # long enough for the app to be waiting inside hatchway when the cancellation comes


# -- compiled waits are relayed -------------------------------------------------------------------------
def _compiled_modules() -> list[str]:
    for node in ast.parse((ROOT / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "COMPILED":
            return list(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no COMPILED list")


def _relayed(node: ast.Await) -> bool:
    call = node.value
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Relay"


@pytest.mark.parametrize("path", _compiled_modules())
def test_every_wait_in_a_compiled_module_is_relayed(path: str) -> None:
    # A mypyc coroutine passes a thrown exception on with throw(type, value, traceback), deprecated since
    # Python 3.12: a compiled module awaits only through hatchway._http.channel.Relay (the other waits belong
    # in hatchway/_app_task.py, compiled only before 3.12).
    tree = ast.parse((ROOT / path).read_text())
    waits = [
        f"{path}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, (ast.AsyncFor, ast.AsyncWith, ast.YieldFrom))
        or (isinstance(node, ast.Await) and not _relayed(node))
    ]
    assert waits == []


def test_the_request_channel_is_compiled_and_waits() -> None:
    # The check above must not pass for want of anything to check.
    path = "src/hatchway/_http/channel.py"
    assert path in _compiled_modules()
    awaits = [node for node in ast.walk(ast.parse((ROOT / path).read_text())) if isinstance(node, ast.Await)]
    assert len(awaits) == 2


@pytest.mark.parametrize("style", ["one argument", "three arguments"])
def test_relay_passes_a_thrown_exception_on_with_one_argument(style: str) -> None:
    # What a compiled await does when its task is cancelled: throw(type, value, traceback) into the relay,
    # which must reach the coroutine as the same exception, with no DeprecationWarning (-W error).
    from hatchway._http.channel import Relay

    seen: list[BaseException] = []

    async def inner() -> str:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError as exc:
            seen.append(exc)
            return "handled"
        return "not reached"

    async def main() -> None:
        relay = Relay(inner())
        future = relay.send(None)  # the coroutine now waits on the sleep's future
        assert isinstance(future, asyncio.Future)
        error = asyncio.CancelledError("stop")
        args: tuple[Any, ...] = (error,) if style == "one argument" else (type(error), error, None)
        with pytest.raises(StopIteration) as stopped:
            relay.throw(*args)
        assert stopped.value.value == "handled"
        assert seen == [error]
        future.cancel()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        asyncio.run(main())


# -- cancelled at every wait ----------------------------------------------------------------------------
async def cancelled(style: str, wait: Callable[[], Awaitable[Any]]) -> str:
    """Run ``wait()`` until ``style`` cancels it; what the app saw, by name."""
    try:
        if style == "task.cancel":
            task = asyncio.current_task()
            assert task is not None
            timer = asyncio.get_running_loop().call_later(DELAY, task.cancel)
            try:
                await wait()
            except asyncio.CancelledError:
                if sys.version_info >= (3, 11):
                    task.uncancel()
                return "CancelledError"
            finally:
                timer.cancel()
        elif style == "asyncio.timeout":
            try:
                async with asyncio.timeout(DELAY):  # type: ignore[attr-defined,unused-ignore]
                    await wait()
            except TimeoutError:
                return "TimeoutError"
        else:
            import anyio

            with anyio.move_on_after(DELAY) as scope:
                await wait()
            if scope.cancelled_caught:
                return "cancel scope"
    except BaseException as exc:  # a DeprecationWarning made an error, say
        return f"{type(exc).__name__}: {exc}"
    return "not cancelled"


EXPECTED = {"task.cancel": "CancelledError", "asyncio.timeout": "TimeoutError", "anyio": "cancel scope"}


class Probe:
    """What the app saw, handed from the server thread to the test."""

    def __init__(self, style: str) -> None:
        self.style = style
        self.seen = ""
        self.done = threading.Event()

    def record(self, seen: str) -> None:
        self.seen = seen
        self.done.set()

    def result(self) -> str:
        assert self.done.wait(5 * UNIT), "the app was not cancelled in time"
        return self.seen


def _skip_unsupported(style: str) -> None:
    if style == "asyncio.timeout" and sys.version_info < (3, 11):
        pytest.skip("asyncio.timeout is new in Python 3.11")
    if style == "anyio":
        pytest.importorskip("anyio")


async def _http_app(probe: Probe, scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    where = scope["path"]
    if where == "/body":  # the client sent a head that announces a body, and no body
        probe.record(await cancelled(probe.style, receive))
    elif where == "/disconnect":  # the whole (empty) body is in: the next receive waits for the client to go
        assert (await receive())["more_body"] is False
        probe.record(await cancelled(probe.style, receive))
    elif where == "/room":  # the client reads nothing: send waits for room in the write buffer

        async def send_for_ever() -> None:
            chunk = b"x" * 65536
            for _ in range(4096):  # 256 MiB: far past any buffer
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

        await send({"type": "http.response.start", "status": 200, "headers": []})
        probe.record(await cancelled(probe.style, send_for_ever))
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": probe.seen.encode()})


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("where", ["body", "disconnect", "room"])
@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_http_app_cancelled_while_waiting_in_hatchway(http: str, where: str, style: str) -> None:
    _skip_unsupported(style)
    probe = Probe(style)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _http_app(probe, scope, receive, send)

    with (
        serve_in_thread(app, http=http, lifespan="off") as server,
        socket.create_connection(("127.0.0.1", port_of(server)), timeout=5 * UNIT) as sock,
    ):
        if where == "room":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        head = b"POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
        if where != "body":
            head = b"GET /%s HTTP/1.1\r\nHost: a\r\n\r\n" % where.encode()
        sock.sendall(head)
        assert probe.result() == EXPECTED[style]
        # The app carries on after its cancellation, and its response arrives whole.
        received = b""
        while not received.endswith(b"0\r\n\r\n" if where == "room" else EXPECTED[style].encode()):
            data = sock.recv(1 << 20)  # the socket's timeout bounds each wait
            assert data, received[-200:]
            received += data
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("where", ["receive", "room"])
def test_websocket_app_cancelled_while_waiting_in_hatchway(where: str, style: str) -> None:
    _skip_unsupported(style)
    probe = Probe(style)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        if where == "receive":  # the client sends nothing
            probe.record(await cancelled(style, receive))
            await send({"type": "websocket.send", "text": probe.seen})
            return

        async def send_for_ever() -> None:  # the client reads nothing
            chunk = b"x" * 65536
            for _ in range(4096):
                await send({"type": "websocket.send", "bytes": chunk})

        probe.record(await cancelled(style, send_for_ever))

    with (
        serve(app, ws_per_message_deflate=False, ws_ping_interval=None) as server,
        socket.create_connection(("127.0.0.1", port_of(server)), timeout=5 * UNIT) as sock,
    ):
        if where == "room":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        client = RawClient(sock)
        assert client.handshake()[0] == 101
        assert probe.result() == EXPECTED[style]
        if where == "receive":
            frame = client.read_frame()
            assert frame is not None
            assert frame[2] == EXPECTED[style].encode()
