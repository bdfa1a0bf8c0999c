"""The wire-case table through both codecs in memory: the same bytes give the same events, however split."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hatchway import Config
from hatchway._http.events import Codec, RequestHead
from hatchway._http.h11_codec import H11Codec
from hatchway._http.httptools_codec import HttptoolsCodec
from hatchway._http.validate import LLHTTP_METHODS
from tests.http_cases import CASE_IDS, CASES, OK, SPLIT_CASES, WireCase, run_codec, summarize

CONFIG = Config("tests.http_cases:echo_app")
CODECS: dict[str, Callable[[], Codec]] = {
    "httptools": lambda: HttptoolsCodec(CONFIG),
    "h11": lambda: H11Codec(CONFIG),
}


@pytest.fixture(params=list(CODECS))
def codec_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_case_whole(case: WireCase, codec_name: str) -> None:
    assert summarize(run_codec(CODECS[codec_name](), [case.raw])) == case.events_for(codec_name)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_case_byte_by_byte(case: WireCase, codec_name: str) -> None:
    raw = case.raw
    pieces = (
        [raw[i : i + 1] for i in range(len(raw))]
        if len(raw) < 20_000
        else [raw[i : i + 997] for i in range(0, len(raw), 997)]
    )
    assert summarize(run_codec(CODECS[codec_name](), pieces)) == case.events_for(codec_name)


@pytest.mark.parametrize("case", SPLIT_CASES, ids=[c.id for c in SPLIT_CASES])
def test_case_split_everywhere(case: WireCase, codec_name: str) -> None:
    expected = case.events_for(codec_name)
    for cut in range(1, len(case.raw)):
        got = summarize(run_codec(CODECS[codec_name](), [case.raw[:cut], case.raw[cut:]]))
        assert got == expected, f"split at {cut}"


def test_table_has_known_differences_only_where_documented() -> None:
    # Every difference between the codecs is spelled out in the table; everything else must agree.
    differing = [case.id for case in CASES if case.differs]
    assert differing == ["chunk-size-above-2^53", "double-space-request-line"]


def test_head_fields(codec_name: str) -> None:
    raw = (
        b"POST /p%41th?q=1 HTTP/1.1\r\nHost: example.com\r\nX-Multi: a\r\nx-multi: b\r\n"
        b"Expect: 100-continue\r\nContent-Length: 0\r\nUser-Agent:  spaced  \r\n\r\n"
    )
    events = run_codec(CODECS[codec_name](), [raw])
    first = events[0]
    assert isinstance(first, RequestHead)
    assert (first.method, first.raw_path, first.query, first.http_version) == (
        "POST",
        b"/p%41th",
        b"q=1",
        "1.1",
    )
    assert first.headers == [
        (b"host", b"example.com"),
        (b"x-multi", b"a"),
        (b"x-multi", b"b"),
        (b"expect", b"100-continue"),
        (b"content-length", b"0"),
        (b"user-agent", b"spaced"),
    ]
    assert first.expect_continue
    assert first.keep_alive
    assert first.upgrade is None


def test_upgrade_request_keeps_trailing_bytes(codec_name: str) -> None:
    raw = (
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n"
        b"Sec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x00"
    )
    codec = CODECS[codec_name]()
    events = codec.feed(raw)
    assert isinstance(events[0], RequestHead)
    assert events[0].upgrade == b"websocket"
    assert codec.trailing_data() == b"\x81\x00"


def test_declined_upgrade_goes_on_as_http(codec_name: str) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n" + OK
    events = run_codec(CODECS[codec_name](), [raw])
    assert [type(e).__name__ for e in events] == ["RequestHead", "RequestEnd", "RequestHead", "RequestEnd"]


@pytest.mark.parametrize("method", sorted(m.decode() for m in LLHTTP_METHODS))
def test_known_methods_accepted_by_both(method: str) -> None:
    target = b"x:443" if method == "CONNECT" else b"/"
    raw = b"%s %s HTTP/1.1\r\nHost: a\r\n\r\n" % (method.encode(), target)
    results: dict[str, Any] = {name: summarize(run_codec(make(), [raw])) for name, make in CODECS.items()}
    assert results["httptools"] == results["h11"]
    assert results["h11"][0][:2] == ("head", method)


def test_limits_follow_config() -> None:
    config = Config(
        "tests.http_cases:echo_app",
        limit_request_line=64,
        limit_request_fields=2,
        limit_request_head_size=300,
    )
    for make in (HttptoolsCodec, H11Codec):
        assert summarize(make(config).feed(b"GET /" + b"a" * 70 + b" HTTP/1.1\r\nHost: a\r\n\r\n")) == [
            ("error", 414)
        ]
        many = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"
        assert summarize(make(config).feed(many)) == [("error", 431)]
        big = b"GET / HTTP/1.1\r\nHost: a\r\nA: " + b"x" * 400 + b"\r\n\r\n"
        assert summarize(make(config).feed(big)) == [("error", 431)]
        fits = b"GET / HTTP/1.1\r\nHost: a\r\nA: " + b"x" * 200 + b"\r\n\r\n"
        assert summarize(make(config).feed(fits))[0][0] == "head"


def test_nothing_parsed_after_an_error(codec_name: str) -> None:
    codec = CODECS[codec_name]()
    assert summarize(codec.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n")) == [("error", 400)]
    assert codec.feed(OK) == []


def test_chunk_extension_grammar_matches_llhttp() -> None:
    # Every combination of the characters that matter, up to four pieces long: the h11 codec's chunk-line
    # check accepts exactly what llhttp accepts.
    import itertools

    import httptools

    from hatchway._http.events import ParseError
    from hatchway._http.validate import chunk_size

    parts = [b";", b"a", b"=", b'"x"', b'"', b" ", b"\\", b"\t", b'"\\""', b"\xe9", b"\x7f"]
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3"
    mismatches = []
    for n in range(1, 5):
        for combo in itertools.product(parts, repeat=n):
            ext = b"".join(combo)
            parser = httptools.HttpRequestParser(object())
            try:
                parser.feed_data(head + ext + b"\r\nabc\r\n0\r\n\r\n")
                llhttp_ok = True
            except httptools.HttpParserError:
                llhttp_ok = False
            ours_ok = not isinstance(chunk_size(b"3" + ext + b"\r\n"), ParseError)
            if llhttp_ok != ours_ok:
                mismatches.append(ext)
    assert mismatches == []


def test_both_codecs_give_the_app_the_same_transfer_encoding_value() -> None:
    # h11 lowercases codings; the httptools codec does too, so the scope does not depend on the parser.
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n"
    heads = [run_codec(make(), [raw])[0] for make in CODECS.values()]
    assert all(isinstance(h, RequestHead) for h in heads)
    assert {tuple(h.headers) for h in heads if isinstance(h, RequestHead)} == {
        ((b"host", b"a"), (b"transfer-encoding", b"chunked"))
    }
