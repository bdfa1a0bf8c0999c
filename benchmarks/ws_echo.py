"""WebSocket echo throughput: hatchway beside uvicorn, measured in the same run.

    python benchmarks/ws_echo.py [--duration S] [--rounds N] [--connections C] [--quick]

Each server runs this file's ``app`` (a bare ASGI echo) as a subprocess on a free loopback port, pinned to CPU 0
when ``taskset`` exists; the client runs here, pinned to CPU 1. The client is a few lines of raw frames over
asyncio (pre-masked, a window of messages in flight per connection, replies counted from the frame headers) so
that it costs far less than the servers it measures. No compression is offered. Servers are interleaved and the
order rotates each round; the table shows the median messages/s over the rounds and the ratio to uvicorn's
default WebSocket implementation. Bounded: about rounds x servers x scenarios x duration seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"

COMMON = ("ws_echo:app", "--app-dir", str(HERE), "--host", HOST, "--log-level", "warning", "--no-access-log")
COMMON += ("--lifespan", "off", "--loop", "uvloop", "--http", "httptools")
SERVERS: dict[str, tuple[str, ...]] = {
    "hatchway": ("-m", "hatchway", *COMMON),
    "uvicorn (ws=auto)": ("-m", "uvicorn", *COMMON),
    "uvicorn (websockets-sansio)": ("-m", "uvicorn", *COMMON, "--ws", "websockets-sansio"),
}
BASELINE = "uvicorn (ws=auto)"
#: (label, payload size, messages in flight per connection)
SCENARIOS = [("32 B, 1 in flight", 32, 1), ("32 B, 16 in flight", 32, 16), ("64 KiB, 4 in flight", 65536, 4)]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The echo every server runs."""
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", "bytes": message.get("bytes"), "text": message.get("text")})


# -- servers -----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(name: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [sys.executable, *SERVERS[name], "--port", str(port)]
    if shutil.which("taskset"):
        argv = ["taskset", "-c", "0", *argv]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{name} did not start within 15 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


# -- the raw client ----------------------------------------------------------------------------------------
def client_frame(payload: bytes) -> bytes:
    """One masked binary frame. The key is fixed: servers don't check it, and the client saves the work."""
    key = b"\x12\x34\x56\x78"
    n = len(payload)
    if n < 126:
        head = bytes([0x82, 0x80 | n])
    elif n < 65536:
        head = bytes([0x82, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", n)
    keys = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(keys, "big")).to_bytes(n, "big")
    return head + key + masked


class EchoClient(asyncio.Protocol):
    """Keeps ``window`` messages in flight; counts replies from server frame headers only."""

    def __init__(self, frame: bytes, window: int, ready: asyncio.Future[None]) -> None:
        self.frame = frame
        self.window = window
        self.ready = ready
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.handshaken = False
        self.running = True
        self.replies = 0
        self.skip = 0  # bytes of the current frame still to skip

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(  # type: ignore[attr-defined]
            f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def start(self) -> None:
        assert self.transport is not None
        self.transport.write(self.frame * self.window)

    def data_received(self, data: bytes) -> None:
        if not self.handshaken:
            self.buffer += data
            if b"\r\n\r\n" not in self.buffer:
                return
            head, data = self.buffer.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(head.decode("latin-1")))
                return
            self.handshaken = True
            self.buffer = b""
            self.ready.set_result(None)
        self._count(data)

    def _count(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        pos, end, done = 0, len(buffer), 0
        if self.skip:
            step = min(self.skip, end)
            self.skip -= step
            pos = step
            if self.skip == 0:
                done += 1
        while self.skip == 0 and end - pos >= 2:
            n = buffer[pos + 1] & 0x7F
            header = 2
            if n == 126:
                if end - pos < 4:
                    break
                n, header = struct.unpack_from("!H", buffer, pos + 2)[0], 4
            elif n == 127:
                if end - pos < 10:
                    break
                n, header = struct.unpack_from("!Q", buffer, pos + 2)[0], 10
            pos += header
            available = min(n, end - pos)
            pos += available
            if available < n:
                self.skip = n - available
            else:
                done += 1
        self.buffer = buffer[pos:] if pos < end else b""
        if done:
            self.replies += done
            if self.running and self.transport is not None:
                self.transport.write(self.frame * done)


async def measure(port: int, size: int, window: int, connections: int, duration: float) -> float:
    loop = asyncio.get_running_loop()
    frame = client_frame(b"x" * size)
    clients = []
    for _ in range(connections):
        ready: asyncio.Future[None] = loop.create_future()
        _, client = await loop.create_connection(lambda r=ready: EchoClient(frame, window, r), HOST, port)
        await asyncio.wait_for(ready, 10)
        clients.append(client)
    for client in clients:
        client.start()
    await asyncio.sleep(0.3)  # warm up
    before = sum(c.replies for c in clients)
    start = time.perf_counter()
    await asyncio.sleep(duration)
    total = sum(c.replies for c in clients) - before
    elapsed = time.perf_counter() - start
    for client in clients:
        client.running = False
        assert client.transport is not None
        client.transport.abort()
    return total / elapsed


# -- the run -----------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="one round of 1 s")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 1.0, 1
    if shutil.which("taskset"):
        os.sched_setaffinity(0, {1 % (os.cpu_count() or 1)})
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    results: dict[tuple[str, str], list[float]] = {}
    names = list(SERVERS)
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            process, port = start_server(name)
            try:
                for label, size, window in SCENARIOS:
                    rate = runner(measure(port, size, window, args.connections, args.duration))
                    results.setdefault((name, label), []).append(rate)
            finally:
                stop_server(process)
    print(
        f"WebSocket echo, {args.connections} connections, median of {args.rounds} x {args.duration:g} s, messages/s"
    )
    width = max(len(n) for n in names)
    header = f"{'server':<{width}}" + "".join(f" | {label:>22}" for label, _, _ in SCENARIOS)
    print(header)
    print("-" * len(header))
    for name in names:
        row = f"{name:<{width}}"
        for label, _, _ in SCENARIOS:
            rate = statistics.median(results[(name, label)])
            base = statistics.median(results[(BASELINE, label)])
            row += f" | {rate:>12,.0f} ({rate / base:4.2f}x)"
        print(row)


if __name__ == "__main__":
    main()
