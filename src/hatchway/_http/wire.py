"""Response wire pieces shared by HTTP/1.1, HTTP/2 and the WebSocket handshake: status lines, reason phrases
and the checks every response header passes."""

from __future__ import annotations

import http
import re
from typing import Any, Final

# RFC 9110 5.1 token characters; anything else in a response header name is refused.
INVALID_HEADER_NAME: Final = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
# CR, LF and NUL (and other controls but tab) in a value would split or corrupt the response.
INVALID_HEADER_VALUE: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

_STATUS_LINES: Final[dict[int, bytes]] = {}

# Validated response header lines by (name, value) as the app sent them: most responses repeat the same
# few headers, so the checks, the lower-casing and the formatting run once per distinct header. Bounded, and
# short values only; cookies and credentials are never kept.
HEADER_LINES: Final[dict[tuple[bytes, bytes], tuple[bytes, int, int]]] = {}
HEADER_LINES_MAX: Final = 512
_UNCACHED: Final = frozenset({b"set-cookie", b"authorization", b"www-authenticate", b"proxy-authenticate"})


# What a response header line means for the framing (see header_entry).
PLAIN: Final = 0
LENGTH: Final = 1  # Content-Length, with its value
CHUNKED: Final = 2  # Transfer-Encoding: chunked (dropped: hatchway frames the body itself)
CLOSE: Final = 3  # Connection: close (dropped: hatchway adds its own)
DEFAULTS: Final = 4  # Server or Date, which replace hatchway's defaults


def header_entry(name: Any, value: Any) -> tuple[bytes, int, int]:
    """Check one response header and say what it means: (line, kind, content length)."""
    if INVALID_HEADER_NAME.search(name) or not name:
        raise RuntimeError(f"Invalid HTTP header name {name!r} in response.")
    if INVALID_HEADER_VALUE.search(value):
        raise RuntimeError(f"Invalid HTTP header value {value!r} in response.")
    lname: bytes = name.lower()
    line: bytes = b"%s: %s\r\n" % (name, value)
    entry: tuple[bytes, int, int] = (line, PLAIN, 0)
    if lname == b"content-length":
        if not value.strip().isdigit():
            raise RuntimeError(f"Invalid Content-Length {value!r} in response.")
        entry = (line, LENGTH, int(value))
    elif lname == b"transfer-encoding":
        if value.strip().lower() == b"chunked":
            entry = (line, CHUNKED, 0)
    elif lname == b"connection":
        if b"close" in value.lower():
            entry = (line, CLOSE, 0)
    elif lname == b"server" or lname == b"date":
        entry = (line, DEFAULTS, 0)
    if (
        len(HEADER_LINES) < HEADER_LINES_MAX
        and len(value) <= 64
        and name.__class__ is bytes
        and value.__class__ is bytes
        and lname not in _UNCACHED
    ):
        HEADER_LINES[(name, value)] = entry
    return entry


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status``; empty for codes without one (allowed by RFC 9112 4)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status).encode("ascii"))
    return line


def plain_response(status: int, text: str, default_headers: bytes, *, close: bool = True) -> bytes:
    """A complete small text/plain response, as hatchway sends for errors it answers itself."""
    body = text.encode("utf-8")
    return b"".join(
        (
            status_line(status),
            default_headers,
            b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n" if close else b"\r\n",
            body,
        )
    )


# Fields that frame, route or authenticate a message; a trailer section must not carry them (RFC 9110 6.5.1).
_NOT_IN_TRAILERS: Final = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"host", b"trailer", b"te"}
)


def trailer_line(name: Any, value: Any) -> bytes:
    """One checked trailer field line, as for a response header."""
    line = header_entry(name, value)[0]
    if name.lower() in _NOT_IN_TRAILERS:
        raise RuntimeError(f"Header {name!r} is not allowed in a trailer section.")
    return line
