"""A raw-frame HTTP/2 client for the conformance suite (tests/test_h2_conformance.py).

It speaks h2c with prior knowledge over one plain socket, frame by frame: ``hyperframe`` serializes and
parses the frames, ``hpack`` encodes well-formed header blocks (the malformed ones are built byte by byte
with the helpers at the end). Every wait has a deadline; nothing here blocks longer than ``timeout``.

What the client does on its own while it reads: acknowledges the server's SETTINGS, decodes every header
block in order (so its HPACK state follows the server's), and, unless ``auto_window`` is off, gives back
the flow-control credit of each DATA frame it receives.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum

import hpack
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DEFAULT_TIMEOUT = 5.0


class ErrorCode(IntEnum):
    """RFC 9113 section 7."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class FrameType(IntEnum):
    """RFC 9113 section 6."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


class Setting(IntEnum):
    """RFC 9113 section 6.5.2."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6


# Flag bits.
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20


def code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return hex(code)


def raw_frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A frame built by hand (RFC 9113 4.1): any length, type, flags or stream id, valid or not."""
    length = len(payload)
    return struct.pack(">HBBBL", length >> 8, length & 0xFF, frame_type, flags, stream_id) + payload


class ConnectionClosed(AssertionError):
    """The server closed (or reset) the connection while the test still expected something on it."""


@dataclass
class Stream:
    """What arrived on one stream: response headers, body, trailers, how it ended."""

    stream_id: int
    headers: list[tuple[str, str]] | None = None
    informational: list[list[tuple[str, str]]] = field(default_factory=list)
    trailers: list[tuple[str, str]] | None = None
    body: bytearray = field(default_factory=bytearray)
    data_frames: list[int] = field(default_factory=list)  # the length of each DATA frame
    ended: bool = False  # END_STREAM received
    reset: int | None = None  # error code of a RST_STREAM received

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None

    @property
    def status(self) -> int | None:
        if self.headers is None:
            return None
        return int(dict(self.headers).get(":status", "0"))


@dataclass
class Outcome:
    """How an expectation was met: ``kind`` is "rst", "goaway", "closed" or "response"."""

    kind: str
    code: int | None = None
    frames: list[Frame] = field(default_factory=list)
    status: int | None = None

    def __str__(self) -> str:
        if self.kind in ("rst", "goaway"):
            return f"{self.kind} {code_name(self.code or 0)}"
        if self.kind == "response":
            return f"response {self.status}"
        return self.kind


class H2Client:
    """One HTTP/2 connection to ``(host, port)``; ``handshake()`` sends the preface and SETTINGS."""

    def __init__(self, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT, auto_window: bool = True):
        self.host, self.port = host, port
        self.timeout = timeout
        self.auto_window = auto_window
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.buffer = bytearray()
        self.closed = False  # EOF or reset from the server
        self.was_reset = False  # ... and it was a TCP reset
        self.send_failed = False
        self.frames: list[Frame] = []  # every frame received, in order
        # Frames before this index have been looked at by a test; the expectations start after it (so a
        # GOAWAY that arrived during ``flood()`` or ``drain()`` is still judged).
        self._examined = 0
        self.streams: dict[int, Stream] = {}
        self.server_settings: dict[int, int] = {}
        self.server_settings_seen = False
        self.settings_acks = 0
        self.goaways: list[GoAwayFrame] = []
        self.next_stream_id = 1
        self._block: bytearray | None = None  # a header block being received (HEADERS + CONTINUATION)
        self._block_stream = 0
        self._block_end_stream = False

    # -- lifetime -----------------------------------------------------------------------------------
    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def handshake(self, settings: dict[int, int] | None = None, *, wait_ack: bool = True) -> H2Client:
        """Client preface + SETTINGS (RFC 9113 3.4), then wait for the server's SETTINGS (and our ACK)."""
        self.send(PREFACE + SettingsFrame(0, settings=dict(settings or {})).serialize())
        self.pump_until(lambda: self.server_settings_seen and (self.settings_acks > 0 or not wait_ack))
        return self

    # -- sending ------------------------------------------------------------------------------------
    def send(self, *data: bytes | Frame) -> bool:
        """Send frames (objects or bytes) in one write; False if the server already closed."""
        payload = b"".join(d if isinstance(d, bytes | bytearray) else d.serialize() for d in data)
        try:
            self.sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.send_failed = True
            return False
        except TimeoutError:  # the server stopped reading: a bounded failure, not a hang
            self.send_failed = True
            return False
        return True

    def new_stream_id(self) -> int:
        stream_id = self.next_stream_id
        self.next_stream_id += 2
        return stream_id

    def encode(self, headers: Iterable[tuple[str, str] | tuple[bytes, bytes]]) -> bytes:
        return self.encoder.encode(list(headers))

    def request_headers(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        authority: str | None = None,
        scheme: str = "http",
        extra: Iterable[tuple[str, str]] = (),
    ) -> list[tuple[str, str]]:
        return [
            (":method", method),
            (":scheme", scheme),
            (":authority", authority if authority is not None else f"{self.host}:{self.port}"),
            (":path", path),
            *extra,
        ]

    def send_headers(
        self,
        stream_id: int,
        headers: Iterable[tuple[str, str]] | bytes,
        *,
        end_stream: bool = False,
        end_headers: bool = True,
    ) -> bool:
        block = headers if isinstance(headers, bytes) else self.encode(headers)
        flags = ["END_HEADERS"] if end_headers else []
        if end_stream:
            flags.append("END_STREAM")
        return self.send(HeadersFrame(stream_id, data=block, flags=flags))

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> bool:
        return self.send(DataFrame(stream_id, data=data, flags=["END_STREAM"] if end_stream else []))

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        body: bytes | None = None,
        trailers: list[tuple[str, str]] | None = None,
        extra: Iterable[tuple[str, str]] = (),
        authority: str | None = None,
        stream_id: int | None = None,
    ) -> int:
        """Send a whole request; returns its stream id."""
        sid = stream_id if stream_id is not None else self.new_stream_id()
        headers = self.request_headers(method, path, authority=authority, extra=extra)
        no_body = body is None and trailers is None
        self.send_headers(sid, headers, end_stream=no_body)
        if body is not None:
            max_frame = self.server_settings.get(Setting.MAX_FRAME_SIZE, 16384)
            chunks = [body[i : i + max_frame] for i in range(0, len(body), max_frame)] or [b""]
            for index, chunk in enumerate(chunks):
                self.send_data(sid, chunk, end_stream=trailers is None and index == len(chunks) - 1)
        if trailers is not None:
            self.send_headers(sid, trailers, end_stream=True)
        return sid

    def ping(self, opaque: bytes = b"12345678") -> bool:
        return self.send(PingFrame(0, opaque_data=opaque))

    def window_update(self, stream_id: int, increment: int) -> bool:
        return self.send(raw_frame(FrameType.WINDOW_UPDATE, 0, stream_id, struct.pack(">L", increment)))

    def rst_stream(self, stream_id: int, code: int = ErrorCode.CANCEL) -> bool:
        return self.send(RstStreamFrame(stream_id, error_code=code))

    # -- receiving ----------------------------------------------------------------------------------
    def _recv(self, timeout: float) -> bool:
        """Read what arrives within ``timeout``; False on timeout. Sets ``closed`` on EOF or reset."""
        if self.closed:
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
            if not readable:
                return False
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            self.closed = self.was_reset = True
            return True
        except TimeoutError:
            return False
        if not data:
            self.closed = True
            return True
        self.buffer += data
        return True

    def _next_buffered_frame(self) -> Frame | None:
        if len(self.buffer) < 9:
            return None
        frame, length = Frame.parse_frame_header(memoryview(bytes(self.buffer[:9])))
        if len(self.buffer) < 9 + length:
            return None
        body = bytes(self.buffer[9 : 9 + length])
        del self.buffer[: 9 + length]
        frame.parse_body(memoryview(body))
        self._track(frame)
        return frame

    def read_frame(self, timeout: float | None = None) -> Frame | None:
        """The next frame within ``timeout`` seconds; None once the connection is closed.

        Raises ``TimeoutError`` when nothing completes in time (the connection still open).
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = self._next_buffered_frame()
            if frame is not None:
                return frame
            if self.closed:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no frame within {timeout or self.timeout} s; got so far: {self.summary()}"
                )
            self._recv(remaining)

    def drain(self) -> list[Frame]:
        """Every frame already received (no waiting)."""
        frames: list[Frame] = []
        while self._recv(0):
            if self.closed:
                break
        while (frame := self._next_buffered_frame()) is not None:
            frames.append(frame)
        return frames

    def pump_until(self, condition: Callable[[], bool], timeout: float | None = None) -> None:
        """Read frames until ``condition()`` holds; ``ConnectionClosed`` or ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not condition():
            frame = self.read_frame(max(deadline - time.monotonic(), 0.0))
            if frame is None and not condition():
                raise ConnectionClosed(f"the server closed the connection; got: {self.summary()}")
        self._examined = len(self.frames)

    def collect(self, predicate: Callable[[Frame], bool], timeout: float | None = None) -> list[Frame]:
        """Frames up to and including the first for which ``predicate`` holds."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        frames: list[Frame] = []
        while True:
            frame = self.read_frame(max(deadline - time.monotonic(), 0.0))
            if frame is None:
                raise ConnectionClosed(f"the server closed the connection; got: {self.summary()}")
            frames.append(frame)
            if predicate(frame):
                self._examined = len(self.frames)
                return frames

    def quiet_for(self, seconds: float) -> list[Frame]:
        """Frames that arrive within ``seconds`` (waiting the whole time unless the connection closes)."""
        deadline = time.monotonic() + seconds
        frames: list[Frame] = []
        while not self.closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                frame = self.read_frame(remaining)
                if frame is not None:
                    frames.append(frame)
        frames.extend(self.drain())
        self._examined = len(self.frames)
        return frames

    def response(self, stream_id: int, timeout: float | None = None) -> Stream:
        """Wait until ``stream_id`` ends (END_STREAM or RST_STREAM)."""
        self.pump_until(lambda: self.stream(stream_id).done, timeout)
        return self.stream(stream_id)

    def stream(self, stream_id: int) -> Stream:
        return self.streams.setdefault(stream_id, Stream(stream_id))

    def summary(self) -> str:
        parts = [_describe(frame) for frame in self.frames[-12:]]
        if self.closed:
            parts.append("<reset>" if self.was_reset else "<closed>")
        return ", ".join(parts) or "nothing"

    def _track(self, frame: Frame) -> None:
        self.frames.append(frame)
        if isinstance(frame, SettingsFrame):
            if "ACK" in frame.flags:
                self.settings_acks += 1
            else:
                self.server_settings.update(frame.settings)
                self.server_settings_seen = True
                self.send(SettingsFrame(0, flags=["ACK"]))
        elif isinstance(frame, PingFrame):
            if "ACK" not in frame.flags:  # RFC 9113 6.7: a PING MUST be answered
                self.send(PingFrame(0, opaque_data=frame.opaque_data, flags=["ACK"]))
        elif isinstance(frame, GoAwayFrame):
            self.goaways.append(frame)
        elif isinstance(frame, RstStreamFrame):
            self.stream(frame.stream_id).reset = frame.error_code
        elif isinstance(frame, DataFrame):
            stream = self.stream(frame.stream_id)
            stream.body += frame.data
            stream.data_frames.append(len(frame.data))
            if "END_STREAM" in frame.flags:
                stream.ended = True
            if self.auto_window and frame.flow_controlled_length:
                self.window_update(0, frame.flow_controlled_length)
                if not stream.ended:
                    self.window_update(frame.stream_id, frame.flow_controlled_length)
        elif isinstance(frame, HeadersFrame):
            self._block = bytearray(frame.data)
            self._block_stream = frame.stream_id
            self._block_end_stream = "END_STREAM" in frame.flags
            if "END_HEADERS" in frame.flags:
                self._end_block()
        elif isinstance(frame, ContinuationFrame) and self._block is not None:
            self._block += frame.data
            if "END_HEADERS" in frame.flags:
                self._end_block()

    def _end_block(self) -> None:
        assert self._block is not None
        decoded = self.decoder.decode(bytes(self._block), raw=False)
        headers = [(str(n), str(v)) for n, v in decoded]
        stream = self.stream(self._block_stream)
        if stream.headers is None:
            status = dict(headers).get(":status", "")
            if status.startswith("1") and status != "101":
                stream.informational.append(headers)
            else:
                stream.headers = headers
        else:
            stream.trailers = headers
        if self._block_end_stream:
            stream.ended = True
        self._block = None

    # -- expectations -------------------------------------------------------------------------------
    def _wait_outcome(
        self, match: Callable[[Frame], Outcome | None], timeout: float | None, what: str
    ) -> Outcome:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        frames: list[Frame] = []
        while True:
            if self._examined < len(self.frames):  # received earlier (drain, flood) but not yet judged
                frame: Frame | None = self.frames[self._examined]
            else:
                try:
                    frame = self.read_frame(max(deadline - time.monotonic(), 0.0))
                except TimeoutError:
                    raise AssertionError(
                        f"expected {what} within {timeout or self.timeout} s; got: {self.summary()}"
                    ) from None
                if frame is None:
                    return Outcome("closed", frames=frames)
            self._examined += 1
            frames.append(frame)
            outcome = match(frame)
            if outcome is not None:
                outcome.frames = frames
                return outcome

    def expect_connection_error(self, *codes: int, timeout: float | None = None) -> Outcome:
        """RFC 9113 5.4.1: a connection error is GOAWAY (SHOULD) carrying one of ``codes``, then a close
        (MUST); a close without GOAWAY is allowed too. GOAWAY with another code fails."""
        what = f"GOAWAY({'|'.join(code_name(c) for c in codes)}) or a close"

        def match(frame: Frame) -> Outcome | None:
            if isinstance(frame, GoAwayFrame):
                assert frame.error_code in codes, f"expected {what}; got: {self.summary()}"
                return Outcome("goaway", frame.error_code)
            return None

        return self._wait_outcome(match, timeout, what)

    def expect_stream_error(
        self, stream_id: int, *codes: int, allow_response: bool = False, timeout: float | None = None
    ) -> Outcome:
        """RFC 9113 5.4.2: RST_STREAM on ``stream_id`` with one of ``codes``; an endpoint MAY treat any
        stream error as a connection error (5.4.1), so GOAWAY with one of ``codes`` or a close also pass.
        ``allow_response``: a malformed request MAY get an HTTP 4xx response first (8.1.1)."""
        what = f"RST_STREAM({stream_id}, {'|'.join(code_name(c) for c in codes)}) or a connection error"

        def match(frame: Frame) -> Outcome | None:
            if isinstance(frame, RstStreamFrame) and frame.stream_id == stream_id:
                assert frame.error_code in codes, f"expected {what}; got: {self.summary()}"
                return Outcome("rst", frame.error_code)
            if isinstance(frame, GoAwayFrame):
                assert frame.error_code in codes, f"expected {what}; got: {self.summary()}"
                return Outcome("goaway", frame.error_code)
            stream = self.streams.get(stream_id)
            if stream is not None and stream.headers is not None and frame.stream_id == stream_id:
                status = stream.status or 0
                assert allow_response, f"expected {what}; got: {self.summary()}"
                assert 400 <= status < 500, f"expected {what}; got: {self.summary()}"
                return Outcome("response", status=status)
            return None

        return self._wait_outcome(match, timeout, what)

    def expect_goaway(self, *codes: int, timeout: float | None = None) -> GoAwayFrame:
        """A GOAWAY frame with one of ``codes`` (strict: a bare close fails)."""
        what = f"GOAWAY({'|'.join(code_name(c) for c in codes)})"
        outcome = self._wait_outcome(
            lambda f: Outcome("goaway", f.error_code) if isinstance(f, GoAwayFrame) else None, timeout, what
        )
        assert outcome.kind == "goaway", f"expected {what}; got: {self.summary()}"
        assert outcome.code in codes, f"expected {what}; got: {self.summary()}"
        return self.goaways[-1]

    def expect_rst(self, stream_id: int, *codes: int, timeout: float | None = None) -> RstStreamFrame:
        """A RST_STREAM on ``stream_id`` with one of ``codes`` (strict)."""
        what = f"RST_STREAM({stream_id}, {'|'.join(code_name(c) for c in codes)})"
        outcome = self._wait_outcome(
            lambda f: (
                Outcome("rst", f.error_code)
                if isinstance(f, RstStreamFrame) and f.stream_id == stream_id
                else None
            ),
            timeout,
            what,
        )
        assert outcome.kind == "rst", f"expected {what}; got: {self.summary()}"
        assert outcome.code in codes, f"expected {what}; got: {self.summary()}"
        frame = outcome.frames[-1]
        assert isinstance(frame, RstStreamFrame)
        return frame

    def expect_closed(self, timeout: float | None = None) -> list[Frame]:
        """Read until the server closes the connection; the frames received meanwhile."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        frames: list[Frame] = []
        while True:
            try:
                frame = self.read_frame(max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise AssertionError(f"expected the connection to close; got: {self.summary()}") from None
            if frame is None:
                return frames
            frames.append(frame)

    def flood(self, frames: Iterable[bytes], *, batch: int = 50) -> int:
        """Send ``frames`` in batches, reading between batches; stop once the server sends GOAWAY or closes.

        Returns how many were sent. Reading as we go keeps the server's answers (PING/SETTINGS ACKs)
        from filling the socket buffers, and catches the GOAWAY before a close can reset it away.
        """
        sent = 0
        pending: list[bytes] = []
        for data in frames:
            pending.append(data)
            if len(pending) >= batch:
                if not self.send(*pending) or self._flood_stopped():
                    return sent
                sent += len(pending)
                pending = []
        if pending and self.send(*pending):
            sent += len(pending)
        self._flood_stopped()
        return sent

    def _flood_stopped(self) -> bool:
        self.drain()
        return self.closed or bool(self.goaways)


def _describe(frame: Frame) -> str:
    name = type(frame).__name__.replace("Frame", "").upper()
    extra = ""
    if isinstance(frame, GoAwayFrame | RstStreamFrame):
        extra = f" {code_name(frame.error_code)}"
        if isinstance(frame, GoAwayFrame):
            extra += f" last={frame.last_stream_id}"
            if frame.additional_data:
                extra += f" {bytes(frame.additional_data[:60])!r}"
    elif isinstance(frame, DataFrame | HeadersFrame | ContinuationFrame):
        extra = f" len={len(frame.data)}"
    elif isinstance(frame, WindowUpdateFrame):
        extra = f" +{frame.window_increment}"
    flags = "|".join(sorted(frame.flags))
    return f"{name}[{frame.stream_id}]{extra}{' ' + flags if flags else ''}"


# -- HPACK by hand (RFC 7541) ----------------------------------------------------------------------------
def hpack_int(value: int, prefix_bits: int, first_byte: int = 0) -> bytes:
    """RFC 7541 5.1: ``value`` with an N-bit prefix, the other bits of the first octet from ``first_byte``."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(value: bytes, *, huffman: bool = False) -> bytes:
    """RFC 7541 5.2: a string literal (raw octets unless ``huffman``; then ``value`` is the coded form)."""
    return hpack_int(len(value), 7, 0x80 if huffman else 0) + value


def hpack_indexed(index: int) -> bytes:
    """RFC 7541 6.1: indexed header field."""
    return hpack_int(index, 7, 0x80)


def hpack_literal(name: bytes | int, value: bytes, *, indexing: str = "without") -> bytes:
    """RFC 7541 6.2: literal header field; ``name`` an index or a new name; ``indexing`` is
    "incremental" (6.2.1), "without" (6.2.2) or "never" (6.2.3)."""
    prefix, pattern = {"incremental": (6, 0x40), "without": (4, 0x00), "never": (4, 0x10)}[indexing]
    if isinstance(name, int):
        return hpack_int(name, prefix, pattern) + hpack_string(value)
    return bytes([pattern]) + hpack_string(name) + hpack_string(value)


def hpack_table_size_update(size: int) -> bytes:
    """RFC 7541 6.3: dynamic table size update."""
    return hpack_int(size, 5, 0x20)


def literal_block(headers: Iterable[tuple[bytes | str, bytes | str]]) -> bytes:
    """A header block of literals without indexing: exactly these fields in this order and case, and no
    change to either side's dynamic table."""
    out = bytearray()
    for name, value in headers:
        n = name.encode("latin-1") if isinstance(name, str) else name
        v = value.encode("latin-1") if isinstance(value, str) else value
        out += hpack_literal(n, v)
    return bytes(out)


def huffman(text: bytes, *, padding: str = "ones", eos: bool = False, extra_padding_bytes: int = 0) -> bytes:
    """RFC 7541 5.2 / Appendix B: ``text`` Huffman-coded bit by bit, then padded. ``padding="zeros"`` pads
    with 0 bits (a decoding error), ``eos`` appends the 30-bit EOS code (a decoding error),
    ``extra_padding_bytes`` adds whole octets of 1 bits (padding longer than 7 bits: a decoding error)."""
    value, bits = 0, 0
    for byte in text:
        value = (value << REQUEST_CODES_LENGTH[byte]) | REQUEST_CODES[byte]
        bits += REQUEST_CODES_LENGTH[byte]
    if eos:
        value, bits = (value << 30) | 0x3FFFFFFF, bits + 30
    pad = -bits % 8
    value = (value << pad) | ((1 << pad) - 1 if padding == "ones" else 0)
    bits += pad
    return value.to_bytes(bits // 8, "big") + b"\xff" * extra_padding_bytes
