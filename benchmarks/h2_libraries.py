"""Compare the two candidate HTTP/2 protocol libraries for hatchway, in memory.

    python benchmarks/h2_libraries.py bench [--requests 4000] [--rounds 7]
    python benchmarks/h2_libraries.py checklist
    python benchmarks/h2_libraries.py bomb h2|zttp   (one HPACK bomb run, RSS measured; used by checklist)

`bench` plays the server side of one connection per round: it feeds a client's bytes (preface, SETTINGS,
then the requests 100 streams at a time, a WINDOW_UPDATE after each batch), pulls the events and answers
every request with HEADERS (:status 200, content-type, content-length) and one 13-byte DATA frame ending the
stream, collecting the bytes to send. The client bytes are built once with hpack + raw frames before timing.
CPU time is `time.process_time()` per round; the median over the rounds is reported as µs per request.

`checklist` feeds raw frames to each library in server mode and prints what it did (events, exception,
frames it queued to send), one row per case. No sockets anywhere.
"""

from __future__ import annotations

import argparse
import base64
import gc
import platform
import resource
import statistics
import struct
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from importlib.metadata import version

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
import zttp

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    range(10)
)
FRAME_NAMES = dict(
    enumerate(
        [
            "DATA",
            "HEADERS",
            "PRIORITY",
            "RST_STREAM",
            "SETTINGS",
            "PUSH_PROMISE",
            "PING",
            "GOAWAY",
            "WINDOW_UPDATE",
            "CONTINUATION",
        ]
    )
)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
ERROR_NAMES = {
    0: "NO_ERROR",
    1: "PROTOCOL_ERROR",
    2: "INTERNAL_ERROR",
    3: "FLOW_CONTROL_ERROR",
    4: "SETTINGS_TIMEOUT",
    5: "STREAM_CLOSED",
    6: "FRAME_SIZE_ERROR",
    7: "REFUSED_STREAM",
    8: "CANCEL",
    9: "COMPRESSION_ERROR",
    10: "CONNECT_ERROR",
    11: "ENHANCE_YOUR_CALM",
    12: "INADEQUATE_SECURITY",
    13: "HTTP_1_1_REQUIRED",
}

RESPONSE_BODY = b"Hello, world!"  # 13 bytes
RESPONSE_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"13")]
H2_RESPONSE_HEADERS = [(b":status", b"200"), *RESPONSE_HEADERS]
POST_BODY = b"x" * 1024


# --------------------------------------------------------------------------- raw frames


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id) + payload
    )


def settings_frame(*pairs: tuple[int, int], ack: bool = False) -> bytes:
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def rst_stream(stream_id: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def parse_frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    frames, i = [], 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i : i + 3], "big")
        ftype, flags = data[i + 3], data[i + 4]
        sid = int.from_bytes(data[i + 5 : i + 9], "big") & 0x7FFFFFFF
        frames.append((ftype, flags, sid, data[i + 9 : i + 9 + length]))
        i += 9 + length
    return frames


def describe_frames(data: bytes, skip_settings: bool = True) -> str:
    out = []
    for ftype, flags, sid, payload in parse_frames(data):
        if ftype == SETTINGS and skip_settings:
            continue
        if ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            out.append(f"GOAWAY(last={last},{ERROR_NAMES.get(code, code)})")
        elif ftype == RST_STREAM:
            out.append(f"RST({sid},{ERROR_NAMES.get(struct.unpack('>I', payload)[0])})")
        elif ftype == WINDOW_UPDATE:
            out.append(f"WU({sid},+{struct.unpack('>I', payload)[0]})")
        elif ftype == PING:
            out.append("PING-ACK" if flags & ACK else "PING")
        else:
            out.append(f"{FRAME_NAMES.get(ftype, ftype)}({sid})")
    return " ".join(out) if out else "-"


# --------------------------------------------------------------------------- client bytes

BROWSER_HEADERS = [
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"en-US,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"referer", b"https://example.com/index.html"),
    (b"cookie", b"session=0123456789abcdef; theme=dark"),
    (b"sec-fetch-mode", b"navigate"),
    (b"sec-fetch-site", b"same-origin"),
]


