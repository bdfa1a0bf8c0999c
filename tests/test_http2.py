"""HTTP/2 with real clients: curl (prior knowledge, Upgrade: h2c, ALPN), nghttp, httpx, and the h2 library.

The raw-frame conformance cases (RFC 9113 / 7541 and the floods) are in tests/test_h2_conformance.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import httpx
import pytest

from hatchway.testing import background
from tests.conftest import Certificates
from tests.utils import UNIT

CURL = shutil.which("curl")
NGHTTP = shutil.which("nghttp")


async def echo_scope(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with what the app saw of the request, as JSON."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    seen = {
        "http_version": scope["http_version"],
        "scheme": scope["scheme"],
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode(),
        "query_string": scope["query_string"].decode(),
        "root_path": scope["root_path"],
        "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
        "client": list(scope["client"]) if scope["client"] else None,
        "server": list(scope["server"]) if scope["server"] else None,
        "extensions": sorted(scope.get("extensions", {})),
        "body": body.decode(),
    }
    data = json.dumps(seen).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"x-test", b"yes")],
        }
    )
    await send({"type": "http.response.body", "body": data})


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    assert CURL is not None
    return subprocess.run(
        [CURL, "-sS", "--max-time", str(10 * UNIT), *args], capture_output=True, text=True, timeout=20 * UNIT
    )


def seen_by_curl(*args: str) -> tuple[dict[str, Any], str]:
    """The app's view of the request and the HTTP version curl used."""
    result = curl("-w", "\n%{http_version}", *args)
    assert result.returncode == 0, result.stderr
    body, _, version = result.stdout.rpartition("\n")
    return json.loads(body), version


needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


