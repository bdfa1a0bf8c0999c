"""The pure-Python codec: h11 as a parser only. The only module that imports h11."""

from __future__ import annotations

import re
from typing import Any

import h11

from hatchway._http.events import REQUEST_END, Body, Event, Limits, ParseError, RequestHead, split_target
from hatchway._http.validate import (
    MAX_CHUNK_LINE,
    MAX_TRAILER,
    chunk_size,
    expects_continue,
    find_head_end,
    head_problem,
    keep_alive,
    raw_head_problem,
    upgrade_body_problem,
    upgrade_token,
)

# h11 tracks both sides of the connection; hatchway writes responses itself, so it tells h11 that a
# response went out with this stand-in once the real one is complete.
_DONE = h11.Response(status_code=200, headers=[(b"content-length", b"0")])
_END = h11.EndOfMessage()
_FRAMING_TRAILER = re.compile(rb"(?im)^(?:content-length|transfer-encoding):")


def _buffer(buf: Any) -> bytes | bytearray:
    """h11's receive buffer itself (its bytearray), to search in place: readers called once per read must
    not copy or rescan what they have already examined, or a head or trailer sent a byte at a time costs
    time quadratic in its size."""
    data = getattr(buf, "_data", None)
    return data if isinstance(data, bytearray) else bytes(buf)


_CRLF_RUN = re.compile(rb"(?:\r\n)*")


def _peek(buf: Any, limit: int) -> bytes:
    """Up to ``limit`` bytes from the front of h11's receive buffer, without consuming them.

    ``bytes(buf)`` would copy everything buffered on every call, which is quadratic for a read full of
    pipelined requests or small chunks; h11's ReceiveBuffer keeps a bytearray that can be sliced instead.
    """
    data = getattr(buf, "_data", None)
    return bytes(data[:limit]) if isinstance(data, bytearray) else bytes(buf)[:limit]


def _refuse(problem: ParseError) -> h11.LocalProtocolError:
    # Raised inside h11's reader; h11 re-raises it to us as RemoteProtocolError with this status hint.
    return h11.LocalProtocolError(problem.reason, error_status_hint=problem.status)


class _StrictChunkedReader:
    """h11's chunked body reader with llhttp's strictness: chunk-size line grammar, size and length limits.

    h11 accepts whitespace after the size, any bytes in extensions, unbounded sizes, and waits forever on a
    bare-LF size line; llhttp refuses all of these (RFC 9112 7.1), so hatchway refuses them with h11 too.
    """

    def __init__(self) -> None:
        self._remaining = 0
        self._discard = b""
        self._trailer = False
        # The trailer section examined so far: bytes searched, and where the current line starts.
        self._seen = 0
        self._line_start = 0

    def __call__(self, buf: Any) -> h11.Data | h11.EndOfMessage | None:
        if self._trailer:
            return self._read_trailer(buf)
        while self._discard:
            data = buf.maybe_extract_at_most(len(self._discard))
            if data is None:
                return None
            if data != self._discard[: len(data)]:
                raise _refuse(ParseError(400, "missing CRLF after chunk data"))
            self._discard = self._discard[len(data) :]
        if self._remaining == 0:
            line = buf.maybe_extract_next_line()
            if line is None:
                peek = _peek(buf, MAX_CHUNK_LINE + 1)
                if b"\n" in peek or len(peek) > MAX_CHUNK_LINE:
                    raise _refuse(ParseError(400, "invalid chunk header"))
                return None
            if len(line) > MAX_CHUNK_LINE:
                raise _refuse(ParseError(400, "chunk extensions too long"))
            size = chunk_size(bytes(line))
            if isinstance(size, ParseError):
                raise _refuse(size)
            if size == 0:
                self._trailer = True
                return self(buf)
            self._remaining = size
        data = buf.maybe_extract_at_most(self._remaining)
        if data is None:
            return None
        self._remaining -= len(data)
        if self._remaining == 0:
            self._discard = b"\r\n"
        return h11.Data(data=data)

    def _read_trailer(self, buf: Any) -> h11.EndOfMessage | None:
        data = _buffer(buf)
        if data[:2] == b"\r\n":
            buf.maybe_extract_at_most(2)
            return h11.EndOfMessage()
        end = find_head_end(data, max(0, self._seen - 3))
        limit = len(data) if end == -1 else end
        # Each trailer line is bounded like a chunk-size line; the section as a whole by MAX_TRAILER.
        position = self._seen
        while True:
            newline = data.find(b"\n", position, limit)
            if newline == -1:
                break
            if newline - self._line_start >= MAX_CHUNK_LINE:
                raise _refuse(ParseError(400, "chunk-size line or trailer field too long"))
            self._line_start = position = newline + 1
        if limit - self._line_start >= MAX_CHUNK_LINE:
            raise _refuse(ParseError(400, "chunk-size line or trailer field too long"))
        self._seen = limit
        if end == -1:
            if len(data) > MAX_TRAILER:
                raise _refuse(ParseError(431, "trailer section too large"))
            return None
        if end > MAX_TRAILER:
            raise _refuse(ParseError(431, "trailer section too large"))
        section = bytes(data[:end])
        # Trailer fields follow the head's rules (bare LF, obs-fold, control characters: RFC 9112 7.1.2).
        problem = raw_head_problem(b"GET / HTTP/1.1\r\n" + section, 1 << 30)
        if problem is not None:
            raise _refuse(problem)
        if _FRAMING_TRAILER.search(section):
            # RFC 9110 6.5.1: framing fields cannot be trailers; llhttp refuses them, and so does this codec.
            raise _refuse(ParseError(400, "Content-Length or Transfer-Encoding in the trailer section"))
        buf.maybe_extract_at_most(end)
        return h11.EndOfMessage()

    def read_eof(self) -> None:
        raise h11.RemoteProtocolError("peer closed connection without sending complete message body")