def request_headers(method: bytes, path: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> list:
    return [
        (b":method", method),
        (b":scheme", b"https"),
        (b":authority", b"example.com"),
        (b":path", path),
        *BROWSER_HEADERS,
        *(extra or []),
    ]


def client_preface(*settings: tuple[int, int]) -> bytes:
    # Client SETTINGS, an ACK of the server's SETTINGS, and a big connection-level window so the
    # server never runs out of send credit for the small responses.
    return PREFACE + settings_frame(*settings) + settings_frame(ack=True) + window_update(0, 2**30)


def build_client_chunks(n_requests: int, batch: int, post: bool) -> list[bytes]:
    enc = hpack.Encoder()
    chunks = [client_preface((4, 2**20))]
    sid = 1
    for start in range(0, n_requests, batch):
        parts = []
        for _ in range(min(batch, n_requests - start)):
            if post:
                block = enc.encode(request_headers(b"POST", b"/api/items", [(b"content-length", b"1024")]))
                parts.append(frame(HEADERS, END_HEADERS, sid, block))
                parts.append(frame(DATA, END_STREAM, sid, POST_BODY))
            else:
                block = enc.encode(request_headers(b"GET", b"/static/app.js?v=3"))
                parts.append(frame(HEADERS, END_HEADERS | END_STREAM, sid, block))
            sid += 2
        if post:  # the client's answer to the server's WINDOW_UPDATEs does not matter; keep our credit up
            parts.append(window_update(0, batch * len(RESPONSE_BODY)))
        chunks.append(b"".join(parts))
    return chunks


# --------------------------------------------------------------------------- servers


def h2_server_conn(
    max_concurrent_streams: int = 100,
    initial_window: int = 65535,
    max_frame_size: int = 16384,
    max_header_list_size: int = 65536,
    connect_protocol: bool = True,
) -> h2.connection.H2Connection:
    config = h2.config.H2Configuration(client_side=False, header_encoding=None)
    conn = h2.connection.H2Connection(config)
    conn.local_settings = h2.settings.Settings(
        client=False,
        initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: max_frame_size,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: max_header_list_size,
            h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: int(connect_protocol),
        },
    )
    conn.max_inbound_frame_size = max_frame_size
    conn.decoder.max_header_list_size = max_header_list_size
    conn.initiate_connection()
    return conn


