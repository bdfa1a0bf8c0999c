"""One request/response exchange's state, what its connection reports, and the HTTP/1.1 framing of its response.

``Exchange`` is the base class of ``cycle.Cycle`` (the ASGI receive/send pair, file responses, the app's
outcome); together they are one object, so the request's state has one owner, declared here. ``H2Cycle``
(``h2_stream.py``) replaces the byte framing with HTTP/2 frames. The exchange talks to its connection through
the small ``Conn`` interface (write, drain, read control, completion), so every framing rule here can be
exercised without a socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from hatchway._http.wire import (
    CHUNKED,
    CLOSE,
    HEADER_LINES,
    LENGTH,
    PLAIN,
    header_entry,
    status_line,
    trailer_line,
)
from hatchway._logs import access_logger, escape, logger

if TYPE_CHECKING:
    from hatchway._http.connection import ConnectionIO
    from hatchway._http.cycle import Cycle
    from hatchway._http.files import FileSender
    from hatchway._state import ServerState

Scope = dict[str, Any]
Message = dict[str, Any]

HIGH_WATER: Final = 65536


class Conn(Protocol):
    """What a cycle needs from its connection."""

    write_paused: bool

    def write(self, data: bytes) -> None: ...
    def write_soon(self, data: bytes) -> None: ...
    def writelines(self, data: tuple[bytes, bytes]) -> None: ...
    def write_waiter(self) -> Awaitable[None] | None: ...
    def resume_reading(self) -> None: ...
    def wait_for_body(self, cycle: Cycle) -> None: ...
    # The cycle itself (Any: the exchange below it passes itself, and each connection names its own class).
    def cycle_done(self, cycle: Any) -> None: ...
    def send_file(self, head: bytes, sender: FileSender) -> Awaitable[None] | None: ...
    def close(self) -> None: ...


NO_BODY_STATUS: Final = frozenset({204, 304})
# From this size on, a final body is handed to the transport beside its head rather than copied behind it.
_VECTOR_MIN: Final = 16384


class Exchange:
    """The state of one request/response exchange, and the framing of its response."""

    __slots__ = (
        "_conn",
        "_content_length",
        "_head",
        "_held",
        "_held_size",
        "_io",
        "_state",
        "_trailer_lines",
        "_waiters",
        "body",
        "body_size",
        "chunked",
        "client_eof",
        "disconnected",
        "expect_continue",
        "final_delivered",
        "flush_scheduled",
        "http_version",
        "is_head",
        "keep_alive",
        "more_body",
        "record",
        "request_complete",
        "response_complete",
        "response_started",
        "scope",
        "status",
        "task",
        "trailers",
    )

    def __init__(
        self,
        scope: Scope,
        conn: Conn,
        state: ServerState,
        keep_alive: bool,
        expect_continue: bool,
        io: ConnectionIO | None = None,
    ) -> None:
        self.scope = scope
        self._conn = conn
        # ``conn`` again when it is an HTTP/1.1 connection, typed as itself: the compiled build calls it
        # directly where every request does (calls through the Conn protocol go by name, about 350 CPU
        # instructions each on 3.13).
        self._io = io
        self._state = state
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.is_head = scope["method"] == "HEAD"
        # Kept apart from the scope, which is dropped when the app returns (a head may be sent after that).
        self.http_version = scope["http_version"]
        self.body: list[bytes] = []
        self.body_size = 0
        self.more_body = True
        self.final_delivered = False
        self.request_complete = False
        self.disconnected = False
        self.client_eof = False
        self.response_started = False
        self.response_complete = False
        # Futures made only when receive() must wait (most requests never do): cheaper than an Event.
        self._waiters: list[asyncio.Future[None]] | None = None
        self.status = 0
        self.chunked = False
        self._content_length: int | None = None
        self._head: bytes | None = None
        self.flush_scheduled = False
        # Body bytes held back until the app finishes the response or the loop's next turn (see _hold).
        self._held: list[bytes] | None = None
        self._held_size = 0
        self.task: asyncio.Task[None] | None = None  # the task running the app, in state.tasks until the end
        # The app announced trailers ("trailers": True in http.response.start, the http.response.trailers
        # extension): the final body does not end the response, its trailers do.
        self.trailers = False
        self._trailer_lines: list[bytes] = []
        # What the server's observer (request id, access format, metrics) keeps of this request; None when
        # the server has none (see hatchway._observe).
        self.record: Any = None

    # -- events from the connection ----------------------------------------------------------------
    def body_received(self, data: bytes) -> None:
        if self.response_complete:
            return  # answered already: the rest of the body is read and dropped, never buffered
        self.body.append(data)
        self.body_size += len(data)
        if self.record is not None:
            self.record.received += len(data)
        self._wake()

    # -- what the connection asks of the request (it never writes these fields itself) ----------------------
    def body_dropped(self) -> int:
        """The app will read no more of the body: what is held for it is released; returns its size."""
        size = self.body_size
        self.body.clear()
        self.body_size = 0
        return size

    def close_after_response(self) -> None:
        self.keep_alive = False

    def claim_response(self) -> bool:
        """The server answers for the app (an error it found): True if no response has begun, which it then
        counts as begun, so the app's own start is refused."""
        if self.response_started:
            return False
        self.response_started = True
        return True

    def attach_task(self, task: asyncio.Task[None]) -> None:
        self.task = task

    def request_ended(self) -> None:
        self.more_body = False
        self.request_complete = True
        self._wake()

    def connection_lost(self) -> None:
        self.disconnected = True
        self._wake()

    def eof_received(self) -> None:
        """The client shut down its sending side: it may still read the response (half-close), but an app
        waiting for the next message after the whole body learns that the client is done."""
        self.client_eof = True
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        if waiters is not None:
            self._waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _waiter(self) -> asyncio.Future[None]:
        # One future per waiting receive() (usually none, sometimes two: a body reader and a disconnect
        # listener), woken together like an Event's waiters.
        waiter = self._state.loop().create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        return waiter

    # -- response framing ----------------------------------------------------------------------------
    def _send_continue(self) -> None:
        self._conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _start(self, message: Message) -> None:
        status = message["status"]
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise RuntimeError(f"Invalid HTTP status code {status!r} in response.")
        parts = [status_line(status), b""]
        content_length: int | None = None
        overrides_defaults = False
        lines = HEADER_LINES
        for header in message.get("headers", ()):
            try:
                entry = lines.get(header)
            except TypeError:  # unhashable (a list, a bytearray): checked the long way, never cached
                entry = None
            if entry is None:
                name, value = header
                entry = header_entry(name, value)
            line, kind, length = entry
            if kind == PLAIN:
                parts.append(line)
            elif kind == LENGTH:
                content_length = length
                parts.append(line)
            elif kind == CHUNKED:
                # hatchway frames the body itself; the app's own chunked marker would double it.
                self.chunked = True
            elif kind == CLOSE:
                self.keep_alive = False
            else:
                overrides_defaults = True
                parts.append(line)
        # Started only once the headers are known to be valid: an invalid header still gets a clean 500.
        self.response_started = True
        self.status = status
        parts[1] = self._default_headers(overrides_defaults)
        if self.record is not None:
            parts.append(self._state.observer.response_started(self.record, message.get("headers", ())))
        if message.get("trailers", False) and self._announce_trailers(parts):
            content_length = None
        self._content_length = content_length
        if content_length is not None:
            self.chunked = False
        self._head = b"".join(parts)
        # The head goes out with the first body message (one write), or on the loop's next turn if the app
        # waits for something else first.
        self._flush_later()

    def _default_headers(self, overrides: bool) -> bytes:
        defaults = self._state.default_headers()
        if not overrides:
            return defaults
        return b"".join(
            line + b"\r\n"
            for line in defaults.split(b"\r\n")
            if line and line.split(b":", 1)[0] not in (b"server", b"date")
        )

    def _no_body(self) -> bool:
        return self.is_head or self.status in NO_BODY_STATUS or self.status < 200

    def _finish_head(self, first_body: bytes | None, final: bool) -> bytes:
        head = self._head or b""
        self._head = None
        framing = b""
        if self._no_body():
            self.chunked = False
        elif self._content_length is None:
            if final and first_body is not None and not self.trailers:
                self._content_length = len(first_body)
                framing = b"content-length: %d\r\n" % len(first_body)
                self.chunked = False
            elif self.http_version == "1.1":
                self.chunked = True
                framing = b"transfer-encoding: chunked\r\n"
            else:
                # HTTP/1.0 has no chunked coding (even if the app asked for it): the close ends the body.
                self.chunked = False
                self.keep_alive = False
        elif self.chunked:
            self.chunked = False
        if self.chunked and self._content_length is None and not framing:
            framing = b"transfer-encoding: chunked\r\n"
        if not self.keep_alive:
            framing += b"connection: close\r\n"
        elif self.http_version == "1.0":
            # RFC 9112 C.2.2: an HTTP/1.0 client keeps the connection only if the response says so.
            framing += b"connection: keep-alive\r\n"
        return head + framing + b"\r\n"

    def _flush_later(self) -> None:
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self._state.flush_exchange_soon(self)

    def flush_pending(self) -> None:
        # The loop's next turn: what the app has sent of an unfinished response goes out now. For the usual
        # response (start and final body in one step) there is nothing left to do here.
        self.flush_scheduled = False
        if self.disconnected:
            self._held = None
            self._held_size = 0
        elif self._head is not None:
            self._conn.write(self._finish_head(None, False))
        elif self._held is not None:
            self._flush_held()

    def _write_body(self, body: bytes, more_body: bool) -> None:
        if self.record is not None:
            self.record.sent += len(body)
        head = self._finish_head(body, not more_body) if self._head is not None else b""
        if self._no_body():
            out = head
        elif self.chunked:
            out = head + (b"%x\r\n%s\r\n" % (len(body), body) if body else b"")
            if not more_body and not self.trailers:
                out += b"0\r\n\r\n"
        elif self._content_length is not None:
            remaining = self._content_length
            if len(body) > remaining:
                logger.error("Response content longer than Content-Length; the connection is closed.")
                self._write(head + body[:remaining])
                self._abort_response()
                return
            self._content_length = remaining - len(body)
            if not more_body and len(body) >= _VECTOR_MIN and not self._content_length:
                self._write_vector(head, body)
                self._complete()
                return
            out = head + body
            if not more_body and self._content_length:
                logger.error("Response content shorter than Content-Length; the connection is closed.")
                self._write(out)
                self._abort_response()
                return
        else:
            out = head + body
        if more_body or self.trailers:
            # (The trailers, when announced, end the response: see _add_trailers.)
            if out:
                self._hold(out)
            return
        if out or self._held is not None:
            out = self._behind_held(out)
            if len(out) < _VECTOR_MIN:
                io = self._io
                if io is not None:
                    io.write_soon(out)
                else:
                    self._conn.write_soon(out)
            else:
                self._conn.write(out)
        self._complete()

    # -- trailers (the http.response.trailers extension) --------------------------------------------------
    def _announce_trailers(self, parts: list[bytes]) -> bool:
        """The app will send trailers: over HTTP/1.1 they need the chunked coding, so a Content-Length the app
        gave is dropped (RFC 9112 6.3: it would contradict the chunked framing); True when it was."""
        self.trailers = True
        if self.http_version != "1.1":
            return False
        self.chunked = True
        parts[:] = [p for p in parts if not p[:15].lower().startswith(b"content-length:")]
        return True

    def _add_trailers(self, message: Message) -> None:
        lines = self._trailer_lines
        for name, value in message.get("headers", ()):
            lines.append(trailer_line(name, value))
        if message.get("more_trailers", False):
            return
        if self._head is not None:  # the app sent no body message at all
            self._write_body(b"", True)
        if self.chunked and not self._no_body():
            # RFC 9112 7.1.2: the last chunk, then the trailer section.
            self._hold(b"0\r\n" + b"".join(lines) + b"\r\n")
            self.chunked = False  # the chunked body is complete
        # Over HTTP/1.0 (no chunked coding) the trailers have no place on the wire: they are dropped.
        self.trailers = False
        self._trailer_lines = []
        self._write_body(b"", False)

    # A streaming app often sends many small chunks in a row (nothing it awaits yields to the loop): they are
    # held and written together on the loop's next turn, or with the final body, one send(2) instead of one
    # per chunk. Bounded by HIGH_WATER, past which they go out at once and the transport's flow control
    # applies as before.
    def _hold(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = [data]
            self._flush_later()
        else:
            held.append(data)
        self._held_size += len(data)
        if self._held_size >= HIGH_WATER:
            self._flush_held()

    def _behind_held(self, data: bytes) -> bytes:
        """``data`` with whatever is held written in front of it; nothing is held afterwards."""
        held = self._held
        if held is None:
            return data
        self._held = None
        self._held_size = 0
        held.append(data)
        return b"".join(held)

    def _write_vector(self, head: bytes, body: bytes) -> None:
        # A large body is not copied behind its head: the transport sends both with one writev(2).
        self._conn.writelines((self._behind_held(head), body))

    def _write(self, data: bytes) -> None:
        self._conn.write(self._behind_held(data))

    def _flush_held(self) -> None:
        if self._held is not None:
            self._conn.write(self._behind_held(b""))

    def _abort_response(self) -> None:
        self._head = None  # a head not sent yet never will be: the connection closes
        self._flush_held()
        self.keep_alive = False
        self.response_complete = True
        self._wake()
        self._conn.close()

    def _complete(self) -> None:
        self.response_complete = True
        self._wake()
        if self.record is not None:
            try:
                self._state.observer.request_done(self)
            except Exception:
                logger.exception("Error while writing the access log.")
        elif self._state.access_log and access_logger.isEnabledFor(logging.INFO):
            try:
                self._log_access()
            except Exception:
                # A broken log handler or formatter is not the app's fault and must not stall the connection.
                logger.exception("Error while writing the access log.")
        io = self._io
        if io is not None:
            io.cycle_done(cast("Cycle", self))
        else:
            self._conn.cycle_done(self)

    def _log_access(self) -> None:
        scope = self.scope
        client = scope.get("client")
        client_addr = f"{client[0]}:{client[1]}" if client else "-"
        path = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode("latin-1")
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d',
            escape(client_addr),
            escape(scope["method"]),
            escape(path),
            scope["http_version"],
            self.status,
        )
