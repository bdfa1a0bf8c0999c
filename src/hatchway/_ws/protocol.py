"""The asyncio adapter for WebSockets: websockets' sans-I/O ``ServerProtocol`` behind an ``asyncio.Protocol``.

Mechanical like the HTTP adapter: feed bytes, collect events, write what the protocol produced, act.
Framing, masking, close-code and UTF-8-in-close rules, size limits and permessage-deflate are the websockets
library's; every timer (keepalive ping, pong deadline, close deadline, send timeout) and all flow control live
here. ASGI message ordering lives in ``_ws.session``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import random
import struct
from typing import TYPE_CHECKING, Any

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeaderValue, InvalidState
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import CONNECTING, OPEN

from hatchway._app_task import run_websocket
from hatchway._errors import ClientDisconnected
from hatchway._flow import WriteFlow
from hatchway._logs import logger
from hatchway._ws.session import (
    MessageAssembler,
    Stage,
    WebSocketSession,
    default_header_pairs,
    http_response,
)
from hatchway._ws.websockets_server import ServerProtocol

if TYPE_CHECKING:
    from hatchway._config import Config
    from hatchway._http.events import RequestHead
    from hatchway._state import ServerState

__all__ = ["start_websocket", "ws_implementation_notice"]

#: Seconds to wait for the peer's half of a closing handshake before dropping TCP (websockets' default).
CLOSE_TIMEOUT = 10.0
#: Bytes held from a client that sends before its handshake is answered; reading pauses beyond this.
_EARLY_LIMIT = 65536
# The library's own messages ("connection open", parser failures) stay under its logger name.
_LIBRARY_LOGGER = logging.getLogger("websockets.server")
_TEXT, _BINARY, _CONT, _PONG, _CLOSE = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG, Opcode.CLOSE

_notice_given = False


def ws_implementation_notice(config: Config) -> None:
    """Warn once per process when ``ws`` names an implementation hatchway serves with websockets instead.

    ``--ws wsproto`` is a valid uvicorn setting, so a drop-in replacement accepts it rather than refusing to start;
    the warning says what actually serves the connections. The server may call this at start-up; the first
    WebSocket handshake calls it too.
    """
    global _notice_given
    if config.ws == "wsproto" and not _notice_given:
        _notice_given = True
        logger.warning("ws='wsproto' is served by hatchway's websockets (sans-I/O) implementation.")


def start_websocket(
    transport: asyncio.Transport,
    config: Config,
    state: ServerState,
    app: Any,
    scope: dict[str, Any],
    head: RequestHead,
    trailing_data: bytes,
) -> None:
    """Take over ``transport`` from the HTTP protocol after an upgrade request and run the ASGI app on it."""
    ws_implementation_notice(config)
    extensions = extension_factories(config)
    # The HTTP layer already parsed the handshake request, so the frame parser must start in OPEN; the state then
    # goes back to CONNECTING because the handshake response is still to be sent (send_response() expects that).
    ws = ServerProtocol(
        extensions=extensions, max_size=config.ws_max_size, logger=_LIBRARY_LOGGER, state=OPEN
    )
    ws.state = CONNECTING
    refusal = handshake_refusal(head)
    if refusal is None:
        response = ws.accept(handshake_request(head))
        if response.status_code == 400 and unsupported_version(ws.handshake_exc):
            response = upgrade_required(state)
    else:
        status, text = refusal
        response = http_response(status, default_header_pairs(state.default_headers()), text.encode())
    conn = WebSocketProtocol(config, state, ws, response, scope, trailing_data)
    transport.set_protocol(conn)
    conn.connection_made(transport)
    if response.status_code != 101:
        # An invalid handshake (bad key, version, method): websockets' own answer; the app never sees it.
        logger.debug("Invalid WebSocket handshake: %s", ws.handshake_exc)
        conn.refuse(response)
        return
    if not refused_for_capacity(conn, config, state):
        conn.start(app)


def extension_factories(config: Config) -> list[ServerPerMessageDeflateFactory]:
    """The extensions a WebSocket may negotiate: permessage-deflate unless ``ws_per_message_deflate`` is off."""
    if not config.ws_per_message_deflate:
        return []
    # websockets' own server defaults: 4 KiB windows and memLevel 5 keep per-connection zlib memory small.
    return [
        ServerPerMessageDeflateFactory(
            server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5}
        )
    ]


def refused_for_capacity(conn: WebSocketProtocol, config: Config, state: ServerState) -> bool:
    """A server shutting down or over ``limit_concurrency`` answers a new WebSocket 503; True if it did."""
    limit = config.limit_concurrency
    if state.shutting_down or (
        limit is not None and (len(state.connections) > limit or len(state.tasks) >= limit)
    ):
        if not state.shutting_down:
            logger.warning("Exceeded concurrency limit.")
        conn.refuse(http_response(503, default_header_pairs(state.default_headers()), b"Service Unavailable"))
        return True
    return False


# websockets 17 checks the method and version in accept(); 16 (the last release for Python 3.10) has neither
# field, so the same checks are made here for it.
_REQUEST_HAS_METHOD = "method" in inspect.signature(Request).parameters


def handshake_request(head: RequestHead) -> Request:
    """The parsed request head as the websockets ``Request`` that ``ServerProtocol.accept()`` checks."""
    target = head.raw_path + b"?" + head.query if head.query else head.raw_path
    headers = Headers([(name.decode("latin-1"), value.decode("latin-1")) for name, value in head.headers])
    if _REQUEST_HAS_METHOD:
        return Request(
            target.decode("latin-1"), headers, method=head.method, protocol="HTTP/" + head.http_version
        )
    return Request(target.decode("latin-1"), headers)


def unsupported_version(exc: Exception | None) -> bool:
    """websockets refused the handshake for a ``Sec-WebSocket-Version`` other than 13 (present and single:
    a missing or repeated header is a malformed request, which stays 400)."""
    return isinstance(exc, InvalidHeaderValue) and exc.name == "Sec-WebSocket-Version"


def upgrade_required(state: ServerState) -> Response:
    """RFC 6455 4.4: a version the server does not speak gets ``426 Upgrade Required`` and the version it does
    speak, so a client can retry with it (websockets answers a bare 400)."""
    headers = default_header_pairs(state.default_headers())
    headers += [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Sec-WebSocket-Version", "13"),
        # RFC 9110 15.5.22 and 7.8: a 426 names the protocol to upgrade to, and Upgrade is a connection option.
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade, close"),
    ]
    return http_response(426, headers, b"Unsupported WebSocket version: this server speaks version 13.\n")


def handshake_refusal(head: RequestHead) -> tuple[int, str] | None:
    """What websockets 17 refuses before looking at the headers (RFC 6455 4.1), for older websockets."""
    if _REQUEST_HAS_METHOD:
        return None
    if head.method != "GET":
        return 405, "Method Not Allowed"
    if head.http_version != "1.1":
        return 505, "HTTP Version Not Supported"
    return None


class WebSocketProtocol(asyncio.Protocol):
    """One upgraded connection: bytes <-> ``ServerProtocol`` <-> the ASGI session."""

    def __init__(
        self,
        config: Config,
        state: ServerState,
        ws: ServerProtocol,
        response: Response,
        scope: dict[str, Any],
        early_data: bytes,
    ) -> None:
        self.config = config
        self.state = state
        self.loop = asyncio.get_running_loop()
        self.ws = ws
        self.response = response
        self.session = WebSocketSession(self, scope, state.default_headers)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.max_queue = config.ws_max_queue
        #: Bytes received before the handshake is answered; fed to the protocol once it is OPEN.
        self.early = bytearray(early_data)
        self.handshake_done = False
        self.refused = False
        self.lost = False
        # Reading pauses for any of three reasons; it resumes only when none holds.
        self.queue_full = False
        self.reading_paused = False
        self.flow = WriteFlow(self.loop, config.timeout_send, self._on_send_timeout)
        self.assembler = MessageAssembler()
        self._failure_reported = False
        # Timers, all owned here.
        self._ping_payload: bytes | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    # -- asyncio callbacks ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state.connections.add(self)
        # The HTTP protocol may have paused reading (pipelining) before handing the transport over.
        if not transport.is_reading():  # type: ignore[attr-defined]
            transport.resume_reading()  # type: ignore[attr-defined]
        self._update_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.state.connection_closed(self)
        for timer in (self._ping_timer, self._pong_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = self._close_timer = None
        self.session.disconnected(1006)
        self.flow.close()

    def eof_received(self) -> bool | None:
        if self.handshake_done:
            self.ws.receive_eof()
            self._process()
        else:
            self.session.disconnected(1006)
        return None  # WebSocket endpoints never write after the peer's EOF: let asyncio close the transport

    def data_received(self, data: bytes) -> None:
        if not self.handshake_done:
            if not self.refused:
                self.early += data
                self._update_reading()
            return
        self.ws.receive_data(data)
        self._process()

    def pause_writing(self) -> None:
        self.flow.pause()
        self._update_reading()

    def resume_writing(self) -> None:
        self.flow.resume()
        self._update_reading()

    # -- feed, collect, write, act ----------------------------------------------------------------------
    def _process(self) -> None:
        for event in self.ws.events_received():
            if self._frame(event):  # type: ignore[arg-type]
                break
        self._flush()
        if self.ws.parser_exc is not None and not self._failure_reported:
            self._failed()
        if self._close_timer is None and self.ws.close_expected() and not self.lost:
            self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._on_close_timeout)

    def _frame(self, frame: Frame) -> bool:
        """Act on one frame; True when the connection failed and the remaining events must be dropped."""
        opcode = frame.opcode
        if opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
            try:
                message = self.assembler.feed(frame)
            except UnicodeDecodeError:
                self.ws.fail(1007, "invalid UTF-8 in a text message")  # RFC 6455 8.1
                self._failed()
                return True
            if message is not None:
                self._deliver(message)
        elif opcode is _PONG:
            if self._ping_payload is not None and bytes(frame.data) == self._ping_payload:
                self._pong_received()
        elif opcode is _CLOSE:
            close = self.ws.close_rcvd
            assert close is not None
            self.session.disconnected(close.code, close.reason)
        # PING: websockets queued the pong already.
        return False

    def _deliver(self, message: dict[str, Any]) -> None:
        session = self.session
        session.put(message)
        if len(session.inbox) >= self.max_queue and not self.queue_full:
            self.queue_full = True  # ws_max_queue: stop reading until the app catches up
            self._update_reading()

    def _failed(self) -> None:
        # The protocol failed the connection (1002, 1007, 1009, ...) or the peer vanished mid-stream (1006).
        self._failure_reported = True
        sent = self.ws.close_sent
        code = sent.code if sent is not None else 1006
        reason = sent.reason if sent is not None else ""
        logger.debug("WebSocket failed with %d: %s", code, self.ws.parser_exc or reason)
        self.session.disconnected(code, reason)

    def _flush(self) -> None:
        for data in self.ws.data_to_send():
            if self.lost:
                return
            if data:
                self.transport.write(data)
            else:  # websockets' SEND_EOF: the server closes TCP first (RFC 6455 7.1.1)
                self._close_transport()

    def _close_transport(self) -> None:
        if not self.lost:
            self.transport.close()
            if self._close_timer is None:
                self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._on_close_timeout)

    def _update_reading(self) -> None:
        if self.lost:
            return
        early_full = not self.handshake_done and len(self.early) > _EARLY_LIMIT
        pause = self.queue_full or self.flow.paused or early_full
        if pause != self.reading_paused:
            self.reading_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    # -- the WsConn interface used by the session --------------------------------------------------------
    def accept(self, subprotocol: str | None, headers: list[tuple[str, str]]) -> None:
        if self.lost or self.refused:
            raise ClientDisconnected("the client went away before the WebSocket was accepted")
        response = self.response
        defaults = default_header_pairs(self.state.default_headers())
        if any(name.lower() == "date" for name, _ in defaults):
            del response.headers["Date"]
        response.headers.update(defaults)
        if subprotocol is not None:
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
        response.headers.update(headers)
        self.ws.send_response(response)
        self.handshake_done = True
        self._flush()
        self._start_keepalive()
        early, self.early = self.early, bytearray()
        self._update_reading()
        if early:
            self.ws.receive_data(early)
            self._process()

    def refuse(self, response: Response) -> None:
        """Answer the handshake with a plain HTTP response and close."""
        if self.lost or self.refused:
            return
        self.refused = True
        self.early = bytearray()
        self.ws.send_response(response)  # ends with websockets' SEND_EOF: the transport closes after it
        self._flush()
        self._update_reading()

    def send_message(self, data: str | bytes | bytearray | memoryview) -> None:
        try:
            if isinstance(data, str):
                self.ws.send_text(data.encode())
            else:
                self.ws.send_binary(data)
        except InvalidState:  # the closing handshake began meanwhile
            raise ClientDisconnected("the WebSocket connection is closing") from None
        self._flush()

    def close(self, code: int, reason: str) -> None:
        if self.ws.state is not OPEN or self.lost:
            return
        self.ws.send_close(code, reason)
        self._flush()
        # Keep reading (even with a full queue) so the peer's close reply is seen; new messages are dropped.
        self.queue_full = False
        self._update_reading()
        if self._close_timer is None and not self.lost:
            self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._on_close_timeout)

    def message_taken(self) -> None:
        if self.queue_full and len(self.session.inbox) <= self.max_queue // 2:
            self.queue_full = False
            self._update_reading()

    def write_waiter(self) -> asyncio.Future[None] | None:
        if self.flow.paused and not self.lost:
            return self.flow.waiter()
        return None

    # -- the app task --------------------------------------------------------------------------------------
    def start(self, app: Any) -> None:
        coro = run_websocket(self.session, app)
        if self.config.reset_contextvars:
            task = contextvars.Context().run(self.loop.create_task, coro)
        else:
            task = self.loop.create_task(coro)
        self.state.tasks.add(task)
        task.add_done_callback(self.state.tasks.discard)

    # -- shutdown ------------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Graceful: an open WebSocket gets close code 1012 (service restart) and its closing handshake."""
        if self.lost:
            return
        if not self.handshake_done:
            if not self.refused and self.session.stage is Stage.HANDSHAKE:
                self.refuse(http_response(503, default_header_pairs(self.state.default_headers()), b""))
                self.session.disconnected(1012, "service restart")
            return
        if self.ws.state is OPEN:
            self.close(1012, "service restart")
            self.session.disconnected(1012, "service restart")

    def abort(self) -> None:
        if not self.lost:
            self.transport.abort()

    # -- keepalive and timers ----------------------------------------------------------------------------
    def _start_keepalive(self) -> None:
        interval = self.config.ws_ping_interval
        if interval:
            self._ping_timer = self.loop.call_later(interval, self._send_ping)

    def _send_ping(self) -> None:
        self._ping_timer = None
        if self.ws.state is not OPEN or self.lost:
            return
        # A random payload tells our pong from stale or unsolicited ones.
        self._ping_payload = struct.pack("!I", random.getrandbits(32))
        self.ws.send_ping(self._ping_payload)
        self._flush()
        timeout = self.config.ws_ping_timeout
        if timeout:
            self._pong_timer = self.loop.call_later(timeout, self._on_pong_timeout)
        else:
            self._start_keepalive()

    def _pong_received(self) -> None:
        self._ping_payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            self._start_keepalive()

    def _on_pong_timeout(self) -> None:
        self._pong_timer = None
        if self.ws.state is not OPEN or self.lost:
            return
        logger.debug("WebSocket keepalive ping timeout; closing.")
        self.ws.fail(1011, "keepalive ping timeout")
        self._flush()
        self._failed()

    def _on_close_timeout(self) -> None:
        self._close_timer = None
        logger.debug(
            "WebSocket closing handshake not completed in %ss; dropping the connection.", CLOSE_TIMEOUT
        )
        self.abort()

    def _on_send_timeout(self) -> None:
        logger.debug("WebSocket client read nothing for %ss; closing.", self.config.timeout_send)
        self.abort()
