"""Server: readiness, public addresses, thread-safe stop, re-running, bounded shutdown and signal ownership."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hatchway import BindError, Config, Server, ServerStateError, StartupError, run
from tests.conftest import CliProcess, child_env
from tests.utils import UNIT, port_of, serve_in_thread


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def refuses_connections(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2 * UNIT)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def wait_until(condition: Callable[[], bool], timeout: float = 10 * UNIT) -> None:
    """Check ``condition`` until it holds; fail after ``timeout`` (for state the server has no event for)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def run_in_thread(server: Server) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            server.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


def test_started_server_reports_real_address_and_serves() -> None:
    with serve_in_thread(hello) as server:
        assert server.started
        assert server.ready.is_set()
        port = port_of(server)
        assert port != 0
        assert server.url == f"http://127.0.0.1:{port}"
        assert server.addresses == [server.url]
        response = httpx.get(server.url, timeout=5 * UNIT)
        assert response.text == "hello"


def test_debug_log_names_the_build_of_the_hot_path(caplog: pytest.LogCaptureFixture) -> None:
    # The build this interpreter imports: the compiled extension (a normal install) or the .py source.
    from hatchway._http import protocol

    expected = "hot path pure Python" if protocol.__file__.endswith(".py") else "hot path compiled"
    caplog.set_level(logging.DEBUG, logger="hatchway.error")
    with serve_in_thread(hello):
        pass
    lines = [r.getMessage() for r in caplog.records if "hot path" in r.getMessage()]
    assert len(lines) == 1
    assert expected in lines[0]


def test_zttp_serves_http1_with_httptools_and_warns_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uvicorn's --http zttp without --http2: hatchway's own HTTP/1.1 (the codec "auto" picks), one warning a process.
    import hatchway._startup
    from hatchway._http.protocol import make_codec_factory

    monkeypatch.setattr(hatchway._startup, "_zttp_notice_given", False)
    expected = type(make_codec_factory(Config(hello))()).__name__
    for _ in range(2):
        with serve_in_thread(hello, http="zttp") as server, httpx.Client(timeout=5 * UNIT) as client:
            assert client.get(server.url or "").text == "hello"
            assert server.config.http == "zttp"
            assert server.state is not None
            assert [type(conn.codec).__name__ for conn in server.state.connections] == [expected]
    warnings = [r for r in caplog.records if "zttp" in r.getMessage()]
    assert [r.getMessage() for r in warnings] == [
        "http='zttp' is served by hatchway's own HTTP/1.1 implementation (httptools)."
    ]
    assert warnings[0].levelno == logging.WARNING


def test_stop_from_another_thread_stops_promptly_and_releases_the_port() -> None:
    server = Server(Config(hello, port=0, log_config=None))
    thread, errors = run_in_thread(server)
    assert server.ready.wait(10 * UNIT)
    port = port_of(server)
    server.stop()
    # Correctness, not speed: the thread ends (no tick to wait out) and nothing listens any more.
    thread.join(10 * UNIT)
    assert not thread.is_alive()
    assert errors == []
    assert not server.started
    assert not server.ready.is_set()
    assert server.finished.is_set()
    assert refuses_connections(port)


def test_should_exit_setter_stops_like_uvicorn() -> None:
    server = Server(Config(hello, port=0, log_config=None))
    thread, _ = run_in_thread(server)
    assert server.ready.wait(10 * UNIT)
    server.should_exit = True
    thread.join(10 * UNIT)
    assert not thread.is_alive()


def test_stop_is_idempotent_and_safe_before_start() -> None:
    server = Server(Config(hello, port=0, log_config=None))
    server.stop()  # nothing running: no error
    server.stop()
    thread, errors = run_in_thread(server)
    # A stop() before serve() starts and stops at once, as in uvicorn.
    thread.join(10 * UNIT)
    assert not thread.is_alive()
    assert errors == []
    assert not server.started


def test_server_can_run_again_after_stopping() -> None:
    server = Server(Config(hello, port=0, log_config=None))
    for _ in range(2):
        thread, errors = run_in_thread(server)
        assert server.ready.wait(10 * UNIT), errors
        assert httpx.get(server.url or "", timeout=5 * UNIT).text == "hello"
        server.stop()
        thread.join(10 * UNIT)
        assert not thread.is_alive()
        assert errors == []
        assert not server.started
        assert server.addresses == []


def test_serve_in_running_loop_with_wait_started_before_serve_begins() -> None:
    async def main() -> None:
        server = Server(Config(hello, port=0, log_config=None))
        previous = signal.getsignal(signal.SIGINT)
        task = asyncio.ensure_future(server.serve())
        # Called before serve() has run a single step: must wait, not fail.
        await asyncio.wait_for(server.wait_started(), 10 * UNIT)
        assert server.started
        # serve() installs no signal handlers unless asked.
        assert signal.getsignal(signal.SIGINT) is previous
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 5 * UNIT)
        writer.close()
        assert data.startswith(b"HTTP/1.1 200")
        assert data.endswith(b"hello")
        server.stop()
        await asyncio.wait_for(task, 10 * UNIT)
        assert not server.started

    asyncio.run(main())


