"""A ``--log-config`` written for uvicorn (loggers ``uvicorn``, ``uvicorn.error``, ``uvicorn.access``) keeps
hatchway's start-up line, access log and errors, in every format, with or without uvicorn installed."""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CliProcess, write_app
from tests.utils import UNIT

# uvicorn 0.54's LOGGING_CONFIG, verbatim: what a uvicorn user's --log-config starts from.
UVICORN_LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "uvicorn.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
        "access": {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
        },
    },
    "handlers": {
        "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}

UVICORN_INI = """\
[loggers]
keys=root,uvicorn,uvicorn_error,uvicorn_access

[handlers]
keys=default,access

[formatters]
keys=default,access

[logger_root]
handlers=

[logger_uvicorn]
handlers=default
level=INFO
propagate=0
qualname=uvicorn

[logger_uvicorn_error]
handlers=
level=INFO
qualname=uvicorn.error

[logger_uvicorn_access]
handlers=access
level=INFO
propagate=0
qualname=uvicorn.access

[handler_default]
class=StreamHandler
formatter=default
args=(sys.stderr,)

[handler_access]
class=StreamHandler
formatter=access
args=(sys.stdout,)

[formatter_default]
class=uvicorn.logging.DefaultFormatter
format=%(levelprefix)s %(message)s

[formatter_access]
class=uvicorn.logging.AccessFormatter
format=%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s
"""

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/boom":
        raise RuntimeError("boom from the app")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})
"""

# A dict config is only possible from Python: the same run() a uvicorn user calls.
RUN_WITH_DICT = """
import json, sys
import hatchway
hatchway.run("app:app", port=0, log_config=json.loads(sys.argv[1]))
"""

STARTUP = re.compile(r"^INFO: +Hatchway running on (http://127\.0\.0\.1:\d+) \(Press CTRL\+C to quit\)$")
ACCESS = re.compile(r'^INFO: +127\.0\.0\.1:\d+ - "GET /hello HTTP/1\.1" 200 OK$')


def _start(kind: str, tmp_path: Path, cli: Callable[..., CliProcess], env: dict[str, str]) -> CliProcess:
    if kind == "dict":
        script = tmp_path / "serve.py"
        script.write_text(RUN_WITH_DICT)
        command = [sys.executable, str(script), json.dumps(UVICORN_LOGGING_CONFIG)]
        return cli(command=command, env=env)
    if kind == "json":
        path = tmp_path / "logging.json"
        path.write_text(json.dumps(UVICORN_LOGGING_CONFIG))
    elif kind == "yaml":
        yaml = pytest.importorskip("yaml")
        path = tmp_path / "logging.yaml"
        path.write_text(yaml.safe_dump(UVICORN_LOGGING_CONFIG))
    else:
        path = tmp_path / "logging.ini"
        path.write_text(UVICORN_INI)
    return cli("app:app", "--port", "0", "--log-config", str(path), env=env)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "uvicorn_installed"),
    [("json", True), ("dict", False), ("json", False), ("yaml", False), ("ini", False)],
)
def test_a_uvicorn_log_config_keeps_hatchways_logs(
    kind: str, uvicorn_installed: bool, tmp_path: Path, cli: Callable[..., CliProcess]
) -> None:
    write_app(tmp_path, "app", APP)
    paths = [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    if not uvicorn_installed:
        # A project that switched may have uninstalled uvicorn: its formatter classes must not be needed.
        blocker = tmp_path / "blocked" / "uvicorn"
        blocker.mkdir(parents=True)
        (blocker / "__init__.py").write_text("raise ImportError('uvicorn is not installed')\n")
        paths.insert(0, str(blocker.parent))
    server = _start(kind, tmp_path, cli, {"PYTHONPATH": os.pathsep.join(paths)})
    url = server.wait_for(STARTUP).group(1)  # the start-up line, in uvicorn's shape, on stderr
    assert httpx.get(f"{url}/hello", timeout=5 * UNIT).status_code == 200
    server.wait_for(ACCESS)
    assert httpx.get(f"{url}/boom", timeout=5 * UNIT).status_code == 500
    server.wait_for(r"^ERROR: +Exception in ASGI application")
    server.wait_for(r"RuntimeError: boom from the app")  # with its traceback
    assert server.stop() == 0
    assert any(STARTUP.match(line.rstrip("\n")) for line in server.stderr_lines)
    assert any(ACCESS.match(line.rstrip("\n")) for line in server.stdout_lines)  # access log on stdout


def test_uvicorn_names_are_added_to_a_copy_and_hatchway_names_win() -> None:
    from hatchway._logs import _from_uvicorn

    original = copy.deepcopy(UVICORN_LOGGING_CONFIG)
    translated = _from_uvicorn(UVICORN_LOGGING_CONFIG)
    assert original == UVICORN_LOGGING_CONFIG  # the caller's dict is left alone
    loggers = translated["loggers"]
    assert loggers["hatchway"] == loggers["uvicorn"]
    assert loggers["hatchway.error"] == loggers["uvicorn.error"]
    assert loggers["hatchway.access"] == loggers["uvicorn.access"]
    assert "uvicorn.access" in loggers  # an app logging to uvicorn's names keeps its output
    assert translated["formatters"]["access"]["()"] == "hatchway._logs.AccessFormatter"

    from hatchway._logs import LOGGING_CONFIG

    assert _from_uvicorn(LOGGING_CONFIG) is LOGGING_CONFIG  # nothing of uvicorn's: used as it is

    both = copy.deepcopy(UVICORN_LOGGING_CONFIG)
    both["loggers"]["hatchway.access"] = {"handlers": [], "level": "WARNING"}
    assert _from_uvicorn(both)["loggers"]["hatchway.access"] == {"handlers": [], "level": "WARNING"}


def test_an_ini_config_written_for_uvicorn_is_translated(tmp_path: Path) -> None:
    from hatchway._logs import _ini_from_uvicorn

    path = tmp_path / "logging.ini"
    path.write_text(UVICORN_INI)
    parser = _ini_from_uvicorn(str(path))
    keys = parser.get("loggers", "keys").split(",")
    qualnames = {parser.get(f"logger_{key}", "qualname", fallback="") for key in keys}
    wanted = {"uvicorn", "uvicorn.error", "uvicorn.access", "hatchway", "hatchway.error", "hatchway.access"}
    assert wanted <= qualnames
    assert parser.get("formatter_access", "class") == "hatchway._logs.AccessFormatter"