class _StrictConnection(h11.Connection):
    """An h11 server connection whose request-head and chunked-body readers are as strict as llhttp."""

    def __init__(self, limits: Limits, max_incomplete_event_size: int) -> None:
        # Set before h11's __init__, which already asks for the first reader.
        self._max_fields = limits.limit_request_fields
        self._max_line = limits.limit_request_line
        self._max_head = limits.limit_request_head_size
        super().__init__(h11.SERVER, max_incomplete_event_size=max_incomplete_event_size)

    def _get_io_object(self, role: Any, event: Any, io_dict: Any) -> Any:
        reader = super()._get_io_object(role, event, io_dict)
        if role is not h11.CLIENT or reader is None:
            return reader
        if type(reader).__name__ == "ChunkedReader":
            return _StrictChunkedReader()
        if self.their_state is h11.IDLE:
            return self._head_reader(reader)
        return reader

    def _head_reader(self, reader: Any) -> Any:
        max_fields, max_line, max_head = self._max_fields, self._max_line, self._max_head
        # What this head's reader has examined so far (it is called once per read): bytes searched, their
        # line feeds, whether the request line is complete, and the empty lines skipped before it.
        seen = newlines = skipped = 0
        line_done = False

        def read_head(buf: Any) -> Any:
            nonlocal seen, newlines, skipped, line_done
            data = _buffer(buf)
            if seen == 0:
                run = _CRLF_RUN.match(data)
                if run is not None and run.end():
                    # RFC 9112 2.2: empty lines (CRLF) before a request line are ignored; nothing else is.
                    # They count towards the head's size, as llhttp counts them.
                    skipped += run.end()
                    if skipped > max_head:
                        raise _refuse(ParseError(431, "request head too large"))
                    buf.maybe_extract_at_most(run.end())
                    data = _buffer(buf)
                if data[:1] == b"\n" or (data[:1] == b"\r" and len(data) > 1):
                    raise _refuse(ParseError(400, "bare CR or LF before the request line"))
                if data[:1] == b"\r":
                    return None  # perhaps the first half of a CRLF
            if not line_done:
                # The target is measured as it arrives (414), like llhttp's on_url, not once the line is whole.
                line_end = data.find(b"\n", 0, max_line + 64)
                line_done = line_end != -1
                line = bytes(data[: line_end if line_done else max_line + 64])
                parts = line.split(b" ", 2)
                if len(parts) > 1 and len(parts[1]) > max_line:
                    raise _refuse(ParseError(414, "request line too long"))
            end = find_head_end(data, max(0, seen - 3))
            newlines += data.count(b"\n", seen, len(data) if end == -1 else end)
            seen = len(data)
            if end == -1:
                if newlines - 1 > max_fields:
                    # As llhttp counts fields while they arrive: an endless head of short fields ends here.
                    raise _refuse(ParseError(431, "too many header fields"))
                if len(data) > max_head:
                    raise _refuse(ParseError(431, "request head too large"))
                # h11's own reader refuses a line that cannot start a request (a TLS hello) at once.
                return reader(buf)
            if end > max_head:
                raise _refuse(ParseError(431, "request head too large"))
            problem = raw_head_problem(bytes(data[:end]), max_fields)
            if problem is not None:
                raise _refuse(problem)
            return reader(buf)

        return read_head


