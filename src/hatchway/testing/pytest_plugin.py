"""The pytest plugin (registered by the ``pytest11`` entry point): live-server fixtures over ``background()``.

Fixtures:

``hatchway_server``
    The app of the test served in a thread, per test. The app comes from ``@pytest.mark.hatchway(app=...,
    **options)`` (on the test, its class or its module; the closest wins option by option) or else from the
    ``hatchway_app`` fixture, which you define.
``hatchway_server_factory``
    ``hatchway_server_factory(app, **options)`` starts one more server; all are stopped after the test.
``hatchway_session_server``
    One server for the whole session (per xdist worker), serving ``hatchway_session_app`` with
    ``hatchway_session_options``, both session-scoped fixtures you may override.

Every server binds port 0 on 127.0.0.1, so parallel workers never collide, and no file is shared.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hatchway.testing._background import BackgroundServer, background

MARKER = (
    "hatchway(app=None, **options): the app and hatchway options for the hatchway_server fixture "
    "(app may also be the first positional argument)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


def _marker_options(node: pytest.Item) -> dict[str, Any]:
    options: dict[str, Any] = {}
    # iter_markers yields the closest (the test's own) first; apply the farthest first so the closest wins.
    for marker in reversed(list(node.iter_markers("hatchway"))):
        if len(marker.args) > 1:
            raise pytest.UsageError("@pytest.mark.hatchway takes the app as its only positional argument")
        if marker.args:
            options["app"] = marker.args[0]
        options.update(marker.kwargs)
    return options


@pytest.fixture
def hatchway_app() -> Any:
    """The app ``hatchway_server`` serves; override it (or use ``@pytest.mark.hatchway(app=...)``)."""
    pytest.fail(
        "hatchway_server needs an app: define a `hatchway_app` fixture, "
        "or mark the test with @pytest.mark.hatchway(app=...)",
        pytrace=False,
    )


@pytest.fixture
def hatchway_server_factory() -> Iterator[Callable[..., BackgroundServer]]:
    """Start servers on demand: ``hatchway_server_factory(app, **options)``; stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(app: Any, **options: Any) -> BackgroundServer:
            return stack.enter_context(background(app, **options))

        yield start


@pytest.fixture
def hatchway_server(
    request: pytest.FixtureRequest, hatchway_server_factory: Callable[..., BackgroundServer]
) -> BackgroundServer:
    """The test's app, served in a thread for this test; ``.url``, ``.host``, ``.port`` are real."""
    options = _marker_options(request.node)
    app = options.pop("app", None)
    if app is None:
        app = request.getfixturevalue("hatchway_app")
    return hatchway_server_factory(app, **options)


@pytest.fixture(scope="session")
def hatchway_session_app() -> Any:
    """The app ``hatchway_session_server`` serves; override it with a session-scoped fixture."""
    pytest.fail(
        "hatchway_session_server needs an app: define a session-scoped `hatchway_session_app` fixture",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def hatchway_session_options() -> dict[str, Any]:
    """Options for ``hatchway_session_server``; override it with a session-scoped fixture."""
    return {}


@pytest.fixture(scope="session")
def hatchway_session_server(
    hatchway_session_app: Any, hatchway_session_options: dict[str, Any]
) -> Iterator[BackgroundServer]:
    """One server for the whole test session (per xdist worker)."""
    with background(hatchway_session_app, **hatchway_session_options) as server:
        yield server
