"""HTTP/2 over ``zttp`` (``--http zttp --http2``, uvicorn's spelling): the fast backend, with zttp's own limits.

The only module that imports zttp. zttp parses and frames in native code, about forty times cheaper per request
than h2 (benchmarks/results/h2_libraries.md), but as of 0.0.35 its settings are fixed (128 concurrent streams,
a 64 KiB header list, 16 KiB frames, 65535-byte windows), it opens a stream's receive window as soon as the
data is read from it, and it ends a connection at its 4097th stream and 257th client reset. This backend
therefore pauses the whole connection's reading while one stream's unread body is over the high-water mark,
refuses streams after its own GOAWAY, and ends each connection gracefully after ``_MAX_STREAMS`` streams, before
zttp's cap; docs/http2.md lists what differs from the default (h2) backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import zttp

from hatchway._http.cycle import HIGH_WATER
from hatchway._http.h2_connection import H2Connection
from hatchway._logs import logger

if TYPE_CHECKING:
    from hatchway._config import Config
    from hatchway._http.events import RequestHead
    from hatchway._http.h2_stream import H2Stream, Headers
    from hatchway._http.protocol import HttpProtocol
    from hatchway._state import ServerState

# Streams served on one connection before a graceful GOAWAY (zttp ends the connection itself at 4097, with
# ENHANCE_YOUR_CALM, which clients report as an error; a GOAWAY with NO_ERROR just before makes them reconnect).
_MAX_STREAMS: Final = 4000
# The same for client resets (zttp's cap: 256 over the connection's life; a browser cancels requests routinely).
_MAX_RESETS: Final = 200
_NEED_DATA: Final = zttp.NEED_DATA


class ZttpBackend(H2Connection):
    """An HTTP/2 connection whose frames zttp reads and writes."""

    def __init__(self, proto: HttpProtocol, config: Config, state: ServerState) -> None:
        super().__init__(proto, config, state)
        self.zttp: Any = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
        self._opened = 0
        self._resets = 0
        self._blocked: dict[int, H2Stream] = {}  # streams whose parked bytes are over the high-water mark
        self._unsent: dict[int, H2Stream] = {}  # finished responses whose last bytes wait for a window
        self._reading_held = False

    def initiate(self) -> None:
        self.zttp.initiate_connection()

    def initiate_upgraded(self, settings: bytes, head: RequestHead) -> bool:
        # zttp replays the request as stream 1 once the client's preface has arrived (a Request event).
        target = head.raw_path + (b"?" + head.query if head.query else b"")
        self.zttp.initiate_upgrade_connection(
            head.method.encode("ascii"), target, head.headers, settings.rstrip(b"=")
        )
        return True

    # -- bytes in -----------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        conn = self.zttp
        try:
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if event is _NEED_DATA:
                    break
                self._on_event(event)
                if self.closed:
                    return
        except zttp.ProtocolError as exc:
            # zttp has queued its GOAWAY with the RFC's code: it goes out, then the connection closes.
            logger.debug("HTTP/2 protocol error from %s: %s", self.proto.peer_text(), exc)
            self.flush()
            self.close()
            return
        self.after_input()

    def _on_event(self, event: Any) -> None:
        cls = event.__class__
        if cls is zttp.Request:
            self._on_request(event)
        elif cls is zttp.Data:
            data = bytes(event.data)
            self.data_for(event.stream_id, data, 0, False)
            stream = self.streams.get(event.stream_id)
            if stream is not None and _unread(stream) > HIGH_WATER:
                # zttp has opened the window again already: the connection stops reading instead.
                self._reading_held = True
                self.proto.pause_reading()
        elif cls is zttp.EndOfMessage:
            self.request_end(event.stream_id)
        elif cls is zttp.RstStream:
            if event.stream_id not in self.streams:
                # A stream this side ended already (zttp also reports the resets it makes itself, e.g. for
                # DATA a client still sends after the server's RST_STREAM NO_ERROR): not the client's reset.
                self.control()
                return
            self._blocked.pop(event.stream_id, None)
            self._unsent.pop(event.stream_id, None)
            self.stream_reset(event.stream_id)
            self._resets += 1
            if self._resets == _MAX_RESETS:
                self.shutdown()  # before zttp's own cap ends the connection with ENHANCE_YOUR_CALM
        elif cls is zttp.WindowUpdate:
            self.control()
            self.pump_all()
        elif cls is zttp.GoAway:
            self.close()
        else:  # Settings, Ping (acknowledged by zttp)
            self.control()

    def _on_request(self, event: Any) -> None:
        headers = event.headers
        fields: list[tuple[bytes, bytes]] = list(headers) if isinstance(headers, list) else headers.to_list()
        for i, (name, _) in enumerate(fields):
            if name == b"host":
                if i:  # zttp appends :authority as a host field; apps (and the h2 backend) have it first
                    fields.insert(0, fields.pop(i))
                break
        self._opened += 1
        self.open_request(
            event.stream_id, event.method, event.target, fields, None, event.protocol, event.end_stream
        )
        if self._opened == _MAX_STREAMS:
            self.shutdown()

    # -- frames out ---------------------------------------------------------------------------------------
    def output(self) -> bytes:
        return bytes(self.zttp.data_to_send())

    def output_before_goaway(self) -> bytes:
        return self.output()

    def goaway(self, code: int) -> bytes:
        self.zttp.close(code)
        return self.output()

    def send_headers(self, stream_id: int, status: int, fields: Headers, end_stream: bool) -> None:
        if self.closed or stream_id not in self.streams:
            return
        stream = self.zttp.stream(stream_id)
        if status < 200:
            stream.send_informational(status, fields)
        else:
            stream.send_response(status, fields, end_stream)
        self.flush_soon()

    def respond_bare(self, stream_id: int, status: int) -> None:
        self.zttp.stream(stream_id).send_response(status, [], True)

    def pump(self, stream: H2Stream) -> None:
        sid = stream.stream_id
        if self.closed or sid not in self.streams:
            stream.pending = b""
            return
        handle = self.zttp.stream(sid)
        data = stream.pending
        stream.pending = b""
        if data:
            handle.send_data(data)  # what the window does not admit, zttp parks until it does
        if stream.end_pending:
            stream.end_pending = False
            handle.end_message()
        self._check(stream, handle)
        self.flush_soon()

    def _check(self, stream: H2Stream, handle: Any) -> None:
        parked = handle.pending_bytes or 0
        sid = stream.stream_id
        if parked > HIGH_WATER:
            self._blocked[sid] = stream
            stream.blocked()
        else:
            self._blocked.pop(sid, None)
            if stream.write_paused:
                stream.unblocked()
        if parked:
            self._unsent[sid] = stream
        elif self._unsent.pop(sid, None) is not None or (stream.cycle and stream.cycle.response_complete):
            self.sent_all(stream)

    def pump_all(self) -> None:
        for stream in list(self._unsent.values()):
            if stream.stream_id in self.streams:
                self._check(stream, self.zttp.stream(stream.stream_id))

    def sending(self, stream: H2Stream) -> bool:
        return stream.stream_id in self._unsent

    def trailers_after_pending(self, stream: H2Stream, fields: Headers) -> None:
        self.send_trailers(stream.stream_id, fields)  # zttp sends them after what it has parked

    def send_trailers(self, stream_id: int, fields: Headers) -> None:
        if not self.closed and stream_id in self.streams:
            self.zttp.stream(stream_id).end_message(fields)
            self.flush_soon()

    def ack(self, stream_id: int, size: int) -> None:
        # zttp opened the window when the data was read; here only the connection's reading resumes once the
        # stream that held it back has been read down.
        if self._reading_held:
            stream = self.streams.get(stream_id)
            if stream is None or _unread(stream) <= HIGH_WATER:
                self._reading_held = False
                self.proto.resume_reading()

    def reading_held(self) -> bool:
        return self._reading_held

    def send_reset(self, stream_id: int, code: int) -> None:
        self._blocked.pop(stream_id, None)
        self._unsent.pop(stream_id, None)
        try:
            self.zttp.stream(stream_id).reset(code)
        except zttp.ProtocolError:
            pass


def _unread(stream: H2Stream) -> int:
    """Bytes received on ``stream`` that its reader has not taken: the app's unread body, or the frames a
    WebSocket stream holds while the WebSocket layer reads nothing (``_ws.over_h2``)."""
    if stream.ws is not None:
        return stream.ws.held_size
    return stream.cycle.body_size if stream.cycle is not None else 0
