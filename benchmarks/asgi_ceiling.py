"""The ASGI ceiling: the least an asyncio ASGI server has to do for each request, and nothing more.

Like ``ceiling.py`` it does not parse HTTP: it counts request terminators (``\\r\\n\\r\\n``). For each one it
runs the app the way every ASGI server on asyncio must: in a new Task, with its own copy of the scope, and
with ``receive``/``send`` callables. The scope is one fixed dict built at start-up; ``receive`` returns an
empty body; ``send`` ignores the head and writes a fixed status line, a Content-Length and the app's body.
No validation, no keep-alive rules, no flow control, no error handling, no lifespan.

So the app's own cost plus this is what no server on this loop can beat. wrk keeps one request in flight per
connection, which is the only case this handles. Usage: ``python asgi_ceiling.py MODULE:APP PORT``.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import sys
from typing import Any

import uvloop

HEAD = b"HTTP/1.1 200 OK\r\nserver: asgi-ceiling\r\ncontent-length: %d\r\n\r\n"


class Fixed(asyncio.Protocol):
    __slots__ = ("app", "scope", "tail", "task", "transport")

    def __init__(self, app: Any, scope: dict[str, Any]) -> None:
        self.app = app
        self.scope = scope
        self.tail = b""
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        data = self.tail + data
        count = data.count(b"\r\n\r\n")
        self.tail = data[-3:]
        for _ in range(count):
            # The task is kept so that it is not collected while it waits.
            self.task = asyncio.Task(self.app(self.scope.copy(), self.receive, self.send))

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            body = message.get("body", b"")
            self.transport.write(HEAD % len(body) + body)


async def main(target: str, port: int) -> None:
    module, _, attr = target.partition(":")
    sys.path.insert(0, ".")
    app = getattr(importlib.import_module(module), attr)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:%d" % port)],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", port),
        "state": {},
    }
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Fixed(app, scope), "127.0.0.1", port, reuse_address=True, backlog=2048
    )
    server.sockets[0].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], int(sys.argv[2])))
