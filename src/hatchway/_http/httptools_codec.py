"""The default codec: llhttp through httptools. The only module that imports httptools."""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from typing import Final

import httptools

from hatchway._http.events import (
    REQUEST_END,
    Body,
    Event,
    Limits,
    ParseError,
    RequestHead,
    connection_tokens,
    split_target,
)
from hatchway._http.validate import (
    MAX_CHUNK_LINE,
    MAX_TRAILER,
    PREFACE_REFUSED,
    content_length,
    expects_continue,
    head_problem,
    keep_alive,
    upgrade_body_problem,
    upgrade_token,
)

_METHODS: Final[dict[bytes, str]] = {}
_NOTED: Final = frozenset(
    {b"connection", b"proxy-connection", b"expect", b"transfer-encoding", b"content-length"}
)
_NO_TOKENS: Final[frozenset[bytes]] = frozenset()
_OWS: Final = (32, 9)  # space, tab
# Outside a Content-Length body, reads are parsed in pieces of at most this size, so the length of a
# chunk-size line (or trailer line) that llhttp streams without limit can be measured: a line wholly inside
# one piece is at most this long, and one that spans pieces is counted exactly (see _measure_line).
_PIECE: Final = MAX_CHUNK_LINE
# llhttp also reads RTSP and ICE request lines ("GET / RTSP/1.0", "SOURCE / ICE/1.0"), as HTTP/1.0.
_FOREIGN_LINE: Final = re.compile(rb"\r?\n?[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ \r\n]+ (?:RTSP|ICE)/")


