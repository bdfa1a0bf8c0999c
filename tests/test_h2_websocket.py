"""WebSockets over HTTP/2 (RFC 8441, extended CONNECT), on both HTTP/2 backends.

The client is the h2 library over a raw socket; the WebSocket frames on each stream are made and read by a
websockets ``Protocol`` in the client role (masked frames, the close handshake). The last test loads a page
in headless Chromium over HTTPS + HTTP/2 and has its script open a ``wss://`` WebSocket, which the browser
carries on the same HTTP/2 connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from websockets.frames import Close, Opcode
from websockets.protocol import OPEN, Protocol, Side

from hatchway.testing import background
from tests.conftest import Certificates
from tests.utils import UNIT


@pytest.fixture(params=["h2", "zttp"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The server options for each HTTP/2 backend: h2 (the default) and zttp (``--http zttp --http2``)."""
    if request.param == "zttp":
        pytest.importorskip("zttp")
        return {"http2": True, "http": "zttp"}
    return {"http2": True}


class Recorder:
    """What the app saw, from the server's thread; ``wait_for`` polls with a bound."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.lock = threading.Lock()

    def add(self, event: Any) -> None:
        with self.lock:
            self.events.append(event)

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> list[Any]:
        deadline = time.monotonic() + timeout * UNIT
        while time.monotonic() < deadline:
            with self.lock:
                found = [e for e in self.events if predicate(e)]
            if found:
                return found
            time.sleep(0.01)
        raise AssertionError(f"not seen in {timeout * UNIT}s; events: {self.events}")


def scope_json(scope: dict[str, Any]) -> str:
    return json.dumps(
        {
            "type": scope["type"],
            "http_version": scope["http_version"],
            "scheme": scope["scheme"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode(),
            "query_string": scope["query_string"].decode(),
            "root_path": scope["root_path"],
            "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
            "subprotocols": scope["subprotocols"],
            "client": list(scope["client"]) if scope["client"] else None,
            "server": list(scope["server"]) if scope["server"] else None,
            "extensions": sorted(scope.get("extensions", {})),
            "has_method": "method" in scope,
            "state": scope.get("state"),
        }
    )


def make_app(recorder: Recorder) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            body = json.dumps({"http_version": scope["http_version"], "path": scope["path"]}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "websocket":
            return
        path = scope["path"]
        assert (await receive())["type"] == "websocket.connect"
        if path == "/refuse":
            await send({"type": "websocket.close"})
            return
        if path == "/deny":
            await send(
                {"type": "websocket.http.response.start", "status": 401, "headers": [(b"x-why", b"token")]}
            )
            await send({"type": "websocket.http.response.body", "body": b"no token"})
            return
        subprotocols = scope["subprotocols"]
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": subprotocols[-1] if subprotocols else None,
                "headers": [(b"x-accepted", b"yes")],
            }
        )
        if path == "/close":
            await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
            recorder.add(("closed", path))
            return
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                recorder.add(("disconnect", path, message["code"]))
                return
            text = message.get("text")
            if text == "scope":
                await send({"type": "websocket.send", "text": scope_json(scope)})
            elif text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})

    return app


class H2WsClient:
    """An h2c client over a real socket whose streams may be WebSockets (extended CONNECT)."""

    def __init__(self, port: int, window: int | None = None) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5 * UNIT)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.ws: dict[int, Protocol] = {}
        self.frames: dict[int, list[Any]] = {}
        self.responses: dict[int, dict[bytes, bytes]] = {}
        self.ended: set[int] = set()
        self.sent_end: set[int] = set()
        self.reset: set[int] = set()
        self.bodies: dict[int, bytes] = {}
        self.settings: dict[int, int] = {}
        self.auto_ack = True
        self.received: dict[int, int] = {}
        self.goaway: Any = None
        self.buffer = bytearray()
        self.acked = False
        self.pump(lambda: bool(self.settings) and (window is None or self.acked))

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, done: Any, timeout: float = 5.0) -> None:
        """Read frames until ``done()``; every read is bounded by the socket's timeout, the whole by ``timeout``."""
        deadline = time.monotonic() + timeout * UNIT
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for the server")
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("the server closed the connection")
            self.buffer += data
            # One frame at a time, so that a graceful GOAWAY is seen before the frames that follow it.
            while len(self.buffer) >= 9:
                size = 9 + int.from_bytes(self.buffer[:3], "big")
                if len(self.buffer) < size:
                    break
                frame, self.buffer = bytes(self.buffer[:size]), self.buffer[size:]
                for event in self.conn.receive_data(frame):
                    self.on_event(event)
            self.flush()

    def on_event(self, event: Any) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings.update({int(k): v.new_value for k, v in event.changed_settings.items()})
        elif isinstance(event, h2.events.SettingsAcknowledged):
            self.acked = True
        elif isinstance(event, h2.events.ResponseReceived):
            self.responses[event.stream_id] = dict(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            sid = event.stream_id
            self.received[sid] = self.received.get(sid, 0) + event.flow_controlled_length
            if self.auto_ack:
                self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
            ws = self.ws.get(sid)
            if ws is not None and self.responses.get(sid, {}).get(b":status") == b"200":
                ws.receive_data(event.data)
                self.frames[sid] += ws.events_received()
                self._send_ws(sid)
            else:
                self.bodies[sid] = self.bodies.get(sid, b"") + event.data
        elif isinstance(event, h2.events.StreamEnded):
            self.ended.add(event.stream_id)
            ws = self.ws.get(event.stream_id)
            if ws is not None and self.responses.get(event.stream_id, {}).get(b":status") == b"200":
                ws.receive_eof()
                self._send_ws(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self.reset.add(event.stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
            if event.error_code == 0:
                # A graceful GOAWAY: the streams it covers go on (RFC 9113 6.8), but h2 would refuse their frames.
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN

    def _send_ws(self, sid: int) -> None:
        for data in self.ws[sid].data_to_send():
            if data:
                self.conn.send_data(sid, data)
            elif sid not in self.reset and sid not in self.sent_end:
                self.sent_end.add(sid)
                self.conn.end_stream(sid)  # websockets' end of stream: the client's END_STREAM
        self.flush()

    def connect(self, path: str, *extra: tuple[str, str], version: str | None = "13") -> int:
        sid: int = self.conn.get_next_available_stream_id()
        fields = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", path),
            (":authority", f"127.0.0.1:{self.port}"),
        ]
        if version is not None:
            fields.append(("sec-websocket-version", version))
        fields += list(extra)
        self.conn.send_headers(sid, fields)
        self.flush()
        self.ws[sid] = Protocol(Side.CLIENT, state=OPEN, max_size=None)
        self.frames[sid] = []
        return sid

    def get(self, path: str) -> int:
        sid: int = self.conn.get_next_available_stream_id()
        fields = [(":method", "GET"), (":scheme", "http"), (":path", path), (":authority", "test")]
        self.conn.send_headers(sid, fields, end_stream=True)
        self.flush()
        return sid

    def response(self, sid: int) -> dict[bytes, bytes]:
        self.pump(lambda: sid in self.responses or sid in self.reset)
        return self.responses[sid]

    def send_text(self, sid: int, text: str) -> None:
        self.ws[sid].send_text(text.encode())
        self._send_ws(sid)

    def send_binary(self, sid: int, data: bytes) -> None:
        self.ws[sid].send_binary(data)
        self._send_ws(sid)

    def close_ws(self, sid: int, code: int = 1000, reason: str = "") -> None:
        self.ws[sid].send_close(code, reason)
        self._send_ws(sid)

    def next_frame(self, sid: int) -> Any:
        self.pump(lambda: bool(self.frames[sid]))
        return self.frames[sid].pop(0)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_extended_connect_is_advertised(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend) as server:
        client = H2WsClient(server.port)
        try:
            assert client.settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL) == 1
        finally:
            client.close()


def test_extended_connect_not_advertised_with_ws_none(recorder: Recorder) -> None:
    with background(make_app(recorder), http2=True, ws="none") as server:
        client = H2WsClient(server.port)
        try:
            assert client.settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL, 0) == 0
        finally:
            client.close()


