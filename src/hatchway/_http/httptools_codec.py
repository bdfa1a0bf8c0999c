"""The default codec: llhttp through httptools. The only module that imports httptools."""

from __future__ import annotations

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
    expects_continue,
    head_problem,
    keep_alive,
    upgrade_body_problem,
    upgrade_token,
)

_METHODS: Final[dict[bytes, str]] = {}
_NOTED: Final = frozenset({b"connection", b"expect"})


class _Refuse(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.error = ParseError(status, reason)


def _parse_error(exc: Exception) -> ParseError:
    # llhttp reports every framing fault (CL with TE, TE without a final chunked, ...) as a parse error;
    # RFC 9112 6.3 wants 400 for all of them. Only an unknown HTTP version is 505 (RFC 9110 15.6.6).
    text = str(exc)
    if text == "Invalid HTTP version":
        return ParseError(505, text)
    return ParseError(400, text or type(exc).__name__)


class HttptoolsCodec:
    """Bytes in, events out, with head limits (414/431) enforced while parsing."""

    def __init__(self, limits: Limits) -> None:
        self._max_line = limits.limit_request_line
        self._max_fields = limits.limit_request_fields
        self._max_head = limits.limit_request_head_size
        self._parser = httptools.HttpRequestParser(self)
        self._events: list[Event] = []
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._has_connection = self._has_expect = False
        # Bytes fed since the current head began: an unfinished head is cut off at the limit, not buffered.
        self._head_size = 0
        self._head_fields_size = 0
        self._in_head = True
        self._head_started = False
        self._trailing: bytes | None = None
        self._failed = False
        self._unanswered = 0  # requests parsed whose responses are not complete (see next_cycle)

    # -- the Codec interface ------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Event]:
        if self._failed:
            return []
        if self._trailing is not None:
            # Paused after an upgrade request: keep the bytes until the upgrade is taken or declined.
            self._trailing += data
            return []
        if self._in_head:
            self._head_size += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._trailing = data[exc.args[0] :]
        except httptools.HttpParserCallbackError as exc:
            self._fail(exc.__context__.error if isinstance(exc.__context__, _Refuse) else _parse_error(exc))
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            self._fail(cause.error if isinstance(cause, _Refuse) else _parse_error(exc))
        else:
            if self._in_head and self._head_size > self._max_head:
                self._fail(ParseError(431, "request head too large"))
        events, self._events = self._events, []
        return events

    def next_cycle(self) -> list[Event]:
        self._unanswered -= 1
        if self._trailing is None or self._unanswered > 0:
            # Not at the upgrade request yet: requests pipelined before it are still being answered.
            return []
        # A declined upgrade: the connection goes on as HTTP/1.1 with a fresh parser.
        trailing, self._trailing = self._trailing, None
        self._parser = httptools.HttpRequestParser(self)
        self._in_head = True
        self._head_size = 0
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
        self._has_connection = self._has_expect = False
        self._head_fields_size = 0
        self._in_head = True
        self._head_started = True

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._max_line:
            raise _Refuse(414, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        lname = name.lower()
        if lname == b"transfer-encoding" and value[-1:] == b"\t":
            # llhttp refuses this only after on_headers_complete, when the head event is already out;
            # refuse it here so no app ever sees the request.
            raise _Refuse(400, "invalid Transfer-Encoding")
        headers.append((lname, value.strip()))
        if lname in _NOTED:
            # Remembered here so the head's completion skips two scans of every header for the usual
            # request, which has neither.
            if lname == b"connection":
                self._has_connection = True
            else:
                self._has_expect = True
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
        parser = self._parser
        http_version = parser.get_http_version()
        headers = self._headers
        problem = head_problem(http_version, headers)
        if problem is not None:
            raise _Refuse(problem.status, problem.reason)
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method)
        if method is None:
            method = _METHODS.setdefault(raw_method, raw_method.decode("ascii"))
        raw_path, query = split_target(self._url)
        tokens = connection_tokens(headers) if self._has_connection else set()
        upgrade = upgrade_token(headers, tokens) if tokens else None
        if upgrade is not None or raw_method == b"CONNECT":
            problem = upgrade_body_problem(headers)
            if problem is not None:
                raise _Refuse(problem.status, problem.reason)
        self._events.append(
            RequestHead(
                method,
                raw_path,
                query,
                http_version,
                headers,
                parser.should_keep_alive() if http_version == "1.1" else keep_alive(http_version, tokens),
                upgrade,
                expects_continue(http_version, headers) if self._has_expect else False,
            )
        )

    def on_body(self, body: bytes) -> None:
        self._events.append(Body(body))

    def on_message_complete(self) -> None:
        self._unanswered += 1
        self._in_head = True
        self._head_started = False
        self._head_size = 0
        self._events.append(REQUEST_END)
