"""One request/response cycle as the app sees it: ASGI receive/send ordering, file responses, the app's outcome.

``Cycle`` adds these to ``exchange.Exchange``, which holds the request's state and the HTTP/1.1 framing of the
response; ``H2Cycle`` (``h2_stream.py``) subclasses it for HTTP/2 streams. No transport: the cycle talks to its
connection through ``Conn``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from hatchway._app_task import send_file_rest
from hatchway._errors import ClientDisconnected
from hatchway._http.events import TRAILERS
from hatchway._http.exchange import HIGH_WATER, NO_BODY_STATUS, Conn, Exchange, Message, Scope
from hatchway._http.files import COPY_MAX, PATHSEND, ZEROCOPYSEND, FileSender, open_file
from hatchway._http.wire import INVALID_HEADER_NAME, INVALID_HEADER_VALUE, plain_response, reason_phrase
from hatchway._logs import logger

# Re-exported: the WebSocket handshake imports the header checks from here, the connections HIGH_WATER, the
# HTTP/2 cycle Message and Scope.
__all__ = [
    "HIGH_WATER",
    "INVALID_HEADER_NAME",
    "INVALID_HEADER_VALUE",
    "Conn",
    "Cycle",
    "Message",
    "Scope",
    "reason_phrase",
]


class Cycle(Exchange):
    """The ASGI ``receive``/``send`` pair for one request, and the framing of its response."""

    __slots__ = ()

    # -- ASGI -------------------------------------------------------------------------------------------
    # The app's receive() and send() are coroutines of hatchway._http.channel (see there how they wait); they
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
            io = self._io
            if io.write_paused if io is not None else self._conn.write_paused:
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
            and self.status not in NO_BODY_STATUS
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