class _Refuse(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.error = ParseError(status, reason)


def _parse_error(exc: Exception) -> ParseError:
    # llhttp reports every framing fault (CL with TE, TE without a final chunked, ...) as a parse error;
    # RFC 9112 6.3 wants 400 for all of them. Only an unknown HTTP version is 505 (RFC 9110 15.6.6).
    text = str(exc)
    if text == "Invalid HTTP version":
        return ParseError(505, text)
    if text == "Pause on PRI/Upgrade":  # llhttp's words for the HTTP/2 preface
        return ParseError(400, PREFACE_REFUSED)
    return ParseError(400, text or type(exc).__name__)


def _version_of_line(data: bytes) -> str | None:
    """The version, "1.1", when ``data`` opens with a whole request line ending in HTTP/1.1; else None.

    llhttp parses and checks that line all the same; this only spares asking it for the version, which
    httptools formats into a new string per request (about 2 % of the CPU of a small request on 3.13). A
    request line is method SP target SP version CRLF with no space in the target, so a line that ends in
    " HTTP/1.1" CRLF has that version or is refused by llhttp.
    """
    end = data.find(b"\n")
    if end > 10 and data[end - 10 : end] == b" HTTP/1.1\r":
        return "1.1"
    return None


class HttptoolsCodec:
    """Bytes in, events out, with head limits (414/431) enforced while parsing."""

    def __init__(self, limits: Limits) -> None:
        self._max_line = limits.limit_request_line
        self._max_fields = limits.limit_request_fields
        self._max_head = limits.limit_request_head_size
        self._new_parser()
        self._events: list[Event] = []
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._has_connection = self._has_expect = False
        # llhttp reads Proxy-Connection as Connection: either may make an HTTP/1.1 request close.
        self._has_proxy_connection = False
        # Bytes fed since the current head began: an unfinished head is cut off at the limit, not buffered.
        self._head_size = 0
        self._head_fields_size = 0
        self._in_head = True
        self._head_started = False
        self._trailing: bytes | None = None
        # Body bytes still to come of an ``Upgrade: h2c`` request with a body: llhttp stops at its head and
        # leaves the body with the bytes after the upgrade, where this codec reads it (validate.py says why).
        self._h2c_body = 0
        self._failed = False
        # Body state: in a Content-Length body (read whole), or between chunks / in trailers ("framing",
        # where the current line's length is measured); trailer fields are counted, never kept.
        self._chunked = False
        self._fixed_body = False
        self._framing = False
        self._line = 0
        self._trailer_size = 0
        self._body_left = 0  # of a Content-Length body
        # The request line read so far when it spans reads, and the text it is checked in for llhttp's
        # other protocols (llhttp also reads "GET / RTSP/1.0" and "SOURCE / ICE/1.0", as HTTP/1.0).
        self._tail = b""
        self._window: bytes | None = None
        self._line_done = False
        # A read that ended in a CR between requests: the next may start with its LF.
        self._cr_pending = False
        self._body_end = b""
        self._unanswered = 0  # requests parsed whose responses are not complete (see next_cycle)
        # The version of the request whose line opened the current read, when that line reads HTTP/1.1 (see
        # _version_of_line); None: ask llhttp.
        self._line_version: str | None = None

    def _new_parser(self) -> None:
        parser = self._parser = httptools.HttpRequestParser(self)
        # Bound once: a method call by name costs a type lookup per request (dearer on 3.12+).
        self._http_version = parser.get_http_version
        self._method = parser.get_method
        self._feed_data = parser.feed_data

    # -- the Codec interface ------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Event]:
        if self._failed:
            return []
        if self._trailing is not None:
            # Paused after an upgrade request: keep the bytes until the upgrade is taken or declined.
            self._trailing += data
            if self._h2c_body:
                self._read_h2c_body()
                return self._take()
            return []
        if not self._head_started and (self._cr_pending or data[:1] in (b"\r", b"\n")):
            problem = self._leading_problem(data)
            if problem is not None:
                self._fail(problem)
                return self._take()
        self._body_end = b""
        if not self._head_started and not self._tail:
            self._line_version = _version_of_line(data)
        if len(data) <= _PIECE:
            self._feed(data, True)
        elif self._fixed_body and self._body_left >= len(data):
            self._feed(data, False)
        else:
            self._feed_pieces(data)
        if data[-1:] == b"\r" and self._in_head and not self._head_started and not self._stopped():
            # Unless that CR was the last byte of the body that just ended.
            self._cr_pending = not (self._body_end and data.endswith(self._body_end))
        else:
            self._cr_pending = False
        return self._take()

    def _feed_pieces(self, data: bytes) -> None:
        # Its own method, reading the state only through calls: mypy would carry the narrowing of
        # ``self._trailing`` to None (from feed's checks) across the calls that set it, and the compiled
        # build turns that narrowing into a runtime type check.
        start = 0
        end = len(data)
        while start < end:
            body_left = self._fixed_body_left()
            # A Content-Length body goes to llhttp whole; everything else in measured pieces.
            size = body_left if body_left > 0 else _PIECE
            self._feed(data[start : start + size], body_left == 0)
            start += size
            if self._stopped():
                rest = data[start:]
                if rest and not self._failed:
                    self._hold(rest)
                    if self._h2c_body:  # the rest of an Upgrade: h2c request's body was in this read
                        self._read_h2c_body()
                return

    def _stopped(self) -> bool:
        return self._failed or self._trailing is not None

    def _fixed_body_left(self) -> int:
        return self._body_left if self._fixed_body else 0

    def _hold(self, data: bytes) -> None:
        self._trailing = (self._trailing or b"") + data

    def _read_h2c_body(self) -> None:
        trailing = self._trailing or b""
        body = trailing[: self._h2c_body]
        self._trailing = trailing[len(body) :]
        self._h2c_body -= len(body)
        if body:
            self._events.append(Body(body))
        if not self._h2c_body:
            self._events.append(REQUEST_END)

    def _take(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def _leading_problem(self, data: bytes) -> ParseError | None:
        # RFC 9112 2.2: only empty lines (CRLF) may come before a request line; llhttp skips any CR or LF.
        checked = b"\r" + data if self._cr_pending else data
        rest = checked.lstrip(b"\r\n")
        gap = checked[: len(checked) - len(rest)]
        if not rest and gap.endswith(b"\r"):
            gap = gap[:-1]  # perhaps the first half of a CRLF split across reads
        if gap.replace(b"\r\n", b""):
            return ParseError(400, "bare CR or LF before the request line")
        return None

    def _feed(self, data: bytes, scan: bool) -> None:
        if self._tail:
            # A request line begun in an earlier read ends at this read's first LF: judged whole.
            newline = data.find(b"\n")
            if newline != -1:
                line = self._tail + data[:newline]
                self._tail = b""
                self._line_done = True
                if _FOREIGN_LINE.match(line) is not None:
                    self._fail(ParseError(400, "not an HTTP request line"))
                    return
        # A request line inside this read is found by its own target (see _foreign_line).
        # (find, not ``in``: per read on the hot path, and about twice as fast for short reads)
        self._window = data if scan and (data.find(b"RTSP/") != -1 or data.find(b"ICE/") != -1) else None
        if self._framing and self._line:
            # Between chunks and in the trailer section, llhttp streams a line without limit. A line begun
            # in an earlier piece ends at this piece's first LF: measured before llhttp acts on it.
            first = data.find(b"\n")
            if self._line + (len(data) if first == -1 else first) >= MAX_CHUNK_LINE:
                self._fail(ParseError(400, "chunk-size line or trailer field too long"))
                return
        if self._in_head:
            self._head_size += len(data)
        try:
            self._feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._trailing = data[exc.args[0] :]
            if self._h2c_body:
                self._read_h2c_body()
        except httptools.HttpParserCallbackError as exc:
            self._fail(exc.__context__.error if isinstance(exc.__context__, _Refuse) else _parse_error(exc))
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            self._fail(cause.error if isinstance(cause, _Refuse) else _parse_error(exc))
        else:
            if self._in_head and self._head_size > self._max_head:
                self._fail(ParseError(431, "request head too large"))
            elif self._framing:
                # The bytes after the last LF are the line still being read (a line wholly inside one piece
                # is at most _PIECE bytes, which the limit allows).
                newline = data.rfind(b"\n")
                self._line = self._line + len(data) if newline == -1 else len(data) - newline - 1
                if self._line >= MAX_CHUNK_LINE:
                    self._fail(ParseError(400, "chunk-size line or trailer field too long"))
            else:
                self._line = 0
            if self._in_head and self._head_started and not self._line_done:
                self._keep_request_line(data)
            if self._window is not None and self._foreign_line():
                self._fail(ParseError(400, "not an HTTP request line"))

    def _keep_request_line(self, data: bytes) -> None:
        # The request line continues in the next read: its start is kept (bounded) to be judged whole.
        # Once the unfinished line is a field line (a colon before any space), the request line is done.
        newline = data.rfind(b"\n")
        line = self._tail + data if newline == -1 else data[newline + 1 :]
        colon = line.find(b":")
        space = line.find(b" ")
        if colon != -1 and (space == -1 or colon < space):
            self._tail = b""
            self._line_done = True
        else:
            self._tail = line[-(self._max_line + 32) :]

    def _foreign_line(self) -> bool:
        window = self._window
        url = self._url
        if window is None or not url:
            return False
        # The method and target identify this request's own line (a body may hold such text too).
        start = self._method() + b" " + url + b" "
        return start + b"RTSP/" in window or start + b"ICE/" in window

    def next_cycle(self) -> list[Event]:
        self._unanswered -= 1
        if self._trailing is None or self._unanswered > 0:
            # Not at the upgrade request yet: requests pipelined before it are still being answered.
            return []
        # A declined upgrade: the connection goes on as HTTP/1.1 with a fresh parser.
        trailing, self._trailing = self._trailing, None
        self._new_parser()
        self._in_head = True
        self._head_size = 0
        self._cr_pending = False
        self._tail = b""
        return self.feed(trailing) if trailing else []

    def trailing_data(self) -> bytes:
        return self._trailing or b""

    def head_started(self) -> bool:
        return self._in_head and self._head_started

    def buffered(self) -> int:
        return len(self._trailing) if self._trailing is not None else 0

    def _fail(self, error: ParseError) -> None:
        self._failed = True
        self._events.append(error)

    # -- httptools callbacks ------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._has_connection = self._has_expect = self._has_proxy_connection = False
        self._head_fields_size = 0
        self._in_head = True
        self._head_started = True
        self._chunked = self._fixed_body = self._framing = False
        self._line = self._trailer_size = self._body_left = 0
        self._line_done = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._max_line:
            raise _Refuse(414, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            # A trailer field (RFC 9112 7.1.2). Never merged into the request headers, which the app has
            # already been given and trusts: a client could otherwise add, say, X-Forwarded-For or
            # Authorization after the body, past any proxy that checked the head. Counted, then dropped.
            self._trailer_size += len(name) + len(value) + 4
            if self._trailer_size > MAX_TRAILER:
                raise _Refuse(431, "trailer section too large")
            return
        headers = self._headers
        lname = name.lower()
        if lname in _NOTED:
            # Remembered here so the head's completion skips scans of every header for the usual
            # request, which has none of these.
            if lname == b"connection":
                self._has_connection = True
            elif lname == b"expect":
                self._has_expect = True
            elif lname == b"proxy-connection":
                self._has_proxy_connection = True
            elif lname == b"content-length":
                digits = value.strip()
                self._body_left = int(digits) if digits.isdigit() and len(digits) <= 16 else 0
            else:
                if value[-1:] == b"\t":
                    # llhttp refuses this only after on_headers_complete, when the head event is already
                    # out; refuse it here so no app ever sees the request.
                    raise _Refuse(400, "invalid Transfer-Encoding")
                self._chunked = True
                # Codings are case-insensitive (RFC 9110 8.4.1); h11 lowercases them, and so does this codec,
                # so that an app sees the same fields whichever parser runs.
                value = value.lower()
        if value and value[-1] in _OWS:  # llhttp drops the leading whitespace, not the trailing
            value = value.strip()
        headers.append((lname, value))
        if len(headers) > self._max_fields:
            raise _Refuse(431, "too many header fields")
        # A head that arrives whole in one read is measured here (the feed-level count only sees heads
        # that are still incomplete when a read ends).
        self._head_fields_size += len(name) + len(value) + 4
        if self._head_fields_size > self._max_head:
            raise _Refuse(431, "request head too large")

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_size = 0
        http_version = self._line_version
        if http_version is None:
            http_version = self._http_version()
        else:
            self._line_version = None
        headers = self._headers
        problem = head_problem(http_version, headers)
        if problem is not None:
            raise _Refuse(problem.status, problem.reason)
        raw_method = self._method()
        method = _METHODS.get(raw_method)
        if method is None:
            method = _METHODS.setdefault(raw_method, raw_method.decode("ascii"))
        raw_path, query = split_target(self._url)
        tokens = connection_tokens(headers) if self._has_connection else _NO_TOKENS
        upgrade = upgrade_token(headers, tokens) if tokens else None
        if upgrade is not None or raw_method == b"CONNECT":
            problem = upgrade_body_problem(headers, upgrade)
            if upgrade == b"h2c":
                self._h2c_body = content_length(headers)
            if problem is not None:
                raise _Refuse(problem.status, problem.reason)
        self._line_done = True
        if self._window is not None and self._foreign_line():
            raise _Refuse(400, "not an HTTP request line")
        if self._chunked:
            self._framing = True
        else:
            self._fixed_body = True
        self._events.append(
            RequestHead(
                method,
                raw_path,
                query,
                http_version,
                headers,
                self._keep_alive(http_version, tokens),
                upgrade,
                expects_continue(http_version, headers) if self._has_expect else False,
            )
        )

    def _keep_alive(self, http_version: str, tokens: AbstractSet[bytes]) -> bool:
        if http_version != "1.1":
            return keep_alive(http_version, tokens)
        if not self._has_connection and not self._has_proxy_connection:
            # What llhttp would answer: an HTTP/1.1 request closes only on a (Proxy-)Connection close, and
            # asking costs a call into the parser per request.
            return True
        return bool(self._parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        self._framing = False
        self._body_left -= len(body)
        self._body_end = body
        self._events.append(Body(body))

    def on_chunk_complete(self) -> None:
        self._framing = True

    def on_message_complete(self) -> None:
        self._fixed_body = self._framing = False
        self._unanswered += 1
        self._in_head = True
        self._head_started = False
        self._head_size = 0
        if not self._h2c_body:  # else its end comes after its body (_read_h2c_body)
            self._events.append(REQUEST_END)