def test_serving_twice_at_once_is_a_clear_error() -> None:
    async def main() -> None:
        server = Server(Config(hello, port=0, log_config=None))
        task = asyncio.ensure_future(server.serve())
        await asyncio.wait_for(server.wait_started(), 10 * UNIT)
        with pytest.raises(ServerStateError, match="already running"):
            await server.serve()
        server.stop()
        await asyncio.wait_for(task, 10 * UNIT)

    asyncio.run(main())


def test_wait_started_raises_the_startup_error() -> None:
    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            server = Server(Config(hello, port=taken.getsockname()[1], log_config=None))
            task = asyncio.ensure_future(server.serve())
            with pytest.raises(BindError):
                await asyncio.wait_for(server.wait_started(), 10 * UNIT)
            with pytest.raises(BindError):
                await asyncio.wait_for(task, 10 * UNIT)
        assert not server.started
        assert isinstance(server.startup_error, BindError)
        # After the failure, asking again answers at once with the same error.
        with pytest.raises(BindError):
            await asyncio.wait_for(server.wait_started(), 10 * UNIT)

    asyncio.run(main())


def test_startup_failure_in_a_thread_raises_instead_of_exiting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = Server(Config(hello, port=taken.getsockname()[1], log_config=None))
        thread, errors = run_in_thread(server)
        thread.join(10 * UNIT)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], BindError)
    assert isinstance(errors[0], StartupError)
    assert errors[0].errno == errno.EADDRINUSE  # bind's own error, carried as data, not chained
    assert errors[0].__cause__ is None
    assert not server.started
    assert not server.ready.is_set()


def test_run_inside_a_running_loop_is_refused() -> None:
    async def main() -> None:
        with pytest.raises(ServerStateError, match="running event loop"):
            run(hello, port=0, log_config=None)

    asyncio.run(main())


async def never_responds(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await asyncio.Event().wait()


def test_graceful_shutdown_is_bounded_by_its_timeout() -> None:
    server = Server(Config(never_responds, port=0, log_config=None, timeout_graceful_shutdown=0.2 * UNIT))
    thread, errors = run_in_thread(server)
    assert server.ready.wait(10 * UNIT)
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10 * UNIT) as client:
        client.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        wait_until(lambda: bool(server.state and server.state.tasks))  # the request has reached the app
        server.stop()
        thread.join(10 * UNIT)
        assert not thread.is_alive(), "shutdown waited past timeout_graceful_shutdown"
        assert client.recv(1024) == b""  # the connection was closed by the server
    assert errors == []


def test_force_stop_does_not_wait_for_open_requests() -> None:
    server = Server(Config(never_responds, port=0, log_config=None, timeout_graceful_shutdown=None))
    thread, _ = run_in_thread(server)
    assert server.ready.wait(10 * UNIT)
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10 * UNIT) as client:
        client.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        wait_until(lambda: bool(server.state and server.state.tasks))
        server.stop()
        server.stop(force=True)  # the second call forces even though graceful shutdown has no limit
        thread.join(10 * UNIT)
        assert not thread.is_alive()


@pytest.mark.slow
def test_server_in_a_thread_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    script = tmp_path / "threaded.py"
    script.write_text(
        textwrap.dedent(
            """
            import threading, hatchway
            from hatchway.demo import app
            server = hatchway.Server(hatchway.Config(app, port=0))
            threading.Thread(target=server.run).start()  # not a daemon thread
            assert server.ready.wait(10)
            print("READY", server.url, flush=True)
            """
        )
    )
    process = CliProcess([], cwd=tmp_path, command=[sys.executable, str(script)])
    try:
        process.wait_for("READY")
        assert process.finish(10 * UNIT) == 0
        assert "Shutting down" in process.stderr
    finally:
        process.kill()


@pytest.mark.slow
def test_run_on_main_thread_handles_sigint_and_restores_handlers(tmp_path: Path) -> None:
    script = tmp_path / "main_thread.py"
    script.write_text(
        textwrap.dedent(
            """
            import signal, hatchway
            from hatchway.demo import app
            def mine(sig, frame): pass
            signal.signal(signal.SIGTERM, mine)
            server = hatchway.Server(hatchway.Config(app, port=0))
            server.run()
            print("RETURNED", signal.getsignal(signal.SIGTERM) is mine, flush=True)
            """
        )
    )
    process = CliProcess([], cwd=tmp_path, command=[sys.executable, str(script)], env=child_env())
    try:
        process.wait_started()
        process.proc.send_signal(signal.SIGINT)
        # run() returns normally (no KeyboardInterrupt, no re-raised signal) and restores the old handler.
        assert process.finish() == 0
        assert "RETURNED True" in process.stdout
    finally:
        process.kill()


def test_callback_notify_is_called_every_timeout_notify() -> None:
    calls = threading.Semaphore(0)

    async def notify() -> None:
        calls.release()

    with serve_in_thread(hello, callback_notify=notify, timeout_notify=0.01 * UNIT):
        assert calls.acquire(timeout=10 * UNIT)
        assert calls.acquire(timeout=10 * UNIT)


def test_handle_exit_stops_like_uvicorn() -> None:
    # Code written for uvicorn calls server.handle_exit(sig, frame) from its own signal handlers.
    server = Server(Config(hello, port=0, log_config=None))
    thread, errors = run_in_thread(server)
    assert server.ready.wait(10 * UNIT)
    server.handle_exit(signal.SIGTERM, None)
    thread.join(10 * UNIT)
    assert not thread.is_alive()
    assert errors == []