def serve_h2(chunks: list[bytes]) -> tuple[int, int]:
    conn = h2_server_conn()
    out = [conn.data_to_send()]
    answered = 0
    requests: dict[int, tuple[bytes, bytes, list, bytearray]] = {}
    for chunk in chunks:
        for ev in conn.receive_data(chunk):
            t = type(ev)
            if t is h2.events.RequestReceived:
                method = path = b""
                headers = []
                for name, value in ev.headers:
                    if name[0] == 58:  # ':'
                        if name == b":method":
                            method = value
                        elif name == b":path":
                            path = value
                    else:
                        headers.append((name, value))
                requests[ev.stream_id] = (method, path, headers, bytearray())
            elif t is h2.events.DataReceived:
                requests[ev.stream_id][3].extend(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif t is h2.events.StreamEnded:
                sid = ev.stream_id
                del requests[sid]
                conn.send_headers(sid, H2_RESPONSE_HEADERS)
                conn.send_data(sid, RESPONSE_BODY, end_stream=True)
                answered += 1
        out.append(conn.data_to_send())
    return answered, sum(map(len, out))


def serve_zttp(chunks: list[bytes]) -> tuple[int, int]:
    conn = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
    conn.initiate_connection()
    out = [conn.data_to_send()]
    answered = 0
    requests: dict[int, tuple[bytes, bytes, list, bytearray]] = {}
    need_data = zttp.NEED_DATA
    Request, Data, EndOfMessage = zttp.Request, zttp.Data, zttp.EndOfMessage
    for chunk in chunks:
        conn.receive_data(chunk)
        while (ev := conn.next_event()) is not need_data:
            t = type(ev)
            if t is Request:
                headers = ev.headers
                if not isinstance(headers, list):
                    headers = headers.to_list()
                if ev.end_stream:
                    stream = conn.stream(ev.stream_id)
                    stream.send_response(200, RESPONSE_HEADERS)
                    stream.send_data(RESPONSE_BODY)
                    stream.end_message()
                    answered += 1
                else:
                    requests[ev.stream_id] = (ev.method, ev.path, headers, bytearray())
            elif t is Data:
                requests[ev.stream_id][3].extend(ev.data)
            elif t is EndOfMessage:
                del requests[ev.stream_id]
                stream = conn.stream(ev.stream_id)
                stream.send_response(200, RESPONSE_HEADERS)
                stream.send_data(RESPONSE_BODY)
                stream.end_message()
                answered += 1
        out.append(conn.data_to_send())
    return answered, sum(map(len, out))


SERVERS: dict[str, Callable[[list[bytes]], tuple[int, int]]] = {"h2": serve_h2, "zttp": serve_zttp}


def check_output(name: str, post: bool) -> None:
    """Run a small exchange and decode the server's bytes with an h2 client: every response must be intact."""
    chunks = build_client_chunks(10, 5, post)
    # Re-run the server capturing bytes (the timed function returns sizes only).
    captured: list[bytes] = []
    if name == "h2":
        srv = h2_server_conn()
        captured.append(srv.data_to_send())
        for chunk in chunks:
            for ev in srv.receive_data(chunk):
                if isinstance(ev, h2.events.DataReceived):
                    srv.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if isinstance(ev, h2.events.StreamEnded):
                    srv.send_headers(ev.stream_id, H2_RESPONSE_HEADERS)
                    srv.send_data(ev.stream_id, RESPONSE_BODY, end_stream=True)
            captured.append(srv.data_to_send())
    else:
        zs = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
        zs.initiate_connection()
        for chunk in chunks:
            zs.receive_data(chunk)
            while (ev := zs.next_event()) is not zttp.NEED_DATA:
                if (isinstance(ev, zttp.Request) and ev.end_stream) or isinstance(ev, zttp.EndOfMessage):
                    st = zs.stream(ev.stream_id)
                    st.send_response(200, RESPONSE_HEADERS)
                    st.send_data(RESPONSE_BODY)
                    st.end_message()
            captured.append(zs.data_to_send())
    dec = hpack.Decoder()
    bodies: dict[int, bytes] = {}
    statuses: dict[int, bytes] = {}
    ended = 0
    for ftype, flags, sid, payload in parse_frames(b"".join(captured)):
        if ftype == HEADERS:
            statuses[sid] = dict(dec.decode(payload, raw=True))[b":status"]
        elif ftype == DATA:
            bodies[sid] = bodies.get(sid, b"") + payload
        if ftype in (HEADERS, DATA) and flags & END_STREAM:
            ended += 1
    ok = (
        ended == 10
        and set(statuses.values()) == {b"200"}
        and all(b == RESPONSE_BODY for b in bodies.values())
    )
    assert ok, (name, post, ended, statuses, bodies)


def bench(n_requests: int, rounds: int, batch: int) -> None:
    print(
        f"# Python {platform.python_version()}, h2 {version('h2')}, zttp {version('zttp')}, {platform.machine()}"
    )
    print(
        f"# {n_requests} requests per round, {batch} streams per batch, {rounds} rounds, median CPU µs/request"
    )
    print("| workload | h2 µs/req | zttp µs/req | h2 / zttp | bytes out h2 / zttp |")
    print("|---|---:|---:|---:|---:|")
    for post in (False, True):
        # POST: 25 x 1 KiB per batch stays inside the 64 KiB connection receive window, which the server
        # reopens after each batch (as a client waiting for WINDOW_UPDATE would see it).
        chunks = build_client_chunks(n_requests, min(batch, 25) if post else batch, post)
        med = {}
        sizes = {}
        for name, fn in SERVERS.items():
            check_output(name, post)
            fn(chunks[:3])  # warm-up
            samples = []
            for _ in range(rounds):
                gc.collect()
                t0 = time.process_time()
                answered, size = fn(chunks)
                samples.append(time.process_time() - t0)
                assert answered == n_requests, (name, answered)
            med[name] = statistics.median(samples) / n_requests * 1e6
            sizes[name] = size
        label = "POST 1 KiB body" if post else "GET, 8 browser headers"
        print(
            f"| {label} | {med['h2']:.1f} | {med['zttp']:.2f} | {med['h2'] / med['zttp']:.1f}x"
            f" | {sizes['h2'] / n_requests:.0f} / {sizes['zttp'] / n_requests:.0f} B per req |"
        )


# --------------------------------------------------------------------------- checklist harness


class H2Probe:
    name = "h2"

    def __init__(self, **kw) -> None:
        self.conn = h2_server_conn(**kw)
        self.conn.data_to_send()

    def feed(self, data: bytes) -> tuple[list[str], str | None]:
        events, err = [], None
        try:
            for ev in self.conn.receive_data(data):
                events.append(self.fmt(ev))
        except h2.exceptions.ProtocolError as exc:
            code = getattr(exc, "error_code", None)
            err = f"{type(exc).__name__}({ERROR_NAMES.get(int(code), code) if code is not None else '-'})"
        return events, err

    @staticmethod
    def fmt(ev) -> str:
        n = type(ev).__name__
        if isinstance(ev, h2.events.RequestReceived):
            return f"{n}({ev.stream_id})"
        if isinstance(ev, h2.events.StreamReset):
            return f"{n}({ev.stream_id},{ERROR_NAMES.get(int(ev.error_code), ev.error_code)})"
        if isinstance(ev, h2.events.DataReceived):
            return f"{n}({ev.stream_id},{ev.flow_controlled_length})"
        if isinstance(ev, h2.events.RemoteSettingsChanged | h2.events.SettingsAcknowledged):
            return n
        return f"{n}({getattr(ev, 'stream_id', '')})"

    def out(self) -> bytes:
        return self.conn.data_to_send()


class ZttpProbe:
    name = "zttp"

    def __init__(self, **kw) -> None:
        self.conn = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
        self.conn.initiate_connection()
        self.conn.data_to_send()

    def feed(self, data: bytes) -> tuple[list[str], str | None]:
        events, err = [], None
        try:
            self.conn.receive_data(data)
            while (ev := self.conn.next_event()) is not zttp.NEED_DATA:
                events.append(self.fmt(ev))
                if ev is zttp.CONNECTION_CLOSED:
                    break
        except zttp.ProtocolError as exc:
            err = f"{type(exc).__name__}({str(exc)[:60]})"
        return events, err

    @staticmethod
    def fmt(ev) -> str:
        n = type(ev).__name__
        if isinstance(ev, zttp.RstStream):
            return f"RstStream({ev.stream_id},{ERROR_NAMES.get(ev.error_code, ev.error_code)})"
        if isinstance(ev, zttp.Request | zttp.EndOfMessage):
            return f"{n}({ev.stream_id})"
        if isinstance(ev, zttp.Data):
            return f"Data({ev.stream_id},{len(ev.data)})"
        if isinstance(ev, zttp.GoAway):
            return f"GoAway({ev.last_stream_id},{ERROR_NAMES.get(ev.error_code)})"
        return n

    def out(self) -> bytes:
        return self.conn.data_to_send()


PROBES = {"h2": H2Probe, "zttp": ZttpProbe}
_enc_state: dict[str, hpack.Encoder] = {}


def hblock(headers: list[tuple[bytes, bytes]]) -> bytes:
    # A fresh encoder per case, without huffman/indexing surprises: literal without indexing.
    enc = hpack.Encoder()
    return enc.encode(headers, huffman=False)


def raw_literal(headers: list[tuple[bytes, bytes]]) -> bytes:
    """HPACK 'literal without indexing, new name' for each header: no lowercasing, no validation."""
    out = bytearray()
    for name, value in headers:
        out.append(0x00)
        out += hpack.hpack.encode_integer(len(name), 7) + name
        out += hpack.hpack.encode_integer(len(value), 7) + value
    return bytes(out)


def get_headers(sid: int = 1, headers: list | None = None, end_stream: bool = True) -> bytes:
    block = raw_literal(headers if headers is not None else request_headers(b"GET", b"/"))
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid, block)


