"""WebSockets over HTTP/2 (RFC 8441): an extended CONNECT stream carries one WebSocket.

The WebSocket layer is the one HTTP/1.1 upgrades use: ``_ws.protocol.WebSocketProtocol`` (websockets' sans-I/O
frames, keepalive pings, close handshake and timers, size limits, permessage-deflate) and ``_ws.session`` (the
ASGI messages). What differs is underneath it, so this module gives it a transport made of the HTTP/2 stream
(``H2WebSocketTransport``):

- the handshake: no Sec-WebSocket-Key/Accept; ``sec-websocket-version: 13`` is checked and the extensions are
  negotiated here, and the answer is a ``:status 200`` HEADERS frame (``H2ServerProtocol.send_response``), or
  the app's or the server's refusal as an ordinary HTTP/2 response;
- bytes out go through the stream's flow control (``H2Stream.send_data``): while the client's window holds them
  back the WebSocket layer's writing is paused, as by a full socket buffer, and the app's sends wait;
- bytes in open the stream's window as the WebSocket layer takes them; while it reads nothing (``ws_max_queue``
  full, writes blocked) they are held, unacknowledged, and the client's window closes;
- the end: websockets' end of stream (after the close handshake, or a failure) is END_STREAM; the client's
  END_STREAM is the end of its data; a reset stream or a lost connection is the transport's loss (1006).

Library-independent, like ``_http.h2_connection``, which opens these streams; the backends (h2, zttp) only
report the extended CONNECT's ``:protocol``.
"""

from __future__ import annotations

import asyncio
import logging
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Final

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake
from websockets.http11 import Response
from websockets.protocol import CONNECTING, OPEN

from hatchway._ws.protocol import (
    WebSocketProtocol,
    extension_factories,
    refused_for_capacity,
    upgrade_required,
    ws_implementation_notice,
)
from hatchway._ws.scope import websocket_scope
from hatchway._ws.session import default_header_pairs, http_response
from hatchway._ws.websockets_server import ServerProtocol

if TYPE_CHECKING:
    from hatchway._http.h2_stream import H2Stream

__all__ = ["H2ServerProtocol", "H2WebSocketTransport", "open_websocket"]

_LIBRARY_LOGGER = logging.getLogger("websockets.server")
_NO_ERROR: Final = 0x0
_CANCEL: Final = 0x8
# RFC 9113 8.2.2: connection-specific fields are not sent over HTTP/2 (websockets' refusals carry some).
_CONNECTION_SPECIFIC: Final = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)


def open_websocket(stream: H2Stream, http_scope: dict[str, Any], app: Any) -> None:
    """Serve the WebSocket that an extended CONNECT opened on ``stream``: its scope is ``http_scope``'s."""
    conn = stream.conn
    config, state = conn.config, conn.state
    ws_implementation_notice(config)
    scope = websocket_scope(http_scope)
    transport = H2WebSocketTransport(stream)
    # As over HTTP/1.1 (_ws.protocol.start_websocket): the frame parser starts in OPEN, then the state goes
    # back to CONNECTING until the app accepts.
    ws = H2ServerProtocol(
        transport,
        extensions=extension_factories(config),
        max_size=config.ws_max_size,
        logger=_LIBRARY_LOGGER,
        state=OPEN,
    )
    ws.state = CONNECTING
    response = _handshake(ws, scope["headers"], state.default_headers())
    if response.status_code == 426:
        response = upgrade_required(state)
    protocol = WebSocketProtocol(config, state, ws, response, scope, b"")
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    if response.status_code != 200:
        _LIBRARY_LOGGER.debug("Invalid WebSocket request over HTTP/2: %s", ws.handshake_exc)
        protocol.refuse(response)
    elif not refused_for_capacity(protocol, config, state):
        protocol.start(app)


