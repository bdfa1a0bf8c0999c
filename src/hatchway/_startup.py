"""What a starting server prepares: notices for uvicorn's implementation names, and its connections' protocols."""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import Callable
from typing import Any

from hatchway._config import Config
from hatchway._http.protocol import HttpProtocol, make_codec_factory
from hatchway._logs import logger
from hatchway._proxy import TrustedProxies
from hatchway._proxy_gate import ProxyProtocolGate
from hatchway._state import ServerState

_zttp_notice_given = False


def implementation_notices(config: Config) -> None:
    """One warning per process for each uvicorn implementation name that hatchway serves with its own."""
    http_implementation_notice(config)
    if config.ws == "wsproto":
        # The WebSocket layer (and the websockets library) loads with the first upgrade, or here.
        from hatchway._ws.protocol import ws_implementation_notice

        ws_implementation_notice(config)


def http_implementation_notice(config: Config) -> None:
    """Warn once per process when ``http`` names uvicorn's zttp, which hatchway serves as ``auto``.

    ``--http zttp`` is a valid uvicorn setting, so a drop-in replacement accepts it rather than refusing to start
    (as ``ws="wsproto"``, ``_ws.protocol.ws_implementation_notice``); the warning says what serves the connections.
    """
    global _zttp_notice_given
    if config.http == "zttp" and not _zttp_notice_given:
        _zttp_notice_given = True
        logger.warning(
            "http='zttp' is served by hatchway's own HTTP/1.1 (httptools) and HTTP/2 implementations."
        )


def served_config(config: Config) -> Config:
    """The Config the connections see: ``http="zttp"`` served as ``"auto"``, everything else as given.

    ``Server.config`` keeps the caller's value (workers and the reloader pass it on, and each child warns).
    A copy, not ``replace()``: nothing is validated again (nor an env file read twice).
    """
    if config.http != "zttp":
        return config
    served = copy.copy(config)
    object.__setattr__(served, "http", "auto")
    return served


@functools.lru_cache(maxsize=32)
def trusted_proxies(items: tuple[str, ...]) -> TrustedProxies:
    # Parsed once per list (ipaddress is slow to start with), and its lookup cache stays warm across servers;
    # TrustedProxies holds nothing else, so servers with the same list may share one.
    return TrustedProxies(items)


def connection_factory(
    config: Config, state: ServerState, app: Any, loop: asyncio.AbstractEventLoop
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory for the listeners: HTTP (served as ``served_config`` says), behind the PROXY gate
    when ``proxy_protocol`` is on."""
    trusted = trusted_proxies(tuple(config.trusted_proxies)) if config.proxy_headers else None
    served = served_config(config)
    codec_factory = make_codec_factory(served)

    def factory() -> asyncio.Protocol:
        return HttpProtocol(served, state, app, codec_factory, trusted, loop)

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
