"""The metrics endpoint under idle and slow scrapers: bounded threads and connections, idle ones timed out.

Real sockets against ``MetricsEndpoint`` with a registry of its own; the timeout is shortened through the
module's constant (it is not an option).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from tests.utils import UNIT

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, Counter

from hatchway import _metrics


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(_metrics, "ENDPOINT_TIMEOUT", 0.5 * UNIT, raising=False)
    monkeypatch.setattr(_metrics, "ENDPOINT_MAX_CONNECTIONS", 64, raising=False)
    registry = CollectorRegistry()
    Counter("probe_hits", "A counter the scrape must show.", registry=registry).inc(3)
    served = _metrics.MetricsEndpoint("127.0.0.1:0", registry)
    try:
        yield served
    finally:
        served.close()


def _half_sent(port: int, stack: ExitStack) -> socket.socket:
    sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5 * UNIT))
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # the head never ends
    return sock


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_half_sent_scrapes_cost_no_threads_and_are_closed_after_the_timeout(endpoint: Any) -> None:
    port = int(endpoint.url.rsplit(":", 1)[1].split("/")[0])
    before = threading.active_count()
    with ExitStack() as stack:
        idle = [_half_sent(port, stack) for _ in range(50)]
        time.sleep(0.2 * UNIT)  # each accepted, if the server were to spend a thread on each
        assert threading.active_count() <= before + 2
        # A scraper that sends a whole request is still answered meanwhile.
        response = httpx.get(endpoint.url, timeout=5 * UNIT)
        assert response.status_code == 200
        assert "probe_hits_total 3.0" in response.text
        # The half-sent ones are closed once the timeout has passed, without a response.
        started = time.monotonic()
        for sock in idle:
            sock.settimeout(5 * UNIT)
            assert _closed_by_peer(sock)
        assert time.monotonic() - started < 3 * UNIT
    assert threading.active_count() <= before + 2


def test_connections_past_the_cap_are_closed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_metrics, "ENDPOINT_TIMEOUT", 5 * UNIT, raising=False)
    monkeypatch.setattr(_metrics, "ENDPOINT_MAX_CONNECTIONS", 8, raising=False)
    served = _metrics.MetricsEndpoint("127.0.0.1:0", CollectorRegistry())
    port = int(served.url.rsplit(":", 1)[1].split("/")[0])
    try:
        with ExitStack() as stack:
            held = [_half_sent(port, stack) for _ in range(8)]
            time.sleep(0.2 * UNIT)
            extra = _half_sent(port, stack)
            extra.settimeout(2 * UNIT)
            assert _closed_by_peer(extra)  # long before the 5-unit timeout
            for sock in held:  # the first eight are still waiting for the rest of their heads
                sock.settimeout(0.05)
                assert not _closed_by_peer(sock)
            held[0].sendall(b"\r\n")
            held[0].settimeout(5 * UNIT)
            assert held[0].recv(12) == b"HTTP/1.1 200"
    finally:
        served.close()


def test_a_scrape_is_answered_and_the_connection_closed(endpoint: Any) -> None:
    port = int(endpoint.url.rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5 * UNIT) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5 * UNIT)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 200")
        assert b"probe_hits_total 3.0" in data
