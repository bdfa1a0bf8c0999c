"""File responses (``http.response.pathsend`` and ``zerocopysend``) over real sockets: the bytes on the wire are
the file's, sendfile(2) carries them on plain TCP and UNIX sockets and copying under TLS, keep-alive and
pipelining go on after them, and a slow, vanished or lying client (or file) never hangs a connection."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import hatchway
from hatchway._http import files
from tests.conftest import Certificates
from tests.http_cases import Response, ResponseReader
from tests.utils import UNIT

LOOPS = ["asyncio", "uvloop"]
SIZES = [0, 1, 5000, files.COPY_MAX, files.COPY_MAX + 1, 300_000, 3_000_000]


def content(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that differ from one position to the next (a shifted or repeated block would show)."""
    out = bytearray()
    counter = seed
    while len(out) < size:
        out += hashlib.sha256(b"%d" % counter).digest()
        counter += 1
    return bytes(out[:size])


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("files")
    for size in SIZES:
        (directory / f"{size}.bin").write_bytes(content(size))
    return directory


def sent() -> dict[str, int]:
    return dict(files.BYTES_SENT)


def moved(before: dict[str, int], way: str, at_least: int) -> bool:
    """Whether ``at_least`` bytes went ``way`` since ``before``. The server's thread counts them after the
    system call, so the client may have them a moment before the count: wait a little (bounded)."""
    deadline = time.monotonic() + 2 * UNIT
    while files.BYTES_SENT[way] - before[way] < at_least:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# -- apps -------------------------------------------------------------------------------------------------
