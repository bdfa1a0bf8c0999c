"""HTTP/2 connection logic over the ``h2`` library: streams to cycles, flow control, floods, GOAWAY.

The only module that imports ``h2`` (docs/http2.md says why this library). The asyncio protocol
(``protocol.HttpProtocol``) owns the transport and hands this class the bytes once a connection speaks
HTTP/2; this class turns h2's events into calls on each stream's cycle and the cycles' sends into frames.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.frame_buffer
import h2.settings
import hpack.exceptions
from hyperframe.exceptions import InvalidDataError
from hyperframe.frame import ContinuationFrame, Frame, GoAwayFrame

from hatchway._http.events import RequestHead, split_target
from hatchway._http.h2_stream import H2Cycle, H2Stream, Headers, h2_scope_extensions
from hatchway._logs import logger

if TYPE_CHECKING:
    from hatchway._config import Config
    from hatchway._http.protocol import HttpProtocol
    from hatchway._state import ServerState

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENHANCE_YOUR_CALM: Final = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
# The HTTP/1.1 fields of an upgrade request that mean nothing once it is an HTTP/2 stream.
_UPGRADE_FIELDS: Final = frozenset({b"connection", b"upgrade", b"http2-settings"})
_WRITE_LIMIT: Final = 1 << 20  # bytes the client leaves unread before the connection stops reading frames


class _BoundedFrameBuffer(h2.frame_buffer.FrameBuffer):
    """h2's frame reader with a header block bounded in frames and bytes (CONTINUATION floods, CVE-2024-27316):
    h2 alone allows 64 frames of up to the maximum frame size each."""

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        super().__init__(server=True)
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self._block_bytes = 0

    def _update_header_buffer(self, f: Frame | None) -> Frame | None:
        if isinstance(f, ContinuationFrame) and self._headers_buffer:
            self._block_bytes += len(f.data)
            if len(self._headers_buffer) >= self._max_frames or self._block_bytes > self._max_bytes:
                raise h2.exceptions.DenialOfServiceError("header block too large (CONTINUATION flood)")
        result = super()._update_header_buffer(f)
        if not self._headers_buffer:
            self._block_bytes = 0
        return result


def _error_code(exc: h2.exceptions.ProtocolError) -> int:
    """The RFC 9113 error code for what h2 refused; h2 says PROTOCOL_ERROR for some the RFC names otherwise."""
    cause = exc.__cause__
    if isinstance(cause, hpack.exceptions.HPACKError) and not isinstance(
        cause, hpack.exceptions.OversizedHeaderListError
    ):
        return h2.errors.ErrorCodes.COMPRESSION_ERROR  # RFC 9113 4.3: a header block that cannot be decoded
    if isinstance(cause, InvalidDataError) and "must not have payload" in str(cause):
        # RFC 9113 6.5: a SETTINGS acknowledgement with a payload is a FRAME_SIZE_ERROR.
        return h2.errors.ErrorCodes.FRAME_SIZE_ERROR
    return int(getattr(exc, "error_code", h2.errors.ErrorCodes.PROTOCOL_ERROR))


class _Budget:
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
    """One HTTP/2 connection: its streams, their cycles, and the flood limits."""

    def __init__(self, proto: HttpProtocol, config: Config, state: ServerState) -> None:
        self.proto = proto
        self.config = config
        self.state = state
        self.loop: asyncio.AbstractEventLoop = proto.loop
        self.transport: asyncio.Transport = proto.transport
        self.send_timeout = config.timeout_send
        h2_config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=True,
            normalize_inbound_headers=True,
        )
        conn = h2.connection.H2Connection(config=h2_config)
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: config.h2_max_concurrent_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: config.h2_initial_window_size,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: config.h2_max_frame_size,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: config.h2_max_header_list_size,
                h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
            },
        )
        conn.max_inbound_frame_size = config.h2_max_frame_size
        # The header list bound applies from the first request, before the client acknowledges SETTINGS.
        conn.decoder.max_header_list_size = config.h2_max_header_list_size
        conn.incoming_buffer = _BoundedFrameBuffer(
            config.h2_max_header_frames, config.h2_max_header_list_size
        )
        conn.incoming_buffer.max_frame_size = config.h2_max_frame_size
        self.h2 = conn
        self.streams: dict[int, H2Stream] = {}
        self.resets = _Budget(config.h2_max_resets_per_second)
        self.controls = _Budget(config.h2_max_control_frames_per_second)
        self.closed = False
        self.goaway_sent = False
        self._flush_scheduled = False
        self._pending_trailers: dict[int, Headers] = {}
        self._blocked: dict[int, H2Stream] = {}  # streams with bytes waiting for a window
        self._idle: asyncio.TimerHandle | None = None
        self._settings_seen = False

    # -- start --------------------------------------------------------------------------------------------
    def start(self, data: bytes) -> None:
        """The connection speaks HTTP/2 from ``data`` on (the client's preface first)."""
        self.h2.initiate_connection()
        self.flush()
        self._arm_idle(self.config.timeout_request_header)
        if data:
            self.data_received(data)

    def start_upgraded(self, settings: bytes, head: RequestHead, rest: bytes) -> None:
        """``Upgrade: h2c`` (RFC 7540 3.2): the request that asked becomes stream 1, answered over HTTP/2."""
        self.h2.initiate_upgrade_connection(settings)
        self.flush()
        head.http_version = "2"
        head.headers = [(n, v) for n, v in head.headers if n not in _UPGRADE_FIELDS]
        self._open_stream(1, head, ended=True)
        if rest:
            self.data_received(rest)

    # -- bytes in -----------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            code = _error_code(exc)
            logger.debug("HTTP/2 protocol error from %s: %s", self.proto.peer_text(), exc)
            self.terminate(code)
            return
        for event in events:
            self._on_event(event)
            if self.closed:
                return
        self.flush()
        if self.transport.get_write_buffer_size() > _WRITE_LIMIT:
            # The client reads nothing of what its frames make us send (PING and SETTINGS acknowledgements,
            # responses): stop reading until it does.
            self.proto.pause_reading()

    def _on_event(self, event: Any) -> None:
        cls = event.__class__
        if not self._settings_seen:
            # RFC 9113 3.4: the client's preface is the magic octets and then a SETTINGS frame.
            if cls is not h2.events.RemoteSettingsChanged:
                self.terminate(h2.errors.ErrorCodes.PROTOCOL_ERROR)
                return
            self._settings_seen = True
        if cls is h2.events.RequestReceived:
            self._on_request(event.stream_id, event.headers, event.stream_ended is not None)
        elif cls is h2.events.DataReceived:
            self._on_data(event)
        elif cls is h2.events.StreamEnded:
            stream = self.streams.get(event.stream_id)
            if stream is not None and stream.cycle is not None:
                stream.cycle.request_ended()
        elif cls is h2.events.StreamReset:
            self._on_reset(event.stream_id)
            if not self.resets.spend(self.loop.time()):
                logger.warning("HTTP/2 client %s reset too many streams; closing.", self.proto.peer_text())
                self.terminate(ENHANCE_YOUR_CALM)
                return
            self._control()
        elif cls is h2.events.WindowUpdated:
            self._control()
            if event.stream_id:
                stream = self._blocked.get(event.stream_id)
                if stream is not None:
                    self.pump(stream)
            else:
                self._pump_all()
        elif cls is h2.events.RemoteSettingsChanged:
            self._control()
            if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                self._pump_all()
        elif cls is h2.events.ConnectionTerminated:
            self.close()
        elif cls is h2.events.TrailersReceived:
            pass  # request trailers are dropped, as over HTTP/1.1 (docs/security.md)
        elif cls in (h2.events.PingReceived, h2.events.PriorityUpdated, h2.events.UnknownFrameReceived):
            self._control()
        # SettingsAcknowledged, PingAckReceived: nothing to do.

    def _control(self) -> None:
        if not self.controls.spend(self.loop.time()) and not self.closed:
            logger.warning("HTTP/2 client %s sent too many control frames; closing.", self.proto.peer_text())
            self.terminate(ENHANCE_YOUR_CALM)

    def _on_request(self, stream_id: int, headers: list[tuple[bytes, bytes]], ended: bool) -> None:
        if self.goaway_sent:
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        method = path = authority = b""
        protocol = None
        fields: list[tuple[bytes, bytes]] = []
        has_host = False
        expect_continue = False
        for name, value in headers:
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
                elif name == b":protocol":
                    protocol = value
            else:
                if name == b"host":
                    has_host = True
                elif name == b"expect" and value.lower() == b"100-continue":
                    expect_continue = True
                fields.append((name, value))
        if authority and not has_host:
            # RFC 9113 8.3.1: :authority stands in for Host; ASGI apps read the host header.
            fields.insert(0, (b"host", authority))
        if protocol is not None or method == b"CONNECT":
            # Extended CONNECT (RFC 8441, WebSockets over HTTP/2) and plain CONNECT are not served yet.
            self.h2.send_headers(stream_id, [(b":status", b"501")], end_stream=True)
            return
        raw_path, query = split_target(path)
        head = RequestHead(
            method.decode("ascii", "replace"),
            raw_path,
            query,
            "2",
            fields,
            True,
            None,
            expect_continue,
        )
        self._open_stream(stream_id, head, ended)

    def _open_stream(self, stream_id: int, head: RequestHead, ended: bool) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
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

    def _on_data(self, event: Any) -> None:
        stream = self.streams.get(event.stream_id)
        data: bytes = event.data
        size: int = event.flow_controlled_length
        if stream is None or stream.cycle is None or stream.cycle.response_complete:
            # Nobody will read it (the response is complete or the stream is gone): the window opens at once.
            if size:
                self._ack(event.stream_id, size)
            return
        if not data and event.stream_ended is None:
            self._control()  # an empty DATA frame carries nothing but cost
        if size > len(data):
            self._ack(event.stream_id, size - len(data))  # padding is nobody's to read
        if data:
            stream.cycle.body_received(data)

    def _on_reset(self, stream_id: int) -> None:
        self._pending_trailers.pop(stream_id, None)
        self._blocked.pop(stream_id, None)
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            cycle = stream.cycle
            stream.lost()
            # The app's work for a stream the client gave up is cancelled (rapid reset costs no app time).
            if cycle is not None and cycle.task is not None and not cycle.response_complete:
                cycle.task.cancel()
            self._maybe_idle()

    # -- what streams ask ----------------------------------------------------------------------------------
    def send_headers(self, stream_id: int, status: int, fields: Headers, end_stream: bool) -> None:
        if self.closed or stream_id not in self.streams:
            return
        self.h2.send_headers(stream_id, [(b":status", b"%d" % status), *fields], end_stream=end_stream)
        self._flush_soon()

    def pump(self, stream: H2Stream) -> None:
        """Send what the client's windows admit of ``stream``'s pending body."""
        if self.closed or stream.stream_id not in self.streams:
            stream.pending = b""
            return
        conn = self.h2
        sid = stream.stream_id
        data = stream.pending
        try:
            while not self.proto.write_paused:  # the transport's buffer is full: wait for resume_writing
                room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if len(data) <= room:
                    conn.send_data(sid, data, end_stream=stream.end_pending)
                    data = b""
                    break
                if room <= 0:
                    break
                conn.send_data(sid, data[:room])
                data = data[room:]
        except h2.exceptions.StreamClosedError:
            data = b""
        stream.pending = data
        if data:
            self._blocked[sid] = stream
            stream.blocked()
        else:
            self._blocked.pop(sid, None)
            trailers = self._pending_trailers.pop(sid, None)
            if trailers is not None:
                conn.send_headers(sid, trailers, end_stream=True)
            if stream.write_paused:
                stream.unblocked()
        self._flush_soon()

    def _pump_all(self) -> None:
        for stream in list(self._blocked.values()):
            self.pump(stream)

    def trailers_after_pending(self, stream: H2Stream, fields: Headers) -> None:
        stream.end_pending = False
        self._pending_trailers[stream.stream_id] = fields

    def send_trailers(self, stream_id: int, fields: Headers) -> None:
        if not self.closed and stream_id in self.streams:
            self.h2.send_headers(stream_id, fields, end_stream=True)
            self._flush_soon()

    def consumed(self, stream_id: int, size: int) -> None:
        if not self.closed and stream_id in self.streams:
            self._ack(stream_id, size)

    def _ack(self, stream_id: int, size: int) -> None:
        # (For a stream already closed, h2 opens the connection's window only.)
        self.h2.acknowledge_received_data(size, stream_id)
        self._flush_soon()

    def reset(self, stream_id: int, cancel: bool) -> None:
        """The server gives up on a stream (the app failed mid-response, or the client opens no window)."""
        if self.closed or stream_id not in self.streams:
            return
        code = h2.errors.ErrorCodes.CANCEL if cancel else h2.errors.ErrorCodes.INTERNAL_ERROR
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.StreamClosedError:
            pass
        self._flush_soon()
        self._on_reset(stream_id)

    def stream_done(self, stream: H2Stream) -> None:
        """The response of ``stream`` is complete."""
        self.state.count_request()
        sid = stream.stream_id
        cycle = stream.cycle
        if cycle is not None and not cycle.request_complete and sid in self.streams and not self.closed:
            # RFC 9113 8.1: a complete response before the whole request: the client may stop sending.
            self._ack(sid, cycle.body_dropped())
            if not stream.pending and sid not in self._pending_trailers:
                try:
                    self.h2.reset_stream(sid, h2.errors.ErrorCodes.NO_ERROR)
                except h2.exceptions.StreamClosedError:
                    pass
        if not stream.pending and sid not in self._pending_trailers:
            self.streams.pop(sid, None)
            self._maybe_idle()
        self._flush_soon()

    # -- bytes out ------------------------------------------------------------------------------------------
    def _flush_soon(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.state.flush_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        data = self.h2.data_to_send()
        if data and not self.proto.closed:
            self.transport.write(data)
        if self.goaway_sent and not self.streams and not self.closed:
            self.close()

    def resume_writing(self) -> None:
        self._pump_all()
        self.flush()
        if self.transport.get_write_buffer_size() <= _WRITE_LIMIT:
            self.proto.resume_reading()

    # -- the end ----------------------------------------------------------------------------------------------
    def terminate(self, code: int) -> None:
        """A connection error: GOAWAY with ``code``, then close."""
        if self.closed:
            return
        out = self.h2.data_to_send()
        if out[-17:-14] == b"\x00\x00\x08" and out[-14:-13] == b"\x07":
            # h2 queued its own GOAWAY when it raised; ours carries the code RFC 9113 names (_error_code).
            out = out[:-17]
        goaway = GoAwayFrame(0)
        goaway.last_stream_id = self.h2.highest_inbound_stream_id
        goaway.error_code = code
        if not self.proto.closed:
            self.transport.write(out + goaway.serialize())
        self.close()

    def shutdown(self) -> None:
        """Graceful (the server stops): GOAWAY naming the last stream accepted; those streams complete."""
        if self.closed or self.goaway_sent:
            return
        self.goaway_sent = True
        # Written by hand, not through h2.close_connection: h2 would then treat any frame the client still
        # sends for the streams in flight as an error, and those streams must complete (RFC 9113 6.8). New
        # streams are refused in _on_request.
        self.flush()
        goaway = GoAwayFrame(0)
        goaway.last_stream_id = self.h2.highest_inbound_stream_id
        goaway.error_code = h2.errors.ErrorCodes.NO_ERROR
        if not self.proto.closed:
            self.transport.write(goaway.serialize())
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
        self._blocked.clear()
        for stream in streams:
            cycle = stream.cycle
            stream.lost()
            if cycle is not None and cycle.task is not None and not cycle.response_complete:
                cycle.task.cancel()

    # -- idle connections ---------------------------------------------------------------------------------------
    def _maybe_idle(self) -> None:
        if not self.streams and not self.closed:
            if self.goaway_sent:
                self._flush_soon()
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
