"""ASGI WebSocket messages for one upgraded connection: the app's receive/send, ordered by a small state table.

The session knows nothing of sockets or frames. It talks to its connection (``_ws.protocol.WebSocketProtocol``)
through the ``WsConn`` interface below, so the message rules can be read, and tested, on their own.
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Response

from hatchway._errors import ClientDisconnected
from hatchway._http.cycle import INVALID_HEADER_NAME, INVALID_HEADER_VALUE, reason_phrase
from hatchway._logs import escape, logger

Message = dict[str, Any]

_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class Stage(enum.Enum):
    """Where the application is in the ASGI WebSocket exchange."""

    HANDSHAKE = "handshake"  # websocket.connect delivered; waiting for accept, close or a denial response
    RESPONSE = "response"  # websocket.http.response.start sent; the body is still coming
    OPEN = "open"  # accepted: messages flow both ways
    CLOSED = "closed"  # the app closed, its denial response is complete, or the server closed first


class WsConn(Protocol):
    """What a session needs from its connection."""

    loop: asyncio.AbstractEventLoop

    def accept(self, subprotocol: str | None, headers: list[tuple[str, str]]) -> None: ...
    def refuse(self, response: Response) -> None: ...
    def send_message(self, data: str | bytes | bytearray | memoryview) -> None: ...
    def close(self, code: int, reason: str) -> None: ...
    def message_taken(self) -> None: ...
    def write_waiter(self) -> Awaitable[None] | None: ...


def default_header_pairs(raw: bytes) -> list[tuple[str, str]]:
    """``ServerState.default_headers()`` bytes as (name, value) pairs for a websockets ``Headers``."""
    pairs = []
    for line in raw.decode("latin-1").split("\r\n"):
        if line:
            name, _, value = line.partition(": ")
            pairs.append((name, value))
    return pairs


def http_response(status: int, headers: list[tuple[str, str]], body: bytes) -> Response:
    """A complete HTTP response for the handshake; the connection closes after it."""
    response = Response(status, reason_phrase(status), Headers(headers), body)
    names = {name.lower() for name, _ in headers}
    if "content-length" not in names and "transfer-encoding" not in names:
        response.headers["Content-Length"] = str(len(body))
    if "connection" not in names:
        response.headers["Connection"] = "close"
    return response


def _app_headers(raw: Any) -> list[tuple[str, str]]:
    headers = []
    for name, value in raw or ():
        name, value = bytes(name), bytes(value)
        if not name or INVALID_HEADER_NAME.search(name) or INVALID_HEADER_VALUE.search(value):
            raise RuntimeError(f"Invalid HTTP header in WebSocket response: {name!r}: {value!r}.")
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    return headers


def _data(message: Message) -> str | bytes | bytearray | memoryview:
    """The payload of a ``websocket.send`` message, checked."""
    data = message.get("bytes")
    if data is None:
        data = message.get("text")
        if not isinstance(data, str):
            raise RuntimeError("websocket.send needs 'bytes' or 'text' (not None).")
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise RuntimeError(f"websocket.send 'bytes' must be bytes, got {type(data).__name__}.")
    return data


class MessageAssembler:
    """Data frames in, ``websocket.receive`` messages out (sans-I/O); websockets has checked the framing."""

    __slots__ = ("_decoder", "_parts")

    def __init__(self) -> None:
        # An incoming fragmented message: its parts, and the UTF-8 decoder when it is text.
        self._parts: list[Any] = []
        self._decoder: codecs.IncrementalDecoder | None = None

    def feed(self, frame: Frame) -> Message | None:
        """The message ``frame`` completes, or None. Raises UnicodeDecodeError for invalid text (close 1007)."""
        opcode = frame.opcode
        if opcode is not Opcode.CONT:
            if frame.fin:  # the common case: a whole message in one frame
                if opcode is Opcode.BINARY:
                    return {"type": "websocket.receive", "bytes": bytes(frame.data)}
                return {"type": "websocket.receive", "text": str(frame.data, "utf-8")}
            self._decoder = _utf8_decoder() if opcode is Opcode.TEXT else None
            self._parts = []
        decoder = self._decoder
        if decoder is not None:
            # Decode as the fragments arrive, so invalid UTF-8 fails the connection at once (Autobahn 6.4.x).
            self._parts.append(decoder.decode(frame.data, frame.fin))
        else:
            self._parts.append(frame.data)
        if not frame.fin:
            return None
        parts, self._parts = self._parts, []
        if decoder is not None:
            return {"type": "websocket.receive", "text": "".join(parts)}
        return {"type": "websocket.receive", "bytes": b"".join(parts)}


class WebSocketSession:
    """The ASGI side of one WebSocket: a bounded inbox for ``receive`` and the ordering rules of ``send``."""

    def __init__(self, conn: WsConn, scope: dict[str, Any], default_headers: Callable[[], bytes]) -> None:
        self.conn = conn
        self.scope = scope
        self.default_headers = default_headers
        self.stage = Stage.HANDSHAKE
        self.inbox: deque[Message] = deque([{"type": "websocket.connect"}])
        self._waiter: asyncio.Future[None] | None = None
        #: The disconnect message once delivered; ``receive`` repeats it after the inbox is empty.
        self.final: Message | None = None
        #: True once the peer or the server ended the connection (sends then raise ClientDisconnected).
        self.gone = False
        self.closed_by_app = False
        self._response: tuple[int, list[tuple[str, str]]] | None = None
        self._body: list[bytes] = []

    # -- called by the connection ---------------------------------------------------------------------
    def put(self, message: Message) -> None:
        """A complete incoming message. Dropped once the app has closed: only the peer's close reply matters then."""
        if self.stage is Stage.CLOSED:
            return
        self.inbox.append(message)
        self._wake()

    def disconnected(self, code: int, reason: str = "") -> None:
        """The connection ended (peer close, failure, server close or TCP loss); the first call wins."""
        if self.final is not None:
            return
        self.gone = True
        self.final = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self.inbox.append(self.final)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- the ASGI callables ----------------------------------------------------------------------------
    # The app's receive() and send() are coroutines of hatchway._app_task (pure Python, see why there); they
    # call these methods, which do the work and hand back the future to wait on, if any.
    def take(self) -> Message | None:
        """receive(): the next message, or None when it must wait (``waiter``) and ask again."""
        if not self.inbox:
            return self.final
        message = self.inbox.popleft()
        self.conn.message_taken()
        return message

    def waiter(self) -> asyncio.Future[None]:
        if self._waiter is None:
            self._waiter = self.conn.loop.create_future()
        return self._waiter

    def send_message(self, message: Message) -> Awaitable[None] | None:
        """send(): checks and acts on ``message``; returns what to wait for (room in the write buffer), if
        anything, before ``room_made``."""
        kind = message["type"]
        handler = _SEND.get((self.stage, kind))
        if handler is None:
            if self.gone and not self.closed_by_app:
                if kind == "websocket.close":
                    return None  # closing an already-closed connection is a no-op
                if kind == "websocket.send":
                    raise ClientDisconnected("the WebSocket connection is closed")
            raise RuntimeError(f"Unexpected ASGI message {kind!r}: {_EXPECTED[self.stage]}.")
        return handler(self, message)

    def room_made(self, message: Message) -> None:
        """send() of a ``websocket.send`` that had to wait for room: the message goes out now."""
        if self.gone:  # the peer left while the app waited for room in the write buffer
            raise ClientDisconnected("the WebSocket connection is closed")
        self.conn.send_message(_data(message))

    # -- send handlers, one per (stage, message type) -------------------------------------------------
    def _accept(self, message: Message) -> None:
        if self.gone:
            raise ClientDisconnected("the client went away before the WebSocket was accepted")
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and not isinstance(subprotocol, str):
            raise RuntimeError(f"websocket.accept 'subprotocol' must be a str or None, got {subprotocol!r}.")
        headers = _app_headers(message.get("headers"))
        self.stage = Stage.OPEN
        self.conn.accept(subprotocol, headers)
        self._log("[accepted]")

    def _close_before_accept(self, message: Message) -> None:
        self.closed_by_app = True
        self._refuse_403()

    def _response_start(self, message: Message) -> None:
        status = message.get("status")
        if not isinstance(status, int) or not 100 <= status < 600:
            raise RuntimeError(f"Invalid HTTP status code {status!r} in websocket.http.response.start.")
        self._response = (status, _app_headers(message.get("headers")))
        self.stage = Stage.RESPONSE

    def _response_body(self, message: Message) -> None:
        body = message.get("body", b"")
        if body:
            self._body.append(bytes(body))
        if message.get("more_body", False):
            return
        assert self._response is not None
        status, headers = self._response
        self.stage = Stage.CLOSED
        self.closed_by_app = True
        if not self.gone:
            names = {name.lower() for name, _ in headers}
            defaults = [
                (k, v) for k, v in default_header_pairs(self.default_headers()) if k.lower() not in names
            ]
            self.conn.refuse(http_response(status, defaults + headers, b"".join(self._body)))
            self._log(str(status))
        self._body = []
        self.disconnected(1006)

    def _send_data(self, message: Message) -> Awaitable[None] | None:
        if self.gone:
            raise ClientDisconnected("the WebSocket connection is closed")
        data = _data(message)
        waiter = self.conn.write_waiter()
        if waiter is not None:
            return waiter  # room_made() sends it
        self.conn.send_message(data)
        return None

    def _close(self, message: Message) -> None:
        code = message.get("code", 1000)
        reason = message.get("reason") or ""
        if not isinstance(code, int) or not (code in _APP_CLOSE_CODES or 3000 <= code < 5000):
            raise RuntimeError(
                f"Invalid WebSocket close code {code!r}; expected 1000-1014 (not 1004-1006) or 3000-4999."
            )
        if len(reason.encode("utf-8")) > 123:
            raise RuntimeError(
                "WebSocket close reason is longer than 123 bytes (RFC 6455 5.5: 125-byte control frames)."
            )
        self.stage = Stage.CLOSED
        self.closed_by_app = True
        if self.gone:
            return  # closing an already-closed connection is a no-op
        self.conn.close(code, reason)
        self.disconnected(code, reason)

    # -- running the app (the coroutine is hatchway._app_task.run_websocket) ---------------------------
    def app_raised(self, exc: BaseException) -> bool:
        """The app raised ``exc``: log it and answer for it; True when the task must re-raise it."""
        if isinstance(exc, ClientDisconnected):
            logger.debug("The WebSocket client disconnected while the app was sending.")
            return False
        if isinstance(exc, asyncio.CancelledError) and self.gone:
            return True
        self._app_failed(exc)
        return not isinstance(exc, Exception)

    def app_returned(self, result: object) -> None:
        if result is not None:
            logger.error("ASGI callable should return None, but returned %r.", result)
        self._app_returned()

    def _app_failed(self, exc: BaseException) -> None:
        # Logged with its traceback even when the client has already gone, as uvicorn does: the exception is
        # the app's, whoever ended the connection (only ClientDisconnected, from send, is not logged).
        logger.error("Exception in ASGI application\n", exc_info=exc)
        if self.stage in (Stage.HANDSHAKE, Stage.RESPONSE):
            self.stage = Stage.CLOSED
            if not self.gone:
                self.conn.refuse(
                    http_response(500, default_header_pairs(self.default_headers()), b"Internal Server Error")
                )
                self._log("500")
        elif self.stage is Stage.OPEN:
            self.stage = Stage.CLOSED
            if not self.gone:
                self.conn.close(1011, "")
        self.disconnected(1011)

    def _app_returned(self) -> None:
        stage = self.stage
        if stage is Stage.OPEN:
            # Returning is the end of the conversation: say so with a normal closure rather than a dropped socket.
            self.stage = Stage.CLOSED
            if not self.gone:
                self.conn.close(1000, "")
            self.disconnected(1000)
        elif stage is Stage.HANDSHAKE:
            if not self.gone:
                logger.warning("ASGI callable returned without accepting the WebSocket; answered 403.")
            self._refuse_403()
        elif stage is Stage.RESPONSE:
            logger.error("ASGI callable returned without completing the WebSocket denial response.")
            self.stage = Stage.CLOSED
            if not self.gone:
                self.conn.refuse(
                    http_response(500, default_header_pairs(self.default_headers()), b"Internal Server Error")
                )
            self.disconnected(1006)

    def _refuse_403(self) -> None:
        # ASGI: closing before accepting rejects the handshake with 403 (RFC 6455 4.2.2 allows any HTTP error).
        self.stage = Stage.CLOSED
        if not self.gone:
            self.conn.refuse(http_response(403, default_header_pairs(self.default_headers()), b""))
            self._log("403")
        self.disconnected(1006)

    def _log(self, outcome: str) -> None:
        # uvicorn's line, on the error logger as uvicorn does; formatted only when INFO is enabled.
        if not logger.isEnabledFor(logging.INFO):
            return
        scope = self.scope
        client = scope.get("client")
        path = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode("latin-1")
        addr = f"{client[0]}:{client[1]}" if client else "-"
        logger.info('%s - "WebSocket %s" %s', escape(addr), escape(path), outcome)


# 1004-1006 and 1015 are reserved and must never be sent in a close frame (RFC 6455 7.4.1).
_APP_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})

_Handler = Callable[[WebSocketSession, Message], Awaitable[None] | None]
_SEND: dict[tuple[Stage, str], _Handler] = {
    (Stage.HANDSHAKE, "websocket.accept"): WebSocketSession._accept,
    (Stage.HANDSHAKE, "websocket.close"): WebSocketSession._close_before_accept,
    (Stage.HANDSHAKE, "websocket.http.response.start"): WebSocketSession._response_start,
    (Stage.RESPONSE, "websocket.http.response.body"): WebSocketSession._response_body,
    (Stage.OPEN, "websocket.send"): WebSocketSession._send_data,
    (Stage.OPEN, "websocket.close"): WebSocketSession._close,
}
_EXPECTED = {
    Stage.HANDSHAKE: "expected 'websocket.accept', 'websocket.close' or 'websocket.http.response.start'",
    Stage.RESPONSE: "expected 'websocket.http.response.body'",
    Stage.OPEN: "expected 'websocket.send' or 'websocket.close'",
    Stage.CLOSED: "the WebSocket is closed ('websocket.close' or the response was already sent)",
}
