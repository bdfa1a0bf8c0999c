"""Declaring an option (``option()``, read by the CLI, docs and checker), its value sets, and the environment it reads."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hatchway._errors import Problem

LOG_FORMATS = ("text", "json")
# "zttp" is uvicorn's name for its zttp package: HTTP/1.1 as "auto", HTTP/2 (with http2) by zttp (_startup.py).
HTTP_CHOICES = ("auto", "h11", "httptools", "zttp")
WS_CHOICES = ("auto", "none", "websockets", "websockets-sansio", "wsproto")
LIFESPAN_CHOICES = ("auto", "on", "off")
INTERFACE_CHOICES = ("auto", "asgi3", "asgi2", "wsgi")
LOOP_CHOICES = ("auto", "asyncio", "uvloop", "none")
# Names uvicorn accepts that hatchway does not implement, with what to use instead.
UNSUPPORTED_CHOICES: dict[tuple[str, str], str] = {
    ("loop", "zuvloop"): "hatchway runs on uvloop or asyncio; use --loop auto",
}
DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1,::1"
PROXY_HEADER_FAMILIES = ("x-forwarded", "forwarded")
PROXY_PROTOCOL_CHOICES = ("off", "v1", "v2", "auto")


@dataclass(frozen=True)
class CliSpec:
    """How an option appears on the command line. ``flag`` None means: Python API only."""

    flag: str | None
    type: Any = None
    choices: tuple[str, ...] | None = None
    is_flag: bool = False
    secondary: str | None = None
    multiple: bool = False
    metavar: str | None = None
    #: What the command line shows and uses when the flag is absent, when that differs from the Python
    #: default (uvicorn's ``--app-dir`` defaults to "", the current directory; ``run(app_dir=None)`` does not).
    default: Any = None
    #: The option takes None ("no limit") although its default is a number: the CLI accepts ``none``.
    none_allowed: bool = False


@dataclass(frozen=True)
class OptionInfo:
    """The declaration of one option, as read by the CLI, the docs and the checker."""

    name: str
    default: Any
    help: str
    cli: CliSpec
    hatchway_only: bool = False
    differs: str | None = None  # why the default differs from uvicorn's, when it does

    @property
    def envvar(self) -> str:
        return f"HATCHWAY_{self.name.upper()}"


def option(
    default: Any = None,
    *,
    help: str,
    flag: str | bool | None = True,
    type: Any = None,
    choices: tuple[str, ...] | None = None,
    secondary: str | None = None,
    multiple: bool = False,
    metavar: str | None = None,
    cli_default: Any = None,
    hatchway_only: bool = False,
    differs: str | None = None,
    factory: Callable[[], Any] | None = None,
    kw_only: bool | None = None,
) -> Any:
    """Declare one option as a dataclass field; the metadata feeds the CLI, docs and checker.

    uvicorn's ``Config`` takes its parameters positionally too (``Config(app, "0.0.0.0", 8000)``), so its
    options keep uvicorn's order and may be passed by position; hatchway's own options are keyword-only.
    """
    meta = {
        "help": help,
        "flag": flag,
        "type": type,
        "choices": choices,
        "secondary": secondary,
        "multiple": multiple,
        "metavar": metavar,
        "cli_default": cli_default,
        "hatchway_only": hatchway_only,
        "differs": differs,
    }
    keyword_only = hatchway_only if kw_only is None else kw_only
    if factory is not None:
        return field(default_factory=factory, metadata=meta, kw_only=keyword_only)
    return field(default=default, metadata=meta, kw_only=keyword_only)


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def split_header(text: str) -> tuple[str, str]:
    name, _, value = text.partition(":")
    return name.strip(), value.strip()


def web_concurrency() -> int | None:
    """$WEB_CONCURRENCY as a number of workers; None when unset or not a number (``_check_workers`` reports it)."""
    raw = os.environ.get("WEB_CONCURRENCY")
    if raw is None or not raw.strip():
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def read_options(cls: type) -> tuple[OptionInfo, ...]:
    """The declarations of ``cls``'s fields made with ``option()`` (all but ``app``), in order."""
    infos = []
    for f in dataclasses.fields(cls):
        if f.name == "app":
            continue
        meta = f.metadata
        flag = meta["flag"]
        if flag is True:
            flag = "--" + f.name.replace("_", "-")
        make_default = f.default_factory
        default = make_default() if callable(make_default) else f.default
        is_flag = isinstance(default, bool) and meta["type"] is not bool
        if f.name == "use_colors":
            is_flag = True
        cli = CliSpec(
            flag=flag or None,
            type=meta["type"],
            choices=meta["choices"],
            is_flag=is_flag,
            secondary=meta["secondary"],
            multiple=meta["multiple"],
            metavar=meta["metavar"],
            default=meta["cli_default"] if meta["cli_default"] is not None else default,
            none_allowed=is_number(default) and "None" in str(f.type),
        )
        infos.append(
            OptionInfo(
                name=f.name,
                default=default,
                help=meta["help"],
                cli=cli,
                hatchway_only=meta["hatchway_only"],
                differs=meta["differs"],
            )
        )
    return tuple(infos)


def load_env_file(env_file: str | os.PathLike[str] | None) -> list[Problem]:
    """Load ``env_file`` into the environment (values already set win); what is wrong with it, if anything."""
    if env_file is None:
        return []
    if not isinstance(env_file, (str, os.PathLike)):
        return [Problem("env_file", f"expected a path to a .env file, got {env_file!r}", "HW101")]
    if not os.path.isfile(env_file):
        return [
            Problem(
                "env_file",
                f"expected an existing file, got {os.fspath(env_file)!r} (not found from {os.getcwd()})",
                "HW101",
            )
        ]
    try:
        from dotenv import load_dotenv  # optional: the 'standard' extra
    except ImportError:
        return [
            Problem(
                "env_file",
                "reading an env file needs python-dotenv",
                "HW105",
                "pip install 'hatchway[standard]'",
            )
        ]
    logging.getLogger("hatchway.error").info("Loading environment from '%s'", os.fspath(env_file))
    load_dotenv(dotenv_path=env_file)
    return []