def post_headers(sid: int = 1, content_length: int | None = None) -> bytes:
    extra = [(b"content-length", str(content_length).encode())] if content_length is not None else []
    return frame(HEADERS, END_HEADERS, sid, raw_literal(request_headers(b"POST", b"/p", extra)))


def swap(headers: list, i: int, j: int) -> list:
    h = list(headers)
    h[i], h[j] = h[j], h[i]
    return h


STD = client_preface()
BASE = request_headers(b"GET", b"/")
CASES: list[tuple[str, bytes]] = [
    ("valid GET (control)", STD + get_headers()),
    ("bad preface (HTTP/1.1 bytes)", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("bad preface (mangled PRI)", b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings_frame()),
    ("frame > MAX_FRAME_SIZE (DATA 16385)", STD + post_headers() + frame(DATA, 0, 1, b"x" * 16385)),
    ("HEADERS on stream 0", STD + get_headers(0)),
    ("even stream id (2)", STD + get_headers(2)),
    ("decreasing stream id (5 then 3)", STD + get_headers(5) + get_headers(3)),
    ("DATA on idle stream 1", STD + frame(DATA, END_STREAM, 1, b"x")),
    ("DATA on half-closed(remote) stream", STD + get_headers(1) + frame(DATA, 0, 1, b"x")),
    (
        "DATA on stream closed by client RST",
        STD + post_headers(1) + rst_stream(1, 8) + frame(DATA, 0, 1, b"x"),
    ),
    ("uppercase header name", STD + get_headers(1, [*BASE, (b"X-Upper", b"1")])),
    ("missing :path", STD + get_headers(1, [h for h in BASE if h[0] != b":path"])),
    ("duplicate :path", STD + get_headers(1, [*BASE[:4], (b":path", b"/b"), *BASE[4:]])),
    ("unknown pseudo :foo", STD + get_headers(1, [*BASE[:4], (b":foo", b"1"), *BASE[4:]])),
    ("pseudo after regular", STD + get_headers(1, swap(BASE, 3, 4))),
    ("connection: keep-alive", STD + get_headers(1, [*BASE, (b"connection", b"keep-alive")])),
    ("transfer-encoding: chunked", STD + get_headers(1, [*BASE, (b"transfer-encoding", b"chunked")])),
    ("te: gzip", STD + get_headers(1, [*BASE, (b"te", b"gzip")])),
    ("te: trailers (valid)", STD + get_headers(1, [*BASE, (b"te", b"trailers")])),
    ("content-length 5, DATA 3 + END", STD + post_headers(1, 5) + frame(DATA, END_STREAM, 1, b"abc")),
    ("content-length 2, DATA 5", STD + post_headers(1, 2) + frame(DATA, END_STREAM, 1, b"abcde")),
    ("WINDOW_UPDATE 0 on stream 0", STD + window_update(0, 0)),
    ("WINDOW_UPDATE 0 on open stream", STD + post_headers(1) + window_update(1, 0)),
    ("conn window overflow (+2^31-1)", STD + window_update(0, 2**31 - 1)),
    ("stream window overflow (+2^31-1)", STD + post_headers(1) + window_update(1, 2**31 - 1)),
    ("SETTINGS ENABLE_PUSH=2", STD + settings_frame((2, 2))),
    ("SETTINGS INITIAL_WINDOW_SIZE=2^31", STD + settings_frame((4, 2**31))),
    ("SETTINGS MAX_FRAME_SIZE=16383", STD + settings_frame((5, 16383))),
    ("SETTINGS MAX_FRAME_SIZE=2^24", STD + settings_frame((5, 2**24))),
    ("PING", STD + frame(PING, 0, 0, b"12345678")),
    ("RST_STREAM on idle stream", STD + rst_stream(7, 8)),
    (
        "extended CONNECT :protocol=websocket",
        STD
        + get_headers(
            1,
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"https"),
                (b":authority", b"example.com"),
                (b":path", b"/ws"),
                (b"sec-websocket-version", b"13"),
            ],
            end_stream=False,
        ),
    ),
    ("client GOAWAY", STD + frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0))),
    ("streams over MAX_CONCURRENT (129 open)", STD + b"".join(post_headers(1 + 2 * i) for i in range(129))),
    ("streams over h2 default limit (101 open)", STD + b"".join(post_headers(1 + 2 * i) for i in range(101))),
]