def test_echo_text_and_binary_and_the_scope(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend, root_path="/api") as server:
        client = H2WsClient(server.port)
        try:
            sid = client.connect("/chat/r%20oom?x=1")
            head = client.response(sid)
            assert head[b":status"] == b"200"
            assert head[b"x-accepted"] == b"yes"
            for absent in (b"sec-websocket-accept", b"upgrade", b"connection"):
                assert absent not in head  # HTTP/1.1's handshake fields have no place here
            assert {b"server", b"date"} <= set(head)
            client.send_text(sid, "héllo")
            frame = client.next_frame(sid)
            assert (frame.opcode, frame.data.decode()) == (Opcode.TEXT, "héllo")
            client.send_binary(sid, b"\x00\x01\xff" * 1000)
            frame = client.next_frame(sid)
            assert (frame.opcode, frame.data) == (Opcode.BINARY, b"\x00\x01\xff" * 1000)
            client.send_text(sid, "scope")
            seen = json.loads(client.next_frame(sid).data)
        finally:
            client.close()
    assert seen["type"] == "websocket"
    assert seen["http_version"] == "2"
    assert seen["scheme"] == "ws"
    assert seen["path"] == "/api/chat/r oom"
    assert seen["raw_path"] == "/api/chat/r%20oom"
    assert seen["query_string"] == "x=1"
    assert seen["root_path"] == "/api"
    assert seen["headers"][0] == ["host", f"127.0.0.1:{server.port}"]
    assert ["sec-websocket-version", "13"] in seen["headers"]
    assert seen["subprotocols"] == []
    assert seen["client"][0] == "127.0.0.1"
    assert seen["server"] == ["127.0.0.1", server.port]
    assert seen["extensions"] == ["websocket.http.response"]
    assert seen["has_method"] is False
    assert seen["state"] == {}


