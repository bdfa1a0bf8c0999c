"""A connection's two ends and the ASGI scope each of its requests gets; the codec the configuration names.

``ConnectionScope`` is the root of ``HttpProtocol``'s classes (mypyc compiles single inheritance only, so the
layers of one connection are a chain: this one, ``connection.ConnectionIO``, then ``protocol.HttpProtocol``).
It owns what is decided once per connection (the server and client addresses, the scheme, whether the peer is
a trusted proxy) and builds a request's scope from its head; HTTP/2 streams get theirs from it too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_to_bytes

from hatchway._http.events import Codec, RequestHead
from hatchway._logs import escape
from hatchway._proxy import HEADER_NAMES, TrustedProxies, apply_proxy_headers

if TYPE_CHECKING:
    from hatchway._config import Config
    from hatchway._state import ServerState

# The reason phrase of each status a malformed request head is answered with.
ERROR_TEXT: Final = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


def make_codec_factory(config: Config) -> Callable[[], Codec]:
    """The codec class ``config.http`` names, bound to the configured limits (uvicorn's "zttp" is "auto" for
    HTTP/1.1: zttp serves only HTTP/2 here, see _startup.http_implementation_notice)."""
    choice = config.http
    if choice in ("auto", "httptools", "zttp"):
        try:
            from hatchway._http.httptools_codec import HttptoolsCodec

            return lambda: HttptoolsCodec(config)
        except ImportError:
            if choice == "httptools":
                raise
    from hatchway._http.h11_codec import H11Codec

    size = config.h11_max_incomplete_event_size
    return lambda: H11Codec(config, size)


def decode_path(raw_path: bytes) -> str:
    # As uvicorn: bytes that are not UTF-8 become U+FFFD. (Surrogate escapes would make the path a str that
    # raises as soon as the app encodes it.)
    # find(), not `in`: on Python 3.11 `bytes in bytes` first tries the operand as an integer and formats a
    # TypeError it then discards, which makes it several times slower.
    if raw_path.find(b"%") != -1:
        return unquote_to_bytes(raw_path).decode("utf-8", "replace")
    try:
        return raw_path.decode("ascii")
    except UnicodeDecodeError:
        return raw_path.decode("utf-8", "replace")


def peer_address(transport: asyncio.BaseTransport, key: str) -> Any:
    info = transport.get_extra_info(key)
    if isinstance(info, (tuple, list)) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    if isinstance(info, str) and info:
        return (info, None) if key == "sockname" else None
    return None


class ConnectionScope(asyncio.Protocol):
    """What a connection knows of its ends, and the scope of each request it carries."""

    def __init__(self, config: Config, state: ServerState, trusted: TrustedProxies | None) -> None:
        self.config = config
        self.state = state
        self.trusted = trusted
        self.proxy_family = config.proxy_headers_family
        self.proxy_names = HEADER_NAMES[self.proxy_family]
        self.root_path = config.root_path
        self.root_path_bytes = config.root_path.encode("ascii", "replace")
        self.server: Any = None
        self.client: Any = None
        self.scheme = "http"
        self.proxy_peer: str | None = None
        self.use_proxy = False
        # The scope's extensions, made once per connection: each request gets its own copy of this dict (the
        # empty marker dicts inside are the connection's).
        self._extensions: dict[str, Any] = {
            "http.response.pathsend": {},
            "http.response.zerocopysend": {},
            "http.response.trailers": {},
        }
        # What every request's scope on this connection starts from (see http_scope); made at its first
        # request, made again if the connection's ends change (a PROXY protocol header).
        self._template: dict[str, Any] | None = None
        self._asgi: dict[str, Any] = {}

    def _find_ends(self, transport: asyncio.BaseTransport) -> None:
        """The accepted connection's addresses and scheme, and whether its peer is a trusted proxy."""
        self.server = peer_address(transport, "sockname")
        self.client = peer_address(transport, "peername")
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        if self.trusted is not None:
            # On a UNIX socket the peer has no address: its literal is the socket path.
            host = self.client[0] if self.client else (self.server[0] if self.server else None)
            self.use_proxy = host in self.trusted
            self.proxy_peer = host
        self._template = None

    def set_proxied_addresses(self, client: Any, server: Any) -> None:
        """A PROXY protocol header (``_proxy_gate``) named the connection's real ends. Proxy headers are then
        believed only if that client is itself a trusted proxy: behind a TCP load balancer, any
        X-Forwarded-For was written by the client."""
        self.client = client
        if server is not None:
            self.server = server
        if self.trusted is not None:
            host = client[0] if client else None
            self.use_proxy = host in self.trusted
            self.proxy_peer = host
        self._template = None

    def peer_text(self) -> str:
        client = self.client
        return escape(f"{client[0]}:{client[1]}") if client else "a UNIX-socket client"

    def http_scope(self, head: RequestHead) -> dict[str, Any]:
        raw_path = head.raw_path
        path = decode_path(raw_path)
        if self.root_path:
            path = self.root_path + path
            raw_path = self.root_path_bytes + raw_path
        # A copy of the template, then the request's own values: cheaper than building the dict key by key
        # (about 1,300 fewer CPU instructions per request on 3.13, benchmarks/README.md).
        scope = self._scope_template().copy()
        if self.use_proxy:
            # The peer is trusted (decided once per connection); the headers matter only when present.
            names = self.proxy_names
            for name, _ in head.headers:
                if name in names:
                    scope["scheme"], scope["client"] = apply_proxy_headers(
                        self.trusted,  # type: ignore[arg-type]
                        self.proxy_peer,
                        head.headers,
                        self.scheme,
                        self.client,
                        self.proxy_family,
                    )
                    break
        scope["asgi"] = self._asgi.copy()
        scope["http_version"] = head.http_version
        scope["method"] = head.method
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = head.query
        scope["headers"] = head.headers
        scope["state"] = self.state.lifespan_state.copy()
        # File responses and trailers (docs/http.md); Starlette's FileResponse uses pathsend when offered.
        scope["extensions"] = self._extensions.copy()
        return scope

    def _scope_template(self) -> dict[str, Any]:
        template = self._template
        if template is None:
            self._asgi = {"version": self.state.asgi_version, "spec_version": "2.4"}
            template = self._template = {
                "type": "http",
                "asgi": self._asgi,
                "http_version": "1.1",
                "server": self.server,
                "client": self.client,
                "scheme": self.scheme,
                "method": "GET",
                "root_path": self.root_path,
                "path": "/",
                "raw_path": b"/",
                "query_string": b"",
                "headers": [],
                "state": {},
                "extensions": {},
            }
        return template
