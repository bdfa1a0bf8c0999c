"""HTTP/2 over the ``h2`` library: the default backend of ``h2_connection.H2Connection``.

The only module that imports ``h2`` (docs/http2.md says why this library): h2's events become calls on the
connection, and the connection's frame operations become h2 calls.
"""

from __future__ import annotations

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

from hatchway._http.h2_connection import PROTOCOL_ERROR, H2Connection
from hatchway._logs import logger

if TYPE_CHECKING:
    from hatchway._config import Config
    from hatchway._http.events import RequestHead
    from hatchway._http.h2_stream import H2Stream, Headers
    from hatchway._http.protocol import HttpProtocol
    from hatchway._state import ServerState

_SETTING: Final = h2.settings.SettingCodes
_CONNECTION_WINDOW_MAX: Final = 16 << 20
_CONTROL_EVENTS: Final = (h2.events.PingReceived, h2.events.UnknownFrameReceived)


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


class _Connection(h2.connection.H2Connection):
    """h2's connection, with the concurrent-stream limit left to hatchway: h2 ends the whole connection with
    PROTOCOL_ERROR at the first stream over it (before decoding its header block), where RFC 9113 5.1.2 asks
    for that one stream to be refused; ``H2Connection.open_request`` refuses it with REFUSED_STREAM."""

    @property
    def open_inbound_streams(self) -> int:
        h2.connection.H2Connection.open_inbound_streams.fget(self)  # type: ignore[attr-defined]  # (its cleanup)
        return 0