@pytest.fixture(params=["h2", "zttp"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The server options for each HTTP/2 backend: h2 (the default) and zttp (``--http zttp --http2``)."""
    if request.param == "zttp":
        pytest.importorskip("zttp")
        return {"http2": True, "http": "zttp"}
    return {"http2": True}


@needs_curl
def test_h2c_prior_knowledge_scope_is_complete(backend: dict[str, Any]) -> None:
    with background(echo_scope, **backend, root_path="/api") as server:
        seen, version = seen_by_curl("--http2-prior-knowledge", f"{server.url}/a%20b/c?x=1&y=2")
    assert version == "2"
    assert seen["http_version"] == "2"
    assert seen["scheme"] == "http"
    assert seen["method"] == "GET"
    assert seen["path"] == "/api/a b/c"
    assert seen["raw_path"] == "/api/a%20b/c"
    assert seen["query_string"] == "x=1&y=2"
    assert seen["root_path"] == "/api"
    # :authority is the host header, first; no pseudo-header reaches the app.
    assert seen["headers"][0] == ["host", f"127.0.0.1:{server.port}"]
    assert not [name for name, _ in seen["headers"] if name.startswith(":")]
    assert seen["client"][0] == "127.0.0.1"
    assert seen["server"] == ["127.0.0.1", server.port]
    assert seen["extensions"] == ["http.response.trailers"]


@needs_curl
def test_http1_clients_keep_working_on_an_http2_port(backend: dict[str, Any]) -> None:
    with background(echo_scope, **backend) as server:
        seen, version = seen_by_curl("--http1.1", f"{server.url}/one")
        assert (seen["http_version"], version) == ("1.1", "1.1")
        seen, version = seen_by_curl("--http1.1", "-d", "x=1", f"{server.url}/one")
        assert (seen["body"], version) == ("x=1", "1.1")


@needs_curl
def test_upgrade_h2c_serves_the_request_over_http2(backend: dict[str, Any]) -> None:
    with background(echo_scope, **backend) as server:
        result = curl("-v", "--http2", f"{server.url}/up?q=1")
    assert result.returncode == 0, result.stderr
    assert "HTTP/1.1 101 Switching Protocols" in result.stderr
    assert "< HTTP/2 200" in result.stderr
    seen = json.loads(result.stdout)
    assert (seen["http_version"], seen["path"], seen["query_string"]) == ("2", "/up", "q=1")
    # The HTTP/1.1 fields of the upgrade do not reach the app as request headers.
    names = {name for name, _ in seen["headers"]}
    assert not names & {"connection", "upgrade", "http2-settings"}


@needs_curl
@pytest.mark.parametrize("http2", [True, False])
def test_upgrade_h2c_with_a_body_is_answered_over_http1(http2: bool) -> None:
    # What `curl --http2 -d abc` sends; it used to get a 400.
    with background(echo_scope, http2=http2) as server:
        seen, version = seen_by_curl("--http2", "-d", "abc", f"{server.url}/post")
    assert (seen["http_version"], seen["method"], seen["body"], version) == ("1.1", "POST", "abc", "1.1")


@needs_curl
@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_http2_flag_off_means_http1_only(http: str, caplog: pytest.LogCaptureFixture) -> None:
    with background(echo_scope, http=http) as server:
        result = curl("--http2-prior-knowledge", f"{server.url}/")
        assert result.returncode != 0  # the preface is not an HTTP/1.1 request
        # The log says what happened and what to do, in both codecs' words.
        assert any("HTTP/2 is off (start the server with --http2)" in r.getMessage() for r in caplog.records)
        seen, version = seen_by_curl("--http2", f"{server.url}/")
    assert (seen["http_version"], version) == ("1.1", "1.1")


@needs_curl
def test_https_alpn_negotiates_h2_and_falls_back_to_http1(
    certificates: Certificates, backend: dict[str, Any]
) -> None:
    tls = {"ssl_certfile": certificates.certfile, "ssl_keyfile": certificates.keyfile}
    with background(echo_scope, **backend, **tls) as server:
        assert server.url.startswith("https://")
        seen, version = seen_by_curl("--cacert", certificates.ca_certfile, f"{server.url}/tls")
        assert (seen["http_version"], seen["scheme"], version) == ("2", "https", "2")
        seen, version = seen_by_curl("--http1.1", "--cacert", certificates.ca_certfile, f"{server.url}/tls")
        assert (seen["http_version"], seen["scheme"], version) == ("1.1", "https", "1.1")
    # Without --http2, ALPN offers no h2: curl speaks HTTP/1.1 over TLS.
    with background(echo_scope, **tls) as server:
        seen, version = seen_by_curl("--cacert", certificates.ca_certfile, f"{server.url}/tls")
        assert (seen["http_version"], version) == ("1.1", "1.1")


def test_httpx_http2_over_tls_many_requests_and_bodies(
    certificates: Certificates, backend: dict[str, Any]
) -> None:
    tls = {"ssl_certfile": certificates.certfile, "ssl_keyfile": certificates.keyfile}
    big = b"x" * 300_000  # larger than the stream and connection windows: flow control must open them
    with (
        background(echo_scope, **backend, **tls) as server,
        httpx.Client(http2=True, verify=certificates.client_context(), timeout=10 * UNIT) as client,
    ):
        for i in range(20):
            response = client.post(f"{server.url}/n/{i}", content=big if i % 5 == 0 else b"small")
            assert response.http_version == "HTTP/2"
            seen = response.json()
            assert seen["path"] == f"/n/{i}"
            assert len(seen["body"]) == (len(big) if i % 5 == 0 else 5)
            assert response.headers["x-test"] == "yes"
            assert response.headers["server"] == "hatchway"


async def _concurrent_streams(url: str, count: int) -> list[httpx.Response]:
    # http1=False: HTTP/2 with prior knowledge on a plain URL.
    async with httpx.AsyncClient(http1=False, http2=True, timeout=10 * UNIT) as client:
        return await asyncio.gather(*(client.get(f"{url}/s/{i}") for i in range(count)))


def test_many_concurrent_streams_on_one_connection(backend: dict[str, Any]) -> None:
    with background(echo_scope, **backend) as server:
        responses = asyncio.run(_concurrent_streams(server.url, 60))
    assert [r.http_version for r in responses] == ["HTTP/2"] * 60
    assert [r.json()["path"] for r in responses] == [f"/s/{i}" for i in range(60)]
    # One connection carried them all.
    assert len({r.json()["client"][1] for r in responses}) == 1


@pytest.mark.skipif(NGHTTP is None, reason="nghttp is not installed")
def test_nghttp_multiplexes_streams(backend: dict[str, Any]) -> None:
    with background(echo_scope, **backend) as server:
        urls = [f"{server.url}/m/{i}" for i in range(10)]
        assert NGHTTP is not None
        result = subprocess.run(
            [NGHTTP, "-n", "-s", "-t", str(int(10 * UNIT)), *urls],
            capture_output=True,
            text=True,
            timeout=20 * UNIT,
        )
    assert result.returncode == 0, result.stderr
    # -s prints one statistics line per stream, each with its status.
    assert result.stdout.count("200") >= 10, result.stdout


class _Unbounded(h2.connection.H2Connection):
    """h2's client, free to open more streams than the server allows (to test the server's refusal)."""

    @property
    def open_outbound_streams(self) -> int:
        return 0


class H2Client:
    """A small h2c client over a real socket, for what curl and httpx do not show (trailers, resets)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5 * UNIT)
        self.conn = _Unbounded(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def request(self, path: str, body: bytes = b"", end: bool = True, **headers: str) -> int:
        stream_id: int = self.conn.get_next_available_stream_id()
        fields = [(":method", "POST" if body or not end else "GET"), (":scheme", "http"), (":path", path)]
        fields += [(":authority", "test"), *((k.replace("_", "-"), v) for k, v in headers.items())]
        self.conn.send_headers(stream_id, fields, end_stream=end and not body)
        if body:
            self.conn.send_data(stream_id, body, end_stream=end)
        self.flush()
        return stream_id

    def events_until(self, done: Any, limit: int = 2000) -> list[Any]:
        """Events until ``done(events)``; the socket's timeout bounds every read."""
        events: list[Any] = []
        for _ in range(limit):
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:  # the server closed while this client still sent (after a GOAWAY)
                break
            if not data:
                break
            new = self.conn.receive_data(data)
            for event in new:  # a reading client: what it received, it opens the window for again
                if isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            events += new
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # the server may have closed
                self.flush()
            if done(events):
                break
        return events

    def close(self) -> None:
        self.sock.close()


def ended(stream_id: int) -> Any:
    return lambda events: any(
        isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id == stream_id
        for e in events
    )


def one_request(port: int, path: str, **headers: str) -> list[Any]:
    """A GET on a fresh connection: the events until its stream ends."""
    client = H2Client(port)
    try:
        sid = client.request(path, **headers)
        return client.events_until(ended(sid))
    finally:
        client.close()


async def trailers_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    assert "http.response.trailers" in scope["extensions"]
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/grpc"), (b"content-length", b"5")],
            "trailers": True,
        }
    )
    await send({"type": "http.response.body", "body": b"hello", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    await send({"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")], "more_trailers": True})
    await send(
        {"type": "http.response.trailers", "headers": [(b"grpc-message", b"ok")], "more_trailers": False}
    )


