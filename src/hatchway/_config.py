# ruff: noqa: RUF009 - option() returns dataclasses.field(); ruff only recognises field() by name.
"""Config: every option declared once (type, default, help, flag, env name), validated when it is built.

The command line, the documentation table and the checker all read the declarations below through
``OPTIONS``; nothing else lists option names. Names, defaults and meanings follow uvicorn 0.54 so that
switching is a one-word change; options uvicorn lacks are marked ``hatchway_only``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hatchway._config_checks import CHECKS
from hatchway._errors import ConfigError, Problem, closest
from hatchway._logs import LOG_LEVELS, LOGGING_CONFIG
from hatchway._loop import loop_factory
from hatchway._options import (
    DEFAULT_FORWARDED_ALLOW_IPS,
    HTTP_CHOICES,
    INTERFACE_CHOICES,
    LIFESPAN_CHOICES,
    LOG_FORMATS,
    PROXY_HEADER_FAMILIES,
    PROXY_PROTOCOL_CHOICES,
    WS_CHOICES,
    OptionInfo,
    as_list,
    load_env_file,
    option,
    read_options,
    split_header,
    web_concurrency,
)


@dataclass(frozen=True, eq=False)
class Config:
    """Server settings, validated on creation and immutable afterwards (use ``replace`` to derive one).

    Accepts uvicorn's ``Config`` parameters with the same names, defaults and meanings.
    """

    app: Any
    host: str = option("127.0.0.1", help="Bind socket to this host.")
    port: int = option(8000, help="Bind socket to this port. If 0, an available port will be picked.")
    uds: str | None = option(None, help="Bind to a UNIX domain socket.")
    fd: int | None = option(None, help="Bind to socket from this file descriptor.", type=int)
    loop: Any = option(
        "auto",
        help="Event loop implementation: auto, asyncio, uvloop, none, or a 'module:factory' import string.",
    )
    http: Any = option("auto", help="HTTP protocol implementation.", choices=HTTP_CHOICES)
    http2: bool = option(
        False,
        help="Enable HTTP/2: ALPN h2 over TLS, and h2c (prior knowledge or Upgrade: h2c) on plain sockets.",
        flag="--http2",
    )
    ws: Any = option("auto", help="WebSocket protocol implementation.", choices=WS_CHOICES)
    ws_max_size: int = option(16777216, help="WebSocket max size message in bytes.")
    ws_max_queue: int = option(32, help="The maximum length of the WebSocket message queue.")
    ws_ping_interval: float | None = option(20.0, help="WebSocket ping interval in seconds.", type=float)
    ws_ping_timeout: float | None = option(20.0, help="WebSocket ping timeout in seconds.", type=float)
    ws_per_message_deflate: bool = option(True, help="WebSocket per-message-deflate compression.", type=bool)
    lifespan: str = option("auto", help="Lifespan implementation.", choices=LIFESPAN_CHOICES)
    env_file: str | os.PathLike[str] | None = option(
        None, help="Environment configuration file.", type="path"
    )
    log_config: Any = option(
        help="Logging configuration file. Supported formats: .ini, .json, .yaml.",
        factory=lambda: copy.deepcopy(LOGGING_CONFIG),
        type="path",
    )
    log_level: str | int | None = option(None, help="Log level. [default: info]", choices=tuple(LOG_LEVELS))
    access_log: bool = option(True, help="Enable/Disable access log.", secondary="--no-access-log")
    use_colors: bool | None = option(
        None, help="Enable/Disable colorized logging.", secondary="--no-use-colors"
    )
    # -- hatchway's own options: logs and metrics (docs/logging.md, docs/metrics.md) ----------------------
    access_log_format: str | None = option(
        None,
        help="Access-log line in gunicorn's atoms, e.g. '%(h)s \"%(r)s\" %(s)s %(b)s %(D)s' (docs/logging.md "
        "lists them). Default: uvicorn's line.",
        type=str,
        metavar="FORMAT",
        hatchway_only=True,
    )
    log_format: str = option(
        "text",
        help="'text' (uvicorn's lines) or 'json' (one JSON object per line, for the error and the access log). "
        "A --log-config of your own wins.",
        choices=LOG_FORMATS,
        hatchway_only=True,
    )
    request_id: bool = option(
        False,
        help="Give each request an id: X-Request-ID from a trusted proxy (forwarded_allow_ips) if valid, else a "
        "new one; in the scope, in the request's log lines and in the X-Request-ID response header.",
        hatchway_only=True,
    )
    metrics_address: str | None = option(
        None,
        help="Serve Prometheus metrics at http://HOST:PORT/metrics, summed over all workers. Needs "
        "prometheus_client (pip install 'hatchway[metrics]'). Off unless set.",
        type=str,
        metavar="HOST:PORT",
        hatchway_only=True,
    )
    interface: str = option(
        "auto", help="Select ASGI3, ASGI2, or WSGI as the application interface.", choices=INTERFACE_CHOICES
    )
    reload: bool = option(False, help="Enable auto-reload.")
    reload_dirs: list[str] | str | None = option(
        None,
        help="Set reload directories explicitly, instead of using the current working directory.",
        flag="--reload-dir",
        multiple=True,
        type="path",
    )
    reload_delay: float = option(
        0.25,
        help="Minimum seconds between two restarts; changes within it are batched into one restart.",
        differs="uvicorn uses it as the pause between two checks for changes",
    )
    reload_includes: list[str] | str | None = option(
        None,
        help="Set glob patterns to include while watching for files. Includes '*.py' by default.",
        flag="--reload-include",
        multiple=True,
    )
    reload_excludes: list[str] | str | None = option(
        None,
        help="Set glob patterns to exclude while watching for files. Includes '.*, .py[cod], .sw.*, ~*', "
        "virtual environments, node_modules and caches by default.",
        flag="--reload-exclude",
        multiple=True,
    )
    workers: int | None = option(
        None,
        help="Number of worker processes. Defaults to the $WEB_CONCURRENCY environment variable if available, "
        "or 1. Not valid with --reload.",
        type=int,
    )
    proxy_headers: bool = option(
        True,
        help="Enable/Disable X-Forwarded-Proto and X-Forwarded-For (or, with --proxy-headers-family "
        "forwarded, the RFC 7239 Forwarded header) to populate url scheme and remote address info.",
        secondary="--no-proxy-headers",
    )
    proxy_headers_family: str = option(
        "x-forwarded",
        help="Which proxy headers a trusted proxy vouches for: 'x-forwarded' (X-Forwarded-For and "
        "X-Forwarded-Proto, as uvicorn) or 'forwarded' (RFC 7239). The other family is ignored, never merged.",
        choices=PROXY_HEADER_FAMILIES,
        hatchway_only=True,
    )
    server_header: bool = option(
        True, help="Enable/Disable default Server header.", secondary="--no-server-header"
    )
    date_header: bool = option(True, help="Enable/Disable default Date header.", secondary="--no-date-header")
    forwarded_allow_ips: list[str] | str | None = option(
        None,
        help="Comma separated list of IP Addresses, IP Networks, or literals (e.g. UNIX Socket path) to trust "
        "with proxy headers. Defaults to the $FORWARDED_ALLOW_IPS environment variable if available, or "
        "'127.0.0.1,::1'. The literal '*' means trust everything.",
        type=str,
    )
    root_path: str = option(
        "", help="Set the ASGI 'root_path' for applications submounted below a given URL path."
    )
    limit_concurrency: int | None = option(
        None,
        help="Maximum number of concurrent connections or tasks to allow, before issuing HTTP 503 responses.",
        type=int,
    )
    limit_max_requests: int | None = option(
        None, help="Maximum number of requests to service before terminating the process.", type=int
    )
    limit_max_requests_jitter: int = option(
        0, help="Maximum jitter to add to limit_max_requests. Staggers worker restarts."
    )
    backlog: int = option(2048, help="Maximum number of connections to hold in backlog.")
    timeout_keep_alive: float = option(
        5,
        help="Close Keep-Alive connections if no new data is received within this timeout (in seconds).",
        type=float,
    )
    timeout_notify: float = option(
        30, help="Seconds a worker may go without notifying its supervisor.", flag=None
    )
    timeout_graceful_shutdown: float | None = option(
        10,
        help="Maximum number of seconds to wait for graceful shutdown; open connections are closed after it. "
        "The app's lifespan shutdown gets the same bound.",
        type=float,
        differs="uvicorn waits forever by default, so one open WebSocket or stream blocks a restart",
    )
    timeout_worker_healthcheck: float = option(
        5,
        help="Seconds a worker's event loop may stay silent before it is killed and replaced; 0 disables.",
        type=float,
    )
    callback_notify: Callable[..., Any] | None = option(
        None, help="Coroutine called on each notify tick.", flag=None
    )
    ssl_keyfile: str | os.PathLike[str] | None = option(None, help="SSL key file", type=str)
    ssl_certfile: str | os.PathLike[str] | None = option(None, help="SSL certificate file", type=str)
    ssl_keyfile_password: str | None = option(None, help="SSL keyfile password")
    ssl_version: int = option(
        int(ssl.PROTOCOL_TLS_SERVER), help="SSL version to use (see stdlib ssl module's)"
    )
    ssl_cert_reqs: int = option(
        int(ssl.CERT_NONE), help="Whether client certificate is required (see stdlib ssl module's)"
    )
    ssl_ca_certs: str | os.PathLike[str] | None = option(None, help="CA certificates file", type=str)
    ssl_ciphers: str | None = option(
        None, help="Ciphers to use (see stdlib ssl module's). Defaults to OpenSSL's safe defaults.", type=str
    )
    ssl_context_factory: Callable[..., ssl.SSLContext] | None = option(
        None, help="Callable (config, default_factory) -> ssl.SSLContext.", flag=None
    )
    headers: list[tuple[str, str]] | None = option(
        None,
        help="Specify custom default HTTP response headers as a Name:Value pair",
        flag="--header",
        multiple=True,
        type="header",
    )
    app_dir: str | None = option(
        None,
        help="Look for APP in the specified directory, by adding this to the PYTHONPATH. "
        "Defaults to the current working directory.",
        type=str,
        kw_only=True,
        cli_default="",
    )
    factory: bool = option(
        False, help="Treat APP as an application factory, i.e. a () -> <ASGI app> callable."
    )
    h11_max_incomplete_event_size: int | None = option(
        None, help="For h11, the maximum number of bytes to buffer of an incomplete event.", type=int
    )
    reset_contextvars: bool = option(
        False, help="Run each ASGI request in a fresh contextvars.Context. Hides context set in the lifespan."
    )
    # -- hatchway's own options: protection uvicorn lacks ---------------------------------------------
    timeout_request_header: float = option(
        10.0,
        help="Close a connection whose request head has not fully arrived within this many seconds.",
        hatchway_only=True,
    )
    timeout_request_body: float = option(
        30.0,
        help="Close a connection that sends no request body bytes for this many seconds while the app waits.",
        hatchway_only=True,
    )
    timeout_send: float = option(
        60.0,
        help="Close a connection whose client reads nothing of a response for this many seconds.",
        hatchway_only=True,
    )
    timeout_lifespan_startup: float | None = option(
        60.0,
        help="Maximum number of seconds the app's lifespan start-up may take.",
        type=float,
        hatchway_only=True,
    )
    limit_request_line: int = option(
        8190, help="Maximum size of the request line in bytes (414 beyond).", hatchway_only=True
    )
    limit_request_fields: int = option(
        100, help="Maximum number of request header fields (431 beyond).", hatchway_only=True
    )
    limit_request_head_size: int = option(
        65536, help="Maximum size of the whole request head in bytes (431 beyond).", hatchway_only=True
    )
    # HTTP/2 limits (with --http2), advertised in the server's SETTINGS or enforced per connection.
    h2_max_concurrent_streams: int = option(
        100,
        help="HTTP/2: streams a client may have open at once on one connection; more are refused. "
        "Default 100, the least RFC 9113 recommends.",
        hatchway_only=True,
    )
    h2_initial_window_size: int = option(
        65535,
        help="HTTP/2: bytes a client may send on each stream before the app reads them (the receive window "
        "the server advertises, 1 to 2**31-1). Default 65535, the protocol's own.",
        hatchway_only=True,
    )
    h2_max_frame_size: int = option(
        16384,
        help="HTTP/2: largest frame payload in bytes the server accepts (16384 to 16777215). Default 16384, the "
        "protocol's own.",
        hatchway_only=True,
    )
    h2_max_header_list_size: int = option(
        65536,
        help="HTTP/2: decompressed header bytes allowed per request (RFC 9113 6.5.2, 32 counted per field). "
        "Default 65536, as limit_request_head_size.",
        hatchway_only=True,
    )
    h2_max_header_frames: int = option(
        16,
        help="HTTP/2: CONTINUATION frames allowed in one header block; more close the connection. Default 16.",
        hatchway_only=True,
    )
    h2_max_resets_per_second: int = option(
        100,
        help="HTTP/2: streams per second a client may reset or have refused before GOAWAY ENHANCE_YOUR_CALM "
        "(rapid reset). Default 100.",
        hatchway_only=True,
    )
    h2_max_control_frames_per_second: int = option(
        500,
        help="HTTP/2: PING, SETTINGS, PRIORITY, WINDOW_UPDATE, empty DATA and RST_STREAM frames per second "
        "before GOAWAY ENHANCE_YOUR_CALM. Default 500.",
        hatchway_only=True,
    )
    # -- hatchway's own options: behind load balancers and in Kubernetes (docs/deployment.md) ------------
    proxy_protocol: str = option(
        "off",
        help="Expect a PROXY protocol header (v1, v2, or auto: either) before each connection's first request, "
        "from peers in forwarded_allow_ips only; it gives the client and server addresses. Other peers, and "
        "connections without a valid header, are closed.",
        choices=PROXY_PROTOCOL_CHOICES,
        hatchway_only=True,
    )
    shutdown_delay: float = option(
        0.0,
        help="On SIGTERM, keep serving for this many seconds while --ready-path answers 503 (load balancers "
        "stop sending new requests), then shut down gracefully. A second signal ends the delay.",
        metavar="SECONDS",
        hatchway_only=True,
    )
    ready_path: str | None = option(
        None,
        help="A path the server answers itself, without calling the app: 200 'ok' when serving, 503 while "
        "draining (--shutdown-delay). For readiness probes. Off unless set.",
        type=str,
        metavar="PATH",
        hatchway_only=True,
    )
    live_path: str | None = option(
        None,
        help="A path the server answers itself with 200 'ok' while its event loop runs, without calling the "
        "app. For liveness probes. Off unless set.",
        type=str,
        metavar="PATH",
        hatchway_only=True,
    )
    limit_max_rss: int | None = option(
        None,
        help="Replace a worker whose resident memory passes this many MiB (a new worker starts first; the old "
        "one finishes its requests). Runs the worker supervisor even with one worker.",
        type=int,
        metavar="MIB",
        hatchway_only=True,
    )
    limit_max_lifetime: float | None = option(
        None,
        help="Replace a worker after it has served for this many seconds, plus a random 0 to "
        "--limit-max-lifetime-jitter. Runs the worker supervisor even with one worker.",
        type=float,
        metavar="SECONDS",
        hatchway_only=True,
    )
    limit_max_lifetime_jitter: float = option(
        0.0,
        help="Maximum random seconds added to each worker's --limit-max-lifetime. Staggers worker restarts.",
        metavar="SECONDS",
        hatchway_only=True,
    )

    def __post_init__(self) -> None:
        # The env file comes first, as in uvicorn: it may set WEB_CONCURRENCY or FORWARDED_ALLOW_IPS, which
        # the checks and defaults below read. Values already in the environment win (python-dotenv's rule).
        problems: list[Problem] = load_env_file(self.env_file)
        for check in CHECKS:
            problems.extend(check(self))
        if problems:
            raise ConfigError(problems)
        self._normalize()

    # -- derived values -------------------------------------------------------------------------------
    def _normalize(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        if self.workers is None:
            set_("workers", web_concurrency() or 1)
        if self.forwarded_allow_ips is None:
            set_("forwarded_allow_ips", os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_FORWARDED_ALLOW_IPS))
        for name in ("reload_dirs", "reload_includes", "reload_excludes"):
            value = getattr(self, name)
            set_(name, as_list(value))
        if self.headers is not None:
            set_("headers", [split_header(h) if isinstance(h, str) else tuple(h) for h in self.headers])
        if self.ws == "websockets-sansio":
            set_("ws", "websockets")

    @property
    def is_ssl(self) -> bool:
        return bool(self.ssl_keyfile or self.ssl_certfile or self.ssl_context_factory)

    @property
    def use_subprocess(self) -> bool:
        return bool(self.reload or (self.workers or 1) > 1 or self.recycles_workers)

    @property
    def recycles_workers(self) -> bool:
        """Workers are replaced on memory or age: that takes a supervisor, even for one worker."""
        return self.limit_max_rss is not None or self.limit_max_lifetime is not None

    @property
    def should_reload(self) -> bool:
        return bool(self.reload)

    @property
    def trusted_proxies(self) -> list[str]:
        value = self.forwarded_allow_ips or ""
        items = value.split(",") if isinstance(value, str) else list(value)
        return [item.strip() for item in items if item.strip()]

    def options(self) -> dict[str, Any]:
        """Every option except ``app``, as keyword arguments that rebuild this Config."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "app"}

    def replace(self, **changes: Any) -> Config:
        """A new, validated Config with ``changes`` applied."""
        values: dict[str, Any] = {"app": self.app, **self.options(), **changes}
        return Config(**values)

    def bind_socket(self) -> socket.socket:
        """Bind the listening socket this Config describes; raises ``BindError`` (never exits).

        While a server in this process serves this Config, the socket it describes already exists: a
        duplicate of the listening socket is returned (``getsockname()`` gives the real address, also with
        ``port=0``) rather than a second socket that nobody serves. ``Server.url`` says the same more simply.
        """
        # _sockets sits above Config (it binds what a Config describes); uvicorn's API puts this method here.
        from hatchway._sockets import bind_socket, serving_socket

        listening = serving_socket(self)
        if listening is not None:
            return listening.dup()
        return bind_socket(self)

    def get_loop_factory(self) -> Callable[[], Any] | None:
        """The event loop factory named by ``loop`` (uvicorn's API)."""
        return loop_factory(self.loop)