async def pathsend_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """GET /<file>: the file by pathsend, no Content-Length from the app; /plain: a small ordinary body;
    ?length=N: the app's own Content-Length."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/plain":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain"})
        return
    headers = [(b"content-type", b"application/octet-stream")]
    query = scope["query_string"].decode()
    if query.startswith("length="):
        headers.append((b"content-length", query.split("=", 1)[1].encode()))
    assert "http.response.pathsend" in scope["extensions"]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.pathsend", "path": scope["state"]["root"] + scope["path"]})


def with_root(app: Any, root: Path) -> Any:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["root"] = str(root)
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await app(scope, receive, send)

    return wrapped


@pytest.fixture(params=LOOPS)
def server(request: pytest.FixtureRequest, tree: Path) -> Iterator[hatchway.testing.BackgroundServer]:
    with hatchway.background(with_root(pathsend_app, tree), loop=request.param, access_log=False) as server:
        yield server


def connect(server: Any) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=5 * UNIT)


def get(path: str, *, method: str = "GET", close: bool = False, version: str = "1.1") -> bytes:
    extra = "connection: close\r\n" if close else ""
    return f"{method} {path} HTTP/{version}\r\nhost: test\r\n{extra}\r\n".encode()


def read_response(reader: ResponseReader, head: bool = False) -> Response:
    response = reader.read(head_request=head)
    assert response is not None, "no complete response"
    return response


# -- the bytes on the wire ------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
def test_bytes_on_the_wire_are_the_file(server: Any, size: int) -> None:
    before = sent()
    with connect(server) as sock:
        sock.sendall(get(f"/{size}.bin"))
        response = read_response(ResponseReader(sock, 10 * UNIT))
    assert response.status == 200
    assert response.body == content(size)
    # The app gave no Content-Length: the file's size is given, never chunked framing.
    assert response.header(b"content-length") == b"%d" % size
    assert response.header(b"transfer-encoding") is None
    if size > files.COPY_MAX:
        assert moved(before, "sendfile", size)  # other tests may run in this process meanwhile
    elif size:
        assert moved(before, "copied", size)


def test_keep_alive_after_file_responses(server: Any) -> None:
    with connect(server) as sock:
        reader = ResponseReader(sock, 20 * UNIT)
        for size in [300_000, 5000, 3_000_000, 0, 1]:
            sock.sendall(get(f"/{size}.bin"))
            assert read_response(reader).body == content(size)
            sock.sendall(get("/plain"))
            assert read_response(reader).body == b"plain"
        assert reader.buffer == b""


def test_pipelined_requests_after_a_file_stay_in_order(server: Any) -> None:
    order = ["/3000000.bin", "/plain", "/300000.bin", "/5000.bin", "/plain", "/3000000.bin", "/0.bin"]
    with connect(server) as sock:
        sock.sendall(b"".join(get(path) for path in order))
        reader = ResponseReader(sock, 20 * UNIT)
        for path in order:
            expected = b"plain" if path == "/plain" else content(int(path[1:-4]))
            assert read_response(reader).body == expected, path
        assert reader.buffer == b""


def test_connection_close_and_http_1_0(server: Any) -> None:
    for request in (get("/300000.bin", close=True), get("/300000.bin", version="1.0")):
        with connect(server) as sock:
            sock.sendall(request)
            reader = ResponseReader(sock, 10 * UNIT)
            response = read_response(reader)
            assert response.body == content(300_000)
            assert response.header(b"connection") == b"close"
            assert reader.read() is None
            assert reader.eof


def test_head_gets_the_length_and_no_body(server: Any) -> None:
    with connect(server) as sock:
        reader = ResponseReader(sock, 10 * UNIT)
        sock.sendall(get("/3000000.bin", method="HEAD") + get("/5000.bin"))
        head = read_response(reader, head=True)
        assert head.header(b"content-length") == b"3000000"
        # Nothing but the next response follows the head.
        assert read_response(reader).body == content(5000)
        assert reader.buffer == b""


def test_app_content_length_that_is_wrong_closes_the_connection(server: Any) -> None:
    # Longer than Content-Length: the declared bytes go out, then the connection closes (never a next
    # response made of the file's tail).
    with connect(server) as sock:
        sock.sendall(get("/300000.bin?length=100000") + get("/plain"))
        reader = ResponseReader(sock, 10 * UNIT)
        response = read_response(reader)
        assert response.body == content(300_000)[:100_000]
        assert reader.read() is None
        assert reader.eof
        assert reader.buffer == b""
    # Shorter: the client sees the truncation (the connection closes before Content-Length bytes).
    with connect(server) as sock:
        sock.sendall(get("/300000.bin?length=400000"))
        reader = ResponseReader(sock, 10 * UNIT)
        assert reader.read() is None
        assert reader.eof
        assert reader.buffer == content(300_000)  # the body read so far (the head was consumed)


def test_a_missing_file_is_a_500(server: Any) -> None:
    with connect(server) as sock:
        sock.sendall(get("/missing.bin"))
        response = read_response(ResponseReader(sock, 10 * UNIT))
    assert response.status == 500


def test_a_fifo_is_refused_without_blocking_the_server(server: Any, tree: Path) -> None:
    # Opening a FIFO for reading blocks until a writer comes: it must not stall the event loop.
    fifo = tree / "pipe.fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    with connect(server) as sock:
        sock.sendall(get("/pipe.fifo"))
        response = read_response(ResponseReader(sock, 5 * UNIT))
    assert response.status == 500
    with connect(server) as sock:
        sock.sendall(get("/plain"))
        assert read_response(ResponseReader(sock, 5 * UNIT)).body == b"plain"


# -- TLS and UNIX sockets ------------------------------------------------------------------------------------
@pytest.mark.parametrize("loop", LOOPS)
def test_tls_copies(tree: Path, certificates: Certificates, loop: str) -> None:
    before = sent()
    with hatchway.background(
        with_root(pathsend_app, tree),
        loop=loop,
        access_log=False,
        ssl_certfile=certificates.certfile,
        ssl_keyfile=certificates.keyfile,
    ) as server:
        context = certificates.client_context()
        with (
            socket.create_connection((server.host, server.port), timeout=10 * UNIT) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            reader = ResponseReader(sock, 20 * UNIT)
            for size in (3_000_000, 5000, 300_000):
                sock.sendall(get(f"/{size}.bin"))
                assert read_response(reader).body == content(size)
    assert moved(before, "copied", 3_305_000)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs UNIX sockets")
@pytest.mark.parametrize("loop", LOOPS)
def test_unix_socket_uses_sendfile(tree: Path, tmp_path: Path, loop: str) -> None:
    path = str(tmp_path / "s.sock")
    before = sent()
    with (
        hatchway.background(with_root(pathsend_app, tree), loop=loop, access_log=False, uds=path),
        socket.socket(socket.AF_UNIX) as sock,
    ):
        sock.settimeout(10 * UNIT)
        sock.connect(path)
        sock.sendall(get("/3000000.bin") + get("/plain"))
        reader = ResponseReader(sock, 20 * UNIT)
        assert read_response(reader).body == content(3_000_000)
        assert read_response(reader).body == b"plain"
    assert moved(before, "sendfile", 3_000_000)


# -- slow, stalled and vanished clients; a file that shrinks ------------------------------------------------------
def small_buffer_client(server: Any) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10 * UNIT)
    sock.connect((server.host, server.port))
    return sock


def read_until_eof(sock: socket.socket, deadline: float, pause: float = 0.0) -> bytes:
    out = bytearray()
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            data = sock.recv(16384)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not data:
            break
        out += data
        if pause:
            time.sleep(pause)
    return bytes(out)


def test_slow_reader_gets_every_byte_and_others_are_served_meanwhile(server: Any) -> None:
    with small_buffer_client(server) as slow:
        slow.sendall(get("/3000000.bin", close=True))
        # While the server waits for the slow client, another connection is answered at once.
        time.sleep(0.1 * UNIT)
        with connect(server) as other:
            started = time.monotonic()
            other.sendall(get("/300000.bin"))
            assert read_response(ResponseReader(other, 5 * UNIT)).body == content(300_000)
            assert time.monotonic() - started < 2 * UNIT
        # Then the slow client reads in small pieces with pauses.
        data = read_until_eof(slow, time.monotonic() + 60 * UNIT, pause=0.0005)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-length: 3000000" in head
    assert body == content(3_000_000)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(tree: Path, loop: str) -> None:
    with (
        hatchway.background(
            with_root(pathsend_app, tree), loop=loop, access_log=False, timeout_send=0.3
        ) as server,
        small_buffer_client(server) as sock,
    ):
        sock.sendall(get("/3000000.bin"))
        time.sleep(1.5 * UNIT)  # reads nothing: the server gives up after 0.3 s
        data = read_until_eof(sock, time.monotonic() + 10 * UNIT)
        assert len(data) < 3_000_000
        # The server is fine afterwards.
        with connect(server) as other:
            other.sendall(get("/5000.bin"))
            assert read_response(ResponseReader(other, 5 * UNIT)).body == content(5000)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_file_that_shrinks_while_sent_closes_the_connection(tmp_path: Path, loop: str) -> None:
    (tmp_path / "shrinks.bin").write_bytes(content(8_000_000))
    with (
        hatchway.background(with_root(pathsend_app, tmp_path), loop=loop, access_log=False) as server,
        small_buffer_client(server) as sock,
    ):
        sock.sendall(get("/shrinks.bin") + get("/plain"))
        time.sleep(0.3 * UNIT)  # the server has filled the socket and waits for room
        os.truncate(tmp_path / "shrinks.bin", 1_000_000)
        data = read_until_eof(sock, time.monotonic() + 20 * UNIT)
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"content-length: 8000000" in head
        # Closed (EOF reached well within the deadline) after what the file still had, with no next response.
        assert 1_000_000 <= len(body) < 8_000_000
        assert body[:1_000_000] == content(8_000_000)[:1_000_000]


@pytest.mark.parametrize("loop", LOOPS)
def test_client_gone_mid_file_and_descriptors_released(tree: Path, loop: str) -> None:
    def open_descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    with hatchway.background(with_root(pathsend_app, tree), loop=loop, access_log=False) as server:
        with connect(server) as sock:  # whatever the loop makes on first use exists from now on
            sock.sendall(get("/300000.bin"))
            read_response(ResponseReader(sock, 5 * UNIT))
        time.sleep(0.1 * UNIT)
        base = open_descriptors()
        for _ in range(5):
            with small_buffer_client(server) as sock:
                sock.sendall(get("/3000000.bin"))
                sock.recv(1000)
                # Reset, not a clean close: the server is waiting for room on the socket when it goes.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        with connect(server) as sock:  # the server goes on
            sock.sendall(get("/300000.bin"))
            assert read_response(ResponseReader(sock, 5 * UNIT)).body == content(300_000)
        # No file, socket or duplicate descriptor is left open.
        deadline = time.monotonic() + 5 * UNIT
        while open_descriptors() > base and time.monotonic() < deadline:
            time.sleep(0.02)
        assert open_descriptors() <= base


@pytest.mark.parametrize("loop", LOOPS)
def test_app_cancelled_mid_file_closes_the_connection(tree: Path, loop: str) -> None:
    outcome: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await asyncio.wait_for(
                send({"type": "http.response.pathsend", "path": str(tree / "3000000.bin")}), 0.2 * UNIT
            )
        except (asyncio.TimeoutError, TimeoutError):
            outcome.append("timed out")

    with hatchway.background(app, loop=loop, access_log=False) as server, small_buffer_client(server) as sock:
        sock.sendall(get("/"))
        time.sleep(0.5 * UNIT)
        data = read_until_eof(sock, time.monotonic() + 10 * UNIT)
    assert outcome == ["timed out"]
    assert len(data) < 3_000_000


# -- zerocopysend -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loop", LOOPS)
def test_zerocopysend_file_objects_descriptors_offsets_and_body_mixed(tree: Path, loop: str) -> None:
    big = content(3_000_000)
    positions: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        assert "http.response.zerocopysend" in scope["extensions"]
        # No Content-Length and several parts: chunked framing.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with open(tree / "3000000.bin", "rb") as file:
            await send({"type": "http.response.body", "body": b"<start>", "more_body": True})
            file.read(10)  # the object's position (10), not its descriptor's (read ahead), is where it starts
            await send({"type": "http.response.zerocopysend", "file": file, "count": 100, "more_body": True})
            positions.append(file.tell())
            await send(
                {"type": "http.response.zerocopysend", "file": file.fileno(), "offset": 1000, "count": 2_000_000,
                 "more_body": True}
            )  # fmt: skip
            positions.append(file.tell())  # an explicit offset leaves the position alone
            await send(
                {"type": "http.response.zerocopysend", "file": file, "offset": 2_500_000, "more_body": True}
            )
            await send({"type": "http.response.body", "body": b"<end>"})

    with (
        hatchway.background(app, loop=loop, access_log=False) as server,
        connect(server) as sock,
    ):
        sock.sendall(get("/") + get("/"))
        reader = ResponseReader(sock, 20 * UNIT)
        for _ in range(2):
            response = read_response(reader)
            assert response.header(b"transfer-encoding") == b"chunked"
            assert (
                response.body == b"<start>" + big[10:110] + big[1000:2_001_000] + big[2_500_000:] + b"<end>"
            )
    assert positions == [110, 110] * 2


@pytest.mark.parametrize("loop", LOOPS)
def test_zerocopysend_past_the_end_of_the_file_closes(tree: Path, loop: str) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"400000")]}
        )
        with open(tree / "300000.bin", "rb") as file:
            await send({"type": "http.response.zerocopysend", "file": file, "count": 400_000})

    with hatchway.background(app, loop=loop, access_log=False) as server, connect(server) as sock:
        sock.sendall(get("/") + get("/"))
        data = read_until_eof(sock, time.monotonic() + 10 * UNIT)
    assert data.count(b"HTTP/1.1") == 1
    assert data.endswith(content(300_000))


# -- Starlette's FileResponse -------------------------------------------------------------------------------------
def test_starlette_file_response_uses_pathsend(tree: Path) -> None:
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Route

    def endpoint(request: Any) -> FileResponse:
        return FileResponse(tree / request.path_params["name"])

    starlette = Starlette(routes=[Route("/{name}", endpoint)])
    kinds: list[str] = []

    async def spy(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def recording_send(message: dict[str, Any]) -> None:
            kinds.append(message["type"])
            await send(message)

        await starlette(scope, receive, recording_send)

    before = sent()
    with hatchway.background(spy) as server, httpx.Client(base_url=server.url, timeout=10 * UNIT) as client:
        response = client.get("/3000000.bin")
        assert response.content == content(3_000_000)
        assert response.headers["content-length"] == "3000000"
        assert kinds[-2:] == ["http.response.start", "http.response.pathsend"]
        assert moved(before, "sendfile", 3_000_000)
        # Range requests stay with the app (the spec says so): Starlette answers them with ordinary bodies.
        kinds.clear()
        partial = client.get("/300000.bin", headers={"range": "bytes=1000-1999"})
        assert partial.status_code == 206
        assert partial.content == content(300_000)[1000:2000]
        assert "http.response.pathsend" not in kinds
        # HEAD: Starlette sends the head only.
        head = client.head("/300000.bin")
        assert head.headers["content-length"] == "300000"
        assert head.content == b""


def test_starlette_through_tls(tree: Path, certificates: Certificates) -> None:
    from starlette.responses import FileResponse

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await FileResponse(tree / "3000000.bin")(scope, receive, send)

    options = {"ssl_certfile": certificates.certfile, "ssl_keyfile": certificates.keyfile}
    with (
        hatchway.background(app, **options) as server,
        httpx.Client(verify=certificates.client_context(), timeout=10 * UNIT) as client,
    ):
        assert client.get(server.url + "/").content == content(3_000_000)


# -- the sendfile path, in-process: many connections at once --------------------------------------------------------
@pytest.mark.parametrize("loop", LOOPS)
def test_many_concurrent_clients(tree: Path, loop: str) -> None:
    expected = content(300_000)
    failures: list[str] = []
    with hatchway.background(with_root(pathsend_app, tree), loop=loop, access_log=False) as server:

        def client() -> None:
            try:
                with connect(server) as sock:
                    reader = ResponseReader(sock, 20 * UNIT)
                    for _ in range(5):
                        sock.sendall(get("/300000.bin"))
                        if read_response(reader).body != expected:
                            failures.append("different bytes")
            except Exception as exc:
                failures.append(repr(exc))

        threads = [threading.Thread(target=client) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30 * UNIT)
    assert failures == []
    assert not any(thread.is_alive() for thread in threads)


def test_scope_offers_both_file_extensions(tree: Path) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope["extensions"])
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    with hatchway.background(app) as server:
        httpx.get(server.url, timeout=5 * UNIT)
    # (and response trailers, tests/test_http2.py)
    assert seen == [
        {"http.response.pathsend": {}, "http.response.zerocopysend": {}, "http.response.trailers": {}}
    ]


def test_access_log_counts_the_file_bytes(tree: Path) -> None:
    from tests.test_observe import Records

    handler = Records()
    access = logging.getLogger("hatchway.access")
    saved = (access.level, access.disabled)
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.disabled = False
    try:
        with (
            hatchway.background(
                with_root(pathsend_app, tree), access_log_format="%(U)s %(s)s %(b)s"
            ) as server,
            connect(server) as sock,
        ):
            sock.sendall(get("/3000000.bin") + get("/5000.bin"))
            reader = ResponseReader(sock, 20 * UNIT)
            for _ in range(2):
                read_response(reader)
            deadline = time.monotonic() + 5 * UNIT
            while len(handler.records) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        access.removeHandler(handler)
        access.setLevel(saved[0])
        access.disabled = saved[1]
    lines = [record.getMessage() for record in handler.records]
    assert lines == ["/3000000.bin 200 3000000", "/5000.bin 200 5000"]