def run_case(probe_cls, data: bytes) -> str:
    p = probe_cls()
    events, err = p.feed(data)
    out = describe_frames(p.out())
    # Collapse long runs of identical events.
    ev_txt = " ".join(events[:4]) + (f" …(+{len(events) - 4})" if len(events) > 4 else "")
    parts = [ev_txt or "no event"]
    if err:
        parts.append(f"raises {err}")
    if out != "-":
        if len(out) > 90:
            out = out[:90] + "…"
        parts.append(f"sends {out}")
    return "; ".join(parts)


def flood_continuation(probe_cls, frame_payload: int, limit_frames: int) -> str:
    p = probe_cls()
    p.feed(STD)
    p.out()
    head = frame(HEADERS, 0, 1, raw_literal([(b":method", b"GET")]))
    events, err = p.feed(head)
    tracemalloc.start()
    rss0 = rss_kib()
    sent = 0
    step = 64 if frame_payload else 1000
    while sent < limit_frames:
        events, err = p.feed(frame(CONTINUATION, 0, 1, b"\x00" * frame_payload) * step)
        sent += step
        if err or events:
            break
        out = describe_frames(p.out())
        if out != "-":
            err = f"sent {out}"
            break
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = rss_kib() - rss0
    what = err or (" ".join(events) if events else f"still buffering after {sent} frames")
    out = describe_frames(p.out())
    return (
        f"{what} after ≤{sent} frames ({sent * (frame_payload + 9) // 1024} KiB fed); "
        f"py-heap peak {peak // 1024} KiB, RSS +{rss} KiB" + (f"; sends {out}" if out != "-" else "")
    )


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def hpack_bomb(lib: str) -> str:
    """One 4 000-byte header put in the dynamic table, then referenced 16 000 times by its 1-byte index:
    ~16 KiB on the wire, ~64 MB of decoded header list (the advertised MAX_HEADER_LIST_SIZE is 64 KiB)."""
    value = b"A" * 4000
    first = (
        b"\x40"
        + hpack.hpack.encode_integer(3, 7)
        + b"bom"
        + hpack.hpack.encode_integer(len(value), 7)
        + value
    )
    pseudo = raw_literal(request_headers(b"GET", b"/")[:4])
    block = pseudo + first + b"\xbe" * 16000  # 0xbe = indexed field 62 (first dynamic entry)
    frames_ = []
    chunks = [block[i : i + 16384] for i in range(0, len(block), 16384)]
    for i, c in enumerate(chunks):
        flags = (END_HEADERS | END_STREAM) if i == len(chunks) - 1 else 0
        if i == 0:
            frames_.append(
                frame(HEADERS, flags & ~END_HEADERS | (END_HEADERS if len(chunks) == 1 else 0), 1, c)
            )
        else:
            frames_.append(frame(CONTINUATION, flags & END_HEADERS, 1, c))
    if len(chunks) > 1:  # END_STREAM belongs on the HEADERS frame
        f0 = bytearray(frames_[0])
        f0[4] |= END_STREAM
        frames_[0] = bytes(f0)
    p = PROBES[lib]()
    p.feed(STD)
    p.out()
    rss0 = rss_kib()
    tracemalloc.start()
    t0 = time.process_time()
    events, err = p.feed(b"".join(frames_))
    cpu = (time.process_time() - t0) * 1000
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = describe_frames(p.out())
    return (
        f"{len(block)} B block -> {' '.join(events) or 'no event'}"
        + (f"; raises {err}" if err else "")
        + (f"; sends {out}" if out != "-" else "")
        + f"; CPU {cpu:.0f} ms, py-heap peak {peak // 1024} KiB, RSS now +{rss_kib() - rss0} KiB,"
        f" max RSS {maxrss // 1024} MiB"
    )


