"""A small built-in app: ``hatchway hatchway.demo:app`` serves it with no app of your own."""

from __future__ import annotations

import json
import platform
from typing import Any

from hatchway._version import __version__

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hatchway is running</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}
code{{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}}</style></head>
<body><h1>hatchway is running</h1>
<p>This is the built-in demo app of hatchway {version} on Python {python}.</p>
<p>You asked for <code>{method} {path}</code>. Try <a href="/json">/json</a> or
<a href="/echo?hello=world">/echo</a>.</p>
<p>Serve your own app with <code>hatchway main:app</code>.</p></body></html>
"""


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The demo ASGI app: an HTML page at any path, JSON at /json, and an echo of the request at /echo."""
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
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        more = message.get("more_body", False)
    path = scope["path"]
    if path == "/json":
        payload = json.dumps(
            {"server": "hatchway", "version": __version__, "python": platform.python_version()}
        )
        content, kind = payload.encode(), b"application/json"
    elif path == "/echo":
        echo = {
            "method": scope["method"],
            "path": path,
            "query_string": scope["query_string"].decode("latin-1"),
            "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            "body": body.decode("utf-8", "replace"),
            "client": list(scope["client"]) if scope.get("client") else None,
            "scheme": scope["scheme"],
        }
        content, kind = json.dumps(echo).encode(), b"application/json"
    else:
        import html

        page = _PAGE.format(
            version=__version__,
            python=platform.python_version(),
            method=html.escape(scope["method"]),
            path=html.escape(path),
        )
        content, kind = page.encode(), b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
    await send({"type": "http.response.body", "body": content})
