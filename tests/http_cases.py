"""One table of HTTP/1.1 wire cases: raw request bytes and the events (and so the answers) they must produce.

The same table drives the in-memory codec tests (``test_codecs.py``, both codecs, also split at every byte)
and the socket tests (``test_http_wire.py``, both ``http=`` settings). A case's events are written in a
short form: ``head(...)``, ``body(b"...")`` (consecutive pieces merged), ``END`` and ``error(status)``.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from typing import Any

from hatchway._http.events import Body, Codec, Event, ParseError, RequestEnd, RequestHead

Summary = tuple[Any, ...]
END: Summary = ("end",)


def head(
    method: str = "GET", path: bytes = b"/", query: bytes = b"", version: str = "1.1", keep_alive: bool = True
) -> Summary:
    return ("head", method, path, query, version, keep_alive)


def body(data: bytes) -> Summary:
    return ("body", data)


def error(status: int) -> Summary:
    return ("error", status)


def summarize(events: list[Event]) -> list[Summary]:
    """Events in the table's short form; adjacent body pieces merged (their split depends on reads)."""
    out: list[Summary] = []
    for event in events:
        if isinstance(event, RequestHead):
            out.append(head(event.method, event.raw_path, event.query, event.http_version, event.keep_alive))
        elif isinstance(event, Body):
            if out and out[-1][0] == "body":
                out[-1] = body(out[-1][1] + event.data)
            elif event.data:
                out.append(body(event.data))
        elif isinstance(event, RequestEnd):
            out.append(END)
        else:
            assert isinstance(event, ParseError), event
            assert 400 <= event.status <= 599, event
            assert event.reason, event
            out.append(error(event.status))
    return out


@dataclasses.dataclass(frozen=True)
class WireCase:
    id: str
    raw: bytes
    events: list[Summary]
    #: Also fed one byte at a time (and split at every position) in the codec tests.
    split: bool = False
    #: Codec name -> events, where the two parsers knowingly differ (documented in docs/http.md).
    differs: dict[str, list[Summary]] | None = None

    def events_for(self, codec: str) -> list[Summary]:
        return (self.differs or {}).get(codec, self.events)

    def answers(self, codec: str) -> list[int | tuple[int, bytes]]:
        """What a client sees with the echo app: (200, echoed request) per request, then an error status.

        The connection closes after an error or a request that does not keep the connection alive, so
        nothing after either is ever answered (a request smuggled behind it included).
        """
        out: list[int | tuple[int, bytes]] = []
        current: list[Any] = []
        for item in self.events_for(codec):
            kind = item[0]
            if kind == "head":
                current = [item, b""]
            elif kind == "body":
                current[1] += item[1]
            elif kind == "end":
                method, path, query = current[0][1:4]
                out.append((200, echo_text(method, path, query, current[1])))
                if not current[0][5]:
                    return out
                current = []
            else:
                out.append(item[1])
                return out
        return out