def many_streams(lib: str, n: int = 10000) -> str:
    """Legitimate sequential traffic: one GET at a time on one connection, each answered before the next."""
    chunks = build_client_chunks(n, 1, post=False)
    fn = SERVERS[lib]
    done = 0
    for i in range(1, len(chunks) + 1, 500):
        try:
            done = fn(chunks[: i + 500])[0]
        except (h2.exceptions.ProtocolError, zttp.ProtocolError) as exc:
            return f"ends the connection after {done}-{done + 500} requests: {type(exc).__name__}({exc})"
    return f"{done} sequential requests served, no limit"


def rapid_reset(probe_cls, n: int) -> str:
    p = probe_cls()
    p.feed(STD)
    p.out()
    enc = hpack.Encoder()
    data = b"".join(
        frame(HEADERS, END_HEADERS, 1 + 2 * i, enc.encode(request_headers(b"GET", b"/")))
        + rst_stream(1 + 2 * i, 8)
        for i in range(n)
    )
    t0 = time.process_time()
    events, err = p.feed(data)
    cpu = (time.process_time() - t0) * 1e6 / n
    reqs = sum(e.startswith("Request") for e in events)
    out = describe_frames(p.out())
    return (
        f"{n} HEADERS+RST pairs: {reqs} requests surfaced, {len(events) - reqs} other events"
        + (f"; raises {err}" if err else "; no limit hit")
        + (f"; sends {out[:80]}" if out != "-" else "")
        + f"; {cpu:.1f} µs CPU/pair"
    )


