"""A test suite against a live FastAPI app, with the hatchway pytest plugin (no conftest needed).

In a virtual environment, from the root of a hatchway checkout (hatchway is not on a package index yet):

    pip install . fastapi httpx pytest
    pytest examples/test_fastapi_app.py
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import fastapi
import httpx
import pytest


def create_app() -> Any:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        yield {"items": {1: "hammer", 2: "saw"}}  # ready before the first test request

    app = fastapi.FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id}")  # type: ignore[untyped-decorator,unused-ignore]
    async def read_item(item_id: int, request: fastapi.Request) -> dict[str, Any]:
        items = request.state.items
        if item_id not in items:
            raise fastapi.HTTPException(status_code=404, detail="no such item")
        return {"id": item_id, "name": items[item_id]}

    return app


@pytest.fixture
def hatchway_app() -> Any:
    """The plugin's hatchway_server fixture serves whatever this returns, fresh for each test."""
    return create_app()


@pytest.fixture
def client(hatchway_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hatchway_server.url, timeout=5) as client:
        yield client


def test_read_item(client: httpx.Client) -> None:
    response = client.get("/items/1")
    assert response.status_code == 200
    assert response.json() == {"id": 1, "name": "hammer"}


def test_missing_item(client: httpx.Client) -> None:
    assert client.get("/items/99").status_code == 404


@pytest.mark.hatchway(headers=[("X-Environment", "test")], server_header=False)
def test_default_headers(hatchway_server: Any) -> None:
    # The marker passes options (and optionally app=...) to the server of this one test.
    response = httpx.get(f"{hatchway_server.url}/items/2", timeout=5)
    assert response.headers["x-environment"] == "test"
    assert "server" not in response.headers


def test_two_servers(hatchway_server_factory: Any) -> None:
    one, two = hatchway_server_factory(create_app()), hatchway_server_factory(create_app())
    assert one.port != two.port
    assert httpx.get(f"{two.url}/items/2", timeout=5).status_code == 200
