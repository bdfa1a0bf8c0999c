"""background() and serving(): readiness, start-up failures, bounded stops, no leaks, no signal handlers."""

from __future__ import annotations

import asyncio
import gc
import http.client
import logging
import os
import signal
import socket
import sys
import textwrap
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hatchway
from hatchway import (
    AppImportError,
    BindError,
    Config,
    ConfigError,
    LifespanStartupError,
    StartupError,
    WorkerStartupError,
    background,
    serving,
)
from hatchway.testing import BackgroundServer
from tests.utils import UNIT

# -- apps -------------------------------------------------------------------------------------------------


class HelloApp:
    """Answers every request with its path; records lifespan events."""

    def __init__(self, name: str = "hello") -> None:
        self.name = name
        self.events: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                self.events.append(kind)
                await send({"type": f"{message['type']}.complete"})
                if kind == "shutdown":
                    return
        body = f"{self.name} {scope['path']}".encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": body})


async def failing_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "database is unreachable"})


async def raising_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    raise RuntimeError("cache warm-up exploded")


def get(server: BackgroundServer, path: str = "/", timeout: float = 5 * UNIT) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def new_threads(before: set[threading.Thread]) -> list[str]:
    """Threads alive now that were not before (threads of earlier tests may end meanwhile: not counted)."""
    return sorted(t.name for t in set(threading.enumerate()) - before)


@pytest.fixture
def no_leftover_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert new_threads(before) == []


# -- the happy path ---------------------------------------------------------------------------------------


def test_background_serves_and_reports_real_addresses(no_leftover_threads: None) -> None:
    app = HelloApp()
    with background(app) as server:
        assert app.events == ["startup"]  # lifespan start-up completed before the block was entered
        assert server.host == "127.0.0.1"
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.addresses == [server.url]
        assert [s.getsockname()[1] for s in server.sockets] == [server.port]
        assert server.running
        assert get(server, "/ping") == (200, b"hello /ping")
        port = server.port
    assert app.events == ["startup", "shutdown"]
    assert server.sockets == []
    assert not server.running
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=UNIT):
        pass


