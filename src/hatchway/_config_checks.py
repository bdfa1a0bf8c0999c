"""Config validation: one small check per rule, each returning every problem it finds."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hatchway._errors import Problem, closest
from hatchway._importer import explain_import_string
from hatchway._logs import LOG_LEVELS
from hatchway._options import (
    DEFAULT_FORWARDED_ALLOW_IPS,
    HTTP_CHOICES,
    INTERFACE_CHOICES,
    LIFESPAN_CHOICES,
    LOG_FORMATS,
    LOOP_CHOICES,
    PROXY_HEADER_FAMILIES,
    PROXY_PROTOCOL_CHOICES,
    UNSUPPORTED_CHOICES,
    WS_CHOICES,
    is_number,
    split_header,
    web_concurrency,
)

if TYPE_CHECKING:
    from hatchway._config import Config

Check = Callable[["Config"], list[Problem]]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_range(name: str, low: int, high: int | None = None, *, optional: bool = False) -> Check:
    def check(config: Config) -> list[Problem]:
        value = getattr(config, name)
        if value is None and optional:
            return []
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        if not _is_int(value) or value < low or (high is not None and value > high):
            return [Problem(name, f"expected a whole number {bound}, got {value!r}", "HW101")]
        return []

    return check


def _non_negative(name: str, *, optional: bool = False) -> Check:
    def check(config: Config) -> list[Problem]:
        value = getattr(config, name)
        if value is None and optional:
            return []
        if not is_number(value) or value < 0:
            return [Problem(name, f"expected a number of seconds >= 0, got {value!r}", "HW101")]
        return []

    return check


def _choice(name: str, choices: tuple[str, ...], *, extra: Callable[[Any], bool] | None = None) -> Check:
    def check(config: Config) -> list[Problem]:
        value = getattr(config, name)
        if isinstance(value, str) and value in choices:
            return []
        if extra is not None and extra(value):
            return []
        unsupported = UNSUPPORTED_CHOICES.get((name, value)) if isinstance(value, str) else None
        if unsupported:
            return [Problem(name, f"{value!r} is not available in hatchway", "HW102", unsupported)]
        hint = None
        if isinstance(value, str):
            near = closest(value, choices)
            hint = f"did you mean {near!r}?" if near else None
        expected = ", ".join(repr(c) for c in choices)
        return [Problem(name, f"expected one of {expected}, got {value!r}", "HW101", hint)]

    return check


def _check_app(config: Config) -> list[Problem]:
    app = config.app
    if isinstance(app, str):
        module, sep, attr = app.partition(":")
        if not sep or not module or not attr:
            return [
                Problem(
                    "app",
                    f"import string {app!r} must be in format '<module>:<attribute>'",
                    "HW103",
                    "for example 'main:app' for the variable app in main.py",
                )
            ]
        return []
    if not callable(app):
        return [Problem("app", f"expected an ASGI application or an import string, got {app!r}", "HW103")]
    return []


def _check_main_in_children(config: Config) -> list[Problem]:
    # "__main__:app" with reload or workers: a child imports the calling script by its real name; code with
    # no file (python -c, a notebook) has none, and a child would wait forever for changes to a file that
    # does not exist. The same rule as for app objects (HW106), checked before anything starts.
    app = config.app
    if not (isinstance(app, str) and app.partition(":")[0] == "__main__"):
        return []
    workers = config.workers if _is_int(config.workers) else web_concurrency()
    if not (config.reload is True or (workers is not None and workers > 1)):
        return []
    found = explain_import_string(app)
    if found.import_string is not None:
        return []
    mode = "reload=True" if config.reload is True else f"workers={workers}"
    return [
        Problem(
            "app",
            f"{mode} starts new processes, which must import the app by name, but {app!r} refers to "
            f"__main__: {found.reason}",
            "HW106",
            found.suggestion,
        )
    ]


def _check_http(config: Config) -> list[Problem]:
    if isinstance(config.http, type):
        return [
            Problem(
                "http",
                f"protocol classes are not accepted, got {config.http.__name__}",
                "HW102",
                "use 'auto', 'httptools' or 'h11'",
            )
        ]
    return _choice("http", HTTP_CHOICES)(config)


def _check_ws(config: Config) -> list[Problem]:
    if isinstance(config.ws, type):
        return [Problem("ws", f"protocol classes are not accepted, got {config.ws.__name__}", "HW102")]
    return _choice("ws", WS_CHOICES)(config)


def _check_loop(config: Config) -> list[Problem]:
    return _choice("loop", LOOP_CHOICES, extra=lambda v: callable(v) or (isinstance(v, str) and ":" in v))(
        config
    )


def _check_log_level(config: Config) -> list[Problem]:
    value = config.log_level
    if value is None or _is_int(value):
        return []
    if isinstance(value, str) and value.lower() in LOG_LEVELS:
        return []
    return _choice("log_level", tuple(LOG_LEVELS))(config)


def _check_workers(config: Config) -> list[Problem]:
    problems = _int_range("workers", 1, optional=True)(config)
    raw = os.environ.get("WEB_CONCURRENCY", "")
    if config.workers is None and raw.strip() and web_concurrency() is None:
        problems.append(
            Problem(
                "workers",
                f"$WEB_CONCURRENCY must be a whole number of workers, got {raw!r}",
                "HW101",
                "set it to a number such as 4, or unset it",
            )
        )
    workers = config.workers if config.workers is not None else web_concurrency()
    if not problems and config.reload and workers is not None and workers > 1:
        source = "workers" if config.workers is not None else "$WEB_CONCURRENCY"
        problems.append(
            Problem(
                "workers",
                f"reload=True and {source}={workers} cannot be combined",
                "HW104",
                "reload is for development with one process: drop workers (or unset WEB_CONCURRENCY); "
                "for production, drop reload",
            )
        )
    return problems


_TLS_FILES = {
    "ssl_certfile": "a certificate file (PEM)",
    "ssl_keyfile": "a private key file (PEM)",
    "ssl_ca_certs": "a file of CA certificates (PEM)",
}


def _check_ssl(config: Config) -> list[Problem]:
    # The files are checked here, before anything starts: a wrong path must not surface after the app's
    # lifespan start-up has run. Their content (a key that does not match, a password) is read when the
    # server starts, still before the app is imported.
    problems = []
    if config.ssl_keyfile and not config.ssl_certfile and config.ssl_context_factory is None:
        problems.append(
            Problem("ssl_keyfile", "a key file needs its certificate", "HW101", "add ssl_certfile")
        )
    for name, kind in _TLS_FILES.items():
        value = getattr(config, name)
        if value is None or value == "":
            continue
        if not isinstance(value, (str, os.PathLike)):
            problems.append(Problem(name, f"expected a path to {kind}, got {value!r}", "HW101"))
            continue
        path = os.fspath(value)
        if not os.path.exists(path):
            got = f"{path!r}, which does not exist (looked for {os.path.abspath(path)})"
            hint = "check the path; a relative path is read from the current directory"
        elif not os.path.isfile(path):
            got, hint = f"{path!r}, which is not a file", "pass the path of the file itself"
        elif not os.access(path, os.R_OK):
            got, hint = f"{path!r}, which this process may not read", "check the file's permissions"
        else:
            continue
        problems.append(Problem(name, f"expected {kind}, got {got}", "HW101", hint))
    return problems


def _check_proxies(config: Config) -> list[Problem]:
    problems = []
    value = config.forwarded_allow_ips
    if value is None:
        value = os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_FORWARDED_ALLOW_IPS)
    items = value.split(",") if isinstance(value, str) else list(value)
    for item in (i.strip() for i in items):
        if not item or item == "*" or item.startswith(("/", "unix:")):
            continue
        # uvicorn also accepts literals (such as a UNIX socket path), so only obvious typos are refused: an
        # item with whitespace inside (a missing comma) is neither an address, a network nor a path.
        if any(c.isspace() for c in item):
            problems.append(Problem("forwarded_allow_ips", f"{item!r} is not an address or network", "HW101"))
    return problems


def _check_health_paths(config: Config) -> list[Problem]:
    problems = []
    for name in ("ready_path", "live_path"):
        value = getattr(config, name)
        if value is None:
            continue
        if not isinstance(value, str) or not value.startswith("/") or any(c in value for c in " ?#\r\n\t"):
            problems.append(
                Problem(
                    name,
                    f"expected a path starting with '/' (no spaces, query or fragment), got {value!r}",
                    "HW101",
                    "for example --ready-path /ready",
                )
            )
    if not problems and config.ready_path is not None and config.ready_path == config.live_path:
        problems.append(
            Problem(
                "live_path",
                f"ready_path and live_path are both {config.ready_path!r}",
                "HW104",
                "give them different paths: readiness turns 503 while draining, liveness does not",
            )
        )
    return problems


def _check_proxy_protocol(config: Config) -> list[Problem]:
    problems = _choice("proxy_protocol", PROXY_PROTOCOL_CHOICES)(config)
    if problems or config.proxy_protocol == "off":
        return problems
    value = config.forwarded_allow_ips
    if value is None:
        value = os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_FORWARDED_ALLOW_IPS)
    items = value.split(",") if isinstance(value, str) else list(value)
    if not any(str(i).strip() for i in items):
        problems.append(
            Problem(
                "proxy_protocol",
                f"proxy_protocol={config.proxy_protocol!r} needs trusted peers, but forwarded_allow_ips is empty",
                "HW104",
                "set --forwarded-allow-ips to the load balancer's address or network (or its UNIX socket path)",
            )
        )
    if config.is_ssl:
        problems.append(
            Problem(
                "proxy_protocol",
                "the PROXY protocol cannot be combined with TLS in hatchway (the header precedes the TLS "
                "handshake)",
                "HW104",
                "terminate TLS at the load balancer, or turn proxy_protocol off",
            )
        )
    return problems


def _check_recycling(config: Config) -> list[Problem]:
    problems = _int_range("limit_max_rss", 1, optional=True)(config)
    problems += _non_negative("limit_max_lifetime_jitter")(config)
    lifetime = config.limit_max_lifetime
    if lifetime is not None and (not is_number(lifetime) or lifetime <= 0):
        problems.append(
            Problem("limit_max_lifetime", f"expected a number of seconds > 0, got {lifetime!r}", "HW101")
        )
    if not problems and config.reload is True and config.recycles_workers:
        name = "limit_max_rss" if config.limit_max_rss is not None else "limit_max_lifetime"
        problems.append(
            Problem(
                name,
                f"reload=True and {name} cannot be combined",
                "HW104",
                "workers are recycled in production; drop reload, or drop the limit",
            )
        )
    return problems


def _check_headers(config: Config) -> list[Problem]:
    problems = []
    for header in config.headers or []:
        name, value = split_header(header) if isinstance(header, str) else header
        if not name or any(c in f"{name}{value}" for c in "\r\n\0") or any(c in name for c in " \t:"):
            problems.append(Problem("headers", f"invalid header {header!r}", "HW101", "use 'Name: value'"))
    return problems


def _check_reload_lists(config: Config) -> list[Problem]:
    problems = []
    for name in ("reload_dirs", "reload_includes", "reload_excludes"):
        value = getattr(config, name)
        if value is None or isinstance(value, (str, os.PathLike)):
            continue
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, os.PathLike)) for v in value):
            problems.append(Problem(name, f"expected a path or a list of paths, got {value!r}", "HW101"))
    return problems


def _check_types(config: Config) -> list[Problem]:
    problems = []
    for name in ("host", "root_path"):
        if not isinstance(getattr(config, name), str):
            problems.append(Problem(name, f"expected a string, got {getattr(config, name)!r}", "HW101"))
    for name in (
        "reload",
        "http2",
        "factory",
        "access_log",
        "proxy_headers",
        "server_header",
        "date_header",
        "ws_per_message_deflate",
        "reset_contextvars",
    ):
        if not isinstance(getattr(config, name), bool):
            problems.append(Problem(name, f"expected True or False, got {getattr(config, name)!r}", "HW101"))
    if config.root_path and not config.root_path.startswith("/"):
        problems.append(
            Problem("root_path", f"expected a path starting with '/', got {config.root_path!r}", "HW101")
        )
    return problems


def _check_logs_and_metrics(config: Config) -> list[Problem]:
    # Imported when a Config is first built, not with this module: building one must stay cheap to import.
    from hatchway._metrics import check_metrics_address, prometheus_available
    from hatchway._observe import check_access_log_format

    problems = []
    wrong = check_access_log_format(config.access_log_format)
    if wrong:
        problems.append(Problem("access_log_format", wrong, "HW101"))
    if not isinstance(config.request_id, bool):
        problems.append(Problem("request_id", f"expected True or False, got {config.request_id!r}", "HW101"))
    wrong = check_metrics_address(config.metrics_address)
    if wrong:
        problems.append(Problem("metrics_address", wrong, "HW101"))
    elif config.metrics_address is not None and not prometheus_available():
        problems.append(
            Problem(
                "metrics_address",
                "serving metrics needs prometheus_client",
                "HW105",
                "pip install 'hatchway[metrics]'",
            )
        )
    return problems


CHECKS: tuple[Check, ...] = (
    _check_app,
    _check_main_in_children,
    _check_types,
    _int_range("port", 0, 65535),
    _int_range("fd", 0, optional=True),
    _check_http,
    _check_ws,
    _check_loop,
    _choice("lifespan", LIFESPAN_CHOICES),
    _choice("interface", INTERFACE_CHOICES),
    _choice("proxy_headers_family", PROXY_HEADER_FAMILIES),
    _check_log_level,
    _choice("log_format", LOG_FORMATS),
    _check_logs_and_metrics,
    _check_workers,
    _int_range("ws_max_size", 1),
    _int_range("ws_max_queue", 1),
    _non_negative("ws_ping_interval", optional=True),
    _non_negative("ws_ping_timeout", optional=True),
    _int_range("backlog", 1),
    _int_range("limit_concurrency", 1, optional=True),
    _int_range("limit_max_requests", 1, optional=True),
    _int_range("limit_max_requests_jitter", 0),
    _non_negative("timeout_keep_alive"),
    _non_negative("timeout_graceful_shutdown", optional=True),
    _non_negative("timeout_worker_healthcheck"),
    _non_negative("timeout_notify"),
    _non_negative("reload_delay"),
    _non_negative("timeout_request_header"),
    _non_negative("timeout_request_body"),
    _non_negative("timeout_send"),
    _non_negative("timeout_lifespan_startup", optional=True),
    _int_range("limit_request_line", 64),
    _int_range("limit_request_fields", 1),
    _int_range("limit_request_head_size", 256),
    _int_range("h2_max_concurrent_streams", 1),
    _int_range("h2_initial_window_size", 1, 2**31 - 1),
    _int_range("h2_max_frame_size", 16384, 16777215),
    _int_range("h2_max_header_list_size", 1),
    _int_range("h2_max_header_frames", 1),
    _int_range("h2_max_resets_per_second", 1),
    _int_range("h2_max_control_frames_per_second", 1),
    _int_range("h11_max_incomplete_event_size", 1, optional=True),
    _check_ssl,
    _check_proxies,
    _check_headers,
    _check_reload_lists,
    _check_proxy_protocol,
    _non_negative("shutdown_delay"),
    _check_health_paths,
    _check_recycling,
)
