"""Logger names, the default formatters, the access-log line, and applying ``log_config``/``log_level``."""

from __future__ import annotations

import configparser
import http
import json
import logging
import logging.config
import os
import sys
import time
from copy import copy
from typing import TYPE_CHECKING, Any, Literal

from hatchway._errors import ConfigError, Problem

if TYPE_CHECKING:
    from hatchway._config import Config

TRACE_LOG_LEVEL = 5
LOG_LEVELS: dict[str, int] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE_LOG_LEVEL,
}

LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "hatchway._logs.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
        "access": {
            "()": "hatchway._logs.AccessFormatter",
            "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
        },
    },
    "handlers": {
        "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "hatchway": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "hatchway.error": {"level": "INFO"},
        "hatchway.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}

logger = logging.getLogger("hatchway.error")
access_logger = logging.getLogger("hatchway.access")

_COLORS = {
    TRACE_LOG_LEVEL: "34",
    logging.DEBUG: "36",
    logging.INFO: "32",
    logging.WARNING: "33",
    logging.ERROR: "31",
    logging.CRITICAL: "91",
}
_STATUS_COLORS = {1: "97", 2: "32", 3: "33", 4: "31", 5: "91"}


def _style(text: str, code: str, bold: bool = False) -> str:
    return f"\033[{'1;' if bold else ''}{code}m{text}\033[0m"


def escape(text: str) -> str:
    """Make client-supplied text safe for one log line: control characters and quotes become escapes.

    Quotes too, because the access line quotes the request line: an unescaped ``"`` in a path could forge
    the fields after it.
    """
    if text.isprintable() and '"' not in text:
        return text
    return text.encode("unicode_escape", "backslashreplace").decode("ascii").replace('"', '\\"')


class ColourizedFormatter(logging.Formatter):
    """Prefix the level name (coloured on terminals); ``extra={"color_message": ...}`` is used when colouring."""

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        use_colors: bool | None = None,
    ) -> None:
        self.use_colors = use_colors if use_colors in (True, False) else self.should_use_colors()
        super().__init__(fmt=fmt, datefmt=datefmt, style=style)

    def should_use_colors(self) -> bool:
        return sys.stderr.isatty()

    def formatMessage(self, record: logging.LogRecord) -> str:
        recordcopy = copy(record)
        levelname = recordcopy.levelname
        separator = " " * max(1, 8 - len(levelname))
        if self.use_colors:
            levelname = _style(levelname, _COLORS.get(recordcopy.levelno, "0"))
            if "color_message" in recordcopy.__dict__:
                recordcopy.msg = recordcopy.__dict__["color_message"]
                recordcopy.__dict__["message"] = recordcopy.getMessage()
        prefix = levelname + ":" + separator
        request_id = recordcopy.__dict__.get("request_id")
        if request_id and not self._names_request_id:
            # --request-id: each line of a request says which one, unless the format places the id itself.
            prefix += f" [{request_id}]"
        recordcopy.__dict__["levelprefix"] = prefix
        recordcopy.__dict__.setdefault("request_id", "-")
        return super().formatMessage(recordcopy)

    @property
    def _names_request_id(self) -> bool:
        return "request_id" in (self._fmt or "")


class DefaultFormatter(ColourizedFormatter):
    """The formatter of ``hatchway.error``."""


