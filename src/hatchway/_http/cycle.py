"""One request/response exchange: ASGI receive/send ordering, response framing and keep-alive; no transport.

The cycle talks to its connection through the small ``Conn`` interface (write, drain, read control,
completion), so every framing rule here can be exercised without a socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final, Protocol

from hatchway._app_task import send_file_rest
from hatchway._errors import ClientDisconnected
from hatchway._http.events import TRAILERS
from hatchway._http.files import COPY_MAX, PATHSEND, ZEROCOPYSEND, FileSender, open_file
from hatchway._http.wire import (
    CHUNKED,
    CLOSE,
    HEADER_LINES,
    INVALID_HEADER_NAME,
    INVALID_HEADER_VALUE,
    LENGTH,
    PLAIN,
    header_entry,
    plain_response,
    reason_phrase,
    status_line,
    trailer_line,
)
from hatchway._logs import access_logger, escape, logger

if TYPE_CHECKING:
    from hatchway._state import ServerState

Scope = dict[str, Any]
Message = dict[str, Any]

HIGH_WATER: Final = 65536

# Re-exported for the WebSocket handshake, which imports them from here.
__all__ = ["INVALID_HEADER_NAME", "INVALID_HEADER_VALUE", "reason_phrase"]


class Conn(Protocol):
    """What a cycle needs from its connection."""

    write_paused: bool

    def write(self, data: bytes) -> None: ...
    def write_soon(self, data: bytes) -> None: ...
    def writelines(self, data: tuple[bytes, bytes]) -> None: ...
    def write_waiter(self) -> Awaitable[None] | None: ...
    def resume_reading(self) -> None: ...
    def wait_for_body(self, cycle: Cycle) -> None: ...
    def cycle_done(self, cycle: Cycle) -> None: ...
    def send_file(self, head: bytes, sender: FileSender) -> Awaitable[None] | None: ...
    def close(self) -> None: ...


_NO_BODY_STATUS: Final = frozenset({204, 304})
# From this size on, a final body is handed to the transport beside its head rather than copied behind it.
_VECTOR_MIN: Final = 16384


class Cycle:
    """The ASGI ``receive``/``send`` pair for one request, and the framing of its response."""

    __slots__ = (
        "_conn",
        "_content_length",
        "_head",
        "_held",
        "_held_size",
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
        self, scope: Scope, conn: Conn, state: ServerState, keep_alive: bool, expect_continue: bool
    ) -> None:
        self.scope = scope
        self._conn = conn
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

    # -- ASGI -------------------------------------------------------------------------------------------
    # The app's receive() and send() are coroutines of hatchway._app_task (pure Python, see why there); they
    # call these methods, which do the work and hand back the future to wait on, if any.
    def receive_waiter(self) -> asyncio.Future[None] | None:
        """receive(), first half: what it must wait for before ``receive_message``, or None."""
        if self.expect_continue and not self.disconnected and not self.response_started:
            self._send_continue()
            self.expect_continue = False
        if not self.disconnected and not self.response_complete and not self.body:
            if self.more_body:
                self._conn.resume_reading()
                self._conn.wait_for_body(self)
                return self._waiter()
            if self.final_delivered and not self.client_eof:
                # The whole body was delivered: as in uvicorn, the next receive waits for the client to go.
                return self._waiter()
        return None

    def receive_message(self) -> Message:
        """receive(), second half: the message."""
        if self.disconnected or self.response_complete or (self.client_eof and self.final_delivered):
            return {"type": "http.disconnect"}
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body.clear()
        self.body_size = 0
        more_body = self.more_body
        if not more_body:
            self.final_delivered = True
        return {"type": "http.request", "body": body, "more_body": more_body}

    def send_message(self, message: Message) -> Awaitable[None] | None:
        """send(): checks and frames ``message``; returns what to wait for (room in the write buffer), if
        anything, before ``room_made``."""
        kind = message["type"]
        if kind == "http.response.body":
            if not self.response_started or self.response_complete:
                if self.response_complete:
                    raise RuntimeError(
                        "Unexpected ASGI message 'http.response.body' sent, after response already completed."
                    )
                raise RuntimeError(
                    "Unexpected ASGI message 'http.response.body' sent, before 'http.response.start'."
                )
            if self.disconnected:
                raise ClientDisconnected("the client disconnected")
            self._write_body(message.get("body", b""), message.get("more_body", False))
            if self._conn.write_paused:
                return self._conn.write_waiter()
            return None
        if kind == "http.response.start":
            if self.response_started:
                raise RuntimeError(
                    "Unexpected ASGI message 'http.response.start' sent, after response already started."
                )
            self._start(message)
            return None
        if kind in (PATHSEND, ZEROCOPYSEND):
            return self._send_file(message, kind)
        if kind == TRAILERS:
            if not self.trailers or not self.response_started or self.response_complete:
                raise RuntimeError(
                    "Unexpected ASGI message 'http.response.trailers' sent: the response did not announce "
                    "trailers ('trailers': True in 'http.response.start'), or it is complete."
                )
            if self.disconnected:
                raise ClientDisconnected("the client disconnected")
            self._add_trailers(message)
            return None
        raise RuntimeError(f"Unexpected ASGI message {kind!r} sent for an HTTP request.")

    def room_made(self, message: Message) -> None:
        """send(), after waiting for room: a client gone meanwhile fails every body message but the last."""
        if self.disconnected and message.get("more_body", False):
            raise ClientDisconnected("the client disconnected")

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
        return self.is_head or self.status in _NO_BODY_STATUS or self.status < 200

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
            self._state.flush_soon(self._flush_pending)

    def _flush_pending(self) -> None:
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

    # -- file responses (the pathsend and zerocopysend extensions; docs/http.md) ---------------------------
    def _send_file(self, message: Message, kind: str) -> Awaitable[None] | None:
        if not self.response_started or self.response_complete:
            when = "after response already completed"
            if not self.response_complete:
                when = "before 'http.response.start'"
            raise RuntimeError(f"Unexpected ASGI message {kind!r} sent, {when}.")
        if self.disconnected:
            raise ClientDisconnected("the client disconnected")
        final = kind == PATHSEND or not message.get("more_body", False)
        try:
            fd, offset, count, close_fd, follows = open_file(message, kind)
        except BaseException:
            if self._head is not None and self._held is None:
                # Nothing has gone out: the app's error can still be answered with a 500.
                self._head = None
                self.response_started = False
                self.chunked = False
            raise
        sender = FileSender(fd, offset, count, b"", close_fd, follows)
        if (
            final
            and self._head is not None
            and self._content_length is None
            and self.status >= 200
            and self.status not in _NO_BODY_STATUS
        ):
            # No Content-Length from the app: the file's size is known, so it is given (a HEAD response gets
            # the one its GET would have) rather than chunked framing.
            self._head += b"content-length: %d\r\n" % count
            self._content_length = count
        if count <= COPY_MAX or self._no_body():
            # Small files are read and sent as one body with their head: one send(2), where sendfile(2)
            # would need two (see _http/files.py).
            try:
                data = b"" if self._no_body() else sender.read_all()
            finally:
                sender.finish()
            self._write_body(data, not final)
            return self._conn.write_waiter() if self._conn.write_paused else None
        if self.chunked:
            sender.suffix = b"\r\n0\r\n\r\n" if final else b"\r\n"
        remaining = self._content_length
        if remaining is not None:
            if count > remaining:
                logger.error("Response content longer than Content-Length; the connection is closed.")
                sender.remaining = count = remaining
                sender.abort_after = True
            elif final and count < remaining:
                logger.error("Response content shorter than Content-Length; the connection is closed.")
                sender.abort_after = True
            self._content_length = remaining - count
        head = self._finish_head(None, False) if self._head is not None else b""
        if self.chunked:
            head += b"%x\r\n" % count
        wait = self._conn.send_file(self._behind_held(head), sender)
        if wait is None:
            self.file_sent(sender, final)
            return None
        return send_file_rest(self, sender, wait, final)

    def file_sent(self, sender: FileSender, final: bool) -> None:
        """A file transfer ended (at once, or in hatchway._app_task.send_file_rest): complete the response, or
        close the connection if not all of it went out."""
        if self.record is not None:  # the access log's and the metrics' body bytes
            self.record.sent += sender.sent_total
        if not sender.finish() or sender.abort_after:
            if not self.response_complete:
                self._abort_response()
        elif final:
            self._complete()

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

    # -- running the app (the coroutine is hatchway._app_task.run_http) ------------------------------
    def app_raised(self, exc: BaseException) -> bool:
        """The app raised ``exc``: log it and answer for it; True when the task must re-raise it."""
        if isinstance(exc, ClientDisconnected):
            logger.debug("The client disconnected while the response was being sent.")
            return False
        if isinstance(exc, asyncio.CancelledError) and self.disconnected:
            return True
        self._app_failed(exc)
        return not isinstance(exc, Exception)

    def app_returned(self, result: object) -> None:
        if result is not None:
            logger.error(
                "ASGI callable should return None, but returned %r.", result, extra=self._log_extra()
            )
        if not self.response_started:
            if not self.disconnected:
                logger.error("ASGI callable returned without starting response.", extra=self._log_extra())
                self._send_500()
        elif not self.response_complete and not self.disconnected:
            logger.error("ASGI callable returned without completing response.", extra=self._log_extra())
            self._abort_response()

    def app_done(self) -> None:
        self.scope = {}  # break the cycle scope -> app references early
        if self.task is not None:
            self._state.tasks.discard(self.task)
            self.task = None

    def _app_failed(self, exc: BaseException) -> None:
        if self.disconnected and self.response_started:
            logger.debug("Exception after the client disconnected", exc_info=exc)
            return
        logger.error("Exception in ASGI application\n", exc_info=exc, extra=self._log_extra())
        if not self.response_started:
            self._send_500()
        elif not self.response_complete:
            # Part of a response is out: close, so the client sees truncation rather than success.
            self._abort_response()

    def _send_500(self) -> None:
        if self.disconnected:
            return
        self.response_started = True
        self.status = 500
        self.keep_alive = False
        self._head = None
        headers = self._state.default_headers()
        if self.record is not None:
            headers += self._state.observer.response_started(self.record, ())
        self._conn.write(plain_response(500, "Internal Server Error", headers))
        self._complete()

    def _log_extra(self) -> dict[str, Any] | None:
        """The request's id for its error lines, when it has one."""
        if self.record is not None and self.record.request_id:
            return {"request_id": self.record.request_id}
        return None
