"""Checks on a parsed request head that both codecs apply the same way (RFC 9110/9112 framing rules)."""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from typing import Final

from hatchway._http.events import ParseError

# The methods llhttp (httptools) accepts on an HTTP/1.x request line; h11 accepts any token. Both codecs
# accept exactly this set so the choice of parser never changes which requests reach the app.
LLHTTP_METHODS: Final = frozenset(
    b"ACL BIND CHECKOUT CONNECT COPY DELETE GET HEAD LINK LOCK M-SEARCH MERGE MKACTIVITY MKCALENDAR MKCOL "
    b"MOVE NOTIFY OPTIONS PATCH POST PROPFIND PROPPATCH PURGE PUT QUERY REBIND REPORT SEARCH SOURCE "
    b"SUBSCRIBE TRACE UNBIND UNLINK UNLOCK UNSUBSCRIBE".split()
)
# RFC 9112 6.1 / RFC 9110 8.6: Content-Length and chunk sizes above 2**53 do not survive every
# intermediary's arithmetic (JavaScript numbers); refusing them removes a request-smuggling lever.
MAX_BODY_LENGTH: Final = 2**53
# RFC 9110 7.2 / RFC 3986 3.2.2: Host is uri-host [ ":" port ]. Only its alphabet is checked (one C-speed
# translate per request): spaces, "/", "@", "?", "#", quotes and controls are refused.
_HOST_CHARS: Final = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-._~%!$&'()*+,;=:[]"
# Host values found valid: a server sees few distinct ones, and a set lookup is cheaper than the translate.
# Bounded, so a client sending a new Host with every request costs the translate and nothing more.
_VALID_HOSTS: Final[set[bytes]] = set()
_VALID_HOSTS_MAX: Final = 256


def head_problem(http_version: str, headers: list[tuple[bytes, bytes]]) -> ParseError | None:
    """The reason to refuse this head, or None. Ambiguous framing is refused, never guessed (RFC 9112 6.3)."""
    if http_version != "1.1" and http_version != "1.0":
        # RFC 9110 15.6.6: a major version we do not speak; HTTP/0.9 has no version at all.
        return (
            ParseError(400, "HTTP/0.9 request")
            if http_version == "0.9"
            else ParseError(505, "unsupported HTTP version")
        )
    host: bytes | None = None
    hosts = 0
    content_lengths = 0
    transfer_encodings: list[bytes] = []
    for name, value in headers:
        if name == b"host":
            hosts += 1
            host = value
        elif name == b"content-length":
            content_lengths += 1
            # RFC 9112 6.3: a list, sign, hex or otherwise invalid value is unrecoverable framing.
            if not value.isdigit() or not value.isascii() or len(value) > 16 or int(value) > MAX_BODY_LENGTH:
                return ParseError(400, "invalid Content-Length")
        elif name == b"transfer-encoding":
            transfer_encodings.extend(t.strip().lower() for t in value.split(b","))
        elif name == b"proxy-connection" and value.lower().find(b"upgrade") != -1:
            # llhttp reads the obsolete Proxy-Connection as Connection: with an Upgrade header it stops at the
            # head and leaves any body to be parsed as the next request, where h11 reads it as a body.
            # Nothing legitimate sends it (RFC 9112 9.6 lists Proxy-Connection as obsolete): refused.
            return ParseError(400, "Proxy-Connection: upgrade")
    # RFC 9112 3.2: exactly one Host on HTTP/1.1, at most one on HTTP/1.0, and a valid value.
    if hosts > 1:
        return ParseError(400, "duplicate Host header")
    if host is None:
        if http_version == "1.1":
            return ParseError(400, "missing Host header")
    elif host not in _VALID_HOSTS:
        if host.translate(None, _HOST_CHARS):
            return ParseError(400, "invalid Host header")
        if len(_VALID_HOSTS) < _VALID_HOSTS_MAX:
            _VALID_HOSTS.add(host)
    if content_lengths > 1:
        return ParseError(400, "duplicate Content-Length")
    if transfer_encodings:
        # RFC 9112 6.1-6.3: TE with CL, TE on HTTP/1.0, chunked applied twice or not last: 400; a coding
        # we do not implement before a final chunked: 501.
        if content_lengths:
            return ParseError(400, "both Content-Length and Transfer-Encoding")
        if http_version == "1.0":
            return ParseError(400, "Transfer-Encoding in an HTTP/1.0 request")
        for coding in transfer_encodings:
            # A coding is a token (RFC 9110 10.1.4); anything else is malformed (400), not unsupported (501).
            if _FIELD_NAME.fullmatch(coding) is None:
                return ParseError(400, "invalid Transfer-Encoding")
        if transfer_encodings[-1] != b"chunked":
            return ParseError(400, "chunked is not the final Transfer-Encoding")
        if transfer_encodings.count(b"chunked") > 1:
            return ParseError(400, "chunked applied twice")
        return ParseError(501, "unsupported Transfer-Encoding") if len(transfer_encodings) > 1 else None
    return None