def test_subprotocol_negotiation(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend) as server:
        client = H2WsClient(server.port)
        try:
            sid = client.connect("/sub", ("sec-websocket-protocol", "chat.v1, chat.v2"))
            head = client.response(sid)
            client.send_text(sid, "scope")
            seen = json.loads(client.next_frame(sid).data)
        finally:
            client.close()
    assert head[b":status"] == b"200"
    assert head[b"sec-websocket-protocol"] == b"chat.v2"
    assert seen["subprotocols"] == ["chat.v1", "chat.v2"]


def test_app_refusal_is_403_and_the_connection_goes_on(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend) as server:
        client = H2WsClient(server.port)
        try:
            sid = client.connect("/refuse")
            assert client.response(sid)[b":status"] == b"403"
            client.pump(lambda: sid in client.ended or sid in client.reset)
            get = client.get("/after")
            client.pump(lambda: get in client.ended)
            assert json.loads(client.bodies[get]) == {"http_version": "2", "path": "/after"}
        finally:
            client.close()


def test_websocket_http_response_is_the_apps(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend) as server:
        client = H2WsClient(server.port)
        try:
            sid = client.connect("/deny")
            head = client.response(sid)
            client.pump(lambda: sid in client.ended)
        finally:
            client.close()
    assert head[b":status"] == b"401"
    assert head[b"x-why"] == b"token"
    assert b"connection" not in head
    assert client.bodies[sid] == b"no token"


def test_bad_version_and_plain_connect_are_refused(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend) as server:
        client = H2WsClient(server.port)
        try:
            missing = client.connect("/x", version=None)
            assert client.response(missing)[b":status"] == b"400"
            wrong = client.connect("/x", version="8")
            head = client.response(wrong)
            assert head[b":status"] == b"426"
            assert head[b"sec-websocket-version"] == b"13"
            other = client.conn.get_next_available_stream_id()
            client.conn.send_headers(
                other,
                [
                    (":method", "CONNECT"),
                    (":protocol", "webtransport"),
                    (":scheme", "http"),
                    (":path", "/"),
                    (":authority", "a"),
                ],
            )
            client.flush()
            assert client.response(other)[b":status"] == b"501"
        finally:
            client.close()
    assert not recorder.events  # the app never saw them