#: Every option, in declaration order. The CLI, docs and checker read this; nothing else lists names.
OPTIONS: tuple[OptionInfo, ...] = read_options(Config)
OPTION_NAMES: frozenset[str] = frozenset(o.name for o in OPTIONS)
#: Keyword arguments ``run()`` accepts: every option plus the app.
RUN_PARAMETERS: frozenset[str] = OPTION_NAMES | {"app"}


def _unknown_keywords(kwargs: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for name in kwargs:
        if name in RUN_PARAMETERS:
            continue
        near = closest(name, OPTION_NAMES)
        hint = f"did you mean {near!r}?" if near else "see `hatchway --help` for the options"
        problems.append(Problem(name, "unknown option", "HW100", hint))
    return problems


_generated_init = Config.__init__


@functools.wraps(_generated_init)
def _init(self: Config, *args: Any, **kwargs: Any) -> None:
    # Unknown names are reported together with every bad value, in one ConfigError.
    unknown = _unknown_keywords(kwargs)
    if not unknown:
        _generated_init(self, *args, **kwargs)
        return
    known = {k: v for k, v in kwargs.items() if k in RUN_PARAMETERS}
    try:
        _generated_init(self, *args, **known)
    except ConfigError as exc:
        raise ConfigError([*unknown, *exc.problems]) from None
    raise ConfigError(unknown)


Config.__init__ = _init  # type: ignore[method-assign]