def test_response_trailers_over_http2(backend: dict[str, Any]) -> None:
    with background(trailers_app, **backend) as server:
        events = one_request(server.port, "/t", te="trailers")
    response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    assert dict(response.headers)[b":status"] == b"200"
    data = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    assert data == b"hello"
    trailers = next(e for e in events if isinstance(e, h2.events.TrailersReceived))
    assert (b"grpc-status", b"0") in trailers.headers
    assert (b"grpc-message", b"ok") in trailers.headers
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_response_trailers_over_http1_chunked() -> None:
    with background(trailers_app) as server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(5 * UNIT)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert b"content-length" not in head.lower()  # chunked framing replaces the app's length
    assert body == b"5\r\nhello\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n"


def test_reset_stream_cancels_the_app_and_the_connection_goes_on(backend: dict[str, Any]) -> None:
    started = threading.Event()
    cancelled: list[str] = []

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/slow":
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(scope["path"])
                raise
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"fast"})

    with background(slow, **backend) as server:
        client = H2Client(server.port)
        try:
            sid = client.request("/slow")
            assert started.wait(5 * UNIT)  # the app runs: the reset must cancel it
            client.conn.reset_stream(sid)
            client.flush()
            fast = client.request("/fast")
            events = client.events_until(ended(fast))
            assert b"fast" in b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
        finally:
            client.close()
        for _ in range(50):
            if cancelled:
                break
            time.sleep(0.05 * UNIT)
    assert cancelled == ["/slow"]


