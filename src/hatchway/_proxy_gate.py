"""The PROXY protocol at the door: read a connection's header, then hand the connection to HTTP.

With ``proxy_protocol`` set, each connection starts with this gate as its protocol. It refuses a peer that is
not in ``forwarded_allow_ips`` (only a trusted load balancer may name the client; anybody else reaching the
port directly is closed at once), reads the header within ``timeout_request_header``, and then swaps itself
for the HTTP protocol (``transport.set_protocol``) with the header's addresses; the first request's head gets
what is left of that time, not a second one. A missing, malformed or late
header closes the connection without an HTTP response: the peer is not speaking HTTP yet. The HTTP protocol,
and the WebSocket upgrade after it, never see the header; with ``proxy_protocol`` off the gate does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hatchway._logs import escape, logger
from hatchway._proxy_protocol import ProxyProtocolError, parse

if TYPE_CHECKING:
    from hatchway._http.protocol import HttpProtocol
    from hatchway._proxy import TrustedProxies
    from hatchway._state import ServerState


def _address(transport: asyncio.BaseTransport, key: str) -> Any:
    info = transport.get_extra_info(key)
    if isinstance(info, (tuple, list)) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    if isinstance(info, str) and info:
        return (info, None)
    return None


class ProxyProtocolGate(asyncio.Protocol):
    """One connection until its PROXY header has been read; then its ``HttpProtocol`` takes over."""

    def __init__(
        self,
        mode: str,
        trusted: TrustedProxies,
        state: ServerState,
        timeout: float,
        make_http: Callable[[], HttpProtocol],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.mode = mode
        self.trusted = trusted
        self.state = state
        self.timeout = timeout
        self.make_http = make_http
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.peer = "a client"
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0  # for the header and the first request's head together

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        client = _address(transport, "peername")
        # On a UNIX socket the peer has no address: its literal is the socket path (as for proxy headers).
        host = client[0] if client else (_address(transport, "sockname") or (None,))[0]
        self.peer = escape(f"{client[0]}:{client[1]}" if client else f"unix:{host}")
        if self.state.shutting_down:
            transport.close()
            return
        if host not in self.trusted:
            logger.warning(
                "Refused a connection from %s: proxy_protocol is on and this peer is not in "
                "forwarded_allow_ips, so its PROXY header would not be believed.",
                self.peer,
            )
            self.abort()
            return
        self.state.connections.add(self)
        if self.timeout:
            self.deadline = self.loop.time() + self.timeout
            self.timer = self.loop.call_at(self.deadline, self._on_timeout)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            header = parse(self.buffer, self.mode)
        except ProxyProtocolError as exc:
            logger.warning("Invalid PROXY protocol header from %s: %s; closing.", self.peer, escape(str(exc)))
            self.abort()
            return
        if header is None:
            return
        self._cancel_timer()
        transport = self.transport
        assert transport is not None
        rest = self.buffer[header.length :]
        self.buffer = b""
        self.state.connections.discard(self)
        http = self.make_http()
        transport.set_protocol(http)
        http.connection_made(transport)
        if self.deadline:
            http.shorten_head_timeout(self.deadline)
        if not header.local:
            http.set_proxied_addresses(header.client, header.server)
        if rest and not http.closed and not transport.is_closing():
            http.data_received(rest)

    def eof_received(self) -> bool | None:
        logger.debug("Connection from %s closed before its PROXY header.", self.peer)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.state.connection_closed(self)

    def _on_timeout(self) -> None:
        self.timer = None
        logger.warning("No PROXY protocol header from %s within %ss; closing.", self.peer, self.timeout)
        self.abort()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # -- what the server needs to stop it (see _state.Connection) -------------------------------------------
    def shutdown(self) -> None:
        self.abort()  # no request has begun: nothing to finish

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
