"""Readiness and liveness paths answered by the server, and the drain before a shutdown (shutdown_delay)."""

from __future__ import annotations

import asyncio
import signal
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import hatchway
from tests.fixtures.supervisors.proc import PYTHON, Hammer, Proc, wait_until
from tests.utils import UNIT, serve_in_thread

APP = textwrap.dedent(
    """
    import os

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": message["type"] + ".complete"})
                if kind == "shutdown":
                    return
        body = f"app {os.getpid()}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    """
)


class Counting:
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})


def test_health_paths_are_answered_without_the_app() -> None:
    app = Counting()
    with (
        hatchway.background(app, ready_path="/ready", live_path="/live") as server,
        httpx.Client(base_url=server.url, timeout=5 * UNIT) as client,
    ):
        ready = client.get("/ready")
        assert (ready.status_code, ready.text) == (200, "ok")
        assert ready.headers["cache-control"] == "no-store"
        assert ready.headers["server"] == "hatchway"
        assert client.get("/live").text == "ok"
        head = client.head("/ready")
        assert (head.status_code, head.content) == (200, b"")
        assert client.get("/ready?verbose=1").status_code == 200  # the query does not matter
        assert client.get("/ready/").text == "app"  # only the exact path
        assert client.get("/other").text == "app"
    assert app.paths == ["/ready/", "/other"]


def test_health_paths_below_a_root_path() -> None:
    app = Counting()
    with hatchway.background(app, ready_path="/ready", root_path="/api") as server:
        assert httpx.get(server.url + "/ready", timeout=5 * UNIT).text == "ok"
    assert app.paths == []


