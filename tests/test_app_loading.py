"""Loading the app: import errors with the user's traceback only, factories, ASGI 2/3 detection, WSGI, root_path."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hatchway import AppImportError, Config, Server
from tests.conftest import write_app
from tests.utils import UNIT, serve_in_thread


@pytest.fixture
def module_name() -> Iterator[str]:
    """A fresh module name, forgotten after the test so nothing leaks between tests."""
    name = f"user_app_{uuid.uuid4().hex[:8]}"
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def app_dir(tmp_path: Path) -> Iterator[Path]:
    saved = list(sys.path)
    yield tmp_path
    sys.path[:] = saved


def load_error(app: str, directory: Path, **options: Any) -> AppImportError:
    server = Server(Config(app, app_dir=str(directory), port=0, log_config=None, **options))
    with pytest.raises(AppImportError) as info:
        server.run()
    assert not server.started
    return info.value


def test_error_in_users_module_shows_only_the_users_traceback(app_dir: Path, module_name: str) -> None:
    path = write_app(
        app_dir,
        module_name,
        textwrap.dedent(
            """
            def connect():
                raise RuntimeError("database url is missing")

            connect()
            app = None
            """
        ),
    )
    error = load_error(f"{module_name}:app", app_dir)
    assert error.code == "HW203"
    assert isinstance(error.__cause__, RuntimeError)
    assert "RuntimeError: database url is missing" in str(error)
    trace = error.user_traceback or ""
    assert f'File "{path}", line 5, in <module>' in trace
    assert f'File "{path}", line 3, in connect' in trace
    assert trace.rstrip().endswith("RuntimeError: database url is missing")
    assert "hatchway" not in trace.replace(str(app_dir), "")  # no frame of hatchway's own
    assert "importlib" not in trace


def test_missing_module_and_attribute(app_dir: Path, module_name: str) -> None:
    missing = load_error(f"{module_name}:app", app_dir)
    assert missing.code == "HW201"
    assert module_name in str(missing)
    write_app(app_dir, module_name, "async def application(scope, receive, send): pass\n")
    no_attribute = load_error(f"{module_name}:applicaton", app_dir)
    assert no_attribute.code == "HW202"
    assert f"Did you mean {module_name}:application?" in str(no_attribute)


def test_not_callable(app_dir: Path, module_name: str) -> None:
    write_app(app_dir, module_name, "app = 42\n")
    assert load_error(f"{module_name}:app", app_dir).code == "HW205"


def test_app_dir_none_leaves_sys_path_alone(app_dir: Path, module_name: str) -> None:
    write_app(app_dir, module_name, "async def app(scope, receive, send): pass\n")
    before = list(sys.path)
    server = Server(Config(f"{module_name}:app", port=0, log_config=None))
    with pytest.raises(AppImportError):
        server.run()
    assert sys.path == before


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"from factory"})


def create_app() -> Any:
    return hello


def broken_factory() -> Any:
    raise LookupError("settings missing")


def test_factory_flag() -> None:
    with serve_in_thread(create_app, factory=True) as server:
        assert httpx.get(server.url or "", timeout=5 * UNIT).text == "from factory"


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_factory_is_detected_with_a_warning() -> None:
    # A handler on hatchway's logger itself: other tests may have stopped it propagating to the root.
    logger = logging.getLogger("hatchway.error")
    handler, level = ListHandler(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        with serve_in_thread(create_app) as server:
            assert httpx.get(server.url or "", timeout=5 * UNIT).text == "from factory"
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert any("factory detected" in message for message in handler.messages)


def test_factory_error_is_an_app_import_error() -> None:
    server = Server(Config(broken_factory, factory=True, port=0, log_config=None))
    with pytest.raises(AppImportError, match="LookupError: settings missing") as info:
        server.run()
    assert info.value.code == "HW204"
    assert "broken_factory" in (info.value.user_traceback or "")


class ASGI2App:
    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        if self.scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": self.scope["asgi"]["version"].encode()})


@pytest.mark.parametrize("interface", ["auto", "asgi2"])
def test_asgi2_app(interface: str) -> None:
    # Served through the adapter, and the scope says ASGI 2.0 as uvicorn's does.
    with serve_in_thread(ASGI2App, interface=interface) as server:
        assert httpx.get(server.url or "", timeout=5 * UNIT).text == "2.0"


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    write = start_response(
        "201 Created", [("Content-Type", "application/json"), ("X-Seen", environ["PATH_INFO"])]
    )
    write(b'{"legacy": "write", ')  # PEP 3333's write() callable, still used by old frameworks
    info = {
        "method": environ["REQUEST_METHOD"],
        "script": environ["SCRIPT_NAME"],
        "query": environ["QUERY_STRING"],
        "body": body.decode(),
        "header": environ.get("HTTP_X_CUSTOM"),
    }
    return [json.dumps(info)[1:].encode()]


def test_wsgi_app() -> None:
    with serve_in_thread(wsgi_app, interface="wsgi", root_path="/mount") as server:
        response = httpx.post(
            f"{server.url}/things?a=1",
            content=b"payload",
            headers={"x-custom": "yes"},
            timeout=5 * UNIT,
        )
    assert response.status_code == 201
    assert response.headers["x-seen"] == "/things"
    assert response.json() == {
        "legacy": "write",
        "method": "POST",
        "script": "/mount",
        "query": "a=1",
        "body": "payload",
        "header": "yes",
    }


async def paths(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps({"root_path": scope["root_path"], "path": scope["path"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_root_path_is_in_the_scope() -> None:
    # As uvicorn (and the ASGI spec): the proxy strips the prefix; scope["path"] includes root_path again.
    with serve_in_thread(paths, root_path="/api") as server:
        data = httpx.get(f"{server.url}/users", timeout=5 * UNIT).json()
    assert data["root_path"] == "/api"
    assert data["path"] == "/api/users"