def _handshake(ws: H2ServerProtocol, fields: list[tuple[bytes, bytes]], defaults: bytes) -> Response:
    """RFC 8441 5: the request's ``sec-websocket-version`` must be 13; the extensions are negotiated as over
    HTTP/1.1. The response to send if the app accepts (``:status 200``), or the refusal."""
    headers = Headers([(name.decode("latin-1"), value.decode("latin-1")) for name, value in fields])
    versions = headers.get_all("Sec-WebSocket-Version")
    if versions != ["13"]:
        ws.handshake_exc = InvalidHandshake(f"Sec-WebSocket-Version: {versions!r}")
        if len(versions) == 1:
            return Response(426, "Upgrade Required", Headers())  # the caller answers it as over HTTP/1.1
        text = b"Failed to open a WebSocket connection: one Sec-WebSocket-Version: 13 is required.\n"
        return http_response(400, default_header_pairs(defaults), text)
    try:
        extensions_header, ws.extensions = ws.process_extensions(headers)
    except InvalidHandshake as exc:
        ws.handshake_exc = exc
        text = f"Failed to open a WebSocket connection: {exc}.\n".encode()
        return http_response(400, default_header_pairs(defaults), text)
    # The headers websockets' accept() starts from, less those of HTTP/1.1's upgrade (Upgrade, Connection,
    # Sec-WebSocket-Accept); WebSocketProtocol.accept adds the server's and the app's.
    response = Response(200, "OK", Headers([("Date", formatdate(usegmt=True))]))
    if extensions_header is not None:
        response.headers["Sec-WebSocket-Extensions"] = extensions_header
    return response


