"""A small WSGI adapter (``interface="wsgi"``): each request runs in a worker thread."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Iterable
from typing import Any


class WSGIMiddleware:
    """Serve a WSGI callable as an ASGI app. The body is read first; the response is sent as produced."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                message = await receive()
                await send({"type": message["type"] + ".complete"})
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        environ = build_environ(scope, b"".join(chunks))
        loop = asyncio.get_running_loop()
        status, headers, body = await loop.run_in_executor(None, self._call, environ)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _call(self, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        started: list[Any] = []
        # PEP 3333's legacy write() callable: its data goes out before the returned iterable's.
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info is not None and started and written:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        result: Iterable[bytes] = self.app(environ, start_response)
        try:
            body = b"".join([*written, *result])
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not started:
            raise RuntimeError("The WSGI application returned without calling start_response().")
        status, headers = started
        return (
            int(status.split(" ", 1)[0]),
            [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            body,
        )


def build_environ(scope: dict[str, Any], body: bytes) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode("utf8").decode("latin1"),
        "PATH_INFO": scope["path"][len(scope.get("root_path", "")) :].encode("utf8").decode("latin1"),
        "QUERY_STRING": scope["query_string"].decode("ascii"),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stdout,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    server = scope.get("server") or ("localhost", 80)
    environ["SERVER_NAME"], environ["SERVER_PORT"] = server[0], str(server[1] or 0)
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    for name, value in scope.get("headers", []):
        key = name.decode("latin1").upper().replace("-", "_")
        text = value.decode("latin1")
        if key == "CONTENT_LENGTH" or key == "CONTENT_TYPE":
            environ[key] = text
            continue
        key = "HTTP_" + key
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ
