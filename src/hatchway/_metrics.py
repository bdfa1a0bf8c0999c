"""Prometheus metrics (``metrics_address``): recorded by each server, served on an address of their own.

One server serves its own registry. Under a supervisor (workers, reload) each child records into
prometheus_client's multi-process files, in a temporary directory the supervisor makes (handed to the
children as ``PROMETHEUS_MULTIPROC_DIR``) and removes when it stops; the supervisor serves the sum over all
of them, with its own counter of worker restarts. Needs ``prometheus_client`` (``pip install
'hatchway[metrics]'``); nothing here is imported unless the option is set.

Per request, the cost is one counter, one histogram observation and two byte counters (``RequestMetrics``).
The gauges (in-flight requests, open connections, WebSocket sessions) cost nothing per request: they are
read from the server's state when scraped, or, in a child, sampled once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import importlib.util
import ipaddress
import math
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from hatchway._errors import BindError
from hatchway._logs import logger

if TYPE_CHECKING:
    from hatchway._config import Config
    from hatchway._state import ServerState

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Methods outside this set are counted as "OTHER": a client must not be able to create label values.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})
# Prometheus's default buckets start at 5 ms; a plain request here takes well under one.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)
SAMPLE_INTERVAL = 1.0
# The metrics endpoint (MetricsEndpoint): how long a scraper has to send its request and to take the page,
# and how many connections it may hold at once. Module constants, not options; the tests shorten them.
ENDPOINT_TIMEOUT = 10.0
ENDPOINT_MAX_CONNECTIONS = 64
_HEAD_LIMIT = 16 * 1024


def prometheus_available() -> bool:
    """Whether prometheus_client can be imported (looked up, not imported: Config stays cheap to build)."""
    try:
        return importlib.util.find_spec("prometheus_client") is not None
    except (ImportError, ValueError):  # a None entry in sys.modules, a broken package
        return False


def parse_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as (host, port); raises ValueError saying what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT (such as 127.0.0.1:9100 or [::1]:9100), got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"expected an IPv6 address between the brackets, got {value!r}") from None
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, as [{host}]:{port}; got {value!r}")
    return host, int(port)


def check_metrics_address(value: Any) -> str | None:
    """What is wrong with ``value`` as ``metrics_address``, or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"expected HOST:PORT, got {value!r}"
    try:
        parse_address(value)
    except ValueError as exc:
        return str(exc)
    return None