def feature_checks() -> dict[str, dict[str, str]]:
    res: dict[str, dict[str, str]] = {}
    settings_payload = struct.pack(">HI", 4, 1_000_000) + struct.pack(">HI", 3, 50)
    hdr = base64.urlsafe_b64encode(settings_payload).rstrip(b"=")

    # h2c upgrade
    r = {}
    try:
        c = h2_server_conn()
        c.data_to_send()
        c.initiate_upgrade_connection(settings_header=hdr)
        pre = c.data_to_send()
        c.send_headers(1, H2_RESPONSE_HEADERS)
        c.send_data(1, RESPONSE_BODY, end_stream=True)
        ev = c.receive_data(client_preface())
        r["h2"] = (
            f"initiate_upgrade_connection(settings_header=...): stream 1 half-closed(remote), "
            f"peer INITIAL_WINDOW={c.remote_settings.initial_window_size}; preface {len(pre)} B; "
            f"response on stream 1 ok; then {[type(e).__name__ for e in ev]}"
        )
    except Exception as exc:
        r["h2"] = f"error {exc!r}"
    try:
        z = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
        st = z.initiate_upgrade_connection(b"GET", b"/up?x=1", [(b"host", b"example.com")], hdr)
        pre = z.data_to_send()
        z.receive_data(client_preface())
        evs = []
        while (e := z.next_event()) is not zttp.NEED_DATA:
            evs.append(ZttpProbe.fmt(e))
        st.send_response(200, RESPONSE_HEADERS)
        st.send_data(RESPONSE_BODY)
        st.end_message()
        r["zttp"] = (
            f"initiate_upgrade_connection(method, target, headers, settings_header) -> Stream(1) "
            f"send_window={st.send_window}; preface {len(pre)} B; events after preface {evs}; "
            f"response sent: {describe_frames(z.data_to_send())}"
        )
    except Exception as exc:
        r["zttp"] = f"error {exc!r}"
    res["h2c upgrade (server)"] = r

    # trailers
    r = {}
    c = h2_server_conn()
    c.receive_data(STD + get_headers(1))
    c.data_to_send()
    c.send_headers(1, H2_RESPONSE_HEADERS)
    c.send_data(1, RESPONSE_BODY)
    c.send_headers(1, [(b"grpc-status", b"0")], end_stream=True)
    r["h2"] = "send_headers(sid, trailers, end_stream=True): " + describe_frames(c.data_to_send())
    z = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
    z.initiate_connection()
    z.receive_data(STD + get_headers(1))
    while z.next_event() is not zttp.NEED_DATA:
        pass
    z.data_to_send()
    st = z.stream(1)
    st.send_response(200, RESPONSE_HEADERS)
    st.send_data(RESPONSE_BODY)
    st.end_message([(b"grpc-status", b"0")])
    r["zttp"] = "stream.end_message([trailers]): " + describe_frames(z.data_to_send())
    res["trailers sending"] = r

    # receive window / backpressure: 4 x 16 KiB of DATA on one stream, app reads but does not ack
    r = {}
    body = frame(DATA, 0, 1, b"x" * 16384) * 3 + frame(DATA, 0, 1, b"x" * 16383)
    more = frame(DATA, 0, 1, b"y" * 1000)
    c = h2_server_conn()
    c.receive_data(STD + post_headers(1))
    c.data_to_send()
    evs = c.receive_data(body)
    o1 = describe_frames(c.data_to_send())
    try:
        c.receive_data(more)
        o2 = "accepted"
    except h2.exceptions.ProtocolError as exc:
        o2 = f"{type(exc).__name__}; sends {describe_frames(c.data_to_send())}"
    c2 = h2_server_conn()
    c2.receive_data(STD + post_headers(1))
    c2.data_to_send()
    for e in c2.receive_data(body):
        if isinstance(e, h2.events.DataReceived):
            c2.acknowledge_received_data(e.flow_controlled_length, 1)
    r["h2"] = (
        f"65535 B received, {len(evs)} DataReceived, not acked -> sends {o1}; 1000 more B -> {o2}; "
        f"after acknowledge_received_data -> sends {describe_frames(c2.data_to_send())}"
    )
    z = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
    z.initiate_connection()
    z.receive_data(STD + post_headers(1))
    z.data_to_send()
    z.receive_data(body)
    o0 = describe_frames(z.data_to_send())
    n = 0
    while (e := z.next_event()) is not zttp.NEED_DATA:
        n += 1
    o1 = describe_frames(z.data_to_send())
    try:
        z.receive_data(more)
        evs = []
        while (e := z.next_event()) is not zttp.NEED_DATA:
            evs.append(ZttpProbe.fmt(e))
        o2 = f"accepted {evs}"
    except zttp.ProtocolError as exc:
        o2 = f"{type(exc).__name__}({exc}); sends {describe_frames(z.data_to_send())}"
    # a client that ignores flow control entirely: 1 MiB on one stream, nothing read
    z2 = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
    z2.initiate_connection()
    z2.receive_data(STD + post_headers(1))
    try:
        z2.receive_data(frame(DATA, 0, 1, b"z" * 16384) * 64)
        cnt = 0
        while (e := z2.next_event()) is not zttp.NEED_DATA:
            cnt += 1
        o3 = f"accepted, {cnt} events"
    except zttp.ProtocolError as exc:
        o3 = f"{type(exc).__name__}({exc})"
    r["zttp"] = (
        f"65535 B fed, before next_event sends {o0}; after {n} events pulled (no ack API on H2) sends {o1}; "
        f"1000 more B -> {o2}; 1 MiB unread on one stream -> {o3}"
    )
    res["receive window / backpressure"] = r

    # send window: peer INITIAL_WINDOW_SIZE=10, app sends 100 bytes
    r = {}
    small = client_preface((4, 10))
    c = h2_server_conn()
    c.receive_data(small + get_headers(1))
    c.data_to_send()
    c.send_headers(1, H2_RESPONSE_HEADERS)
    w = c.local_flow_control_window(1)
    try:
        c.send_data(1, b"x" * 100, end_stream=True)
        o = "sent"
    except h2.exceptions.FlowControlError as exc:
        o = f"FlowControlError({exc})"
    evs = c.receive_data(window_update(1, 1000))
    r["h2"] = (
        f"local_flow_control_window(1)={w}; send_data(100 B) -> {o}; WINDOW_UPDATE -> "
        f"{list(map(H2Probe.fmt, evs))}, window now {c.local_flow_control_window(1)}"
    )
    z = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
    z.initiate_connection()
    z.receive_data(small + get_headers(1))
    while z.next_event() is not zttp.NEED_DATA:
        pass
    z.data_to_send()
    st = z.stream(1)
    st.send_response(200, RESPONSE_HEADERS)
    w = st.send_window
    st.send_data(b"x" * 100)
    st.end_message()
    o1 = describe_frames(z.data_to_send())
    parked = (st.pending_bytes, z.has_pending_send())
    z.receive_data(window_update(1, 1000))
    evs = []
    while (e := z.next_event()) is not zttp.NEED_DATA:
        evs.append(ZttpProbe.fmt(e))
    r["zttp"] = (
        f"stream.send_window={w}; send_data(100 B)+end_message sends {o1}, parks "
        f"pending_bytes={parked[0]} has_pending_send={parked[1]}; WINDOW_UPDATE -> events {evs}, "
        f"flushes {describe_frames(z.data_to_send())}"
    )
    res["send window info / parking"] = r

    # GOAWAY with last stream id, then a new stream
    r = {}
    c = h2_server_conn()
    c.receive_data(STD + get_headers(1) + get_headers(3))
    c.data_to_send()
    c.close_connection(error_code=0, last_stream_id=1)
    o = describe_frames(c.data_to_send())
    ev, err = H2Probe.__new__(H2Probe), None
    ev.conn = c
    evs, err = ev.feed(get_headers(5))
    r["h2"] = f"close_connection(0, last_stream_id=1): {o}; then new HEADERS 5 -> {evs} {err or ''}"
    z = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
    z.initiate_connection()
    z.receive_data(STD + get_headers(1) + get_headers(3))
    while z.next_event() is not zttp.NEED_DATA:
        pass
    z.data_to_send()
    z.close(0, 1)
    o = describe_frames(z.data_to_send())
    zp = ZttpProbe.__new__(ZttpProbe)
    zp.conn = z
    evs, err = zp.feed(get_headers(5))
    z3 = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
    z3.initiate_connection()
    z3.receive_data(STD + get_headers(1) + get_headers(3))
    while z3.next_event() is not zttp.NEED_DATA:
        pass
    z3.data_to_send()
    z3.close()
    r["zttp"] = (
        f"close(0, 1): {o}; then new HEADERS 5 -> {evs} {err or ''} {describe_frames(z.data_to_send())}; "
        f"close() default: {describe_frames(z3.data_to_send())}"
    )
    res["GOAWAY with last stream id"] = r
    return res


