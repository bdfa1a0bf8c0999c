"""What the HTTP layer hands a WebSocket to: given to the protocol by the server, never imported by _http/.

``_startup.connection_factory`` builds one ``WebSocketHandoff`` per server (when ``ws`` is not "none") and
passes it to each ``HttpProtocol``; the protocol calls ``over_http1`` for an ``Upgrade: websocket`` request
and its HTTP/2 side calls ``over_h2`` for an extended CONNECT (RFC 8441). So the arrows point down:
``_startup -> _ws -> _http`` (the WebSocket layer reuses HTTP's wire checks), never ``_http -> _ws``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hatchway._ws.over_h2 import open_websocket
from hatchway._ws.protocol import start_websocket
from hatchway._ws.scope import websocket_scope

if TYPE_CHECKING:
    from hatchway._config import Config
    from hatchway._http.events import RequestHead
    from hatchway._http.h2_stream import H2Stream
    from hatchway._state import ServerState


class WebSocketHandoff:
    """The two ways a connection becomes a WebSocket."""

    __slots__ = ()

    def over_http1(
        self,
        transport: asyncio.Transport,
        config: Config,
        state: ServerState,
        app: Any,
        http_scope: dict[str, Any],
        head: RequestHead,
        trailing_data: bytes,
    ) -> None:
        """Take over ``transport`` after an HTTP/1.1 upgrade request (``http_scope`` is that request's)."""
        start_websocket(transport, config, state, app, websocket_scope(http_scope), head, trailing_data)

    def over_h2(self, stream: H2Stream, http_scope: dict[str, Any], app: Any) -> None:
        """Serve the WebSocket an extended CONNECT opened on ``stream``."""
        open_websocket(stream, http_scope, app)


WEBSOCKETS = WebSocketHandoff()
