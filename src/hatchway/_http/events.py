"""The seam between the HTTP/1.1 parsers and everything above them: a small event vocabulary.

A codec turns bytes into these events and knows nothing of sockets, the event loop or ASGI. Both
codecs (httptools, h11) produce exactly the same events for the same bytes; the shared wire-case
table in the tests holds them to it.
"""

from __future__ import annotations

from typing import Final, Protocol


class RequestHead:
    """A complete request line and header block."""

    __slots__ = (
        "expect_continue",
        "headers",
        "http_version",
        "keep_alive",
        "method",
        "query",
        "raw_path",
        "upgrade",
    )

    def __init__(
        self,
        method: str,
        raw_path: bytes,
        query: bytes,
        http_version: str,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        upgrade: bytes | None,
        expect_continue: bool,
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self.query = query
        self.http_version = http_version
        #: Names lower-cased, values as sent (leading/trailing whitespace stripped).
        self.headers = headers
        self.keep_alive = keep_alive
        #: The lower-cased Upgrade token (b"websocket") when the client asked to switch protocols.
        self.upgrade = upgrade
        self.expect_continue = expect_continue


class Body:
    """A piece of the request body, de-chunked."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class RequestEnd:
    """The request body is complete."""

    __slots__ = ()


class ParseError:
    """The bytes are not a request hatchway will serve; answer ``status`` and close."""

    __slots__ = ("reason", "status")

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return f"ParseError({self.status}, {self.reason!r})"


Event = RequestHead | Body | RequestEnd | ParseError
REQUEST_END: Final = RequestEnd()

#: The ASGI extension (and message type) for response trailers, offered over HTTP/1.1 and HTTP/2.
TRAILERS: Final = "http.response.trailers"


class Limits(Protocol):
    """The limits a codec enforces while parsing a request head."""

    @property
    def limit_request_line(self) -> int: ...
    @property
    def limit_request_fields(self) -> int: ...
    @property
    def limit_request_head_size(self) -> int: ...


class Codec(Protocol):
    """Bytes in, events out. One instance per connection."""

    def feed(self, data: bytes) -> list[Event]:
        """Parse ``data``; return every event it completes (possibly several pipelined requests)."""

    def next_cycle(self) -> list[Event]:
        """The response to the current request is complete: parse what is buffered for the next one."""

    def trailing_data(self) -> bytes:
        """Bytes received after a request that asked to upgrade (the start of the new protocol)."""

    def head_started(self) -> bool:
        """Part of a request head has arrived and the head is not complete yet."""

    def buffered(self) -> int:
        """Bytes received but not parsed yet (held for the next request or after an upgrade request)."""


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """Split a request target into (raw_path, query_string); absolute-form loses scheme and authority."""
    if target[:1] != b"/" and target.find(b"://", 0, 16) != -1:
        rest = target.split(b"://", 1)[1]
        slash = rest.find(b"/")
        target = rest[slash:] if slash != -1 else b"/"
    question = target.find(b"?")
    if question == -1:
        # The usual target: one search, no partition (a "#" is cut from the query only, as below).
        return target, b""
    return target[:question], target[question + 1 :].partition(b"#")[0]


def connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return tokens
