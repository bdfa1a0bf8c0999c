"""The wire-case table over real sockets, with both parsers: the answers a client actually sees."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from hatchway import Server
from tests.http_cases import CASE_IDS, CASES, OK, ResponseReader, WireCase, echo_app
from tests.utils import UNIT, port_of, serve_in_thread


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with serve_in_thread(echo_app, http=request.param, access_log=False) as server:
        server.codec_name = request.param  # type: ignore[attr-defined]
        yield server


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port_of(server)), timeout=5 * UNIT)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_wire_case(case: WireCase, server: Server) -> None:
    expected = case.answers(server.codec_name)  # type: ignore[attr-defined]
    with connect(server) as sock:
        sock.sendall(case.raw)
        if not expected:
            # The request is still incomplete for this parser: nothing may be answered yet.
            reader = ResponseReader(sock, 0.3 * UNIT)
            assert reader.read() is None
            assert not reader.buffer
            return
        reader = ResponseReader(sock, 5 * UNIT)
        for answer in expected:
            response = reader.read()
            assert response is not None, f"no response; expected {answer}"
            if isinstance(answer, int):
                assert response.status == answer
                assert response.header(b"connection") == b"close"
            else:
                assert (response.status, response.body) == answer
        last = expected[-1]
        if (
            isinstance(last, int)
            or b"connection: close" in case.raw.lower()
            or b"HTTP/1.0\r\n\r\n" in case.raw
        ):
            # Closed, and nothing more on the wire: a smuggled request is never answered.
            assert reader.closed(), f"unexpected bytes after the answers: {reader.buffer[:200]!r}"
        else:
            # Still usable: the next request on the same connection is answered.
            sock.sendall(OK)
            response = reader.read()
            assert response is not None
            assert response.status == 200