class H2ServerProtocol(ServerProtocol):
    """hatchway's websockets ``ServerProtocol`` whose handshake response is an HTTP/2 response on the stream,
    not HTTP/1.1 bytes: 2xx opens the WebSocket (RFC 8441 5), anything else refuses it."""

    def __init__(self, transport: H2WebSocketTransport, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.h2_transport = transport

    def send_response(self, response: Response) -> None:
        self.h2_transport.respond(response)
        if 200 <= response.status_code < 300:
            self.state = OPEN
            return
        # Refused: as websockets does for a refusal over HTTP/1.1, the end of the stream follows.
        self.send_eof()
        self.parser = self.discard()
        next(self.parser)


class H2WebSocketTransport(asyncio.Transport):
    """One HTTP/2 stream as the transport of a ``WebSocketProtocol``: asyncio's transport calls become frames
    on the stream, and the stream's events become the protocol's callbacks."""

    def __init__(self, stream: H2Stream) -> None:
        super().__init__()
        self.stream = stream
        self.conn = stream.conn
        self.stream_id = stream.stream_id
        self.loop = stream.conn.loop
        self.protocol: WebSocketProtocol | None = None
        self.reading = True
        #: Bytes the client sent while reading was paused: neither delivered nor acknowledged yet.
        self.held = bytearray()
        self.eof_held = False
        self.write_paused = False
        self.local_ended = False  # END_STREAM queued (it may still wait for the window)
        self.remote_ended = False  # the client's END_STREAM arrived
        self.responded = False  # the handshake's answer went out
        self.gone = False
        stream.ws = self

    # -- asyncio.Transport, as WebSocketProtocol uses it ------------------------------------------------------
    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, WebSocketProtocol)
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.conn.transport.get_extra_info(name, default)

    def is_reading(self) -> bool:
        return self.reading

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        if self.reading:
            return
        self.reading = True
        if self.held and not self.gone:
            data, self.held = bytes(self.held), bytearray()
            self._deliver(data)
        if self.eof_held and self.reading:
            self.eof_held = False
            self._eof()

    def is_closing(self) -> bool:
        return self.local_ended or self.gone

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if data and not self.local_ended and not self.gone:
            self.stream.send_data(bytes(data), False)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.close()

    def close(self) -> None:
        """websockets' end of stream (the server's half of the closing handshake, or a refusal): END_STREAM."""
        if self.gone:
            return
        if not self.responded:
            # The client ended its side before the app answered: nothing to end the stream after.
            self.conn.websocket_done(self.stream_id, _CANCEL)
            return
        if not self.local_ended:
            self.local_ended = True
            self.stream.send_data(b"", True)
        self._maybe_done()

    def abort(self) -> None:
        if not self.gone:
            self.conn.reset(self.stream_id, cancel=True)  # the stream's loss comes back through lost()

    def get_write_buffer_size(self) -> int:
        return len(self.stream.pending)

    # -- the respond half of the handshake (H2ServerProtocol) ----------------------------------------------------
    def respond(self, response: Response) -> None:
        """The handshake's answer as HTTP/2 HEADERS (and, for a refusal, its body), names in lower case."""
        if self.gone:
            return
        self.responded = True
        status = response.status_code
        fields = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in response.headers.raw_items()
            if name.lower() not in _CONNECTION_SPECIFIC
        ]
        if 200 <= status < 300:
            self.stream.send_headers(status, fields, False)
            return
        body = bytes(response.body or b"")
        self.local_ended = True
        self.stream.send_headers(status, fields, not body)
        if body:
            self.stream.send_data(body, True)

    # -- what the HTTP/2 connection and the stream report ----------------------------------------------------
    def data_received(self, data: bytes) -> None:
        """DATA from the client: WebSocket frames, delivered (and their window opened) as the layer reads."""
        if self.gone:
            return
        if not self.reading:
            self.held += data
            return
        self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        # Acknowledged first: the WebSocket layer takes it all now, and it may end the stream while it does.
        self.conn.consumed(self.stream_id, len(data))
        assert self.protocol is not None
        self.protocol.data_received(data)

    @property
    def held_size(self) -> int:
        return len(self.held)

    def eof_received(self) -> None:
        """The client's END_STREAM: the end of its WebSocket data (after what is held)."""
        if self.gone or self.remote_ended:
            return
        self.remote_ended = True
        if not self.reading and self.held:
            self.eof_held = True
            return
        self._eof()

    def _eof(self) -> None:
        assert self.protocol is not None
        self.protocol.eof_received()
        # WebSocketProtocol.eof_received keeps nothing open (it returns None): the transport closes, as asyncio's.
        self.close()

    def sent_all(self) -> None:
        """Everything queued on the stream went out (the connection says so when the window let it)."""
        if self.local_ended:
            self._maybe_done()

    def pause_writing(self) -> None:
        """The client's window holds the stream's bytes back."""
        if not self.write_paused and not self.gone:
            self.write_paused = True
            assert self.protocol is not None
            self.protocol.pause_writing()

    def resume_writing(self) -> None:
        if self.write_paused:
            self.write_paused = False
            if not self.gone and self.protocol is not None:
                self.protocol.resume_writing()

    def lost(self) -> None:
        """The stream is over: reset by either side, both sides ended it, or the connection is gone."""
        if self.gone:
            return
        self.gone = True
        if self.held and not self.conn.closed:
            self.conn.ack(self.stream_id, len(self.held))  # never to be read: the connection's window opens
        self.held = bytearray()
        self.write_paused = False
        if self.protocol is not None:
            # As asyncio does, in a callback of its own (close() or abort() may run inside the protocol).
            self.loop.call_soon(self.protocol.connection_lost, None)

    def _maybe_done(self) -> None:
        if self.gone or not self.local_ended or self.conn.sending(self.stream):
            return
        # Our END_STREAM is out. Where websockets ends the stream, over HTTP/1.1 the server closes TCP without
        # waiting for the client's FIN (after the closing handshake, a failure or a refusal): here the stream is
        # done with at once. A client that has not ended its side is told it need send no more (RFC 9113 8.1:
        # RST_STREAM with NO_ERROR after a complete response); browsers leave it open otherwise.
        self.conn.websocket_done(self.stream_id, None if self.remote_ended else _NO_ERROR)