def test_app_error_gives_500_and_the_connection_goes_on(
    caplog: pytest.LogCaptureFixture, backend: dict[str, Any]
) -> None:
    async def broken(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/boom":
            raise ValueError("boom")
        await echo_scope(scope, receive, send)

    with background(broken, **backend) as server:
        client = H2Client(server.port)
        try:
            sid = client.request("/boom")
            events = client.events_until(ended(sid))
            response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
            assert dict(response.headers)[b":status"] == b"500"
            ok = client.request("/ok")
            events = client.events_until(ended(ok))
            response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
            assert dict(response.headers)[b":status"] == b"200"
        finally:
            client.close()
    assert any("Exception in ASGI application" in r.getMessage() for r in caplog.records)


def test_access_log_says_http2(caplog: pytest.LogCaptureFixture, backend: dict[str, Any]) -> None:
    caplog.set_level("INFO", logger="hatchway.access")
    with background(echo_scope, **backend, access_log=True) as server:
        client = H2Client(server.port)
        try:
            sid = client.request("/logged?x=1")
            client.events_until(ended(sid))
        finally:
            client.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "hatchway.access"]
    assert any('"GET /logged?x=1 HTTP/2" 200' in line for line in lines), lines


def test_request_body_backpressure_opens_the_window_as_the_app_reads() -> None:
    # An app that never reads: the client can send one window's worth and no more (the server buffers at
    # most the window it advertised).
    release = asyncio.Event()

    async def no_read(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await asyncio.wait_for(release.wait(), 3 * UNIT)

    with background(no_read, http2=True, h2_initial_window_size=16384) as server:
        client = H2Client(server.port)
        try:
            client.events_until(
                lambda events: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events)
            )
            sid = client.request("/upload", end=False)
            window = client.conn.local_flow_control_window(sid)
            assert window == 16384
            client.conn.send_data(sid, b"x" * window)
            client.flush()
            # The window stays closed: no WINDOW_UPDATE for the stream arrives while the app does not read.
            client.sock.settimeout(0.5 * UNIT)
            updates: list[Any] = []
            try:
                updates = client.events_until(lambda events: False, limit=5)
            except TimeoutError:
                pass
            assert not [e for e in updates if isinstance(e, h2.events.WindowUpdated) and e.stream_id == sid]
            assert client.conn.local_flow_control_window(sid) == 0
        finally:
            client.close()


def test_request_body_timeout_resets_the_stream(backend: dict[str, Any]) -> None:
    seen: list[str] = []

    async def reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        message = await receive()
        while message["type"] == "http.request" and message.get("more_body"):
            message = await receive()
        seen.append(message["type"])

    with background(reader, timeout_request_body=0.5 * UNIT, **backend) as server:
        client = H2Client(server.port)
        try:
            sid = client.request("/upload", body=b"part", end=False)  # the rest never comes
            events = client.events_until(ended(sid))
        finally:
            client.close()
    reset = [e for e in events if isinstance(e, h2.events.StreamReset) and e.stream_id == sid]
    assert [e.error_code for e in reset] == [h2.errors.ErrorCodes.CANCEL]
    assert seen == ["http.disconnect"]


@pytest.mark.parametrize(
    ("allowed", "seen_as"), [("127.0.0.1", ("6.6.6.6", "https")), ("10.0.0.1", ("127.0.0.1", "http"))]
)
def test_proxy_headers_are_believed_from_a_trusted_peer_only(
    backend: dict[str, Any], allowed: str, seen_as: tuple[str, str]
) -> None:
    options = {"proxy_headers": True, "forwarded_allow_ips": allowed}
    with background(echo_scope, **options, **backend) as server:
        events = one_request(server.port, "/p", x_forwarded_for="6.6.6.6", x_forwarded_proto="https")
    seen = json.loads(b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived)))
    assert (seen["client"][0], seen["scheme"]) == seen_as