class AccessFormatter(ColourizedFormatter):
    """Formats ``(client_addr, method, path, http_version, status)`` records as uvicorn does."""

    def should_use_colors(self) -> bool:
        return sys.stdout.isatty()

    def formatMessage(self, record: logging.LogRecord) -> str:
        recordcopy = copy(record)
        args = recordcopy.args
        if isinstance(args, tuple) and len(args) == 5:
            client_addr, method, full_path, http_version, status_code = args
            status = int(status_code)  # type: ignore[call-overload]
            try:
                phrase = http.HTTPStatus(status).phrase
            except ValueError:
                phrase = ""
            status_text = f"{status} {phrase}"
            request_line = f"{method} {full_path} HTTP/{http_version}"
            if self.use_colors:
                status_text = _style(status_text, _STATUS_COLORS.get(status // 100, "0"))
                request_line = _style(request_line, "0", bold=True)
            recordcopy.__dict__.update(
                {"client_addr": client_addr, "request_line": request_line, "status_code": status_text}
            )
        else:
            # A line in a custom access_log_format: it is the message; uvicorn's fields are left empty so
            # that a format written for them still formats.
            for name in ("client_addr", "request_line", "status_code"):
                recordcopy.__dict__.setdefault(name, "-")
        return super().formatMessage(recordcopy)


# The attributes every LogRecord has; anything else on a record came from ``extra`` and goes into JSON.
_RECORD_ATTRIBUTES = frozenset(
    {*logging.LogRecord("", 0, "", 0, "", None, None).__dict__, "message", "asctime", "color_message"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``--log-format json``); the field names are documented in docs/logging.md.

    Always: ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``, ``pid``; then the
    record's ``extra`` fields (an access line's ``client``, ``method``, ``path``, ``query``,
    ``http_version``, ``status``, ``bytes``, ``duration_ms``, ``request_id``; a request's error lines carry
    ``request_id``); ``exc_info`` (the traceback as text) when there is one.
    """

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, **_: Any) -> None:
        super().__init__(fmt=fmt, datefmt=datefmt)  # uvicorn's arguments (use_colors, ...) are accepted

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage().rstrip("\n"),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in data:
                data[key] = value
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc_info"] = record.exc_text
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str)


def configure_logging(config: Config) -> None:
    """Apply ``log_config``, ``log_level`` and ``access_log`` as uvicorn does.

    ``log_config=None`` leaves the application's logging alone.
    """
    if logging.getLevelName(TRACE_LOG_LEVEL) != "TRACE":  # addLevelName takes logging's module lock
        logging.addLevelName(TRACE_LOG_LEVEL, "TRACE")
    log_config = config.log_config
    if log_config is not None:
        if log_config == LOGGING_CONFIG:  # hatchway's own: shaped by the options; a user's config wins
            log_config = default_logging_config(config.log_format, config.access_log_format)
        _apply_log_config(log_config, config.use_colors)
    if config.log_level is not None:
        level = (
            config.log_level if isinstance(config.log_level, int) else LOG_LEVELS[config.log_level.lower()]
        )
        for name in ("hatchway.error", "hatchway.access", "hatchway.asgi"):
            logging.getLogger(name).setLevel(level)


def default_logging_config(log_format: str, access_log_format: str | None) -> dict[str, Any]:
    """hatchway's default logging config for ``log_format``; with a custom access format, the access line
    is printed as it is (gunicorn's way), with no level prefix."""
    config: dict[str, Any] = {**LOGGING_CONFIG, "formatters": dict(LOGGING_CONFIG["formatters"])}
    formatters = config["formatters"]
    if log_format == "json":
        for name in formatters:
            formatters[name] = {"()": "hatchway._logs.JsonFormatter"}
    elif access_log_format:
        formatters["access"] = {**formatters["access"], "fmt": "%(message)s"}
    return config


def _apply_log_config(log_config: Any, use_colors: bool | None) -> None:
    if isinstance(log_config, os.PathLike):
        log_config = os.fspath(log_config)
    try:
        if isinstance(log_config, dict):
            if use_colors in (True, False):
                log_config = copy(log_config)
                formatters = {k: dict(v) for k, v in log_config.get("formatters", {}).items()}
                for name in ("default", "access"):
                    if name in formatters:
                        formatters[name]["use_colors"] = use_colors
                log_config["formatters"] = formatters
            logging.config.dictConfig(_from_uvicorn(log_config))
        elif isinstance(log_config, str) and log_config.endswith(".json"):
            with open(log_config) as file:
                logging.config.dictConfig(_from_uvicorn(json.load(file)))
        elif isinstance(log_config, str) and log_config.endswith((".yaml", ".yml")):
            try:
                import yaml
            except ImportError as exc:
                raise ConfigError(
                    [
                        Problem(
                            "log_config",
                            "YAML logging configs need PyYAML",
                            "HW105",
                            "pip install 'hatchway[standard]'",
                        )
                    ]
                ) from exc
            with open(log_config) as file:
                logging.config.dictConfig(_from_uvicorn(yaml.safe_load(file)))
        else:
            if isinstance(log_config, str):
                log_config = _ini_from_uvicorn(log_config)
            logging.config.fileConfig(log_config, disable_existing_loggers=False)
    except ConfigError:
        raise
    except (
        OSError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        ImportError,
        configparser.Error,
    ) as exc:
        raise ConfigError(
            [Problem("log_config", f"could not apply logging configuration {log_config!r}: {exc}", "HW105")]
        ) from exc


# A log config written for uvicorn names uvicorn's loggers and formatters. Switching servers by one word must not
# silence the server (with such a config hatchway's own loggers had no handler, or were disabled by
# ``disable_existing_loggers``), so each uvicorn logger the config sets up, and hatchway's counterpart it does
# not, is set up for hatchway too; the uvicorn loggers stay configured for apps that log to them.
_UVICORN_LOGGERS = {
    "uvicorn": "hatchway",
    "uvicorn.error": "hatchway.error",
    "uvicorn.access": "hatchway.access",
    "uvicorn.asgi": "hatchway.asgi",
}
# hatchway's formatters take the same arguments and format the same records; using them spares importing
# uvicorn, which a project that switched may no longer have installed.
_UVICORN_FORMATTERS = {
    "uvicorn.logging.ColourizedFormatter": "hatchway._logs.ColourizedFormatter",
    "uvicorn.logging.DefaultFormatter": "hatchway._logs.DefaultFormatter",
    "uvicorn.logging.AccessFormatter": "hatchway._logs.AccessFormatter",
}


def _from_uvicorn(config: Any) -> Any:
    """``config`` (a ``dictConfig`` dict) with uvicorn's loggers and formatters also set up under hatchway's
    names; a copy when anything changes, ``config`` itself otherwise."""
    if not isinstance(config, dict):
        return config  # dictConfig reports what is wrong with it
    loggers = config.get("loggers")
    if isinstance(loggers, dict):
        added = {
            ours: copy(loggers[theirs])
            for theirs, ours in _UVICORN_LOGGERS.items()
            if theirs in loggers and ours not in loggers
        }
        if added:
            config = {**config, "loggers": {**loggers, **added}}
    formatters = config.get("formatters")
    if isinstance(formatters, dict):
        renamed = {}
        for name, spec in formatters.items():
            if isinstance(spec, dict):
                for key in ("()", "class"):
                    target = spec.get(key)
                    if isinstance(target, str) and target in _UVICORN_FORMATTERS:
                        renamed[name] = spec = {**spec, key: _UVICORN_FORMATTERS[target]}
        if renamed:
            config = {**config, "formatters": {**formatters, **renamed}}
    return config


def _ini_from_uvicorn(path: str) -> configparser.ConfigParser:
    """The ``fileConfig`` file at ``path``, with uvicorn's loggers and formatters also set up under hatchway's
    names (as ``_from_uvicorn`` does for dicts)."""
    parser = configparser.ConfigParser()
    with open(path) as file:
        parser.read_file(file)
    if parser.has_option("loggers", "keys"):
        keys = [key.strip() for key in parser.get("loggers", "keys", raw=True).split(",") if key.strip()]
        sections = {key: f"logger_{key}" for key in keys}
        qualnames = {
            parser.get(section, "qualname", raw=True, fallback=""): section
            for section in sections.values()
            if parser.has_section(section)
        }
        for theirs, ours in _UVICORN_LOGGERS.items():
            if theirs in qualnames and ours not in qualnames:
                key = ours.replace(".", "_")
                while key in sections or parser.has_section(f"logger_{key}"):
                    key += "_"
                parser[f"logger_{key}"] = {
                    **dict(parser.items(qualnames[theirs], raw=True)),
                    "qualname": ours,
                }
                sections[key] = f"logger_{key}"
        parser.set("loggers", "keys", ",".join(sections))
    for section in parser.sections():
        if section.startswith("formatter_"):
            target = parser.get(section, "class", raw=True, fallback="")
            if target in _UVICORN_FORMATTERS:
                parser.set(section, "class", _UVICORN_FORMATTERS[target])
    return parser