class H11Codec:
    """Bytes in, events out, with the same limits and checks as the httptools codec."""

    def __init__(self, limits: Limits, max_incomplete_event_size: int | None = None) -> None:
        self._max_line = limits.limit_request_line
        self._max_fields = limits.limit_request_fields
        self._max_head = limits.limit_request_head_size
        self._limits = limits
        self._max_incomplete = max_incomplete_event_size or limits.limit_request_head_size
        self._conn = _StrictConnection(limits, self._max_incomplete)
        self._failed = False
        self._upgrade = False
        # h11 ends every HTTP/1.0 connection after one request; for an HTTP/1.0 keep-alive request the
        # bytes that follow are held here and parsed by a fresh h11 connection (RFC 9112 9.3, Appendix C.2.2).
        self._hold: bytes | None = None
        self._reuse_10 = False

    def feed(self, data: bytes) -> list[Event]:
        if self._failed:
            return []
        if self._hold is not None:
            self._hold += data
            return []
        try:
            self._conn.receive_data(data)
        except RuntimeError:
            # Data after the peer's EOF or while h11 is closed: nothing more to parse.
            return []
        return self._drain()

    def next_cycle(self) -> list[Event]:
        conn = self._conn
        if self._hold is not None:
            held = conn.trailing_data[0] + self._hold
            self._hold = None
            self._conn = _StrictConnection(self._limits, self._max_incomplete)
            return self.feed(held) if held else []
        if self._failed or conn.their_state is h11.MUST_CLOSE:
            return []
        try:
            conn.send(_DONE)
            conn.send(_END)
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return []
        self._upgrade = False
        return self._drain()

    def trailing_data(self) -> bytes:
        return self._conn.trailing_data[0]

    def buffered(self) -> int:
        # h11 keeps everything after the request it is on in its receive buffer.
        return len(self._conn._receive_buffer) + (len(self._hold) if self._hold is not None else 0)

    def head_started(self) -> bool:
        if self._hold:
            return True
        conn = self._conn
        return conn.their_state is h11.IDLE and bool(conn.trailing_data[0].strip(b"\r\n"))

    def _drain(self) -> list[Event]:
        events: list[Event] = []
        conn = self._conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._failed = True
                events.append(ParseError(exc.error_status_hint, str(exc)))
                return events
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return events
            if isinstance(event, h11.Request):
                head = self._head(event)
                events.append(head)
                if isinstance(head, ParseError):
                    self._failed = True
                    return events
                self._reuse_10 = head.keep_alive and head.http_version == "1.0"
            elif isinstance(event, h11.Data):
                events.append(Body(bytes(event.data)))
            elif isinstance(event, h11.EndOfMessage):
                events.append(REQUEST_END)
                if self._reuse_10:
                    self._reuse_10 = False
                    self._hold = b""
                    return events
            else:  # ConnectionClosed
                return events

    def _head(self, event: h11.Request) -> RequestHead | ParseError:
        target = bytes(event.target)
        if len(target) > self._max_line:
            return ParseError(414, "request line too long")
        headers = [(bytes(n), bytes(v)) for n, v in event.headers.raw_items()]
        headers = [(n.lower(), v) for n, v in headers]
        if len(headers) > self._max_fields:
            return ParseError(431, "too many header fields")
        http_version = event.http_version.decode("ascii")
        problem = head_problem(http_version, headers)
        if problem is not None:
            return problem
        tokens: set[bytes] = set()
        for name, value in headers:
            if name == b"connection":
                tokens.update(t.strip().lower() for t in value.split(b","))
        upgrade = upgrade_token(headers, tokens)
        if upgrade is not None or event.method == b"CONNECT":
            problem = upgrade_body_problem(headers, upgrade)
            if problem is not None:
                return problem
        raw_path, query = split_target(target)
        return RequestHead(
            event.method.decode("ascii"),
            raw_path,
            query,
            http_version,
            headers,
            keep_alive(http_version, tokens),
            upgrade,
            expects_continue(http_version, headers),
        )
