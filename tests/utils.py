"""Shared test helpers: a real server on 127.0.0.1 port 0 in a thread, and timeouts scaled from one unit."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from hatchway import Config, Server

#: One unit of waiting; every timeout in the tests is a multiple of it (slow CI: raise HATCHWAY_TEST_UNIT).
UNIT = float(os.environ.get("HATCHWAY_TEST_UNIT", "1.0"))


@contextlib.contextmanager
def serve_in_thread(app: Any, **options: Any) -> Iterator[Server]:
    """Serve ``app`` in a thread on a free loopback port; yields the started Server and stops it after."""
    options.setdefault("host", "127.0.0.1")
    options.setdefault("port", 0)
    options.setdefault("log_config", None)
    server = Server(Config(app, **options))
    settled = threading.Event()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            server.run()
        except BaseException as exc:
            failure.append(exc)
        finally:
            settled.set()

    server.ready.clear()
    thread = threading.Thread(target=target, daemon=True)
    # Whichever comes first: listening, or run() returning (failed start-up).
    threading.Thread(target=lambda: (server.ready.wait(10 * UNIT), settled.set()), daemon=True).start()
    thread.start()
    try:
        settled.wait(10 * UNIT)
        if failure:
            raise failure[0]
        if not server.ready.is_set():
            raise TimeoutError("server did not start")
        yield server
    finally:
        server.stop()
        thread.join(10 * UNIT)
        assert not thread.is_alive(), "server thread did not stop"


def port_of(server: Server) -> int:
    return int(server.sockets[0].getsockname()[1]) if server.sockets else int(server.url.rsplit(":", 1)[1])  # type: ignore[union-attr]
