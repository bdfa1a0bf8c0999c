"""Logging: access log on by default, --log-config as dict/JSON/YAML/INI, log_config=None, trace level."""

from __future__ import annotations

import json
import logging
import re
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hatchway import Config, ConfigError, Server
from hatchway._logs import AccessFormatter
from tests.conftest import CliProcess
from tests.utils import UNIT, serve_in_thread

NAMES = ("hatchway", "hatchway.error", "hatchway.access", "hatchway.asgi", "")
ACCESS_LINE = re.compile(r'INFO:\s+127\.0\.0\.1:\d+ - "GET /json HTTP/1\.1" 200 OK')


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=1)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Configuring logging is process-wide: start with hatchway's loggers untouched (as in a fresh process,
    whatever earlier tests configured), and put them and the root logger back after the test."""
    saved = {}
    for name in NAMES:
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), logger.level, logger.propagate, logger.disabled)
        if name:
            logger.handlers[:] = []
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
            logger.disabled = False
    yield
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.mark.slow
def test_access_log_is_on_by_default_and_can_be_turned_off(cli: Callable[..., CliProcess]) -> None:
    on = cli("hatchway.demo:app", "--port", "0")
    url = on.wait_started()
    assert httpx.get(f"{url}/json", timeout=5 * UNIT).status_code == 200
    on.wait_for(ACCESS_LINE)  # on stdout, as uvicorn's access handler
    assert on.stop() == 0

    off = cli("hatchway.demo:app", "--port", "0", "--no-access-log")
    url = off.wait_started()
    assert httpx.get(f"{url}/json", timeout=5 * UNIT).status_code == 200
    assert off.stop() == 0
    assert not ACCESS_LINE.search(off.stdout)


@pytest.mark.usefixtures("restore_logging")
def test_log_config_none_leaves_the_apps_logging_alone() -> None:
    root = logging.getLogger()
    mine = ListHandler()
    root.addHandler(mine)
    root.setLevel(logging.INFO)
    before = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate) for name in NAMES
    }
    try:
        with serve_in_thread(hello, log_config=None):
            pass
    finally:
        root.removeHandler(mine)
    after = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate) for name in NAMES
    }
    after[""][0].append(mine)
    assert after == before
    # hatchway's records reach the app's own handlers through propagation.
    assert any(message.startswith("Hatchway running on http://127.0.0.1:") for message in mine.messages())


def _dict_config(logfile: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(name)s %(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(logfile), "formatter": "plain"}
        },
        "loggers": {"hatchway": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }


def _write_config(kind: str, directory: Path, logfile: Path) -> Any:
    if kind == "dict":
        return _dict_config(logfile)
    if kind == "json":
        path = directory / "logging.json"
        path.write_text(json.dumps(_dict_config(logfile)))
        return str(path)
    if kind == "yaml":
        yaml = pytest.importorskip("yaml")
        path = directory / "logging.yaml"
        path.write_text(yaml.safe_dump(_dict_config(logfile)))
        return path  # a PathLike works too
    path = directory / "logging.ini"
    path.write_text(
        textwrap.dedent(
            f"""
            [loggers]
            keys=root,hatchway

            [handlers]
            keys=file

            [formatters]
            keys=plain

            [logger_root]
            handlers=

            [logger_hatchway]
            handlers=file
            qualname=hatchway
            level=INFO
            propagate=0

            [handler_file]
            class=FileHandler
            args=({str(logfile)!r},)
            formatter=plain

            [formatter_plain]
            format=%(name)s %(message)s
            """
        )
    )
    return str(path)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("kind", ["dict", "json", "yaml", "ini"])
def test_log_config_formats(kind: str, tmp_path: Path) -> None:
    logfile = tmp_path / "server.log"
    with serve_in_thread(hello, log_config=_write_config(kind, tmp_path, logfile)) as server:
        assert httpx.get(server.url or "", timeout=5 * UNIT).status_code == 200
    for handler in logging.getLogger("hatchway").handlers:
        handler.flush()
    text = logfile.read_text()
    assert "hatchway.error Hatchway running on http://127.0.0.1:" in text
    assert re.search(r'hatchway\.access 127\.0\.0\.1:\d+ - "GET / HTTP/1\.1" 200', text)


@pytest.mark.usefixtures("restore_logging")
def test_unusable_log_config_is_a_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    server = Server(Config(hello, port=0, log_config=str(broken)))
    with pytest.raises(ConfigError, match="log_config") as info:
        server.run()
    assert info.value.code == "HW105"
    assert not server.started


@pytest.mark.usefixtures("restore_logging")
def test_trace_level_logs_asgi_messages() -> None:
    captured = ListHandler()
    asgi = logging.getLogger("hatchway.asgi")
    asgi.addHandler(captured)
    with serve_in_thread(hello, log_level="trace") as server:
        assert logging.getLogger("hatchway.error").level == 5
        assert logging.getLevelName(5) == "TRACE"
        assert httpx.get(server.url or "", timeout=5 * UNIT).text == "hello"
    messages = captured.messages()
    assert any(re.fullmatch(r"ASGI \[\d+\] Started scope=.*'type': 'http'.*", m) for m in messages), messages
    assert any("Send {'type': 'http.response.body', 'body': '<5 bytes>'}" in m for m in messages), messages
    assert any(m.endswith("Completed") for m in messages)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("access_log", [True, False])
def test_access_log_switch(access_log: bool) -> None:
    captured = ListHandler()
    with serve_in_thread(hello, access_log=access_log) as server:
        logging.getLogger("hatchway.access").addHandler(captured)
        logging.getLogger("hatchway.access").setLevel(logging.INFO)
        assert httpx.get(server.url or "", timeout=5 * UNIT).status_code == 200
    logging.getLogger("hatchway.access").removeHandler(captured)
    assert bool(captured.records) is access_log


def test_access_formatter_has_uvicorns_line() -> None:
    record = logging.LogRecord(
        "hatchway.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/a?b", "1.1", 404),
        None,
    )
    formatter = AccessFormatter(
        '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False
    )
    assert formatter.format(record) == 'INFO:     1.2.3.4:5 - "GET /a?b HTTP/1.1" 404 Not Found'