def test_limit_concurrency_answers_503_per_stream(backend: dict[str, Any]) -> None:
    release = threading.Event()

    async def held(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/hold":
            await asyncio.get_running_loop().run_in_executor(None, release.wait, 5 * UNIT)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with background(held, limit_concurrency=1, **backend) as server:
        client = H2Client(server.port)
        try:
            first = client.request("/hold")
            second = client.request("/other")
            events = client.events_until(ended(second))
            release.set()
            events += client.events_until(ended(first))
        finally:
            release.set()
            client.close()
    statuses = {
        e.stream_id: dict(e.headers)[b":status"] for e in events if isinstance(e, h2.events.ResponseReceived)
    }
    assert statuses == {first: b"200", second: b"503"}


def test_idle_connection_gets_goaway_before_the_close(backend: dict[str, Any]) -> None:
    with background(echo_scope, timeout_keep_alive=0.3 * UNIT, **backend) as server:
        client = H2Client(server.port)
        try:
            sid = client.request("/once")
            client.events_until(ended(sid))
            events = client.events_until(
                lambda events: any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
            )
        finally:
            client.close()
    goaway = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert [(e.error_code, e.last_stream_id) for e in goaway] == [(h2.errors.ErrorCodes.NO_ERROR, sid)]


def test_a_stream_over_the_concurrency_limit_is_refused_alone(backend: dict[str, Any]) -> None:
    release = threading.Event()

    async def held(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 5 * UNIT)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with background(held, h2_max_concurrent_streams=3, **backend) as server:
        client = H2Client(server.port)
        try:
            # Acknowledged SETTINGS first: the client then knows the limit (and the server enforces it).
            client.events_until(
                lambda events: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events)
            )
            sids = [client.request(f"/{i}") for i in range(4)]
            events = client.events_until(ended(sids[3]))
            release.set()
            done = {e.stream_id for e in events if isinstance(e, h2.events.StreamEnded)}
            if not done.issuperset(sids[:3]):
                events += client.events_until(
                    lambda new: (
                        done.union(e.stream_id for e in new if isinstance(e, h2.events.StreamEnded))
                        >= set(sids[:3])
                    )
                )
        finally:
            release.set()
            client.close()
    resets = {e.stream_id: e.error_code for e in events if isinstance(e, h2.events.StreamReset)}
    assert resets == {sids[3]: h2.errors.ErrorCodes.REFUSED_STREAM}
    ok = [e.stream_id for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert sorted(ok) == sids[:3]
    assert not [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]


def test_requests_with_priority_and_window_updates_are_not_a_flood(backend: dict[str, Any]) -> None:
    # Browsers put priority on every HEADERS; readers send WINDOW_UPDATE as they go: 700 requests a second on
    # one connection, each with priority, stay well past h2_max_control_frames_per_second=500.
    with background(echo_scope, **backend) as server:
        client = H2Client(server.port)
        try:
            for batch in range(7):
                sids = []
                for i in range(100):
                    sid = client.conn.get_next_available_stream_id()
                    fields = [(":method", "GET"), (":scheme", "http"), (":path", f"/{batch}/{i}")]
                    client.conn.send_headers(
                        sid, [*fields, (":authority", "t")], end_stream=True, priority_weight=32
                    )
                    sids.append(sid)
                client.flush()
                events = client.events_until(ended(sids[-1]))
                assert not [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
            assert sum(isinstance(e, h2.events.ResponseReceived) for e in events) >= 1
        finally:
            client.close()


def test_one_unread_upload_does_not_stall_the_others(backend: dict[str, Any]) -> None:
    if backend.get("http") == "zttp":
        pytest.skip("zttp opens windows itself: reading pauses for the whole connection (docs/http2.md)")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/stuck":
            await asyncio.sleep(5 * UNIT)  # never reads its body
            return
        await echo_scope(scope, receive, send)

    with background(app, h2_initial_window_size=131072, **backend) as server:
        client = H2Client(server.port)
        try:
            client.events_until(
                lambda events: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events)
            )
            stuck = client.request("/stuck", end=False)
            for _ in range(6):  # 96 KiB: more than the connection's initial window of 65535
                client.conn.send_data(stuck, b"s" * 16384)
            client.flush()
            other = client.request("/other", end=False)
            sent = 0
            events: list[Any] = []
            while sent < 200_000:  # larger than one stream window: the app reads, windows open
                room = min(client.conn.local_flow_control_window(other), 16384, 200_000 - sent)
                if room:
                    client.conn.send_data(other, b"o" * room)
                    client.flush()
                    sent += room
                else:
                    events += client.events_until(
                        lambda ev: any(isinstance(e, h2.events.WindowUpdated) for e in ev), limit=50
                    )
            client.conn.end_stream(other)
            client.flush()
            events += client.events_until(ended(other))
        finally:
            client.close()
    body = json.loads(b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived)))
    assert len(body["body"]) == 200_000


