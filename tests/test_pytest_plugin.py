"""The pytest plugin, exercised the way users meet it: test files run by pytester, plugin loaded by entry point."""

from __future__ import annotations

import importlib.util
import textwrap

import pytest

pytest_plugins = ["pytester"]

APP = textwrap.dedent(
    """
    import http.client

    class App:
        def __init__(self, name):
            self.name = name
            self.lifespan = []

        async def __call__(self, scope, receive, send):
            if scope["type"] == "lifespan":
                while True:
                    message = await receive()
                    self.lifespan.append(message["type"])
                    await send({"type": message["type"] + ".complete"})
                    if message["type"] == "lifespan.shutdown":
                        return
            body = f"{self.name} {scope['path']}".encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})

    def get(server, path="/"):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()
    """
)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(helpers=APP)
    pytester.syspathinsert()
    return pytester


def test_plugin_is_registered_by_entry_point(project: pytest.Pytester) -> None:
    result = project.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.hatchway(app=None, **options)*"])
    result = project.runpytest("--fixtures")
    result.stdout.fnmatch_lines(["hatchway_server*", "*hatchway_server_factory*"])


def test_app_fixture(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest
        from helpers import App, get

        @pytest.fixture
        def hatchway_app():
            return App("fixture")

        def test_served(hatchway_server, hatchway_app):
            assert hatchway_server.url == f"http://127.0.0.1:{hatchway_server.port}"
            assert get(hatchway_server, "/x") == (200, "fixture /x")
            assert hatchway_app.lifespan == ["lifespan.startup"]

        def test_fresh_server_per_test(hatchway_server, hatchway_app):
            assert hatchway_app.lifespan == ["lifespan.startup"]
        """
    )
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_marker_app_and_options(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import socket
        import pytest
        from helpers import App, get

        pytestmark = pytest.mark.hatchway(timeout_keep_alive=2, server_header=False)

        TAKEN = socket.socket()
        TAKEN.bind(("127.0.0.1", 0))
        TAKEN.listen()

        @pytest.mark.hatchway(app=App("marked"))
        def test_marker_app(hatchway_server):
            assert get(hatchway_server) == (200, "marked /")
            assert hatchway_server.config.timeout_keep_alive == 2
            assert hatchway_server.config.server_header is False

        @pytest.mark.hatchway(App("positional"), timeout_keep_alive=3)
        def test_closest_wins(hatchway_server):
            assert get(hatchway_server) == (200, "positional /")
            assert hatchway_server.config.timeout_keep_alive == 3
            assert hatchway_server.config.server_header is False

        @pytest.mark.hatchway(port=TAKEN.getsockname()[1])
        def test_start_up_error_is_reported(hatchway_server):
            pass

        @pytest.fixture
        def hatchway_app():
            return App("fallback")

        @pytest.mark.hatchway(root_path="/api")
        def test_fixture_app_with_marker_options(hatchway_server):
            assert get(hatchway_server) == (200, "fallback /api/")
            assert hatchway_server.config.root_path == "/api"
        """
    )
    result = project.runpytest("-p", "no:cacheprovider", "-rE")
    # The port is taken: the start-up error itself reaches the test report, as a setup error.
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["E *BindError: Address 127.0.0.1:* is already in use*HW301*"])
    result.stdout.fnmatch_lines(["ERROR *test_start_up_error_is_reported*"])


def test_missing_app_is_a_clear_error(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        def test_no_app(hatchway_server):
            pass
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*hatchway_server needs an app*hatchway_app*"])


def test_factory_runs_several_servers(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import threading
        from helpers import App, get

        def test_two(hatchway_server_factory):
            one = hatchway_server_factory(App("one"))
            two = hatchway_server_factory(App("two"), loop="asyncio")
            assert one.port != two.port
            assert get(one) == (200, "one /")
            assert get(two) == (200, "two /")

        def test_after(hatchway_server_factory):
            # the previous test's servers are stopped: only pytest's own threads remain
            assert not [t for t in threading.enumerate() if t.name.startswith("hatchway")]
        """
    )
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_session_scope(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        import pytest
        from helpers import App

        @pytest.fixture(scope="session")
        def hatchway_session_app():
            return App("session")

        @pytest.fixture(scope="session")
        def hatchway_session_options():
            return {"server_header": False}
        """
    )
    project.makepyfile(
        test_one="""
        from helpers import get

        PORTS = []

        def test_a(hatchway_session_server, hatchway_session_app):
            PORTS.append(hatchway_session_server.port)
            assert get(hatchway_session_server) == (200, "session /")
            assert hatchway_session_server.config.server_header is False

        def test_b(hatchway_session_server, hatchway_session_app):
            PORTS.append(hatchway_session_server.port)
            assert PORTS[0] == PORTS[-1]
            assert hatchway_session_app.lifespan == ["lifespan.startup"]
        """,
        test_two="""
        from helpers import get
        from test_one import PORTS

        def test_c(hatchway_session_server):
            assert hatchway_session_server.port == PORTS[0]
        """,
    )
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed")
def test_under_xdist(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        import pytest
        from helpers import App

        @pytest.fixture(scope="session")
        def hatchway_session_app():
            return App("session")
        """
    )
    project.makepyfile(
        """
        import os
        import pytest
        from helpers import App, get

        @pytest.mark.parametrize("n", range(6))
        def test_function_scope(hatchway_server_factory, n):
            server = hatchway_server_factory(App(str(n)))
            assert get(server) == (200, f"{n} /")

        @pytest.mark.parametrize("n", range(4))
        def test_session_scope(hatchway_session_server, n):
            assert get(hatchway_session_server)[0] == 200
        """
    )
    result = project.runpytest_subprocess("-p", "xdist", "-n", "2", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=10)