def test_app_close_code(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend) as server:
        client = H2WsClient(server.port)
        try:
            sid = client.connect("/close")
            assert client.response(sid)[b":status"] == b"200"
            frame = client.next_frame(sid)
            assert frame.opcode is Opcode.CLOSE
            assert Close.parse(frame.data) == Close(4001, "bye")
            # The client echoes the close; the server then ends the stream (and, as over HTTP/1.1 it would close
            # TCP, resets it with NO_ERROR unless the client has ended its side already).
            client.pump(lambda: sid in client.ended)
            client.pump(lambda: sid in client.reset or sid in client.sent_end)
        finally:
            client.close()
    recorder.wait_for(lambda e: e == ("closed", "/close"))


def test_client_close(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend) as server:
        client = H2WsClient(server.port)
        try:
            sid = client.connect("/echo")
            assert client.response(sid)[b":status"] == b"200"
            client.close_ws(sid, 1001, "going away")
            frame = client.next_frame(sid)
            assert frame.opcode is Opcode.CLOSE
            assert Close.parse(frame.data).code == 1001
            client.pump(lambda: sid in client.ended)
            recorder.wait_for(lambda e: e == ("disconnect", "/echo", 1001))
            get = client.get("/still-open")  # the connection outlives its WebSockets
            client.pump(lambda: get in client.ended)
        finally:
            client.close()


def test_stream_reset_gives_the_app_a_disconnect(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend) as server:
        client = H2WsClient(server.port)
        try:
            sid = client.connect("/reset")
            assert client.response(sid)[b":status"] == b"200"
            client.send_text(sid, "ping")
            assert client.next_frame(sid).data == b"ping"
            client.conn.reset_stream(sid)
            client.flush()
            recorder.wait_for(lambda e: e == ("disconnect", "/reset", 1006))
            get = client.get("/after")
            client.pump(lambda: get in client.ended)
        finally:
            client.close()


def test_connection_loss_gives_the_app_a_disconnect(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend) as server:
        client = H2WsClient(server.port)
        sid = client.connect("/lost")
        assert client.response(sid)[b":status"] == b"200"
        client.close()
        recorder.wait_for(lambda e: e == ("disconnect", "/lost", 1006))


def test_two_websockets_and_a_request_on_one_connection(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend) as server:
        client = H2WsClient(server.port)
        try:
            first, second = client.connect("/one"), client.connect("/two")
            get = client.get("/plain")
            assert client.response(first)[b":status"] == b"200"
            assert client.response(second)[b":status"] == b"200"
            for i in range(5):
                client.send_text(second, f"two-{i}")
                client.send_text(first, f"one-{i}")
            got = {first: [], second: []}  # type: dict[int, list[str]]
            for sid in (first, second):
                for _ in range(5):
                    got[sid].append(client.next_frame(sid).data.decode())
            client.pump(lambda: get in client.ended)
            assert json.loads(client.bodies[get])["http_version"] == "2"
            client.close_ws(first)
            client.pump(lambda: first in client.ended)
            client.send_text(second, "after")  # one WebSocket's end is not the other's
            assert client.next_frame(second).data == b"after"
        finally:
            client.close()
    assert got[first] == [f"one-{i}" for i in range(5)]
    assert got[second] == [f"two-{i}" for i in range(5)]


def test_message_over_ws_max_size_is_closed_with_1009(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend, ws_max_size=1000) as server:
        client = H2WsClient(server.port)
        try:
            sid = client.connect("/big")
            assert client.response(sid)[b":status"] == b"200"
            client.send_binary(sid, b"x" * 1000)  # at the limit: fine
            assert len(client.next_frame(sid).data) == 1000
            client.send_binary(sid, b"x" * 1001)
            frame = client.next_frame(sid)
            assert frame.opcode is Opcode.CLOSE
            assert Close.parse(frame.data).code == 1009
            client.pump(lambda: sid in client.ended or sid in client.reset)
        finally:
            client.close()
    recorder.wait_for(lambda e: e == ("disconnect", "/big", 1009))


