"""One HTTP/2 stream under the shared ASGI cycle: the response framing HTTP/2 needs, and the stream's side of
flow control in both directions.

``H2Cycle`` is the one request/response cycle (``cycle.Cycle``: receive/send ordering, limits, errors, access
log) with HTTP/1.1's byte framing replaced by calls on its ``H2Stream``; ``H2Stream`` is what the cycle sees
as its connection. Neither knows the HTTP/2 library: the backends in ``h2.py`` and ``h2_zttp.py`` do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final

from hatchway._http.cycle import Cycle, Message, Scope
from hatchway._http.wire import CLOSE, DEFAULTS, HEADER_LINES, LENGTH, header_entry, trailer_line
from hatchway._logs import logger

if TYPE_CHECKING:
    from hatchway._http.files import FileSender
    from hatchway._http.h2_connection import H2Connection
    from hatchway._state import ServerState
    from hatchway._ws.over_h2 import H2WebSocketTransport

Headers = list[tuple[bytes, bytes]]

# RFC 9113 8.2.2: connection-specific fields have no meaning in HTTP/2 and must not be sent.
_CONNECTION_SPECIFIC: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)

# The server's default header lines (bytes, as HTTP/1.1 writes them) as field tuples, by identity of the bytes
# object: the date line changes once a second, so this holds one or two entries.
_DEFAULTS_CACHE: dict[bytes, Headers] = {}


def header_fields(lines: bytes) -> Headers:
    """``name: value\\r\\n`` lines (the server's defaults, the observer's additions) as HTTP/2 fields."""
    fields = _DEFAULTS_CACHE.get(lines)
    if fields is None:
        fields = []
        for line in lines.split(b"\r\n"):
            if line:
                name, _, value = line.partition(b":")
                fields.append((name.strip().lower(), value.strip()))
        if len(_DEFAULTS_CACHE) > 4:
            _DEFAULTS_CACHE.clear()
        _DEFAULTS_CACHE[lines] = fields
    return fields


class H2Stream:
    """A stream as its cycle's connection: what the cycle sends goes to the HTTP/2 connection, subject to the
    client's flow-control windows; what the app reads opens the client's window again."""

    __slots__ = (
        "_body_timer",
        "_timer",
        "_waiter",
        "conn",
        "cycle",
        "end_pending",
        "pending",
        "stream_id",
        "write_paused",
        "ws",
    )

    def __init__(self, conn: H2Connection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.cycle: H2Cycle | None = None
        #: A WebSocket stream (RFC 8441) has no cycle: the WebSocket layer's transport stands in for it.
        self.ws: H2WebSocketTransport | None = None
        # Body bytes the client's window does not admit yet, and whether the stream ends after them.
        self.pending = b""
        self.end_pending = False
        self.write_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    # -- what H2Cycle asks --------------------------------------------------------------------------------
    def send_headers(self, status: int, headers: Headers, end_stream: bool) -> None:
        self.conn.send_headers(self.stream_id, status, headers, end_stream)

    def send_data(self, data: bytes, end_stream: bool) -> None:
        if self.pending:
            self.pending += data
        else:
            self.pending = data
        self.end_pending = end_stream
        self.conn.pump(self)

    def send_trailers(self, headers: Headers) -> None:
        if self.pending:
            # The trailers follow the last DATA frame, which the window still holds back.
            self.conn.trailers_after_pending(self, headers)
        else:
            self.conn.send_trailers(self.stream_id, headers)

    def consumed(self, size: int) -> None:
        """The app read ``size`` body bytes: the client may send that many more (backpressure)."""
        if size:
            self.conn.consumed(self.stream_id, size)

    # -- flow control, driven by the connection -------------------------------------------------------------
    def blocked(self) -> None:
        """Bytes wait for the client's window: the app's next send waits (within the send timeout)."""
        if not self.write_paused:
            self.write_paused = True
            if self.ws is not None:
                self.ws.pause_writing()  # the WebSocket layer waits, and applies its own send timeout
                return
            timeout = self.conn.send_timeout
            if timeout:
                self._timer = self.conn.loop.call_later(timeout, self._send_timed_out)

    def unblocked(self) -> None:
        self.write_paused = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.ws is not None:
            self.ws.resume_writing()

    def _send_timed_out(self) -> None:
        self._timer = None
        logger.debug("HTTP/2 stream %d: client opened no window for the response in time.", self.stream_id)
        self.conn.reset(self.stream_id, cancel=True)

    def lost(self) -> None:
        """The stream was reset or the connection is gone."""
        self.pending = b""
        self.body_arrived()
        if self.ws is not None:
            self.ws.lost()
        self.unblocked()
        if self.cycle is not None:
            self.cycle.connection_lost()

    # -- the Conn interface of cycle.Cycle ------------------------------------------------------------------
    def write_waiter(self) -> Awaitable[None] | None:
        if not self.write_paused:
            return None
        if self._waiter is None:
            self._waiter = self.conn.loop.create_future()
        return asyncio.shield(self._waiter)

    def resume_reading(self) -> None:
        pass  # the client's window opens as the app reads (consumed), not when it waits

    def wait_for_body(self, cycle: Cycle) -> None:
        # The app waits for body bytes: they must come within timeout_request_body, as over HTTP/1.1.
        timeout = self.conn.config.timeout_request_body
        if timeout and self._body_timer is None:
            self._body_timer = self.conn.loop.call_later(timeout, self._body_timed_out)

    def body_arrived(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timed_out(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or cycle.request_complete:
            return
        logger.debug(
            "HTTP/2 stream %d: no request body for %ss; reset.",
            self.stream_id,
            self.conn.config.timeout_request_body,
        )
        self.conn.reset(self.stream_id, cancel=True)

    def cycle_done(self, cycle: Cycle) -> None:
        self.conn.stream_done(self)

    def close(self) -> None:
        # A response that cannot be completed: the stream is reset, the connection carries on.
        self.conn.reset(self.stream_id, cancel=False)

    def write(self, data: bytes) -> None:  # pragma: no cover - H2Cycle never writes HTTP/1.1 bytes
        raise RuntimeError("HTTP/1.1 bytes written to an HTTP/2 stream")

    def write_soon(self, data: bytes) -> None:  # pragma: no cover
        raise RuntimeError("HTTP/1.1 bytes written to an HTTP/2 stream")

    def writelines(self, data: tuple[bytes, bytes]) -> None:  # pragma: no cover
        raise RuntimeError("HTTP/1.1 bytes written to an HTTP/2 stream")

    def send_file(self, head: bytes, sender: FileSender) -> Awaitable[None] | None:  # pragma: no cover
        raise RuntimeError("sendfile on an HTTP/2 stream")


class H2Cycle(Cycle):
    """The ASGI cycle of one HTTP/2 stream: the shared cycle with HTTP/2's response framing."""

    __slots__ = ("_fields", "_trailer_fields", "stream")

    def __init__(self, scope: Scope, stream: H2Stream, state: ServerState, expect_continue: bool) -> None:
        super().__init__(scope, stream, state, True, expect_continue)
        self.stream = stream
        self._fields: Headers | None = None  # the response head, until it goes out with the first body
        self._trailer_fields: Headers = []

    def receive_message(self) -> Message:
        message = super().receive_message()
        body = message.get("body")
        if body:
            self.stream.consumed(len(body))
        return message

    def _send_continue(self) -> None:
        self.stream.send_headers(100, [], False)

    def _start(self, message: Message) -> None:
        status = message["status"]
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise RuntimeError(f"Invalid HTTP status code {status!r} in response.")
        fields: Headers = []
        content_length: int | None = None
        overrides_defaults = False
        lines = HEADER_LINES
        headers = message.get("headers", ())
        for header in headers:
            try:
                entry = lines.get(header)
            except TypeError:
                entry = None
            if entry is None:
                entry = header_entry(header[0], header[1])
            name = header[0].lower()
            kind = entry[1]
            if kind == LENGTH:
                content_length = entry[2]
            elif kind == CLOSE or name in _CONNECTION_SPECIFIC:
                continue
            elif kind == DEFAULTS:
                overrides_defaults = True
            fields.append((bytes(name), bytes(header[1])))
        self.response_started = True
        self.status = status
        defaults = header_fields(self._state.default_headers())
        if overrides_defaults:
            given = {name for name, _ in fields}
            defaults = [field for field in defaults if field[0] not in given]
        if self.record is not None:
            fields += header_fields(self._state.observer.response_started(self.record, headers))
        if message.get("trailers", False):
            self.trailers = True
        self._content_length = content_length
        self._fields = defaults + fields
        self._flush_later()

    def flush_pending(self) -> None:
        self.flush_scheduled = False
        if not self.disconnected and self._fields is not None:
            self._send_head(False)

    def _send_head(self, end_stream: bool) -> None:
        fields = self._fields
        self._fields = None
        if fields is not None:
            self.stream.send_headers(self.status, fields, end_stream)

    def _write_body(self, body: bytes, more_body: bool) -> None:
        if self.record is not None:
            self.record.sent += len(body)
        final = not more_body
        if self._no_body():
            if self._fields is not None:
                self._send_head(final and not self.trailers)
            elif final and not self.trailers:
                # The head went out already (the app waited between its messages): the stream still ends.
                self.stream.send_data(b"", True)
            if final:
                self._body_done()
            return
        remaining = self._content_length
        if remaining is not None:
            if len(body) > remaining:
                logger.error("Response content longer than Content-Length; the stream is reset.")
                self._abort_response()
                return
            remaining -= len(body)
            self._content_length = remaining
            if final and remaining:
                logger.error("Response content shorter than Content-Length; the stream is reset.")
                self._abort_response()
                return
        if self._fields is not None:
            self._send_head(final and not body and not self.trailers)
            if final and not body and not self.trailers:
                self._complete()
                return
        if body or (final and not self.trailers):
            self.stream.send_data(body, final and not self.trailers)
        if final:
            self._body_done()

    def _body_done(self) -> None:
        if not self.trailers:
            self._complete()

    def _announce_trailers(self, parts: list[bytes]) -> bool:  # pragma: no cover - HTTP/1.1 only
        self.trailers = True
        return False

    def _add_trailers(self, message: Message) -> None:
        fields = self._trailer_fields
        for name, value in message.get("headers", ()):
            trailer_line(name, value)  # the same checks as over HTTP/1.1
            fields.append((bytes(name).lower(), bytes(value)))
        if message.get("more_trailers", False):
            return
        if self._fields is not None:  # no body message at all
            self._send_head(False)
        self.trailers = False
        if fields:
            self.stream.send_trailers(fields)
        else:
            self.stream.send_data(b"", True)
        self._complete()

    def _send_file(self, message: Message, kind: str) -> Awaitable[None] | None:
        # Not offered in an HTTP/2 scope (no sendfile(2) under framing); an app that sends it anyway is told.
        raise RuntimeError(f"ASGI message {kind!r} is not offered over HTTP/2.")

    def file_sent(self, sender: FileSender, final: bool) -> None:  # pragma: no cover - no files over HTTP/2
        sender.finish()

    def _send_500(self) -> None:
        if self.disconnected:
            return
        self.response_started = True
        self.status = 500
        self._fields = None
        body = b"Internal Server Error"
        fields = [
            *header_fields(self._state.default_headers()),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
        ]
        if self.record is not None:
            fields += header_fields(self._state.observer.response_started(self.record, ()))
        self.stream.send_headers(500, fields, False)
        self.stream.send_data(body, True)
        self._complete()

    def _abort_response(self) -> None:
        self._fields = None
        self.keep_alive = False
        self.response_complete = True
        self._wake()
        self.stream.close()


def h2_scope_extensions() -> dict[str, Any]:
    """The extensions an HTTP/2 scope offers: trailers; no file sending (see H2Cycle._send_file)."""
    return {"http.response.trailers": {}}