def test_host_that_differs_from_authority_is_refused(backend: dict[str, Any]) -> None:
    # RFC 9113 8.3.1: malformed. Both libraries refuse it (h2: the connection, zttp: the stream); the app never
    # sees a request whose Host and :authority disagree.
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope["path"])
        await echo_scope(scope, receive, send)

    with background(app, **backend) as server:
        client = H2Client(server.port)
        try:
            client.conn.config.validate_outbound_headers = False  # h2 would refuse to send it
            sid = client.request("/h", host="elsewhere.example")
            events = client.events_until(
                lambda ev: any(
                    isinstance(
                        e, (h2.events.StreamReset, h2.events.ConnectionTerminated, h2.events.StreamEnded)
                    )
                    for e in ev
                )
            )
        finally:
            client.close()
    assert seen == []
    refusals = [e for e in events if isinstance(e, (h2.events.StreamReset, h2.events.ConnectionTerminated))]
    assert [e.error_code for e in refusals] == [h2.errors.ErrorCodes.PROTOCOL_ERROR]
    assert sid


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_bodiless_response_ends_its_stream_when_the_head_went_first(
    backend: dict[str, Any], method: str, status: int
) -> None:
    async def slow_end(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": status, "headers": []})
        await asyncio.sleep(0.05)  # the head goes out on its own first
        await send({"type": "http.response.body", "body": b""})

    with background(slow_end, **backend) as server:
        client = H2Client(server.port)
        try:
            sid = client.conn.get_next_available_stream_id()
            fields = [(":method", method), (":scheme", "http"), (":path", "/"), (":authority", "t")]
            client.conn.send_headers(sid, fields, end_stream=True)
            client.flush()
            events = client.events_until(ended(sid))
        finally:
            client.close()
    assert any(isinstance(e, h2.events.StreamEnded) and e.stream_id == sid for e in events)


def test_bodies_the_app_does_not_read_release_the_connection_window(backend: dict[str, Any]) -> None:
    # 200 uploads of 48 KB answered without reading, on one connection: ~9.6 MB, more than the connection
    # window. Each unread body must be credited back, or the connection stalls for good.
    async def refuse(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})

    with background(refuse, **backend) as server:
        client = H2Client(server.port)
        try:
            for _ in range(200):
                sid = client.conn.get_next_available_stream_id()
                fields = [(":method", "POST"), (":scheme", "http"), (":path", "/"), (":authority", "t")]
                client.conn.send_headers(sid, fields)
                sent = 0
                events: list[Any] = []
                while sent < 48_000:
                    room = min(client.conn.local_flow_control_window(sid), 16384, 48_000 - sent)
                    if room <= 0:
                        events += client.events_until(
                            lambda ev: any(
                                isinstance(e, (h2.events.WindowUpdated, h2.events.StreamReset)) for e in ev
                            )
                        )
                        if any(isinstance(e, h2.events.StreamReset) and e.stream_id == sid for e in events):
                            break
                        continue
                    client.conn.send_data(sid, b"u" * room, end_stream=sent + room == 48_000)
                    client.flush()
                    sent += room
                if not any(isinstance(e, h2.events.StreamEnded) and e.stream_id == sid for e in events):
                    events += client.events_until(ended(sid))
                assert not [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
        finally:
            client.close()


def test_window_update_flood_on_a_closed_window_is_counted() -> None:
    # The client holds every stream's window at zero (its SETTINGS), then sends one-byte connection updates:
    # they let nothing go, so they count against h2_max_control_frames_per_second.
    async def big(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * 100_000})

    with background(big, http2=True) as server:
        client = H2Client(server.port)
        try:
            client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
            client.flush()
            for i in range(10):
                client.request(f"/{i}")
            for _ in range(2000):
                client.conn.increment_flow_control_window(1)
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # closed mid-flood: expected
                client.flush()
            events = client.events_until(
                lambda ev: any(isinstance(e, h2.events.ConnectionTerminated) for e in ev)
            )
        finally:
            client.close()
    goaway = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert [e.error_code for e in goaway] == [h2.errors.ErrorCodes.ENHANCE_YOUR_CALM]


def test_default_header_options_apply_over_http2(backend: dict[str, Any]) -> None:
    options = {"headers": ["x-served-by: edge-1"], "server_header": False, "date_header": False}
    with background(echo_scope, **options, **backend) as server:
        events = one_request(server.port, "/h")
    response = dict(next(e for e in events if isinstance(e, h2.events.ResponseReceived)).headers)
    assert response[b"x-served-by"] == b"edge-1"
    assert b"server" not in response
    assert b"date" not in response