def test_sends_wait_for_the_clients_window(recorder: Recorder) -> None:
    """A message larger than the stream's window goes out as the client opens it, whole and in order."""
    with background(make_app(recorder), http2=True) as server:
        client = H2WsClient(server.port, window=1000)
        try:
            client.auto_ack = False
            sid = client.connect("/flow")
            assert client.response(sid)[b":status"] == b"200"
            payload = bytes(range(256)) * 40  # 10240 bytes: ten windows' worth
            client.send_binary(sid, payload)
            client.send_text(sid, "second")
            # Nothing is acknowledged: the server sends one window's worth and waits.
            client.pump(lambda: client.received.get(sid) == 1000)
            time.sleep(0.2 * UNIT)
            client.sock.settimeout(0.2 * UNIT)
            with pytest.raises(TimeoutError):
                client.pump(lambda: client.received[sid] > 1000)
            client.sock.settimeout(5 * UNIT)
            assert client.frames[sid] == []
            # Each window opened lets the next part out, until both messages are through, whole and in order.
            allowed = 1000
            while len(client.frames[sid]) < 2:
                assert allowed < 20_000
                client.conn.increment_flow_control_window(1000, sid)
                client.conn.increment_flow_control_window(1000)
                client.flush()
                allowed += 1000
                client.pump(
                    lambda limit=allowed: client.received[sid] == limit or len(client.frames[sid]) == 2
                )
                assert client.received[sid] <= allowed
            assert [f.data for f in client.frames[sid]] == [payload, b"second"]
        finally:
            client.close()


def test_permessage_deflate_is_negotiated(backend: dict[str, Any], recorder: Recorder) -> None:
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
    from websockets.headers import parse_extension

    with background(make_app(recorder), **backend) as server:
        client = H2WsClient(server.port)
        try:
            sid = client.connect("/deflate", ("sec-websocket-extensions", "permessage-deflate"))
            head = client.response(sid)
            offered = head[b"sec-websocket-extensions"].decode()
            [(name, params)] = parse_extension(offered)
            assert name == "permessage-deflate"
            extension = ClientPerMessageDeflateFactory().process_response_params(params, [])
            client.ws[sid].extensions = [extension]
            text = "compressible " * 500
            client.send_text(sid, text)
            frame = client.next_frame(sid)
            assert frame.data.decode() == text
        finally:
            client.close()
    assert head[b":status"] == b"200"


def test_ws_none_answers_extended_connect_501(recorder: Recorder) -> None:
    with background(make_app(recorder), http2=True, ws="none") as server:
        client = H2WsClient(server.port)
        try:
            # The server does not advertise extended CONNECT; h2 still lets a client try it.
            client.conn.remote_settings.enable_connect_protocol = 1
            sid = client.connect("/x")
            status = client.response(sid).get(b":status")
        except AssertionError:
            status = None  # a connection error is also a refusal
        finally:
            client.close()
    assert status in (b"501", None)


# -- a browser ------------------------------------------------------------------------------------------------

# As .ci/docs.sh and scripts/check_site.py: $CHROMIUM, else Debian's chromium on PATH.
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

# The script opens the WebSocket, sends, writes the reply into the page and closes; once closed, it writes how
# and fetches /shown, which lets the server answer the image the page also loads. The load event (after which
# --dump-dom dumps the DOM) waits for that image, so the DOM is dumped once the WebSocket has done its part, or
# after the server's bound.
PAGE = """<!doctype html>
<html><body><pre id="out">pending</pre>
<script>
const out = document.getElementById("out");
const ws = new WebSocket("wss://" + location.host + "/ws");
ws.onopen = () => ws.send("hello from the browser");
ws.onmessage = (event) => {
  const seen = JSON.parse(event.data);
  out.textContent = "echo=" + seen.echo + ";ws_http_version=" + seen.http_version;
  ws.close(1000, "thanks");
};
ws.onclose = (event) => {
  out.textContent += ";close=" + event.code + ",clean=" + event.wasClean;
  fetch("/shown");
};
ws.onerror = () => { out.textContent += ";WebSocket error"; };
</script>
<img src="/after-websocket.png" alt="">
</body></html>
"""
# A 1x1 transparent PNG.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000005000157a3b5d80000000049454e44ae426082"
)