def test_import_string_with_app_dir(tmp_path: Path) -> None:
    module = f"bg_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            """
            async def app(scope, receive, send):
                if scope["type"] != "http":
                    return
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"from an import string"})
            """
        )
    )
    try:
        with background(f"{module}:app", app_dir=str(tmp_path), lifespan="off") as server:
            assert get(server) == (200, b"from an import string")
    finally:
        sys.modules.pop(module, None)


def test_accepts_a_ready_config() -> None:
    config = Config(HelloApp("cfg"), port=0, log_config=None, lifespan="off")
    with background(config) as server:
        assert get(server) == (200, b"cfg /")
    with pytest.raises(TypeError, match="either in the Config or as keywords"), background(config, port=1):
        pass


def test_several_servers_at_once(no_leftover_threads: None) -> None:
    apps = [HelloApp(f"app{i}") for i in range(5)]
    servers = []
    with background(apps[0]) as s0, background(apps[1]) as s1, background(apps[2]) as s2:
        servers = [s0, s1, s2]
        with background(apps[3]) as s3, background(apps[4], loop="asyncio") as s4:
            servers += [s3, s4]
            assert len({s.port for s in servers}) == 5
            for index, server in enumerate(servers):
                assert get(server) == (200, f"app{index} /".encode())
        assert get(s0) == (200, b"app0 /")


def test_stop_is_idempotent_and_thread_safe(no_leftover_threads: None) -> None:
    with background(HelloApp()) as server:
        stoppers = [threading.Thread(target=server.stop) for _ in range(8)]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(10 * UNIT)
        assert not any(thread.is_alive() for thread in stoppers)
        assert not server.running
        server.stop()
    server.stop()


def test_helpers_leave_logging_alone() -> None:
    names = ("", "hatchway", "hatchway.error", "hatchway.access")
    before = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level) for n in names}
    propagate = {n: logging.getLogger(n).propagate for n in names}
    with background(HelloApp()) as server:
        get(server)
    assert {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level) for n in names} == before
    assert {n: logging.getLogger(n).propagate for n in names} == propagate


def test_ipv6_host_and_port(no_leftover_threads: None) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with background(HelloApp(), host="::1") as server:
        assert server.host == "::1"
        assert server.url == f"http://[::1]:{server.port}"
        assert get(server)[0] == 200


def test_host_and_port_match_urlsplit() -> None:
    from hatchway.testing._background import _host_and_port

    for url in (
        "http://127.0.0.1:8000",
        "https://[::1]:443",
        "http://[FE80::1%eth0]:80",
        "http://localhost",
        "http://example.com:1/x",
        "http://0.0.0.0:0",
        "",
    ):
        parts = urllib.parse.urlsplit(url)
        assert _host_and_port(url) == (parts.hostname or "", parts.port), url


def test_helper_configs_are_validated_once_but_built_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    from hatchway._config_cache import validated_config

    app = HelloApp()
    options = {"host": "127.0.0.1", "port": 0, "log_config": None, "workers": 1, "reload_dirs": "src"}
    first, second = validated_config(app, options), validated_config(app, options)
    assert first is not second
    assert first.__dict__ == second.__dict__ == Config(app, **options).__dict__
    assert second.app is app
    assert validated_config(HelloApp("other"), options).app.name == "other"
    assert first.reload_dirs is not second.reload_dirs  # lists are never shared between Configs
    # Errors are raised exactly as Config raises them: True == 1, but port=True is refused.
    validated_config(app, {**options, "port": 1})
    with pytest.raises(ConfigError, match="port"):
        validated_config(app, {**options, "port": True})
    with pytest.raises(ConfigError, match="app"):
        validated_config(42, options)
    # What validation reads from the environment takes part.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1")
    assert validated_config(app, options).forwarded_allow_ips == "10.0.0.1"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1 10.0.0.2")
    with pytest.raises(ConfigError, match="forwarded_allow_ips"):
        validated_config(app, options)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert validated_config(app, {**options, "workers": None}).workers == 3


def test_stop_cancels_leftover_tasks_and_joins_executor_threads(no_leftover_threads: None) -> None:
    cancelled = threading.Event()
    ran_in_executor = threading.Event()

    async def leftover() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    tasks: list[asyncio.Task[None]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await HelloApp()(scope, receive, send)
            return
        tasks.append(asyncio.get_running_loop().create_task(leftover()))  # never awaited by the app
        await asyncio.get_running_loop().run_in_executor(None, ran_in_executor.set)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with background(app) as server:
        assert get(server)[0] == 204
    assert ran_in_executor.is_set()
    assert cancelled.is_set()
    assert tasks
    assert tasks[0].cancelled()


# -- start-up failures ------------------------------------------------------------------------------------


def test_port_in_use_raises_bind_error(no_leftover_threads: None) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(BindError) as info, background(HelloApp(), port=port, timeout=10 * UNIT):
            pytest.fail("the block must not be entered")
        # Bounded by the generous timeout above; in practice milliseconds (see benchmarks/).
        assert time.monotonic() - started < 10 * UNIT
    assert info.value.code == "HW301"
    assert str(port) in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


def test_lifespan_failure_message_is_in_the_exception(no_leftover_threads: None) -> None:
    with pytest.raises(LifespanStartupError, match="database is unreachable"), background(failing_lifespan):
        pass
    with (
        pytest.raises(LifespanStartupError, match="cache warm-up exploded"),
        background(raising_lifespan, lifespan="on"),
    ):
        pass


def test_import_error_raises_app_import_error(no_leftover_threads: None) -> None:
    with pytest.raises(AppImportError) as info, background("hatchway_no_such_module_xyz:app"):
        pass
    assert "hatchway_no_such_module_xyz" in str(info.value)


def test_bad_option_raises_config_error_before_any_thread(no_leftover_threads: None) -> None:
    with pytest.raises(ConfigError) as info, background(HelloApp(), port=-5, timeout_keep_alive="soon"):
        pass
    assert set(info.value.options) == {"port", "timeout_keep_alive"}
    with pytest.raises(ConfigError, match="did you mean 'port'"), background(HelloApp(), prot=0):
        pass
    with (
        pytest.raises(ConfigError, match="log_config"),
        background(HelloApp(), log_config="/nonexistent/log.json"),
    ):
        pass


@pytest.mark.parametrize("app", ["nope_not_here:app", failing_lifespan], ids=["import", "lifespan"])
def test_failures_are_exceptions_not_system_exit(app: Any, no_leftover_threads: None) -> None:
    # pytest.raises fails when nothing is raised, and lets a SystemExit through as the error it is.
    with pytest.raises(StartupError) as info, background(app):
        pytest.fail("the block must not be entered")
    assert info.value.code in ("HW201", "HW400")


def test_startup_timeout_stops_and_joins(no_leftover_threads: None) -> None:
    cancelled = threading.Event()

    async def stuck_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        try:
            await asyncio.Event().wait()  # never completes start-up
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with (
        pytest.raises(TimeoutError, match="did not start within"),
        background(stuck_lifespan, timeout=0.2 * UNIT),
    ):
        pass
    assert cancelled.is_set()


# -- stopping ---------------------------------------------------------------------------------------------


def test_request_in_flight_at_exit_completes(no_leftover_threads: None) -> None:
    arrived = threading.Event()

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        arrived.set()
        await asyncio.sleep(0.2 * UNIT)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"finished"})

    results: list[tuple[int, bytes]] = []
    with background(slow, lifespan="off", timeout_graceful_shutdown=10 * UNIT) as server:
        client = threading.Thread(target=lambda: results.append(get(server)))
        client.start()
        assert arrived.wait(5 * UNIT)
    client.join(5 * UNIT)
    assert results == [(200, b"finished")]


def test_endless_stream_does_not_block_exit_beyond_grace(no_leftover_threads: None) -> None:
    streaming = threading.Event()

    async def endless(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        streaming.set()
        while True:
            await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
            await asyncio.sleep(0.01)

    grace = 0.2 * UNIT
    with background(endless, lifespan="off", timeout_graceful_shutdown=grace) as server:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10 * UNIT)
        conn.request("GET", "/events")
        response = conn.getresponse()
        assert response.status == 200
        assert streaming.wait(5 * UNIT)
        response.readline()
        leaving = time.monotonic()
    took = time.monotonic() - leaving
    assert took < grace + 5 * UNIT  # generous bound: the point is that it ends, not how fast
    try:
        while response.read(1024):
            pass
    except TimeoutError:  # pragma: no cover - the failure this test exists for
        pytest.fail("the stream was still open after the server stopped")
    except (http.client.IncompleteRead, OSError):
        pass  # aborted mid-stream: the expected end
    conn.close()


def test_websocket_is_closed_on_exit(no_leftover_threads: None) -> None:
    sync_client = pytest.importorskip("websockets.sync.client")

    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text")})

    with (
        background(echo, lifespan="off") as server,
        sync_client.connect(
            f"ws://{server.host}:{server.port}/", open_timeout=5 * UNIT, ping_interval=None
        ) as ws,
    ):
        ws.send("hello")
        assert ws.recv(timeout=5 * UNIT) == "hello"
        server.stop()
        # The server closes (1001 going away, 1012 restart, or an abort); a recv() timeout is not a close.
        closed = pytest.importorskip("websockets.exceptions").ConnectionClosed
        with pytest.raises(closed, match=r"1001|1012|close frame"):
            ws.recv(timeout=5 * UNIT)


def test_ctrl_c_in_the_caller_still_works(no_leftover_threads: None) -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default handler in this test process")

    def interrupted() -> None:
        with background(HelloApp()):
            signal.raise_signal(signal.SIGINT)
            time.sleep(5 * UNIT)  # interrupted at once

    with pytest.raises(KeyboardInterrupt):
        interrupted()


def _signal_state() -> dict[int, Any]:
    state: dict[int, Any] = {
        sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    previous = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(previous)
    state[-1] = previous
    return state


def test_signal_handlers_are_left_exactly_as_they_were() -> None:
    before = _signal_state()
    with background(HelloApp()) as server, background(HelloApp(), loop="asyncio") as other:
        assert _signal_state() == before
        get(server)
        get(other)
    assert _signal_state() == before

    async def main() -> None:
        # asyncio.run() has its own SIGINT handler: compare with what the loop had before serving().
        in_loop = _signal_state()
        async with serving(HelloApp()) as server:
            await asyncio.get_running_loop().run_in_executor(None, get, server)
            assert _signal_state() == in_loop
        assert _signal_state() == in_loop

    asyncio.run(main())
    assert _signal_state() == before


# -- leaks ------------------------------------------------------------------------------------------------


def test_hundreds_of_cycles_leak_no_threads_fds_or_memory() -> None:
    app = HelloApp()

    def cycle() -> None:
        with background(app) as server:
            assert get(server)[0] == 200

    for _ in range(20):  # warm up: imports, caches, the first loop
        cycle()
    gc.collect()
    threads, fds, rss = set(threading.enumerate()), open_fds(), rss_bytes()
    for _ in range(200):
        cycle()
    gc.collect()
    assert new_threads(threads) == []
    assert open_fds() <= fds
    assert rss_bytes() - rss < 32 * 1024 * 1024  # tolerance: allocator noise, not per-cycle growth
    assert app.events.count("startup") == app.events.count("shutdown") == 220


# -- in the running loop ----------------------------------------------------------------------------------


async def aget(server: BackgroundServer, path: str = "/") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
    raw = await asyncio.wait_for(reader.read(), 5 * UNIT)
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_serving_in_asyncio(no_leftover_threads: None) -> None:
    app = HelloApp()

    async def main() -> None:
        async with serving(app) as server, serving(HelloApp("two")) as two:
            assert app.events == ["startup"]
            assert server.port != two.port
            assert await aget(server, "/a") == (200, b"hello /a")
            assert await aget(two, "/b") == (200, b"two /b")
            assert [s.getsockname()[1] for s in server.sockets] == [server.port]
        assert app.events == ["startup", "shutdown"]
        assert server.sockets == []

    asyncio.run(main())


def test_serving_failures_raise_in_the_caller() -> None:
    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            with pytest.raises(BindError):
                async with serving(HelloApp(), port=taken.getsockname()[1]):
                    pytest.fail("the block must not be entered")
        with pytest.raises(LifespanStartupError, match="database is unreachable"):
            async with serving(failing_lifespan):
                pass
        with pytest.raises(AppImportError):
            async with serving("hatchway_no_such_module_xyz:app"):
                pass
        with pytest.raises(ConfigError):
            async with serving(HelloApp(), backlog=0):
                pass
        # Nothing of the failed servers is left in this loop.
        await asyncio.sleep(0)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(main())


async def stuck_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await asyncio.sleep(60 * UNIT)


def test_serving_startup_timeout_raises() -> None:
    async def main() -> None:
        with pytest.raises(TimeoutError, match="did not start within"):
            async with serving(stuck_startup, timeout=0.2 * UNIT):
                pass

    asyncio.run(main())


def test_serving_startup_timeout_leaves_no_task_behind() -> None:
    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with serving(stuck_startup, timeout=0.2 * UNIT):
                pass
        await asyncio.sleep(0)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(main())


def test_serving_stop_from_another_thread() -> None:
    async def main() -> None:
        async with serving(HelloApp()) as server:
            await asyncio.get_running_loop().run_in_executor(None, server.stop)
            assert not server.running

    asyncio.run(main())


# -- reload and workers through the supervisor ------------------------------------------------------------


def _module(tmp_path: Path, source: str) -> str:
    name = f"bg_sup_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    return name


CHILD_APP = """
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"child"})
"""


def _supervised(tmp_path: Path, **options: Any) -> None:
    module = _module(tmp_path, CHILD_APP)
    with background(f"{module}:app", app_dir=str(tmp_path), timeout=30 * UNIT, **options) as server:
        assert server.port > 0
        assert get(server) == (200, b"child")
        assert server.sockets == []  # the supervisor's children own them
        assert server.server is None


@pytest.mark.slow
def test_workers_in_the_background(tmp_path: Path, no_leftover_threads: None) -> None:
    _supervised(tmp_path, workers=2)


@pytest.mark.slow
def test_reload_in_the_background(tmp_path: Path, no_leftover_threads: None) -> None:
    _supervised(tmp_path, reload=True, reload_dirs=[str(tmp_path)])


@pytest.mark.slow
def test_worker_start_up_failure_raises(tmp_path: Path, no_leftover_threads: None) -> None:
    module = _module(tmp_path, "raise RuntimeError('broken at import')\n")
    with (
        pytest.raises(WorkerStartupError, match="broken at import"),
        background(f"{module}:app", app_dir=str(tmp_path), workers=2, timeout=30 * UNIT),
    ):
        pass


@pytest.mark.slow
def test_workers_with_serving(tmp_path: Path) -> None:
    module = _module(tmp_path, CHILD_APP)

    async def main() -> None:
        async with serving(f"{module}:app", app_dir=str(tmp_path), workers=2, timeout=30 * UNIT) as server:
            assert await aget(server) == (200, b"child")

    asyncio.run(main())


def test_public_names() -> None:
    assert hatchway.background is background
    assert hatchway.serving is serving
    assert {"background", "serving"} <= set(hatchway.__all__)
