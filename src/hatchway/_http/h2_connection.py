"""What every HTTP/2 connection does whatever library parses its frames: streams to cycles, the flood budgets,
idle and graceful shutdown, and when the client's windows let a stream's body go out.

A backend (``h2.H2Backend`` over the h2 library, ``h2_zttp.ZttpBackend`` over zttp) turns bytes into calls on
this class (``open_request``, ``data_for``, ``request_end``, ``stream_reset``, ``control``) and implements the
few frame operations at the bottom. ``new_connection`` picks the backend from the configuration.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from hatchway._http.events import RequestHead, split_target
from hatchway._http.h2_stream import H2Cycle, H2Stream, Headers, h2_scope_extensions
from hatchway._logs import logger

if TYPE_CHECKING:
    from hatchway._config import Config
    from hatchway._http.protocol import HttpProtocol
    from hatchway._state import ServerState

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# RFC 9113 7: the error codes this module sends itself.
NO_ERROR: Final = 0x0
PROTOCOL_ERROR: Final = 0x1
INTERNAL_ERROR: Final = 0x2
REFUSED_STREAM: Final = 0x7
CANCEL: Final = 0x8
ENHANCE_YOUR_CALM: Final = 0xB
# Bytes the client leaves unread before the connection stops reading its frames.
WRITE_LIMIT: Final = 1 << 20
# The HTTP/1.1 fields of an upgrade request that mean nothing once it is an HTTP/2 stream.
_UPGRADE_FIELDS: Final = frozenset({b"connection", b"upgrade", b"http2-settings"})


def new_connection(proto: HttpProtocol, config: Config, state: ServerState) -> H2Connection:
    """The HTTP/2 side of ``proto``: over zttp when ``http="zttp"`` chose it (and it is installed), else h2."""
    if config.http == "zttp":
        try:
            from hatchway._http.h2_zttp import ZttpBackend  # an optional dependency
        except ImportError:
            pass
        else:
            return ZttpBackend(proto, config, state)
    from hatchway._http.h2 import H2Backend  # imported with the first HTTP/2 connection: most never have one

    return H2Backend(proto, config, state)


def _head(
    method: str,
    target: bytes,
    fields: list[tuple[bytes, bytes]],
    authority: bytes | None,
    upgrade: bytes | None,
) -> RequestHead:
    """A stream's request as the HTTP/1.1 codecs report one, for the shared scope builder."""
    expect_continue = False
    has_host = False
    for name, value in fields:
        if name == b"host":
            has_host = True
        elif name == b"expect" and value.lower() == b"100-continue":
            expect_continue = True
    if authority and not has_host:
        # RFC 9113 8.3.1: :authority stands in for Host; ASGI apps read the host header. (A Host naming another
        # authority makes the request malformed: both libraries refuse it first; tests/test_http2.py checks.)
        fields.insert(0, (b"host", authority))
    raw_path, query = split_target(target)
    return RequestHead(
        method, raw_path, query, "2", fields, True, upgrade, expect_continue and upgrade is None
    )


class Budget:
    """Events of one kind allowed per second on a connection (resets, control frames)."""

    __slots__ = ("count", "limit", "start")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.start = 0.0

    def spend(self, now: float) -> bool:
        """Count one; False once the second's budget is exceeded."""
        if now - self.start >= 1.0:
            self.start = now
            self.count = 0
        self.count += 1
        return self.count <= self.limit


