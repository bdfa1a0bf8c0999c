"""Checks on a parsed request head that both codecs apply the same way (RFC 9110/9112 framing rules)."""

from __future__ import annotations

from hatchway._http.events import ParseError

_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def head_problem(http_version: str, headers: list[tuple[bytes, bytes]]) -> ParseError | None:
    """The reason to refuse this head, or None. Ambiguous framing is refused, never guessed (RFC 9112 6.3)."""
    hosts = 0
    content_lengths = 0
    transfer_encodings: list[bytes] = []
    for name, value in headers:
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            content_lengths += 1
            if not value.isdigit() or len(value) > 15:
                return ParseError(400, "invalid Content-Length")
        elif name == b"transfer-encoding":
            transfer_encodings.extend(t.strip().lower() for t in value.split(b","))
    if http_version == "1.1" and hosts != 1:
        return ParseError(400, "missing Host header" if hosts == 0 else "duplicate Host header")
    if hosts > 1:
        return ParseError(400, "duplicate Host header")
    if content_lengths > 1:
        return ParseError(400, "duplicate Content-Length")
    if transfer_encodings:
        if content_lengths:
            return ParseError(400, "both Content-Length and Transfer-Encoding")
        if http_version == "1.0":
            return ParseError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if transfer_encodings[-1] != b"chunked":
            return ParseError(501, "unsupported Transfer-Encoding")
        if transfer_encodings.count(b"chunked") > 1:
            return ParseError(400, "chunked applied twice")
        if any(t != b"chunked" for t in transfer_encodings):
            return ParseError(501, "unsupported Transfer-Encoding")
    return None


def keep_alive(http_version: str, connection: set[bytes]) -> bool:
    if http_version == "1.0":
        return b"keep-alive" in connection
    return b"close" not in connection


def upgrade_token(headers: list[tuple[bytes, bytes]], connection: set[bytes]) -> bytes | None:
    if b"upgrade" not in connection:
        return None
    for name, value in headers:
        if name == b"upgrade":
            return value.strip().lower()
    return None


def expects_continue(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"expect" and value.strip().lower() == b"100-continue" for name, value in headers)