def browser_app(recorder: Recorder) -> Any:
    shown = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            recorder.add(("http", scope["path"], scope["http_version"]))
            recorder.add(("client", "http", tuple(scope["client"])))
            if scope["path"] == "/shown":
                shown.set()
                await send({"type": "http.response.start", "status": 204, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            if scope["path"] == "/after-websocket.png":
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(shown.wait(), 10 * UNIT)
                kind, body = b"image/png", PIXEL
            else:
                kind, body = b"text/html", PAGE.encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
            await send({"type": "http.response.body", "body": body})
        elif scope["type"] == "websocket":
            recorder.add(("websocket", scope["path"], scope["http_version"]))
            recorder.add(("client", "websocket", tuple(scope["client"])))
            await receive()
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    recorder.add(("disconnect", message["code"], message.get("reason")))
                    return
                reply = {"echo": message.get("text"), "http_version": scope["http_version"]}
                await send({"type": "websocket.send", "text": json.dumps(reply)})

    return app


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_chromium_carries_a_websocket_on_its_http2_connection(
    certificates: Certificates, recorder: Recorder, tmp_path: Any, backend: dict[str, Any]
) -> None:
    """Chromium (150 here) uses RFC 8441 by default once the server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL:
    no flag is needed, and the WebSocket shares the page's HTTP/2 connection."""
    tls = {"ssl_certfile": certificates.certfile, "ssl_keyfile": certificates.keyfile}
    with background(browser_app(recorder), **backend, **tls) as server:
        assert CHROMIUM is not None
        command = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--ignore-certificate-errors",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            f"{server.url}/page",
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60 * UNIT)
        except subprocess.TimeoutExpired:
            pytest.fail("chromium did not finish in time")
    dom = result.stdout
    assert '<pre id="out">echo=hello from the browser;' in dom, (dom, result.stderr[-2000:])
    assert ";close=1000,clean=true" in dom  # the browser closed, the server answered: a clean close
    assert ("disconnect", 1000, "thanks") in recorder.events
    assert ("http", "/page", "2") in recorder.events  # the page came over HTTP/2 ...
    assert "ws_http_version=2" in dom  # ... and so did the WebSocket: RFC 8441 on the same connection
    assert ("websocket", "/ws", "2") in recorder.events
    # One TCP connection: the page's request and the WebSocket came from the same client port.
    [page_client] = {e[2] for e in recorder.events if e[:2] == ("client", "http")}
    assert ("client", "websocket", page_client) in recorder.events


def test_keepalive_ping_and_its_timeout(backend: dict[str, Any], recorder: Recorder) -> None:
    options = {"ws_ping_interval": 0.1, "ws_ping_timeout": 0.3}
    with background(make_app(recorder), **backend, **options) as server:
        client = H2WsClient(server.port)
        try:
            sid = client.connect("/ping")
            assert client.response(sid)[b":status"] == b"200"
            frame = client.next_frame(sid)
            assert frame.opcode is Opcode.PING  # answered by the client's protocol: the WebSocket stays open
            assert client.next_frame(sid).opcode is Opcode.PING
            assert not any(e[:2] == ("disconnect", "/ping") for e in recorder.events)
            # A client that reads nothing answers no ping: the server closes with 1011 and ends the stream.
            time.sleep(0.6 * UNIT)
            client.pump(lambda: sid in client.ended or sid in client.reset)
            closes = [f for f in client.frames[sid] if f.opcode is Opcode.CLOSE]
            assert closes
            assert Close.parse(closes[0].data).code == 1011
        finally:
            client.close()
    recorder.wait_for(lambda e: e == ("disconnect", "/ping", 1011))


def test_graceful_shutdown_closes_websockets_with_1012(backend: dict[str, Any], recorder: Recorder) -> None:
    with background(make_app(recorder), **backend, timeout_graceful_shutdown=5) as server:
        client = H2WsClient(server.port)
        try:
            sid = client.connect("/shutdown")
            assert client.response(sid)[b":status"] == b"200"
            stopper = threading.Thread(target=server.stop)
            stopper.start()
            frame = client.next_frame(sid)
            assert frame.opcode is Opcode.CLOSE
            assert Close.parse(frame.data).code == 1012
            client.pump(lambda: sid in client.ended)
            assert client.goaway is not None  # no new streams on this connection
            stopper.join(10 * UNIT)
            assert not stopper.is_alive()
        finally:
            client.close()
    recorder.wait_for(lambda e: e == ("disconnect", "/shutdown", 1012))