class RequestMetrics:
    """The per-request metrics of one server process."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Histogram

        self.requests = Counter(
            "hatchway_requests",
            "Completed HTTP responses, by method and status class.",
            ["method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "hatchway_request_duration_seconds",
            "Time from a request's head to the end of its response.",
            buckets=BUCKETS,
            registry=registry,
        )
        self.received = Counter(
            "hatchway_request_body_bytes", "Request body bytes received.", registry=registry
        )
        self.sent = Counter("hatchway_response_body_bytes", "Response body bytes sent.", registry=registry)
        self._children: dict[tuple[str, int], Any] = {}

    def observe(self, method: str, status: int, seconds: float, received: int, sent: int) -> None:
        if method not in METHODS:
            method = "OTHER"
        key = (method, status // 100)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(method, f"{status // 100}xx")
        child.inc()
        self.duration.observe(seconds)
        if received:
            self.received.inc(received)
        if sent:
            self.sent.inc(sent)


def _count(state: ServerState, index: int) -> float:
    return float(_counts(state)[index])


def _counts(state: ServerState) -> tuple[int, int, int]:
    """(in-flight requests, open connections, WebSocket sessions) of one server, read from its state."""
    # Imported here: building a Config imports this module for its checks, and must not load the HTTP stack.
    from hatchway._http.protocol import HttpProtocol

    connections = list(state.connections)  # one C call: safe against the loop adding one meanwhile
    websocket = sys.modules.get("hatchway._ws.protocol")  # imported with the first upgrade
    ws_class = websocket.WebSocketProtocol if websocket is not None else None
    in_flight = websockets = 0
    for conn in connections:
        if isinstance(conn, HttpProtocol):
            if conn.cycle is not None:
                in_flight += 1
        elif ws_class is not None and isinstance(conn, ws_class):
            websockets += 1
    return in_flight, len(connections), websockets


_GAUGES = (
    ("hatchway_requests_in_flight", "Requests whose response is being produced."),
    ("hatchway_connections_open", "Open client connections (HTTP and WebSocket)."),
    ("hatchway_websocket_sessions", "Open WebSocket sessions."),
)


class ServerMetrics:
    """A server's metrics: recorded always, served only when the server is not a supervisor's child."""

    def __init__(self, config: Config, state: ServerState, *, endpoint: bool) -> None:
        from prometheus_client import CollectorRegistry, Gauge

        self.child = not endpoint
        # A child's values go to the supervisor's multi-process files: no registry of its own.
        registry = None if self.child else CollectorRegistry()
        self.requests = RequestMetrics(registry)
        self.gauges = [
            Gauge(name, text, registry=registry, multiprocess_mode="livesum") for name, text in _GAUGES
        ]
        self._state = state
        self._timer: asyncio.TimerHandle | None = None
        self._endpoint: MetricsEndpoint | None = None
        if self.child:
            self._sample()
        else:
            for index, gauge in enumerate(self.gauges):
                gauge.set_function(functools.partial(_count, state, index))
            assert config.metrics_address is not None
            self._endpoint = MetricsEndpoint(config.metrics_address, registry)

    def _sample(self) -> None:
        for gauge, value in zip(self.gauges, _counts(self._state), strict=True):
            gauge.set(value)
        with contextlib.suppress(RuntimeError):  # no running loop: sampled once, at start
            self._timer = asyncio.get_running_loop().call_later(SAMPLE_INTERVAL, self._sample)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.child:
            for gauge in self.gauges:
                gauge.set(0)
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None


def _bind_error(exc: OSError, address: str) -> BindError:
    if exc.errno == errno.EADDRINUSE:
        message, code = (
            f"Metrics address {address} is already in use; pick another --metrics-address",
            "HW301",
        )
    elif exc.errno in (errno.EACCES, errno.EPERM):
        message, code = f"Permission denied binding the metrics address {address}", "HW302"
    else:
        message, code = f"Cannot bind the metrics address {address}: {exc.strerror or exc}", "HW303"
    return BindError(message + ".", code=code, address=address, errno=exc.errno)


class MetricsEndpoint:
    """prometheus_client's exposition on its own address, served by a small event loop in one daemon thread.

    A scraper costs a connection, never a thread: wsgiref's threading server spent a thread per connection,
    so clients that connected and sent half a request held threads for ever. Here a request's head must
    arrive within ``ENDPOINT_TIMEOUT`` seconds and its response be taken within as long again; at most
    ``ENDPOINT_MAX_CONNECTIONS`` connections are open at once (more are closed as they arrive); one request
    per connection. The page itself comes from prometheus_client's WSGI app, called in this thread.
    """

    def __init__(self, address: str, registry: Any) -> None:
        from prometheus_client import make_wsgi_app

        host, port = parse_address(address)
        self.timeout = ENDPOINT_TIMEOUT
        self.max_connections = ENDPOINT_MAX_CONNECTIONS
        self._app = make_wsgi_app(registry)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise _bind_error(exc, address) from exc
        sock.setblocking(False)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{sock.getsockname()[1]}/metrics"
        self._handlers: set[asyncio.Task[Any]] = set()
        self._loop = asyncio.new_event_loop()
        self._main = self._loop.create_task(self._serve(sock))
        self._thread = threading.Thread(target=self._run, name="hatchway-metrics", daemon=True)
        self._thread.start()
        logger.info("Metrics on %s", self.url)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main)
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.close()

    async def _serve(self, sock: socket.socket) -> None:
        server = await asyncio.start_server(self._handle, sock=sock, limit=_HEAD_LIMIT)
        try:
            await asyncio.get_running_loop().create_future()  # until close() cancels this task
        finally:
            server.close()
            handlers = list(self._handlers)
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._handlers) >= self.max_connections:
            writer.transport.abort()
            return
        self._handlers.add(task)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.timeout)
            writer.write(self._respond(head))
            writer.close()
            # Until the kernel has taken the whole page: a scraper that does not read is closed too.
            await asyncio.wait_for(writer.wait_closed(), self.timeout)
        except (OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass  # LimitOverrunError is a ValueError: a head past _HEAD_LIMIT
        finally:
            self._handlers.discard(task)
            writer.transport.abort()  # a no-op once closed

    def _respond(self, head: bytes) -> bytes:
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        path, _, query = target.partition("?")
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                environ["HTTP_" + name.strip().upper().replace("-", "_")] = value.strip()
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer[:] = [status, headers]

        try:
            body = b"".join(self._app(environ, start_response))
        except Exception:
            logger.exception("Error while collecting metrics")
            answer[:] = ["500 Internal Server Error", []]
            body = b""
        status, headers = answer
        lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
        lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        return "\r\n".join(lines).encode("latin-1") + body

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._main.cancel)
        self._thread.join(5)


class SupervisorMetrics:
    """The supervisor's side: the multi-process directory, the summed endpoint, the restart counter."""

    def __init__(self, config: Config, supervisor: object) -> None:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        self.directory = tempfile.mkdtemp(prefix="hatchway-metrics-")
        try:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]
            registry.register(_SupervisorCollector(supervisor))
            assert config.metrics_address is not None
            self.endpoint = MetricsEndpoint(config.metrics_address, registry)
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise

    @property
    def env(self) -> dict[str, str]:
        """What the children's environment needs."""
        return {MULTIPROC_ENV: self.directory}

    def child_exited(self, pid: int) -> None:
        from prometheus_client.multiprocess import mark_process_dead

        # Its counters stay (they are totals); its gauges leave the sum.
        with contextlib.suppress(OSError):
            mark_process_dead(pid, self.directory)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.endpoint.close()
        shutil.rmtree(self.directory, ignore_errors=True)


class _SupervisorCollector:
    """The supervisor's own figures: the worker pool's restarts, by reason (``WorkerPool.restarts``)."""

    def __init__(self, supervisor: object) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        restarts = getattr(self.supervisor, "restarts", None)
        if restarts is None:  # the reloader
            return
        counts = dict(restarts)  # one C call: the supervisor's thread may be counting meanwhile
        family = CounterMetricFamily(
            "hatchway_worker_restarts", "Workers replaced by the supervisor, by reason.", labels=["reason"]
        )
        known: tuple[str, ...] = getattr(self.supervisor, "restart_reasons", ())
        for reason in (*known, *sorted(set(counts) - set(known))):
            family.add_metric([reason], counts.get(reason, 0))
        yield family