def checklist() -> None:
    print(f"# Python {platform.python_version()}, h2 {version('h2')}, zttp {version('zttp')}")
    print("| case | h2 | zttp |")
    print("|---|---|---|")
    for label, data in CASES:
        print(f"| {label} | {run_case(H2Probe, data)} | {run_case(ZttpProbe, data)} |")
    print(
        f"| CONTINUATION flood, 16 KiB frames | {flood_continuation(H2Probe, 16384, 4096)} |"
        f" {flood_continuation(ZttpProbe, 16384, 4096)} |"
    )
    print(
        f"| CONTINUATION flood, empty frames | {flood_continuation(H2Probe, 0, 200000)} |"
        f" {flood_continuation(ZttpProbe, 0, 200000)} |"
    )
    bombs = {}
    for lib in PROBES:
        proc = subprocess.run(
            [sys.executable, __file__, "bomb", lib], capture_output=True, text=True, timeout=300
        )
        bombs[lib] = (proc.stdout.strip() or proc.stderr.strip()[-200:]).replace("|", "/")
    print(f"| HPACK bomb (64 MB decoded from 16 KiB) | {bombs['h2']} | {bombs['zttp']} |")
    print(f"| 10 000 sequential GETs on one connection | {many_streams('h2')} | {many_streams('zttp')} |")
    print(f"| RST_STREAM rapid reset | {rapid_reset(H2Probe, 20000)} | {rapid_reset(ZttpProbe, 20000)} |")
    for label, r in feature_checks().items():
        print(f"| {label} | {r['h2']} | {r['zttp']} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--requests", type=int, default=4000)  # zttp 0.0.35 ends a connection at stream 4097
    b.add_argument("--rounds", type=int, default=7)
    b.add_argument("--batch", type=int, default=100)
    sub.add_parser("checklist")
    bo = sub.add_parser("bomb")
    bo.add_argument("lib", choices=list(PROBES))
    args = ap.parse_args()
    if args.cmd == "bench":
        bench(args.requests, args.rounds, args.batch)
    elif args.cmd == "checklist":
        checklist()
    else:
        print(hpack_bomb(args.lib))


if __name__ == "__main__":
    main()
