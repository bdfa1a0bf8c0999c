"""The ASGI ``websocket`` scope, made from the HTTP scope of the request that opens the WebSocket.

One builder for both ways in: an HTTP/1.1 ``Upgrade: websocket`` request and an HTTP/2 extended CONNECT
(RFC 8441). The HTTP scope already carries what they share (path, query, headers with ``host``, client,
server, root path, lifespan state, ``http_version``); this turns it into a WebSocket scope.
"""

from __future__ import annotations

from typing import Any


def websocket_scope(http_scope: dict[str, Any]) -> dict[str, Any]:
    """``http_scope`` (from ``HttpProtocol.http_scope``) as the ASGI WebSocket scope; changed in place."""
    scope = http_scope
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] in ("https", "wss") else "ws"
    scope.pop("method", None)
    scope["subprotocols"] = [
        p.strip().decode("latin-1")
        for name, value in scope["headers"]
        if name == b"sec-websocket-protocol"
        for p in value.split(b",")
        if p.strip()
    ]
    scope["extensions"] = {"websocket.http.response": {}}
    return scope
