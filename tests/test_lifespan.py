"""Lifespan: auto | on | off, the state dict copied into each request, start-up failure and timeout."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest

from hatchway import Config, LifespanStartupError, Server
from tests.utils import UNIT, serve_in_thread


class Recorder:
    """An app that records lifespan events, keeps state, and echoes the request's state as JSON."""

    def __init__(self, startup: dict[str, Any] | None = None, fail: str | None = None) -> None:
        self.events: list[str] = []
        self.startup = startup or {"type": "lifespan.startup.complete"}
        self.fail = fail

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    if self.fail:
                        raise RuntimeError(self.fail)
                    scope["state"]["greeting"] = "hello"
                    scope["state"]["items"] = ["first"]
                    await send(self.startup)
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        state = scope.get("state", {})
        body = json.dumps(dict(state)).encode()
        # Requests may change their copy; the next request must not see the change.
        state["greeting"] = "changed by a request"
        state["added"] = True
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def test_state_from_startup_is_copied_into_each_request_scope() -> None:
    app = Recorder()
    with serve_in_thread(app) as server:
        first = httpx.get(server.url or "", timeout=5 * UNIT).json()
        second = httpx.get(server.url or "", timeout=5 * UNIT).json()
    assert first == {"greeting": "hello", "items": ["first"]}
    assert second == first
    assert app.events == ["lifespan.startup", "lifespan.shutdown"]


def test_lifespan_off_never_calls_the_app_with_lifespan() -> None:
    app = Recorder()
    with serve_in_thread(app, lifespan="off") as server:
        assert httpx.get(server.url or "", timeout=5 * UNIT).json() == {}
    assert app.events == []


def test_startup_failed_message_stops_startup_with_the_apps_message() -> None:
    app = Recorder(startup={"type": "lifespan.startup.failed", "message": "database unreachable"})
    server = Server(Config(app, port=0, log_config=None))
    with pytest.raises(LifespanStartupError, match="database unreachable") as info:
        server.run()
    assert info.value.code == "HW400"
    assert not server.started
    assert server.sockets == []
    assert server.addresses == []


def test_exception_in_startup_with_lifespan_on_fails_startup() -> None:
    server = Server(Config(Recorder(fail="no config file"), port=0, lifespan="on", log_config=None))
    with pytest.raises(LifespanStartupError, match="RuntimeError: no config file") as info:
        server.run()
    assert not server.started
    assert isinstance(info.value.__cause__, RuntimeError)  # the app's own exception, for its traceback


def test_exception_in_lifespan_with_auto_means_unsupported_and_serving_continues() -> None:
    async def http_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with serve_in_thread(http_only) as server:
        assert httpx.get(server.url or "", timeout=5 * UNIT).status_code == 204


def test_startup_timeout_fails_startup() -> None:
    async def hangs(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await asyncio.Event().wait()

    server = Server(Config(hangs, port=0, log_config=None, timeout_lifespan_startup=0.1 * UNIT))
    with pytest.raises(LifespanStartupError, match="timeout_lifespan_startup") as info:
        server.run()
    assert info.value.code == "HW401"


def test_stop_during_lifespan_startup_still_stops() -> None:
    release = threading.Event()

    async def slow_start(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            while not release.is_set():
                await asyncio.sleep(0.01)
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})

    server = Server(Config(slow_start, port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    server.stop()
    release.set()
    thread.join(10 * UNIT)
    assert not thread.is_alive()
    assert not server.started


def test_hanging_lifespan_shutdown_is_bounded() -> None:
    async def hangs_on_shutdown(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await asyncio.Event().wait()

    server = Server(Config(hangs_on_shutdown, port=0, log_config=None, timeout_graceful_shutdown=0.1 * UNIT))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.ready.wait(10 * UNIT)
    server.stop()
    thread.join(10 * UNIT)
    assert not thread.is_alive(), "lifespan shutdown was not bounded by timeout_graceful_shutdown"