# -- raw-head checks for the h11 codec ---------------------------------------------------------------
# llhttp (strict, as httptools configures it) refuses these on the wire; h11 tolerates some of them, so
# the h11 codec checks the raw head bytes first and the two codecs refuse the same requests.
#   bare LF or bare CR (RFC 9112 2.2: no tolerance, it is how line-ending smuggling works),
#   obs-fold (RFC 9112 5.2: a server MUST reject or replace; hatchway rejects),
#   control characters and DEL in field values (RFC 9110 5.5).
_BAD_HEAD_BYTES: Final = re.compile(rb"(?<!\r)\n|\r(?!\n)|\n[ \t]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Absolute-form as llhttp reads it: a letters-only scheme, an authority of URI characters, then "/", "?" or
# the end (RFC 9112 3.2.2; llhttp is stricter than RFC 3986 about the scheme).
_ABSOLUTE_FORM: Final = re.compile(rb"[A-Za-z]+://[A-Za-z0-9\-._~%!$&'()*+,;=:@\[\]]*(?:[/?][^ ]*)?(?: |$)")
_FIELD_NAME: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEAD_END: Final = re.compile(rb"\r?\n\r?\n")
_REQUEST_LINE_VERSION: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [!-~]+ HTTP/([0-9]\.[0-9])")
_REQUEST_LINE: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [!-~]+ HTTP/[0-9]\.[0-9]")


def find_head_end(data: bytes | bytearray, start: int = 0) -> int:
    """The index just past the blank line ending the head in ``data`` (searched from ``start``), or -1."""
    match = _HEAD_END.search(data, start)
    return match.end() if match else -1


#: The reason logged when an HTTP/2 client (prior knowledge) reaches a server without http2.
PREFACE_REFUSED: Final = "the HTTP/2 connection preface, and HTTP/2 is off (start the server with --http2)"


def raw_head_problem(head: bytes, max_fields: int) -> ParseError | None:
    """Refusals for a complete raw head (request line to blank line) that llhttp makes on the wire."""
    line_version = _REQUEST_LINE_VERSION.match(head)
    if line_version is not None and line_version.group(1) not in (b"1.0", b"1.1") and head[:4] != b"PRI ":
        # llhttp judges the version as it reads it, before the line ending: the same status either way.
        # (Not the HTTP/2 preface, "PRI * HTTP/2.0", which llhttp refuses as a request: 400.)
        return head_problem(line_version.group(1).decode(), [])
    if _BAD_HEAD_BYTES.search(head):
        return ParseError(400, "invalid characters or line endings in the request head")
    lines = head[:-4].split(b"\r\n")
    method, _, rest = lines[0].partition(b" ")
    if method not in LLHTTP_METHODS:
        if lines[0] == b"PRI * HTTP/2.0":
            return ParseError(400, PREFACE_REFUSED)
        return ParseError(400, "invalid method")
    if rest[:1] == b" ":
        return ParseError(400, "invalid request line")
    # RFC 9112 3.2: origin-form ("/..."), asterisk-form, absolute-form ("scheme://"), or authority-form
    # for CONNECT; llhttp refuses any other start, so h11 must too.
    if rest[:1] not in (b"/", b"*") and method != b"CONNECT" and not _ABSOLUTE_FORM.match(rest):
        return ParseError(400, "invalid request target")
    if _REQUEST_LINE.fullmatch(lines[0]) is None:
        return ParseError(400, "invalid request line")
    if len(lines) - 1 > max_fields:
        return ParseError(431, "too many header fields")
    framing = []
    hosts = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _FIELD_NAME.fullmatch(name):
            # RFC 9112 5.1: no whitespace between name and colon; RFC 9110 5.1: the name is a token.
            return ParseError(400, "invalid header line")
        lname = name.lower()
        if lname == b"content-length" or lname == b"transfer-encoding":
            if lname == b"transfer-encoding" and value.endswith(b"\t"):
                return ParseError(400, "invalid Transfer-Encoding")  # as llhttp: a trailing tab is refused
            framing.append((lname, value.strip(b" \t")))
        elif lname == b"host":
            hosts.append((lname, value.strip(b" \t")))
    if framing or len(hosts) > 1:
        # Checked before h11 reads the head, which judges some framing fields itself (with other statuses).
        version = b"1.0" if lines[0].endswith(b"HTTP/1.0") else b"1.1"
        problem = head_problem(version.decode(), [*framing, *(hosts or [(b"host", b"")])])
        if problem is not None:
            return problem
    return None


# RFC 9112 7.1.1 chunk-ext, read exactly as llhttp reads it so both codecs agree: no whitespace anywhere (BWS
# is refused), names and values of token characters or quoted strings, and llhttp's leniencies (empty names
# and values) kept; only a line ending right after ";" is refused.
_CHUNK_LINE: Final = re.compile(
    rb"([0-9A-Fa-f]+)"
    rb"((?:;[!#$%&'*+\-.^_`|~0-9A-Za-z]*"
    rb"(?:=[!#$%&'*+\-.^_`|~0-9A-Za-z]*(?:\"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*\")?)?)*)"
    rb"(?<!;)\r\n"
)
#: Chunk-size line including extensions; longer lines are refused (llhttp streams extensions, h11 buffers them).
MAX_CHUNK_LINE: Final = 4096
#: Trailer section after the last chunk (h11 buffers it; llhttp streams it field by field).
MAX_TRAILER: Final = 16384


def chunk_size(line: bytes) -> int | ParseError:
    """The size a chunk-size line (with its CRLF) declares, or why it is refused (RFC 9112 7.1)."""
    match = _CHUNK_LINE.fullmatch(line)
    if match is None:
        return ParseError(400, "invalid chunk header")
    digits = match.group(1).lstrip(b"0")
    if len(digits) > 14 or (digits and int(digits, 16) > MAX_BODY_LENGTH):
        return ParseError(400, "chunk size too large")
    return int(digits, 16) if digits else 0


def upgrade_body_problem(headers: list[tuple[bytes, bytes]], upgrade: bytes | None) -> ParseError | None:
    """Refuse a body on an upgrade or CONNECT request.

    llhttp treats every byte after such a head as the new protocol, h11 reads the body first; if the
    upgrade is declined (RFC 9110 7.8) the two would frame the rest of the connection differently, so a
    request could hide in the "body". No WebSocket handshake has a body. ``Upgrade: h2c`` with a
    Content-Length body is the exception (``curl --http2 -d``): both codecs read that body as HTTP/1.1
    and the request is answered over HTTP/1.1, the offer ignored (RFC 7540 3.2 lets the server choose).
    """
    for name, value in headers:
        if name == b"transfer-encoding" or (
            name == b"content-length" and value.strip(b"0") and upgrade != b"h2c"
        ):
            return ParseError(400, "a body on an upgrade or CONNECT request")
    return None


def content_length(headers: list[tuple[bytes, bytes]]) -> int:
    """The request's Content-Length (already checked by head_problem), 0 without one."""
    for name, value in headers:
        if name == b"content-length":
            return int(value)
    return 0


def keep_alive(http_version: str, connection: AbstractSet[bytes]) -> bool:
    if http_version == "1.0":
        return b"keep-alive" in connection
    return b"close" not in connection


def upgrade_token(headers: list[tuple[bytes, bytes]], connection: AbstractSet[bytes]) -> bytes | None:
    if b"upgrade" not in connection:
        return None
    for name, value in headers:
        if name == b"upgrade":
            return value.strip().lower()
    return None


def expects_continue(http_version: str, headers: list[tuple[bytes, bytes]]) -> bool:
    # RFC 9110 10.1.1: a server must ignore 100-continue from an HTTP/1.0 client (it cannot read a 1xx).
    return http_version != "1.0" and any(
        name == b"expect" and value.strip().lower() == b"100-continue" for name, value in headers
    )