class H2Backend(H2Connection):
    """An HTTP/2 connection whose frames h2 reads and writes."""

    def __init__(self, proto: HttpProtocol, config: Config, state: ServerState) -> None:
        super().__init__(proto, config, state)
        h2_config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=True,
            normalize_inbound_headers=True,
            # The cycle checks every response header already (wire.header_entry); h2 would check again.
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        conn = _Connection(config=h2_config)
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                _SETTING.MAX_CONCURRENT_STREAMS: config.h2_max_concurrent_streams,
                _SETTING.INITIAL_WINDOW_SIZE: config.h2_initial_window_size,
                _SETTING.MAX_FRAME_SIZE: config.h2_max_frame_size,
                _SETTING.MAX_HEADER_LIST_SIZE: config.h2_max_header_list_size,
                # RFC 8441: extended CONNECT, for WebSockets over HTTP/2 (hatchway._ws.over_h2).
                _SETTING.ENABLE_CONNECT_PROTOCOL: 0 if config.ws == "none" else 1,
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
        self._pending_trailers: dict[int, Headers] = {}
        self._blocked: dict[int, H2Stream] = {}  # streams with bytes waiting for a window
        self._settings_seen = False
        self._sent = False  # set by pump when it sends: see WindowUpdated

    def initiate(self) -> None:
        self.h2.initiate_connection()
        self._open_connection_window()

    def _open_connection_window(self) -> None:
        # The connection's receive window starts at 65535 whatever SETTINGS say (RFC 9113 6.9.2): raised to room
        # for every stream's window (at most 16 MiB), so one stream whose app does not read stalls no other.
        config = self.config
        target = min(config.h2_initial_window_size * config.h2_max_concurrent_streams, _CONNECTION_WINDOW_MAX)
        if target > 65535:
            self.h2.increment_flow_control_window(target - 65535)

    def initiate_upgraded(self, settings: bytes, head: RequestHead) -> bool:
        self.h2.initiate_upgrade_connection(settings)
        self._open_connection_window()
        return False

    # -- bytes in -----------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            logger.debug("HTTP/2 protocol error from %s: %s", self.proto.peer_text(), exc)
            self.terminate(_error_code(exc))
            return
        for event in events:
            self._on_event(event)
            if self.closed:
                return
        self.after_input()

    def _on_event(self, event: Any) -> None:
        cls = event.__class__
        if not self._settings_seen:
            # RFC 9113 3.4: the client's preface is the magic octets and then a SETTINGS frame.
            if cls is not h2.events.RemoteSettingsChanged:
                self.terminate(PROTOCOL_ERROR)
                return
            self._settings_seen = True
        if cls is h2.events.RequestReceived:
            self._on_request(event.stream_id, event.headers, event.stream_ended is not None)
        elif cls is h2.events.DataReceived:
            self.data_for(
                event.stream_id, event.data, event.flow_controlled_length, event.stream_ended is not None
            )
        elif cls is h2.events.StreamEnded:
            self.request_end(event.stream_id)
        elif cls is h2.events.StreamReset:
            self._pending_trailers.pop(event.stream_id, None)
            self._blocked.pop(event.stream_id, None)
            self.stream_reset(event.stream_id)
        elif cls is h2.events.WindowUpdated:
            # An update that lets waiting bytes go is the client reading (nghttp sends one per chunk of a large
            # download): only the others count towards the control-frame budget.
            # (Counted unless it actually let bytes go: an update by one byte to a window held at zero by the
            # client's own SETTINGS would otherwise be free, and each one re-runs the pump.)
            self._sent = False
            if event.stream_id:
                stream = self._blocked.get(event.stream_id)
                if stream is not None:
                    self.pump(stream)
            elif self._blocked:
                self.pump_all()
            if not self._sent:
                self.control()
        elif cls is h2.events.RemoteSettingsChanged:
            self.control()
            if _SETTING.INITIAL_WINDOW_SIZE in event.changed_settings:
                self.pump_all()
        elif cls is h2.events.ConnectionTerminated:
            self.close()
        elif cls is h2.events.PriorityUpdated:
            # Priority carried by a request's own HEADERS frame (browsers send it on every request) is not a
            # control frame; a PRIORITY frame for a stream that is not open is.
            if event.stream_id not in self.streams:
                self.control()
        elif cls in _CONTROL_EVENTS:
            self.control()
        # TrailersReceived: request trailers are dropped, as over HTTP/1.1 (docs/security.md).
        # SettingsAcknowledged, PingAckReceived: nothing to do.

    def _on_request(self, stream_id: int, headers: list[tuple[bytes, bytes]], ended: bool) -> None:
        method = path = b""
        authority = protocol = None
        fields: list[tuple[bytes, bytes]] = []
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
                fields.append((name, value))
        self.open_request(stream_id, method, path, fields, authority, protocol, ended)

    # -- frames out ---------------------------------------------------------------------------------------
    def output(self) -> bytes:
        return self.h2.data_to_send()

    def output_before_goaway(self) -> bytes:
        out = self.h2.data_to_send()
        if out[-17:-14] == b"\x00\x00\x08" and out[-14:-13] == b"\x07":
            # h2 queued its own GOAWAY when it raised; ours carries the code RFC 9113 names (_error_code).
            out = out[:-17]
        return out

    def goaway(self, code: int) -> bytes:
        # Written by hand, not through h2.close_connection: after a graceful GOAWAY h2 would treat any frame
        # the client still sends for the streams in flight as an error, and those streams must complete.
        frame = GoAwayFrame(0)
        frame.last_stream_id = self.h2.highest_inbound_stream_id
        frame.error_code = code
        return bytes(frame.serialize())

    def send_headers(self, stream_id: int, status: int, fields: Headers, end_stream: bool) -> None:
        if self.closed or stream_id not in self.streams:
            return
        self.h2.send_headers(stream_id, [(b":status", b"%d" % status), *fields], end_stream=end_stream)
        self.flush_soon()

    def respond_bare(self, stream_id: int, status: int) -> None:
        self.h2.send_headers(stream_id, [(b":status", b"%d" % status)], end_stream=True)

    def pump(self, stream: H2Stream) -> None:
        sid = stream.stream_id
        if self.closed or sid not in self.streams:
            stream.pending = b""
            stream.end_pending = False
            return
        conn = self.h2
        data = stream.pending
        try:
            while not self.proto.write_paused:  # the transport's buffer is full: wait for resume_writing
                room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if len(data) <= room:
                    if data or stream.end_pending:
                        conn.send_data(sid, data, end_stream=stream.end_pending)
                        self._sent = True
                    data = b""
                    stream.end_pending = False
                    break
                if room <= 0:
                    break
                conn.send_data(sid, data[:room])
                self._sent = True
                data = data[room:]
        except h2.exceptions.StreamClosedError:
            data = b""
            stream.end_pending = False
        stream.pending = data
        if data or stream.end_pending:
            self._blocked[sid] = stream
            stream.blocked()
        else:
            self._blocked.pop(sid, None)
            trailers = self._pending_trailers.pop(sid, None)
            if trailers is not None:
                conn.send_headers(sid, trailers, end_stream=True)
            if stream.write_paused:
                stream.unblocked()
            self.sent_all(stream)
        self.flush_soon()

    def pump_all(self) -> None:
        for stream in list(self._blocked.values()):
            self.pump(stream)

    def sending(self, stream: H2Stream) -> bool:
        return bool(stream.pending) or stream.end_pending or stream.stream_id in self._pending_trailers

    def trailers_after_pending(self, stream: H2Stream, fields: Headers) -> None:
        stream.end_pending = False
        self._pending_trailers[stream.stream_id] = fields

    def send_trailers(self, stream_id: int, fields: Headers) -> None:
        if not self.closed and stream_id in self.streams:
            self.h2.send_headers(stream_id, fields, end_stream=True)
            self.flush_soon()

    def ack(self, stream_id: int, size: int) -> None:
        # (For a stream already closed, h2 opens the connection's window only.)
        self.h2.acknowledge_received_data(size, stream_id)
        self.flush_soon()

    def send_reset(self, stream_id: int, code: int) -> None:
        self._pending_trailers.pop(stream_id, None)
        self._blocked.pop(stream_id, None)
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.StreamClosedError:
            pass
