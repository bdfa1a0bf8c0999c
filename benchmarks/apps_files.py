"""The file scenarios' apps: a ~50 KB static file through Starlette's ``FileResponse`` (``starlette``) and through
a raw ASGI app that uses ``http.response.pathsend`` when the server offers it (``pathsend``).

In its own module so only the processes serving these import Starlette. The file is written once, with the
same bytes every time, to the system's temporary directory (atomically: every server process imports this).
Without pathsend (uvicorn) the raw app reads the file itself per request, as a framework would, with a plain
blocking read: the cheapest way for the server it runs under.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.responses import FileResponse

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# HATCHWAY_BENCH_FILE_SIZE (bytes) changes the size, for measuring other sizes by hand.
FILE_SIZE = int(os.environ.get("HATCHWAY_BENCH_FILE_SIZE", 50 * 1024))
FILE_PATH = Path(tempfile.gettempdir()) / f"hatchway-bench-{FILE_SIZE}.html"


def _write_file() -> None:
    line = b"<p>hatchway benchmark static file: " + b"0123456789abcdef" * 4 + b"</p>\n"
    content = (line * (FILE_SIZE // len(line) + 1))[:FILE_SIZE]
    if FILE_PATH.exists() and FILE_PATH.read_bytes() == content:
        return
    tmp = FILE_PATH.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(content)
    tmp.replace(FILE_PATH)


_write_file()
_PATH = str(FILE_PATH)
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", b"%d" % FILE_SIZE)],
}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def starlette(scope: Scope, receive: Receive, send: Send) -> None:
    """Starlette's FileResponse, as a route would return it (it stats the file per request)."""
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    await FileResponse(_PATH)(scope, receive, send)


async def pathsend(scope: Scope, receive: Receive, send: Send) -> None:
    """The least an app can do: its own headers, then the path (or the bytes, if the server has no pathsend)."""
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    await send(_START)
    if "http.response.pathsend" in scope.get("extensions", {}):
        await send({"type": "http.response.pathsend", "path": _PATH})
    else:
        with open(_PATH, "rb") as file:
            body = file.read()
        await send({"type": "http.response.body", "body": body})
