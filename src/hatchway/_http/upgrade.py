"""What an HTTP/1.1 ``Upgrade`` request must carry to be accepted, and the scope a WebSocket gets from its head.

Decisions only: the protocol (``HttpProtocol._try_h2c``, ``_try_websocket``) hands the connection over.
"""

from __future__ import annotations

import base64
from typing import Any

from hatchway._http.events import RequestHead


def h2c_settings(head: RequestHead) -> bytes | None:
    """``Upgrade: h2c`` (RFC 7540 3.2, what ``curl --http2`` sends on a plain URL): the request's
    HTTP2-Settings, padded for decoding, when the upgrade is taken; None when it is answered over HTTP/1.1."""
    settings = None
    for name, value in head.headers:
        if name == b"http2-settings":
            settings = value
        elif (name == b"content-length" and value.strip() != b"0") or name == b"transfer-encoding":
            # A request with a body is answered over HTTP/1.1, ignoring the offer (RFC 7540 3.2 lets the
            # server choose): its body then arrives as HTTP/1.1 framing says.
            return None
    if settings is None:
        return None
    settings = settings + b"=" * (-len(settings) % 4)  # RFC 7540 3.2.1: sent without padding
    try:
        base64.urlsafe_b64decode(settings)
    except ValueError:
        return None
    return settings


def websocket_scope(scope: dict[str, Any], head: RequestHead) -> dict[str, Any]:
    """The WebSocket scope for an upgrade request, made from its HTTP scope (changed in place)."""
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] in ("https", "wss") else "ws"
    del scope["method"]
    scope["subprotocols"] = [
        p.strip().decode("latin-1")
        for name, value in head.headers
        if name == b"sec-websocket-protocol"
        for p in value.split(b",")
        if p.strip()
    ]
    scope["extensions"] = {"websocket.http.response": {}}
    return scope
