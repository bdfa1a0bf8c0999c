"""What a starting server prepares: notices for uvicorn's implementation names, and its connections' protocols."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from hatchway._config import OPTIONS, Config
from hatchway._http.protocol import HttpProtocol, make_codec_factory
from hatchway._logs import logger
from hatchway._proxy import TrustedProxies
from hatchway._proxy_gate import ProxyProtocolGate
from hatchway._state import ServerState

_zttp_notice_given = False
# The HTTP/2 options zttp 0.0.35 has no way to apply (the others are enforced above it, in h2_connection.py).
_ZTTP_FIXED = (
    "h2_initial_window_size",
    "h2_max_frame_size",
    "h2_max_header_list_size",
    "h2_max_header_frames",
)


def implementation_notices(config: Config) -> None:
    """One warning per process for each uvicorn implementation name that hatchway serves with its own."""
    http_implementation_notice(config)
    if config.ws == "wsproto":
        # The WebSocket layer (and the websockets library) loads with the first upgrade, or here.
        from hatchway._ws.protocol import ws_implementation_notice

        ws_implementation_notice(config)


def http_implementation_notice(config: Config) -> None:
    """Say once per process what serves ``http="zttp"`` (uvicorn's name for its zttp-based protocols).

    ``--http zttp`` is a valid uvicorn setting, so a drop-in replacement accepts it rather than refusing to start
    (as ``ws="wsproto"``, ``_ws.protocol.ws_implementation_notice``): HTTP/1.1 is parsed by httptools (the
    ``auto`` codec), and with ``http2`` the HTTP/2 connections are zttp's (``_http/h2_zttp.py``) when it is
    installed, else the default h2 backend's.
    """
    global _zttp_notice_given
    if config.http != "zttp" or _zttp_notice_given:
        return
    _zttp_notice_given = True
    if not config.http2:
        logger.warning("http='zttp' is served by hatchway's own HTTP/1.1 implementation (httptools).")
        return
    try:
        import zttp  # noqa: F401  (only to know whether it is there)
    except ImportError:
        logger.warning(
            "http='zttp': zttp is not installed; HTTP/2 is served by hatchway's h2 backend, HTTP/1.1 by httptools."
        )
    else:
        logger.info("http='zttp': HTTP/2 is served with zttp, HTTP/1.1 by httptools.")
        defaults = {option.name: option.default for option in OPTIONS}
        fixed = [name for name in _ZTTP_FIXED if getattr(config, name) != defaults[name]]
        if fixed:
            logger.warning(
                "http='zttp': zttp's HTTP/2 settings are fixed; %s do not apply (docs/http2.md).",
                ", ".join(fixed),
            )


@functools.lru_cache(maxsize=32)
def trusted_proxies(items: tuple[str, ...]) -> TrustedProxies:
    # Parsed once per list (ipaddress is slow to start with), and its lookup cache stays warm across servers;
    # TrustedProxies holds nothing else, so servers with the same list may share one.
    return TrustedProxies(items)


def connection_factory(
    config: Config, state: ServerState, app: Any, loop: asyncio.AbstractEventLoop
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory for the listeners: HTTP, behind the PROXY gate when ``proxy_protocol`` is on."""
    trusted = trusted_proxies(tuple(config.trusted_proxies)) if config.proxy_headers else None
    codec_factory = make_codec_factory(config)
    websockets = None
    if config.ws != "none":
        # Imported here, at start-up, not by the HTTP layer: the WebSocket layer sits above it (_ws/handoff.py).
        from hatchway._ws.handoff import WEBSOCKETS

        websockets = WEBSOCKETS

    def factory() -> asyncio.Protocol:
        return HttpProtocol(config, state, app, codec_factory, trusted, loop, websockets)

    if config.proxy_protocol != "off":
        return _proxy_protocol_factory(config, state, factory, loop)
    return factory


def _proxy_protocol_factory(
    config: Config, state: ServerState, make_http: Callable[[], Any], loop: asyncio.AbstractEventLoop
) -> Callable[[], asyncio.Protocol]:
    # The PROXY header's trust does not depend on proxy_headers: only forwarded_allow_ips.
    trusted = trusted_proxies(tuple(config.trusted_proxies))
    mode, timeout = config.proxy_protocol, config.timeout_request_header

    def factory() -> asyncio.Protocol:
        return ProxyProtocolGate(mode, trusted, state, timeout, make_http, loop)

    return factory
