"""Prometheus metrics on their own address: one server, and 2 workers summed by their supervisor, scraped
with a real HTTP client while load runs."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import hatchway
from hatchway import BindError, Config, ConfigError
from tests.conftest import CliProcess, write_app
from tests.utils import UNIT

parser = pytest.importorskip("prometheus_client.parser")

APP = """
import os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
"""


def scrape(url: str) -> dict[str, float]:
    """``{'name{label="v",...}': value}`` for every hatchway sample of one scrape."""
    response = httpx.get(url, timeout=5 * UNIT)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in parser.text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.startswith("hatchway_") and not sample.name.endswith("_created"):
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


class Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=1)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def error_log() -> Iterator[Messages]:
    handler = Messages()
    log = logging.getLogger("hatchway.error")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield handler
    log.removeHandler(handler)
    log.setLevel(level)


def metrics_url(log: Messages) -> str:
    (line,) = [line for line in log.lines if line.startswith("Metrics on ")]
    return line.removeprefix("Metrics on ")


async def never_called(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise AssertionError("not called")


# -- one server -------------------------------------------------------------------------------------------------
def test_one_server_counts_requests_bytes_and_latency(error_log: Messages) -> None:
    release = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            while (await receive())["type"] != "websocket.disconnect":
                pass
            return
        if scope["type"] != "http":
            return
        body = (await receive())["body"]
        if scope["path"] == "/wait":
            await asyncio.get_running_loop().run_in_executor(None, release.wait, 10 * UNIT)
        status = 500 if scope["path"] == "/error" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * 10 + body})

    with hatchway.background(app, metrics_address="127.0.0.1:0") as server:
        url = metrics_url(error_log)
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/metrics")
        assert not url.endswith(f":{server.port}/metrics")  # never on the app's port
        with httpx.Client(base_url=server.url, timeout=5 * UNIT) as client:
            for _ in range(3):
                client.get("/")
            client.post("/", content=b"abcde")
            client.get("/error")
            client.request("PROPFIND", "/")  # a WebDAV method: counted as OTHER
            samples = scrape(url)
            assert samples['hatchway_requests_total{method="GET",status="2xx"}'] == 3
            assert samples['hatchway_requests_total{method="POST",status="2xx"}'] == 1
            assert samples['hatchway_requests_total{method="GET",status="5xx"}'] == 1
            assert samples['hatchway_requests_total{method="OTHER",status="2xx"}'] == 1
            assert samples["hatchway_request_duration_seconds_count"] == 6
            assert samples['hatchway_request_duration_seconds_bucket{le="+Inf"}'] == 6
            assert 0 < samples["hatchway_request_duration_seconds_sum"] < 6 * 5 * UNIT
            assert samples["hatchway_request_body_bytes_total"] == 5
            assert samples["hatchway_response_body_bytes_total"] == 6 * 10 + 5
            assert samples["hatchway_connections_open"] == 1  # this client's keep-alive connection
            assert samples["hatchway_requests_in_flight"] == 0
            assert samples["hatchway_websocket_sessions"] == 0

            # In flight, and WebSocket sessions, while they are open.
            from websockets.sync.client import connect

            with ThreadPoolExecutor(1) as pool:
                waiting = pool.submit(httpx.get, server.url + "/wait", timeout=10 * UNIT)
                with connect(server.url.replace("http", "ws") + "/ws", open_timeout=5 * UNIT):
                    deadline = time.monotonic() + 5 * UNIT
                    while time.monotonic() < deadline:
                        samples = scrape(url)
                        if samples["hatchway_requests_in_flight"] == 1:
                            break
                        time.sleep(0.02)
                    assert samples["hatchway_requests_in_flight"] == 1
                    assert samples["hatchway_websocket_sessions"] == 1
                    assert samples["hatchway_connections_open"] == 3
                release.set()
                assert waiting.result(10 * UNIT).status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2 * UNIT)  # the endpoint stopped with the server


def test_metrics_address_in_use_is_a_startup_error() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with (
            pytest.raises(BindError, match=f"Metrics address 127.0.0.1:{port} is already in use") as info,
            hatchway.background(never_called, metrics_address=f"127.0.0.1:{port}"),
        ):
            pass
    assert info.value.code == "HW301"


def test_metrics_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    for wrong in ("9100", "localhost:", "::1:9100", "[nope]:9100", "host:99999", 9100):
        with pytest.raises(ConfigError, match="metrics_address") as info:
            Config("main:app", metrics_address=wrong)
        assert info.value.code == "HW101"
    Config("main:app", metrics_address="[::1]:9100")
    Config("main:app", metrics_address="0.0.0.0:0")
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if it were not installed
    with pytest.raises(ConfigError, match="serving metrics needs prometheus_client") as info:
        Config("main:app", metrics_address="127.0.0.1:9100")
    assert info.value.code == "HW105"
    assert "pip install 'hatchway[metrics]'" in str(info.value)


# -- two workers ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_workers_are_summed_while_load_runs(cli: Callable[..., CliProcess], tmp_path: Path) -> None:
    write_app(tmp_path, "counted", APP)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = cli(
        "counted:app",
        "--port",
        "0",
        "--workers",
        "2",
        "--metrics-address",
        "127.0.0.1:0",
        "--no-access-log",
        env={"TMPDIR": str(tmp)},
    )
    url = proc.wait_started()
    metrics = proc.wait_for(r"Metrics on (\S+)").group(1)
    proc.wait_for(r"Worker \[\d+\] is ready")
    deadline = time.monotonic() + 10 * UNIT
    while sum("is ready" in line for line in proc.stderr_lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    (directory,) = tmp.iterdir()  # the supervisor's multi-process directory
    assert directory.name.startswith("hatchway-metrics-")

    per_client, clients = 100, 4
    pids: dict[str, int] = {}
    lock = threading.Lock()

    def load(index: int) -> None:
        # A new connection per request (the server closes each), so the kernel spreads them over both workers.
        with httpx.Client(base_url=url, headers={"connection": "close"}, timeout=5 * UNIT) as client:
            for n in range(per_client):
                response = client.post("/missing" if n % 10 == 0 else "/", content=b"abc")
                with lock:
                    pids[response.text] = pids.get(response.text, 0) + 1

    scrapes = [scrape(metrics)]
    with ThreadPoolExecutor(clients) as pool:
        running = [pool.submit(load, i) for i in range(clients)]
        while not all(f.done() for f in running):
            scrapes.append(scrape(metrics))  # scraped while the load runs
            time.sleep(0.05)
        for future in running:
            future.result()
    total = per_client * clients
    assert sum(pids.values()) == total
    assert len(pids) == 2, pids  # both workers served
    seen = [s.get('hatchway_requests_total{method="POST",status="2xx"}', 0) for s in scrapes]
    assert seen == sorted(seen)
    assert seen[-1] <= total

    final = scrape(metrics)
    assert final['hatchway_requests_total{method="POST",status="2xx"}'] == total * 9 / 10
    assert final['hatchway_requests_total{method="POST",status="4xx"}'] == total / 10
    assert final["hatchway_request_duration_seconds_count"] == total
    assert final["hatchway_request_body_bytes_total"] == 3 * total
    assert final["hatchway_response_body_bytes_total"] == sum(len(pid) * n for pid, n in pids.items())
    assert final['hatchway_worker_restarts_total{reason="died"}'] == 0

    # A worker dies: it is replaced and counted; the totals it recorded stay.
    victim = int(next(iter(pids)))
    os.kill(victim, signal.SIGKILL)
    proc.wait_for(rf"Worker \[{victim}\] died")
    deadline = time.monotonic() + 10 * UNIT
    while time.monotonic() < deadline:
        after = scrape(metrics)
        if after['hatchway_worker_restarts_total{reason="died"}'] == 1:
            break
        time.sleep(0.05)
    assert after['hatchway_worker_restarts_total{reason="died"}'] == 1
    assert after['hatchway_worker_restarts_total{reason="rss"}'] == 0
    assert after["hatchway_request_duration_seconds_count"] == total

    assert proc.stop() == 0
    assert not list(tmp.iterdir())  # the directory went with the supervisor