def echo_text(method: str, path: bytes, query: bytes, data: bytes) -> bytes:
    return b"%s %s ?%s %d:%s" % (method.encode(), path, query, len(data), data)


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every request with ``echo_text`` of what it received."""
    assert scope["type"] == "http"
    data = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        data += message.get("body", b"")
        if not message.get("more_body"):
            break
    text = echo_text(scope["method"], scope["raw_path"], scope["query_string"], data)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": text})


OK = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
POST = b"POST / HTTP/1.1\r\nHost: a\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
P = head("POST")

CASES: list[WireCase] = [
    # -- valid requests --------------------------------------------------------------------------------
    WireCase("simple-get", OK, [head(), END], split=True),
    WireCase(
        "path-and-query",
        b"GET /a%20b/c?x=1&y=%2F HTTP/1.1\r\nHost: a\r\n\r\n",
        [head("GET", b"/a%20b/c", b"x=1&y=%2F"), END],
    ),
    WireCase(
        "absolute-form", b"GET http://x/p?q HTTP/1.1\r\nHost: x\r\n\r\n", [head("GET", b"/p", b"q"), END]
    ),
    WireCase("fragment-dropped", b"GET /p?q#f HTTP/1.1\r\nHost: a\r\n\r\n", [head("GET", b"/p", b"q"), END]),
    WireCase("asterisk-form", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", [head("OPTIONS", b"*"), END]),
    WireCase("custom-known-method", b"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", [head("PURGE", b"/x"), END]),
    WireCase("content-length", POST + b"Content-Length: 3\r\n\r\nabc", [P, body(b"abc"), END], split=True),
    WireCase("content-length-zero", POST + b"Content-Length: 0\r\n\r\n", [P, END]),
    WireCase("content-length-ows", POST + b"Content-Length:  3 \r\n\r\nabc", [P, body(b"abc"), END]),
    WireCase(
        "content-length-15-digits",
        POST + b"Content-Length: 000000000000003\r\n\r\nabc",
        [P, body(b"abc"), END],
    ),
    WireCase("chunked", CHUNKED + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", [P, body(b"abcde"), END], split=True),
    WireCase(
        "chunked-uppercase-hex", CHUNKED + b"A\r\n0123456789\r\n0\r\n\r\n", [P, body(b"0123456789"), END]
    ),
    WireCase(
        "chunked-extensions",
        CHUNKED + b'3;a=b;c="d e"\r\nabc\r\n0;x\r\n\r\n',
        [P, body(b"abc"), END],
        split=True,
    ),
    WireCase(
        "chunked-trailers",
        CHUNKED + b"3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n",
        [P, body(b"abc"), END],
        split=True,
    ),
    WireCase("chunked-case-insensitive", POST + b"Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n", [P, END]),
    WireCase(
        "get-with-body",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
        [head(), body(b"hi"), END],
    ),
    WireCase("http-1.0", b"GET / HTTP/1.0\r\n\r\n", [head(version="1.0", keep_alive=False), END]),
    WireCase(
        "http-1.0-keep-alive", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", [head(version="1.0"), END]
    ),
    # Each request's own version, whatever the request before it in the same read said (the httptools codec
    # reads the version off a read's first line rather than asking llhttp: see _version_of_line).
    WireCase(
        "pipelined-1.1-then-1.0",
        OK + b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        [head(), END, head("GET", b"/b", version="1.0"), END],
        split=True,
    ),
    WireCase(
        "pipelined-1.0-then-1.1",
        b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + OK,
        [head("GET", b"/b", version="1.0"), END, head(), END],
        split=True,
    ),
    WireCase(
        "empty-lines-then-1.0",
        b"\r\n" + b"GET / HTTP/1.0\r\n\r\n",
        [head(version="1.0", keep_alive=False), END],
    ),
    WireCase(
        "1.0-with-1.1-in-a-field",
        b"GET / HTTP/1.0\r\nX: a HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
        [head(version="1.0"), END],
    ),
    WireCase(
        "target-ending-in-version-text",
        b"GET /HTTP/1.1 HTTP/1.0\r\n\r\n",
        [head(path=b"/HTTP/1.1", version="1.0", keep_alive=False), END],
    ),
    WireCase(
        "connection-close",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        [head(keep_alive=False), END],
    ),
    WireCase("empty-host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", [head(), END]),
    WireCase("host-ipv6-port", b"GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n", [head(), END]),
    WireCase("leading-empty-lines", b"\r\n\r\n" + OK, [head(), END], split=True),
    # RFC 9112 2.2 allows only empty lines (CRLF) before a request line; llhttp skips lone CRs and LFs.
    WireCase("leading-bare-cr", b"\r" + OK, [error(400)], split=True),
    WireCase("leading-bare-lf", b"\n" + OK, [error(400)], split=True),
    WireCase("leading-cr-cr-lf", b"\r\r\n" + OK, [error(400)], split=True),
    # llhttp also parses RTSP and ICE request lines and reports them as HTTP/1.0.
    WireCase("rtsp-request-line", b"GET / RTSP/1.0\r\nHost: a\r\n\r\n", [error(400)], split=True),
    WireCase("ice-request-line", b"SOURCE / ICE/1.0\r\nHost: a\r\n\r\n", [error(400)], split=True),
    WireCase("rtsp-method-and-line", b"DESCRIBE / RTSP/1.0\r\nCSeq: 1\r\n\r\n", [error(400)], split=True),
    WireCase("http-version-1-2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", [error(505)]),
    WireCase("http-version-3-0", b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", [error(505)]),
    WireCase(
        "too-many-fields-unfinished-head", b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 150, [error(431)]
    ),
    # Found in review: the RTSP/ICE check looks at each request's own line, nowhere else.
    WireCase(
        "body-containing-an-rtsp-line",
        POST + b"Content-Length: 29\r\n\r\nDESCRIBE rtsp://x/ RTSP/1.0\r\n",
        [P, body(b"DESCRIBE rtsp://x/ RTSP/1.0\r\n"), END],
        split=True,
    ),
    WireCase(
        "good-request-then-rtsp-line",
        OK + b"GET /b RTSP/1.0\r\nHost: a\r\n\r\n",
        [head(), END, error(400)],
        split=True,
    ),
    WireCase(
        "rtsp-line-after-a-body",
        POST + b"Content-Length: 3\r\n\r\nabcGET /b RTSP/1.0\r\nHost: a\r\n\r\n",
        [P, body(b"abc"), END, error(400)],
        split=True,
    ),
    # An empty line between requests, its CR and LF in different reads.
    WireCase(
        "empty-line-after-a-body",
        POST + b"Content-Length: 3\r\n\r\nabc\r\n" + OK,
        [P, body(b"abc"), END, head(), END],
        split=True,
    ),
    WireCase(
        "empty-line-after-a-chunked-body",
        CHUNKED + b"3\r\nabc\r\n0\r\n\r\n\r\n" + OK,
        [P, body(b"abc"), END, head(), END],
        split=True,
    ),
    # A chunked request behind a large Content-Length body in the same read is still measured.
    WireCase(
        "long-chunk-extension-behind-a-large-body",
        POST
        + b"Content-Length: 5000\r\n\r\n"
        + b"x" * 5000
        + CHUNKED
        + b"1;e="
        + b"v" * 10_000
        + b"\r\nz\r\n0\r\n\r\n",
        [P, body(b"x" * 5000), END, P, error(400)],
    ),
    # Empty lines before a request count towards the head's size (h11 skipped them without limit).
    WireCase("empty-line-flood", b"\r\n" * 40_000 + OK, [error(431)]),
    # Found by the differential fuzzer (fuzz/fuzz_codecs.py): the same status from both codecs.
    WireCase("http-version-then-bare-lf", b"GET / HTTP/0.1\n\r\nHost: a\r\n\r\n", [error(505)]),
    WireCase(
        "request-line-without-version",
        b"POST /HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        [error(400)],
    ),
    WireCase(
        "transfer-encoding-not-a-token",
        POST + b"Transfer-Encoding: /x, chunked\r\n\r\n0\r\n\r\n",
        [error(400)],
    ),
    WireCase(
        "duplicate-host-with-unknown-coding",
        POST + b"Transfer-Encoding: gzip\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        [error(400)],
    ),
    WireCase("trailer-content-length", CHUNKED + b"0\r\nContent-Length: 3\r\n\r\n", [P, error(400)]),
    WireCase(
        "trailer-transfer-encoding", CHUNKED + b"0\r\nTransfer-Encoding: chunked\r\n\r\n", [P, error(400)]
    ),
    WireCase("http-version-two-digits", b"GET / HTTP/12.1\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase("obs-text-and-tab-in-value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\xe9\r\n\r\n", [head(), END]),
    WireCase(
        "pipelined",
        OK + POST + b"Content-Length: 1\r\n\r\nx" + OK,
        [head(), END, P, body(b"x"), END, head(), END],
        split=True,
    ),
    WireCase(
        "pipelined-after-close",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + OK,
        [head(keep_alive=False), END, error(400)],
    ),
    WireCase(
        "h2c-upgrade-ignored",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\n\r\n",
        [head(), END],
    ),
    WireCase(
        "pipelined-before-upgrade",
        OK + b"GET /u HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + OK,
        [head(), END, head("GET", b"/u"), END, head(), END],
        split=True,
    ),
    WireCase(
        "chunk-extension-empty-value", CHUNKED + b'3;a=;b="";=c\r\nabc\r\n0\r\n\r\n', [P, body(b"abc"), END]
    ),
    # -- framing: ambiguous or invalid is 400 (RFC 9112 6.3), never guessed -------------------------------
    WireCase(
        "cl-and-te", POST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [error(400)]
    ),
    WireCase(
        "te-and-cl-smuggle",
        POST + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + SMUGGLED + b"0\r\n\r\n",
        [error(400)],
    ),
    WireCase("cl-duplicate-same", POST + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", [error(400)]),
    WireCase(
        "cl-duplicate-differ", POST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", [error(400)]
    ),
    WireCase("cl-list", POST + b"Content-Length: 3, 3\r\n\r\nabc", [error(400)]),
    WireCase("cl-plus", POST + b"Content-Length: +3\r\n\r\nabc", [error(400)]),
    WireCase("cl-minus", POST + b"Content-Length: -3\r\n\r\nabc", [error(400)]),
    WireCase("cl-hex", POST + b"Content-Length: 0x3\r\n\r\nabc", [error(400)]),
    WireCase("cl-inner-space", POST + b"Content-Length: 1 2\r\n\r\nabc", [error(400)]),
    WireCase("cl-empty", POST + b"Content-Length: \r\n\r\nabc", [error(400)]),
    WireCase("cl-above-2^53", POST + b"Content-Length: 9007199254740993\r\n\r\nabc", [error(400)]),
    WireCase("cl-overflow", POST + b"Content-Length: 99999999999999999999999\r\n\r\nabc", [error(400)]),
    WireCase(
        "te-chunked-not-last", POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", [error(400)]
    ),
    WireCase("te-identity", POST + b"Transfer-Encoding: identity\r\n\r\n" + SMUGGLED, [error(400)]),
    WireCase("te-unknown", POST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", [error(400)]),
    WireCase("te-empty", POST + b"Transfer-Encoding: \r\n\r\n", [error(400)]),
    WireCase(
        "te-chunked-twice", POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", [error(400)]
    ),
    WireCase(
        "te-two-fields",
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        [error(400)],
    ),
    WireCase(
        "te-unsupported-coding", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", [error(501)]
    ),
    WireCase("te-http-1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [error(400)]),
    WireCase("te-space-before-colon", POST + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", [error(400)]),
    WireCase("te-trailing-tab", POST + b"Transfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n", [error(400)]),
    WireCase("te-trailing-comma", POST + b"Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", [error(400)]),
    WireCase("te-vertical-tab", POST + b"Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n", [error(400)]),
    # -- chunked body faults: the head was fine, the body is not ----------------------------------------
    WireCase("chunk-size-not-hex", CHUNKED + b"zz\r\nabc\r\n0\r\n\r\n", [P, error(400)]),
    WireCase("chunk-size-negative", CHUNKED + b"-3\r\nabc\r\n0\r\n\r\n", [P, error(400)]),
    WireCase("chunk-size-0x", CHUNKED + b"0x3\r\nabc\r\n0\r\n\r\n", [P, error(400)]),
    WireCase("chunk-size-space", CHUNKED + b"3 \r\nabc\r\n0\r\n\r\n", [P, error(400)]),
    WireCase("chunk-size-overflow", CHUNKED + b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n", [P, error(400)]),
    WireCase(
        "chunk-size-above-2^53",
        CHUNKED + b"20000000000001\r\nabc\r\n0\r\n\r\n",
        [P, error(400)],
        # llhttp parses sizes exactly as 64-bit integers and does not expose them to httptools users.
        differs={"httptools": [P, body(b"abc\r\n0\r\n\r\n")]},
    ),
    WireCase("chunk-extension-bws", CHUNKED + b"3 ;a=b\r\nabc\r\n0\r\n\r\n", [P, error(400)]),
    WireCase("chunk-extension-space-in-value", CHUNKED + b"3;a= b\r\nabc\r\n0\r\n\r\n", [P, error(400)]),
    WireCase("chunk-extension-bare-semicolon", CHUNKED + b"3;\r\nabc\r\n0\r\n\r\n", [P, error(400)]),
    WireCase("chunk-missing-crlf", CHUNKED + b"3\r\nabcX0\r\n\r\n", [P, body(b"abc"), error(400)]),
    WireCase("chunk-bare-lf", CHUNKED + b"3\nabc\n0\n\n", [P, error(400)]),
    WireCase("chunk-bare-cr", CHUNKED + b"3\rabc\r\n0\r\n\r\n", [P, error(400)]),
    WireCase("chunk-extension-control", CHUNKED + b"3;\x01\r\nabc\r\n0\r\n\r\n", [P, error(400)]),
    WireCase("chunk-extension-bad-quote", CHUNKED + b'3;a="b\r\nabc\r\n0\r\n\r\n', [P, error(400)]),
    WireCase(
        "chunk-extension-long",
        CHUNKED + b"3;a=" + b"b" * 5000 + b"\r\nabc\r\n0\r\n\r\n",
        [P, error(400)],
    ),
    WireCase(
        # llhttp streams extensions without limit; hatchway bounds the line for both codecs.
        "chunk-extension-100k",
        CHUNKED + b"3;a=" + b"b" * 100_000 + b"\r\nabc\r\n0\r\n\r\n",
        [P, error(400)],
    ),
    WireCase(
        "chunk-extension-just-under-limit",
        CHUNKED + b"3;a=" + b"b" * 4088 + b"\r\nabc\r\n0\r\n\r\n",
        [P, body(b"abc"), END],
        split=True,
    ),
    WireCase(
        "chunk-extension-just-over-limit",
        CHUNKED + b"3;a=" + b"b" * 4091 + b"\r\nabc\r\n0\r\n\r\n",
        [P, error(400)],
        split=True,
    ),
    WireCase(
        "trailer-field-long",
        CHUNKED + b"3\r\nabc\r\n0\r\nX: " + b"v" * 5000 + b"\r\n\r\n",
        [P, body(b"abc"), error(400)],
        split=True,
    ),
    WireCase("trailer-without-colon", CHUNKED + b"3\r\nabc\r\n0\r\nX\r\n\r\n", [P, body(b"abc"), error(400)]),
    WireCase("trailer-obs-fold", CHUNKED + b"0\r\nX: a\r\n b\r\n\r\n", [P, error(400)]),
    # -- head syntax -------------------------------------------------------------------------------------
    WireCase("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", [error(400)]),
    WireCase("obs-fold-tab", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", [error(400)]),
    WireCase("space-before-colon", b"GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n", [error(400)]),
    WireCase("space-starting-first-field", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", [error(400)]),
    WireCase("bare-lf-everywhere", b"GET / HTTP/1.1\nHost: a\n\n", [error(400)]),
    WireCase("bare-lf-in-head", b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", [error(400)]),
    WireCase("bare-cr-in-head", b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", [error(400)]),
    WireCase("bare-cr-in-value", b"GET / HTTP/1.1\r\nHost: a\r\nX: b\rc\r\n\r\n", [error(400)]),
    WireCase("nul-in-value", b"GET / HTTP/1.1\r\nHost: a\r\nX: b\x00c\r\n\r\n", [error(400)]),
    WireCase("nul-in-name", b"GET / HTTP/1.1\r\nHost: a\r\nX\x00: b\r\n\r\n", [error(400)]),
    WireCase("control-in-value", b"GET / HTTP/1.1\r\nHost: a\r\nX: b\x01c\r\n\r\n", [error(400)]),
    WireCase("del-in-value", b"GET / HTTP/1.1\r\nHost: a\r\nX: b\x7fc\r\n\r\n", [error(400)]),
    WireCase("escape-in-value", b"GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[31mred\r\n\r\n", [error(400)]),
    WireCase("control-in-name", b"GET / HTTP/1.1\r\nHost: a\r\nX\x01: b\r\n\r\n", [error(400)]),
    WireCase("space-in-name", b"GET / HTTP/1.1\r\nHost: a\r\nX Y: b\r\n\r\n", [error(400)]),
    WireCase("empty-name", b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", [error(400)]),
    WireCase("no-colon", b"GET / HTTP/1.1\r\nHost: a\r\nXY\r\n\r\n", [error(400)]),
    WireCase("missing-host", b"GET / HTTP/1.1\r\n\r\n", [error(400)]),
    WireCase("duplicate-host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", [error(400)]),
    WireCase("invalid-host", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", [error(400)]),
    WireCase("invalid-host-userinfo", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", [error(400)]),
    # Valid Host values are remembered (validate.py); an invalid one is refused after them all the same.
    WireCase(
        "invalid-host-after-valid", OK + b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", [head(), END, error(400)]
    ),
    WireCase("http-0.9", b"GET /\r\n\r\n", [error(400)]),
    WireCase("http-1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", [error(505)]),
    WireCase("http-2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", [error(505)]),
    WireCase("http-3.0", b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", [error(505)]),
    WireCase("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", [error(400)]),
    WireCase("lowercase-version", b"GET / http/1.1\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase("bad-minor-version", b"GET / HTTP/1.x\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase("method-invalid-char", b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase("method-lowercase", b"get / HTTP/1.1\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase("method-unknown", b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase(
        "double-space-request-line",
        b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        [error(400)],
        # llhttp skips repeated spaces before the target; harmless for framing (RFC 9112 3: SHOULD NOT).
        differs={"httptools": [head(), END]},
    ),
    WireCase("target-fragment-after-authority", b"GET http://x#f HTTP/1.1\r\nHost: x\r\n\r\n", [error(400)]),
    WireCase("target-scheme-with-digit", b"GET h0tp://x/ HTTP/1.1\r\nHost: x\r\n\r\n", [error(400)]),
    WireCase("target-no-slash", b"GET ! HTTP/1.1\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase("target-query-only", b"GET ?a HTTP/1.1\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase("target-scheme-no-slashes", b"GET http:/a HTTP/1.1\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase("space-in-target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase("control-in-target", b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase("high-byte-in-target", b"GET /a\xffb HTTP/1.1\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase("tab-in-target", b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", [error(400)]),
    WireCase("tls-client-hello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", [error(400)]),
    WireCase("binary-garbage", b"\x00\x01\x02\x03\r\n\r\n", [error(400)]),
    # -- smuggling: a request hidden in a body or behind a refused head is never answered ----------------
    WireCase("smuggle-after-bad-chunk", CHUNKED + b"3\r\nabcXX" + SMUGGLED, [P, body(b"abc"), error(400)]),
    WireCase(
        "smuggle-behind-bad-head", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n" + SMUGGLED, [error(400)]
    ),
    WireCase(
        "smuggle-in-declined-upgrade-body",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\nContent-Length: %d\r\n\r\n"
        % len(SMUGGLED)
        + SMUGGLED,
        [error(400)],
    ),
    # The same with a body larger than the codec's read piece, all in one read, and a request behind it.
    WireCase(
        "h2c-offer-with-a-large-body-then-a-request",
        b"POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: 5000\r\n\r\n" + b"b" * 5000 + OK,
        [P, body(b"b" * 5000), END, head(), END],
    ),
    # llhttp treats Proxy-Connection as Connection: an upgrade there made the body a second request for
    # httptools (and a body for h11). Refused by both.
    WireCase(
        "smuggle-in-proxy-connection-upgrade-body",
        b"POST / HTTP/1.1\r\nHost: a\r\nProxy-Connection: upgrade\r\nUpgrade: foo\r\n"
        b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
        [error(400)],
        split=True,
    ),
    WireCase(
        "proxy-connection-upgrade-without-body",
        b"GET / HTTP/1.1\r\nHost: a\r\nProxy-Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + OK,
        [error(400)],
    ),
    # Upgrade: h2c with a body (curl --http2 -d) is answered over HTTP/1.1, its body read as a body by both
    # codecs: what looks like a request inside it is never served.
    WireCase(
        "h2c-offer-with-body-is-a-body",
        b"POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
        [P, body(SMUGGLED), END],
        split=True,
    ),
    WireCase(
        "smuggle-in-connect-body",
        b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
        [error(400)],
    ),
    WireCase(
        "upgrade-with-chunked-body",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        [error(400)],
    ),
    WireCase(
        "upgrade-with-zero-length-body",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n" + OK,
        [head(), END, head(), END],
    ),
    WireCase(
        "smuggle-in-cl-body",
        POST + b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
        [P, body(SMUGGLED), END],
    ),
    # -- limits (defaults: request line 8190, 100 fields, 64 KiB head) -------------------------------------
    WireCase("request-line-too-long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", [error(414)]),
    WireCase("request-line-unfinished", b"GET /" + b"a" * 9000, [error(414)]),
    WireCase(
        "too-many-fields",
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X%d: y\r\n" % i for i in range(101)) + b"\r\n",
        [error(431)],
    ),
    WireCase(
        "head-too-large",
        b"GET / HTTP/1.1\r\nHost: a\r\n"
        + b"".join(b"X%d: %s\r\n" % (i, b"y" * 1000) for i in range(70))
        + b"\r\n",
        [error(431)],
    ),
    WireCase("head-unfinished-too-large", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 100_000, [error(431)]),
]

CASE_IDS = [case.id for case in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS), "duplicate case ids"
SPLIT_CASES = [case for case in CASES if case.split]


# -- a small HTTP/1.1 response reader for raw-socket tests ---------------------------------------------
@dataclasses.dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    raw_head: bytes

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class ResponseReader:
    """Reads responses from a socket, bounded by ``timeout`` seconds in all."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.deadline = time.monotonic() + timeout
        self.buffer = b""
        self.eof = False

    def _more(self) -> bool:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or self.eof:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def _until(self, marker: bytes) -> bytes | None:
        while marker not in self.buffer:
            if not self._more():
                return None
        index = self.buffer.index(marker) + len(marker)
        out, self.buffer = self.buffer[:index], self.buffer[index:]
        return out

    def _exactly(self, count: int) -> bytes | None:
        while len(self.buffer) < count:
            if not self._more():
                return None
        out, self.buffer = self.buffer[:count], self.buffer[count:]
        return out

    def read(self, head_request: bool = False) -> Response | None:
        """The next complete response, or None if the connection closed (or time ran out) first."""
        while True:
            raw = self._until(b"\r\n\r\n")
            if raw is None:
                return None
            lines = raw[:-4].split(b"\r\n")
            status = int(lines[0].split(b" ")[1])
            headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(b":") for line in lines[1:])]
            if status >= 200:
                break
        response = Response(status, headers, b"", raw)
        if head_request or status in (204, 304):
            return response
        length = response.header(b"content-length")
        if length is not None:
            data = self._exactly(int(length))
            if data is None:
                return None
            response.body = data
        elif (response.header(b"transfer-encoding") or b"").lower() == b"chunked":
            parts = []
            while True:
                line = self._until(b"\r\n")
                if line is None:
                    return None
                size = int(line.split(b";")[0], 16)
                chunk = self._exactly(size + 2)
                if chunk is None:
                    return None
                if size == 0:
                    break
                parts.append(chunk[:-2])
            response.body = b"".join(parts)
        else:
            while self._more():
                pass
            response.body, self.buffer = self.buffer, b""
        return response

    def closed(self) -> bool:
        """True once the peer has closed (reading until EOF or the deadline); leftover bytes fail it."""
        while self._more():
            pass
        return self.eof and not self.buffer


def run_codec(codec: Codec, pieces: list[bytes]) -> list[Event]:
    """Feed ``pieces``; after each request end, tell the codec its response is done (as the server does)."""
    events: list[Event] = []

    def take(new: list[Event]) -> None:
        for event in new:
            events.append(event)
            if isinstance(event, RequestEnd):
                take(codec.next_cycle())

    for piece in pieces:
        take(codec.feed(piece))
    return events