class H2Connection:
    """One HTTP/2 connection: its streams, their cycles, and the flood limits (the library-independent part)."""

    def __init__(self, proto: HttpProtocol, config: Config, state: ServerState) -> None:
        self.proto = proto
        self.config = config
        self.state = state
        self.loop: asyncio.AbstractEventLoop = proto.loop
        self.transport: asyncio.Transport = proto.transport
        self.send_timeout = config.timeout_send
        self.streams: dict[int, H2Stream] = {}
        self.resets = Budget(config.h2_max_resets_per_second)
        self.controls = Budget(config.h2_max_control_frames_per_second)
        self.closed = False
        self.goaway_sent = False
        self._flush_scheduled = False
        self._idle: asyncio.TimerHandle | None = None

    # -- start --------------------------------------------------------------------------------------------
    def start(self, data: bytes) -> None:
        """The connection speaks HTTP/2 from ``data`` on (the client's preface first)."""
        self.initiate()
        self.flush()
        self._arm_idle(self.config.timeout_request_header)
        if data:
            self.data_received(data)

    def start_upgraded(self, settings: bytes, head: RequestHead, rest: bytes) -> None:
        """``Upgrade: h2c`` (RFC 7540 3.2): the request that asked becomes stream 1, answered over HTTP/2."""
        head.http_version = "2"
        head.headers = [(n, v) for n, v in head.headers if n not in _UPGRADE_FIELDS]
        reported = self.initiate_upgraded(settings, head)
        self.flush()
        if not reported:
            self._open_stream(1, head, ended=True)
        if rest:
            self.data_received(rest)

    # -- what the backend reports -----------------------------------------------------------------------------
    def after_input(self) -> None:
        """The backend fed one read's frames: send what they made, and stop reading a client that reads nothing
        of it (PING and SETTINGS acknowledgements, responses)."""
        self.flush()
        if self.transport.get_write_buffer_size() > WRITE_LIMIT:
            self.proto.pause_reading()

    def control(self) -> None:
        """A frame that carries no request data (PING, SETTINGS, PRIORITY, WINDOW_UPDATE, empty DATA)."""
        if not self.controls.spend(self.loop.time()) and not self.closed:
            logger.warning("HTTP/2 client %s sent too many control frames; closing.", self.proto.peer_text())
            self.terminate(ENHANCE_YOUR_CALM)

    def open_request(
        self,
        stream_id: int,
        method: bytes,
        target: bytes,
        fields: list[tuple[bytes, bytes]],
        authority: bytes | None,
        protocol: bytes | None,
        ended: bool,
    ) -> None:
        """A request's header block: ``fields`` without pseudo-headers, as the library checked them."""
        if self.goaway_sent or len(self.streams) >= self.config.h2_max_concurrent_streams:
            # After GOAWAY, or past the advertised limit (RFC 9113 5.1.2): this stream is refused, the others go on.
            # Refusals count as resets: opening streams past the limit in bulk is the rapid-reset pattern too.
            self.refuse(stream_id)
            self._count_reset("opened too many refused streams")
            return
        if protocol is not None or method == b"CONNECT":
            websockets = self.proto.websockets
            if protocol == b"websocket" and method == b"CONNECT" and websockets is not None:
                # RFC 8441: the stream carries one WebSocket.
                self._busy()
                stream = H2Stream(self, stream_id)
                self.streams[stream_id] = stream
                head = _head("CONNECT", target, fields, authority, b"websocket")
                websockets.over_h2(stream, self.proto.http_scope(head), self.proto.app)
                if ended:
                    self.request_end(stream_id)
            else:
                # Plain CONNECT (a tunnel) and extended CONNECT for another protocol are not served.
                self.respond_bare(stream_id, 501)
            return
        self._open_stream(
            stream_id, _head(method.decode("ascii", "replace"), target, fields, authority, None), ended
        )

    def _open_stream(self, stream_id: int, head: RequestHead, ended: bool) -> None:
        self._busy()
        stream = H2Stream(self, stream_id)
        scope = self.proto.http_scope(head)
        scope["extensions"] = h2_scope_extensions()
        cycle = H2Cycle(scope, stream, self.state, head.expect_continue)
        stream.cycle = cycle
        self.streams[stream_id] = stream
        if self.state.observer is not None:
            self.state.observer.request_began(cycle, self.proto.use_proxy)
        if ended:
            cycle.request_ended()
        self.proto.start_cycle(cycle)

    def websocket_done(self, stream_id: int, reset: int | None) -> None:
        """A WebSocket stream is over: both sides have ended it, or the server resets it with ``reset``."""
        if stream_id not in self.streams:
            return
        if reset is not None and not self.closed:
            self.send_reset(stream_id, reset)
            self.flush_soon()
        self.forget(stream_id, cancel_app=False)

    def _busy(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def data_for(self, stream_id: int, data: bytes, size: int, ended: bool) -> None:
        """DATA for ``stream_id``: ``data`` for the app, ``size`` the bytes it took of the windows."""
        stream = self.streams.get(stream_id)
        ws = cycle = None
        if stream is not None:
            ws, cycle = stream.ws, stream.cycle
        if stream is None or (ws is None and (cycle is None or cycle.response_complete)):
            # Nobody will read it (the response is complete or the stream is gone): the window opens at once.
            if size:
                self.ack(stream_id, size)
            return
        if not data and not ended:
            self.control()  # an empty DATA frame carries nothing but cost
        if size > len(data):
            self.ack(stream_id, size - len(data))  # padding is nobody's to read
        if data:
            if ws is not None:
                ws.data_received(data)  # WebSocket frames: the window opens as the WebSocket layer takes them
            elif cycle is not None:
                stream.body_arrived()
                cycle.body_received(data)

    def request_end(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if stream.ws is not None:
            stream.ws.eof_received()
        elif stream.cycle is not None:
            stream.body_arrived()
            stream.cycle.request_ended()

    def stream_reset(self, stream_id: int) -> None:
        """The client reset ``stream_id`` (or the library refused it): counted towards the rapid-reset limit."""
        self.forget(stream_id)
        if self._count_reset("reset too many streams"):
            self.control()

    def _count_reset(self, what: str) -> bool:
        """One more stream reset or refused (the rapid-reset budget); False when it ended the connection."""
        if self.resets.spend(self.loop.time()):
            return True
        logger.warning("HTTP/2 client %s %s; closing.", self.proto.peer_text(), what)
        self.terminate(ENHANCE_YOUR_CALM)
        return False

    def forget(self, stream_id: int, cancel_app: bool = True) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            cycle = stream.cycle
            if cycle is not None and not self.closed:
                self._release_body(stream_id, cycle)
            stream.lost()
            # The app's work for a stream the client gave up is cancelled (rapid reset costs no app time); when
            # the server gives up (a timeout), the app learns it as over HTTP/1.1, from http.disconnect.
            if cancel_app and cycle is not None and cycle.task is not None and not cycle.response_complete:
                cycle.task.cancel()
            self._maybe_idle()

    # -- what streams ask ----------------------------------------------------------------------------------
    def consumed(self, stream_id: int, size: int) -> None:
        if not self.closed and stream_id in self.streams:
            self.ack(stream_id, size)

    def reset(self, stream_id: int, cancel: bool) -> None:
        """The server gives up on a stream (the app failed mid-response, or the client opens no window)."""
        if self.closed or stream_id not in self.streams:
            return
        self.send_reset(stream_id, CANCEL if cancel else INTERNAL_ERROR)
        self.flush_soon()
        self.forget(stream_id, cancel_app=False)

    def stream_done(self, stream: H2Stream) -> None:
        """The response of ``stream`` is complete (its last bytes may still wait for a window)."""
        self.state.count_request()
        sid = stream.stream_id
        cycle = stream.cycle
        if cycle is not None and sid in self.streams and not self.closed:
            # Body bytes the app did not read hold the connection's window: released (else a connection whose
            # apps answer without reading would, upload by upload, stall for good).
            self._release_body(sid, cycle)
            if not cycle.request_complete and not self.sending(stream):
                # RFC 9113 8.1: a complete response before the whole request: the client may stop sending.
                self.send_reset(sid, NO_ERROR)
        if not self.sending(stream):
            self.streams.pop(sid, None)
            self._maybe_idle()
        self.flush_soon()

    def _release_body(self, stream_id: int, cycle: H2Cycle) -> None:
        size = cycle.body_dropped()
        if size:
            self.ack(stream_id, size)

    def sent_all(self, stream: H2Stream) -> None:
        """The last bytes of a finished response went out: the stream is done with."""
        cycle = stream.cycle
        if cycle is not None and cycle.response_complete:
            self.streams.pop(stream.stream_id, None)
            self._maybe_idle()
        elif stream.ws is not None:
            stream.ws.sent_all()

    # -- bytes out ------------------------------------------------------------------------------------------
    def flush_soon(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.state.flush_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        data = self.output()
        if data and not self.proto.closed:
            self.transport.write(data)
        if self.goaway_sent and not self.streams and not self.closed:
            self.close()

    def resume_writing(self) -> None:
        self.pump_all()
        self.flush()
        if self.transport.get_write_buffer_size() <= WRITE_LIMIT and not self.reading_held():
            self.proto.resume_reading()

    def reading_held(self) -> bool:
        """The backend keeps the connection from reading (zttp: a stream's unread body is over the mark)."""
        return False

    # -- the end ----------------------------------------------------------------------------------------------
    def terminate(self, code: int) -> None:
        """A connection error: GOAWAY with ``code``, then close."""
        if self.closed:
            return
        out = self.output_before_goaway()
        if not self.proto.closed:
            self.transport.write(out + self.goaway(code))
        self.close()

    def shutdown(self) -> None:
        """Graceful (the server stops): GOAWAY naming the last stream accepted; those streams complete and new
        ones are refused (RFC 9113 6.8)."""
        if self.closed or self.goaway_sent:
            return
        # What is queued, then the GOAWAY, in one write; goaway_sent set only then (flush() closes a connection
        # with no streams once it is set, which would drop the GOAWAY).
        out = self.output()
        if not self.proto.closed:
            self.transport.write(out + self.goaway(NO_ERROR))
        self.goaway_sent = True
        if not self.streams:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.proto.close()

    def connection_lost(self) -> None:
        self.closed = True
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        streams = list(self.streams.values())
        self.streams.clear()
        for stream in streams:
            cycle = stream.cycle
            stream.lost()
            if cycle is not None and cycle.task is not None and not cycle.response_complete:
                cycle.task.cancel()

    # -- idle connections ---------------------------------------------------------------------------------------
    def _maybe_idle(self) -> None:
        if not self.streams and not self.closed:
            if self.goaway_sent:
                self.flush_soon()
            else:
                self._arm_idle(self.config.timeout_keep_alive)

    def _arm_idle(self, delay: float) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = self.loop.call_later(delay, self._on_idle) if delay else None

    def _on_idle(self) -> None:
        self._idle = None
        if not self.streams and not self.closed:
            logger.debug("HTTP/2 connection idle; closing.")
            self.shutdown()
            self.close()

    # -- the backend's part -------------------------------------------------------------------------------------
    def initiate(self) -> None:
        raise NotImplementedError

    def initiate_upgraded(self, settings: bytes, head: RequestHead) -> bool:
        """Begin as an upgraded connection; True when the library reports the upgrading request itself."""
        raise NotImplementedError

    def data_received(self, data: bytes) -> None:
        raise NotImplementedError

    def output(self) -> bytes:
        """The frames the library has queued."""
        raise NotImplementedError

    def output_before_goaway(self) -> bytes:
        """The queued frames before a connection error's GOAWAY (a GOAWAY of the library's own removed)."""
        raise NotImplementedError

    def goaway(self, code: int) -> bytes:
        raise NotImplementedError

    def send_headers(self, stream_id: int, status: int, fields: Headers, end_stream: bool) -> None:
        raise NotImplementedError

    def respond_bare(self, stream_id: int, status: int) -> None:
        """A response of headers only, for a request the server will not serve."""
        raise NotImplementedError

    def pump(self, stream: H2Stream) -> None:
        """Send what the client's windows admit of ``stream``'s pending body."""
        raise NotImplementedError

    def pump_all(self) -> None:
        raise NotImplementedError

    def sending(self, stream: H2Stream) -> bool:
        """Bytes of ``stream``'s response still wait for a window."""
        raise NotImplementedError

    def trailers_after_pending(self, stream: H2Stream, fields: Headers) -> None:
        raise NotImplementedError

    def send_trailers(self, stream_id: int, fields: Headers) -> None:
        raise NotImplementedError

    def ack(self, stream_id: int, size: int) -> None:
        """``size`` bytes received on ``stream_id`` are consumed: the client may send as many more."""
        raise NotImplementedError

    def send_reset(self, stream_id: int, code: int) -> None:
        raise NotImplementedError

    def refuse(self, stream_id: int) -> None:
        self.send_reset(stream_id, REFUSED_STREAM)
