"""The ceiling: a bare uvloop ``asyncio.Protocol`` that answers every read with one fixed response.

No parsing and no ASGI: it counts request terminators (``\\r\\n\\r\\n``) so pipelined batches get one response
each, and writes them in one call. Usage: ``python ceiling.py PORT``.
"""

from __future__ import annotations

import asyncio
import socket
import sys

import uvloop

BODY = b"Hello, world!"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nserver: ceiling\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


class Fixed(asyncio.Protocol):
    __slots__ = ("tail", "transport")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.tail = b""

    def data_received(self, data: bytes) -> None:
        # A terminator may straddle two reads: keep the last three bytes of the previous read.
        data = self.tail + data
        count = data.count(b"\r\n\r\n")
        self.tail = data[-3:]
        if count:
            self.transport.write(RESPONSE * count)


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Fixed, "127.0.0.1", port, reuse_address=True, backlog=2048)
    sock = server.sockets[0]
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
