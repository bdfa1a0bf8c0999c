"""The app and the server starters for tests/test_h2_conformance.py.

``app`` is importable as ``tests.h2_fixtures:app`` so that hypercorn (the reference server the suite is
checked against, ``H2_CONFORMANCE_SERVER=hypercorn``) can serve it from a subprocess.

Routes: ``/echo`` (JSON of the scope and the body), ``/size/N`` (N bytes), ``/slow/MS`` (answers after MS
milliseconds), anything else ``ok``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Which server the suite runs against: "hatchway" (default) or "hypercorn".
SERVER_KIND = os.environ.get("H2_CONFORMANCE_SERVER", "hatchway").strip().lower() or "hatchway"

#: The HTTP/2 limits hatchway is started with (and the suite's expectations).
H2_LIMITS: dict[str, Any] = {
    "h2_max_concurrent_streams": 100,
    "h2_initial_window_size": 65535,
    "h2_max_frame_size": 16384,
    "h2_max_header_list_size": 65536,
    "h2_max_header_frames": 16,
    "h2_max_resets_per_second": 100,
    "h2_max_control_frames_per_second": 500,
}

REPO = Path(__file__).resolve().parent.parent
BODY_PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyz"


def pattern_body(size: int) -> bytes:
    return (BODY_PATTERN * (size // len(BODY_PATTERN) + 1))[:size]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    body = bytearray()
    if path == "/echo" or path.startswith("/echo/"):
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # http.disconnect
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        payload = {
            "http_version": scope.get("http_version"),
            "method": scope.get("method"),
            "scheme": scope.get("scheme"),
            "path": scope.get("path"),
            "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
            "query_string": (scope.get("query_string") or b"").decode("latin-1"),
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
            "body": body.decode("latin-1"),
        }
        content = json.dumps(payload).encode()
        content_type = b"application/json"
    elif path.startswith("/size/"):
        content = pattern_body(int(path.rsplit("/", 1)[1]))
        content_type = b"application/octet-stream"
    elif path.startswith("/slow/"):
        await asyncio.sleep(int(path.rsplit("/", 1)[1]) / 1000)
        content, content_type = b"slow", b"text/plain"
    else:
        content, content_type = b"ok", b"text/plain"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(content)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": content})


def vm_rss(pid: int | str = "self") -> int:
    """Resident set size in bytes, from /proc/PID/status (no psutil)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line")


@dataclass
class H2Server:
    kind: str
    host: str
    port: int
    pid: int | None = None  # the hypercorn process; None for hatchway (in this process)
    options: dict[str, Any] = field(default_factory=dict)
    _stop: Any = None

    def rss(self) -> int:
        return vm_rss(self.pid if self.pid is not None else "self")

    def begin_stop(self) -> None:
        """Start a graceful shutdown without waiting for it (hatchway: server.stop() in a thread)."""
        self._stop()


@contextlib.contextmanager
def hatchway_server(**options: Any) -> Iterator[H2Server]:
    import threading

    from hatchway.testing import background

    merged = {**H2_LIMITS, **options}
    with background(app, http2=True, **merged) as server:
        threads: list[threading.Thread] = []

        def begin_stop() -> None:
            thread = threading.Thread(target=server.stop, name="h2-conformance-stop", daemon=True)
            thread.start()
            threads.append(thread)

        try:
            yield H2Server("hatchway", server.host, server.port, None, merged, begin_stop)
        finally:
            for thread in threads:
                thread.join(30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def hypercorn_server(log_dir: Path, **options: Any) -> Iterator[H2Server]:
    """hypercorn in a subprocess (one process: ``--workers 0``), stopped by its PID on the way out.

    Of hatchway's options only the timeouts map: ``timeout_request_header`` -> ``--keep-alive`` and
    ``timeout_graceful_shutdown`` -> ``--graceful-timeout``; the h2 limits are hypercorn's defaults
    (100 streams, 16 KiB frames, 64 KiB header lists) except the flood limits, which it lacks.
    """
    port = _free_port()
    argv = [
        str(Path(sys.executable).with_name("hypercorn")),
        "tests.h2_fixtures:app",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "0",
    ]
    if "timeout_request_header" in options:
        argv += ["--keep-alive", str(math.ceil(options["timeout_request_header"]))]
    if "timeout_graceful_shutdown" in options:
        argv += ["--graceful-timeout", str(math.ceil(options["timeout_graceful_shutdown"]))]
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"hypercorn-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"hypercorn exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"hypercorn did not listen on {port}: {log_path.read_text()[-2000:]}"
                    ) from exc
                time.sleep(0.05)

        def begin_stop() -> None:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)

        yield H2Server("hypercorn", "127.0.0.1", port, proc.pid, dict(options), begin_stop)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


@contextlib.contextmanager
def h2_server(log_dir: Path, **options: Any) -> Iterator[H2Server]:
    """The server under test with ``options`` over ``H2_LIMITS``: hatchway, or hypercorn if asked."""
    if SERVER_KIND == "hypercorn":
        with hypercorn_server(log_dir, **options) as server:
            yield server
    elif SERVER_KIND == "hatchway":
        with hatchway_server(**options) as server:
            yield server
    elif SERVER_KIND == "hatchway-zttp":
        # hatchway's zttp backend (--http zttp --http2): zttp's own fixed settings, see docs/http2.md.
        with hatchway_server(http="zttp", **options) as server:
            yield server
    else:
        raise RuntimeError(
            f"H2_CONFORMANCE_SERVER={SERVER_KIND!r}: expected 'hatchway', 'hatchway-zttp' or 'hypercorn'"
        )