class Holding:
    """Holds ``/slow`` requests until ``release`` is set; answers other paths at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.held = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            self.held += 1
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})


def test_health_paths_are_answered_past_limit_concurrency() -> None:
    # Over the limit, other requests get 503; a liveness probe must not (it would restart a busy server),
    # nor readiness while the server is not draining.
    app = Holding()
    with (
        serve_in_thread(app, ready_path="/ready", live_path="/live", limit_concurrency=2) as server,
        ThreadPoolExecutor(2) as pool,
    ):
        slow = [pool.submit(httpx.get, server.url + "/slow", timeout=10 * UNIT) for _ in range(2)]
        try:
            wait_until(lambda: app.held == 2, 5 * UNIT)
            for path in ("/live", "/ready"):
                answer = httpx.get(server.url + path, timeout=5 * UNIT)
                assert (answer.status_code, answer.text) == (200, "ok"), path
            assert httpx.get(server.url + "/other", timeout=5 * UNIT).status_code == 503
            server.drain(30)
            wait_until(lambda: server.draining, 5 * UNIT)
            assert httpx.get(server.url + "/ready", timeout=5 * UNIT).status_code == 503
            assert httpx.get(server.url + "/live", timeout=5 * UNIT).status_code == 200
        finally:
            app.release.set()
        assert [future.result(10 * UNIT).status_code for future in slow] == [200, 200]


def test_unset_paths_reach_the_app() -> None:
    app = Counting()
    with hatchway.background(app) as server:
        assert httpx.get(server.url + "/ready", timeout=5 * UNIT).text == "app"
    assert app.paths == ["/ready"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ready_path": "ready"}, "ready_path: expected a path starting with '/'"),
        ({"live_path": "/live?x"}, "live_path: expected a path starting with '/'"),
        ({"ready_path": "/h", "live_path": "/h"}, "ready_path and live_path are both '/h'"),
        ({"shutdown_delay": -1}, "shutdown_delay: expected a number of seconds >= 0"),
    ],
)
def test_bad_values_stop_start_up(options: dict[str, Any], message: str) -> None:
    with pytest.raises(hatchway.ConfigError, match=message.replace("?", r"\?")):
        hatchway.Config(Counting(), **options)


def test_drain_from_code_keeps_serving_with_readiness_503_then_stops() -> None:
    app = Counting()
    with serve_in_thread(app, ready_path="/ready", live_path="/live", shutdown_delay=30) as server:
        url = server.url
        assert url is not None
        with httpx.Client(base_url=url, timeout=5 * UNIT) as client:
            assert client.get("/ready").status_code == 200
            started = time.monotonic()
            server.drain(0.6)
            wait_until(lambda: client.get("/ready").status_code == 503, 5 * UNIT)
            assert server.draining
            assert client.get("/ready").text == "draining"
            assert client.get("/live").status_code == 200  # alive while draining
            assert client.get("/work").text == "app"  # and serving
            assert server.finished.wait(5 * UNIT)
            assert time.monotonic() - started >= 0.55
            with pytest.raises(httpx.ConnectError):
                client.get("/ready")


def test_stop_does_not_wait_for_the_delay() -> None:
    with serve_in_thread(Counting(), ready_path="/ready", shutdown_delay=30) as server:
        started = time.monotonic()
        server.stop()
        assert server.finished.wait(5 * UNIT)
        assert time.monotonic() - started < 2 * UNIT


def test_stop_during_a_drain_ends_it() -> None:
    with serve_in_thread(Counting(), ready_path="/ready") as server:
        server.drain(30)
        wait_until(lambda: server.draining, 5 * UNIT)
        started = time.monotonic()
        server.stop()
        assert server.finished.wait(5 * UNIT)
        assert time.monotonic() - started < 2 * UNIT


# -- real processes and signals -------------------------------------------------------------------------------
def _cli(tmp_path: Path, *args: str) -> Proc:
    (tmp_path / "main.py").write_text(APP)
    return Proc([PYTHON, "-m", "hatchway", "main:app", "--port", "0", *args], tmp_path)


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2 * UNIT).status_code
    except httpx.HTTPError:
        return None


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_then_stops_without_a_failed_request(tmp_path: Path, workers: int) -> None:
    args = [
        "--workers",
        str(workers),
        "--shutdown-delay",
        "2",
        "--ready-path",
        "/ready",
        "--live-path",
        "/live",
    ]
    proc = _cli(tmp_path, *args)
    with running_proc(proc):
        url = proc.url()
        wait_until(lambda: _status(url + "/ready") == 200, 10 * UNIT)
        if workers == 2:
            wait_until(lambda: proc.output.count("is ready") == 2, 10 * UNIT)
        with Hammer(url + "/") as hammer:
            time.sleep(0.2)
            before = hammer.ok
            signaled = time.monotonic()
            proc.signal(signal.SIGTERM)
            proc.wait_for(r"[Dd]raining for 2")
            # Every worker answers 503 on the readiness path, and the app keeps answering.
            wait_until(lambda: all(_status(url + "/ready") == 503 for _ in range(6)), 1.5)
            assert _status(url + "/live") == 200
            wait_until(lambda: hammer.ok > before + 10, 1.5)
            assert proc.popen.poll() is None
        # Within the drain, every request succeeded. (After it, as in any graceful shutdown, a client that
        # keeps sending to this address is refused: the load balancer stopped sending during the drain.)
        assert time.monotonic() - signaled < 2
        assert hammer.failures == []
        assert proc.wait(15 * UNIT) == 0
        assert 1.9 < time.monotonic() - signaled < 10 * UNIT


@pytest.mark.slow
def test_second_sigterm_ends_the_drain(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "--shutdown-delay", "60", "--ready-path", "/ready")
    with running_proc(proc):
        url = proc.url()
        proc.signal(signal.SIGTERM)
        proc.wait_for(r"Draining for 60")
        assert _status(url + "/ready") == 503
        proc.signal(signal.SIGTERM)
        proc.wait_for(r"while draining; shutting down now")
        assert proc.wait(10 * UNIT) == 0


@pytest.mark.slow
def test_sigint_does_not_drain(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "--shutdown-delay", "60", "--ready-path", "/ready", "--workers", "2")
    with running_proc(proc):
        proc.url()
        wait_until(lambda: proc.output.count("is ready") == 2, 10 * UNIT)
        started = time.monotonic()
        proc.signal(signal.SIGINT)
        assert proc.wait(10 * UNIT) == 0
        assert time.monotonic() - started < 8 * UNIT
        assert "raining" not in proc.output


class running_proc:
    """Stop ``proc`` (and its workers) on the way out, whatever happened."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc

    def __enter__(self) -> Proc:
        return self.proc

    def __exit__(self, *exc: object) -> None:
        self.proc.stop()
