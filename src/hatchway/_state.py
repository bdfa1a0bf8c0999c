"""State shared by one server's connections: open connections, running tasks, counters, default headers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hatchway._config import Config
    from hatchway._http.exchange import Exchange


class Connection:
    """What the server needs from an open connection to shut it down."""

    def shutdown(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class ServerState:
    """Runtime state of one server; Config stays immutable."""

    def __init__(self, config: Config, on_request_limit: Callable[[], None] | None = None) -> None:
        self.connections: set[Any] = set()
        #: Set when shutting down and the last connection has closed.
        self.all_closed = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.total_requests = 0
        self.lifespan_state: dict[str, Any] = {}
        self.shutting_down = False
        self.request_limit: int | None = None
        self.on_request_limit = on_request_limit
        self.access_log = config.access_log
        #: Request ids, custom access lines, JSON fields and metrics (hatchway._observe.Observer); None when
        #: none is configured, and then the request path runs exactly as without them.
        self.observer: Any = None
        #: "2.0" when the app is an ASGI 2 app behind the adapter, as uvicorn reports it in every scope.
        self.asgi_version = "3.0"
        self._date_header = config.date_header
        server = [(b"server", b"hatchway")] if config.server_header else []
        custom = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in config.headers or []]
        custom_names = {k for k, _ in custom}
        if b"server" in custom_names:
            server = []
        self.sets_date = self._date_header and b"date" not in custom_names
        self._static = b"".join(k + b": " + v + b"\r\n" for k, v in server + custom)
        self._second = -1
        self._cached = self._static
        self._flushes: list[Callable[[], None]] = []
        # Responses whose head (or held body) waits for the loop's next turn: kept as the exchanges, not as
        # bound methods, which spares an object and a call by name per request.
        self._exchanges: list[Exchange] = []
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop serving: a state lives for one ``serve()``. Cached, because on Python 3.11
        ``asyncio.get_running_loop()`` makes a ``getpid()`` system call each time."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def default_headers(self) -> bytes:
        """Server, Date and custom default headers as ready-to-send bytes; Date recomputed once a second."""
        if not self.sets_date:
            return self._static
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._cached = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n" + self._static
        return self._cached

    def flush_soon(self, flush: Callable[[], None]) -> None:
        """Call ``flush`` on the next loop turn. One loop callback serves every connection's pending response
        head in that turn: under load this replaces a call_soon (and a context copy) per request."""
        self._schedule_flushes()
        self._flushes.append(flush)

    def flush_exchange_soon(self, exchange: Exchange) -> None:
        """Call ``exchange.flush_pending()`` on the next loop turn (``flush_soon`` for a response)."""
        self._schedule_flushes()
        self._exchanges.append(exchange)

    def _schedule_flushes(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop().call_soon(self._run_flushes)

    def _run_flushes(self) -> None:
        # Anything queued from here on schedules another turn, so nothing waits unseen. The responses go
        # first: their connection's output that they queue (HTTP/2 frames) still goes out in this turn.
        self._flush_scheduled = False
        exchanges, self._exchanges = self._exchanges, []
        for exchange in exchanges:
            try:
                exchange.flush_pending()
            except Exception as exc:  # one connection's fault must not skip the others' heads
                self._flush_failed(exc)
        flushes, self._flushes = self._flushes, []
        for flush in flushes:
            try:
                flush()
            except Exception as exc:
                self._flush_failed(exc)

    def _flush_failed(self, exc: Exception) -> None:
        self.loop().call_exception_handler({"message": "Error while flushing a response", "exception": exc})

    def connection_closed(self, conn: Any) -> None:
        self.connections.discard(conn)
        if self.shutting_down and not self.connections:
            self.all_closed.set()

    def count_request(self) -> None:
        self.total_requests += 1
        if (
            self.request_limit is not None
            and self.total_requests >= self.request_limit
            and self.on_request_limit
        ):
            callback, self.on_request_limit = self.on_request_limit, None
            callback()
