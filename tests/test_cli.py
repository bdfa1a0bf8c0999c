"""The command line as users run it: real `python -m hatchway` processes, start-up line, exit codes, env;
and, in-process, exactly which options a command line passes to run()."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import CliProcess, child_env, write_app
from tests.utils import UNIT

MAIN = textwrap.dedent(
    """
    import asyncio, json, os

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"].endswith("/slow"):
            print("SLOW REQUEST RECEIVED", flush=True)
            await asyncio.sleep(3600)
        body = json.dumps({
            "root_path": scope["root_path"],
            "greeting": os.environ.get("GREETING"),
            "client": scope["client"][0],
        }).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    """
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_app(tmp_path, "main", MAIN)
    return tmp_path


@pytest.mark.slow
def test_demo_serves_on_the_real_port_and_stops_on_sigterm(cli: Callable[..., CliProcess]) -> None:
    process = cli("hatchway.demo:app", "--port", "0")
    url = process.wait_started()
    port = int(url.rsplit(":", 1)[1])
    assert url == f"http://127.0.0.1:{port}"
    assert port != 0
    assert "hatchway is running" in httpx.get(url, timeout=5 * UNIT).text
    # Exits 0: nothing re-raises the signal after a graceful shutdown.
    assert process.stop(signal.SIGTERM) == 0
    assert "Finished server process" in process.stderr


@pytest.mark.slow
def test_version_and_console_script() -> None:
    output = subprocess.run(
        [sys.executable, "-m", "hatchway", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        env=child_env(),
    )
    assert output.returncode == 0
    assert re.fullmatch(r"Running hatchway \S+ with \S+ \S+ on \S+\n", output.stdout)
    script = Path(sys.executable).parent / "hatchway"
    if script.exists():
        assert subprocess.run(
            [str(script), "--version"], capture_output=True, text=True, timeout=30
        ).stdout == (output.stdout)


@pytest.mark.slow
def test_options_from_environment_and_env_file(cli: Callable[..., CliProcess], project: Path) -> None:
    pytest.importorskip("dotenv")
    (project / "prod.env").write_text("GREETING=hello from .env\n")
    env = {"HATCHWAY_APP": "main:app", "HATCHWAY_PORT": "0", "HATCHWAY_ROOT_PATH": "/api"}
    process = cli("--env-file", "prod.env", env=env)
    url = process.wait_started()
    data = httpx.get(f"{url}/x", timeout=5 * UNIT).json()
    assert data["root_path"] == "/api"
    assert data["greeting"] == "hello from .env"
    assert process.stop() == 0


@pytest.mark.parametrize(
    ("environment", "client"),
    [({}, "203.0.113.7"), ({"FORWARDED_ALLOW_IPS": "10.0.0.1"}, "127.0.0.1")],
)
@pytest.mark.slow
def test_forwarded_allow_ips_from_environment(
    cli: Callable[..., CliProcess], project: Path, environment: dict[str, str], client: str
) -> None:
    process = cli("main:app", "--port", "0", env=environment)
    url = process.wait_started()
    data = httpx.get(url, headers={"x-forwarded-for": "203.0.113.7"}, timeout=5 * UNIT).json()
    assert data["client"] == client
    assert process.stop() == 0


def _no_traceback_of_hatchway(stderr: str) -> None:
    assert "hatchway/_" not in stderr, stderr
    assert "click/" not in stderr, stderr


@pytest.mark.parametrize(
    ("args", "environment", "fragments"),
    [
        (
            ["--workers", "0", "--port", "-5", "--h2-max-frame-size", "1024"],
            {},
            ["workers", "port", "h2_max_frame_size", "3 invalid options"],
        ),
        ([], {"WEB_CONCURRENCY": "many"}, ["$WEB_CONCURRENCY must be a whole number"]),
        (["--env-file", "missing.env"], {}, ["does not exist"]),
    ],
)
@pytest.mark.slow
def test_configuration_errors_exit_2(
    cli: Callable[..., CliProcess],
    project: Path,
    args: list[str],
    environment: dict[str, str],
    fragments: list[str],
) -> None:
    process = cli("main:app", *args, env=environment)
    assert process.finish() == 2
    for fragment in fragments:
        assert fragment in process.stderr
    _no_traceback_of_hatchway(process.stderr)


@pytest.mark.slow
def test_address_in_use_exits_3_with_one_clear_line(cli: Callable[..., CliProcess], project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = cli("main:app", "--port", str(port))
        assert process.finish() == 3
    errors = [line for line in process.stderr_lines if line.startswith("ERROR")]
    assert len(errors) == 1
    assert f"127.0.0.1:{port} is already in use" in errors[0]
    assert "Traceback" not in process.stderr


@pytest.mark.slow
def test_import_error_shows_the_users_traceback_only(cli: Callable[..., CliProcess], tmp_path: Path) -> None:
    write_app(tmp_path, "broken", "import json\n\nvalue = json.loads('{oops')\napp = None\n")
    process = cli("broken:app")
    assert process.finish() == 3
    stderr = process.stderr
    assert "Traceback (most recent call last):" in stderr
    assert f'File "{tmp_path / "broken.py"}", line 3, in <module>' in stderr
    assert "json.decoder.JSONDecodeError" in stderr
    assert "ERROR: Error while importing 'broken:app'" in stderr
    _no_traceback_of_hatchway(stderr)
    assert "importlib/__init__.py" not in stderr


@pytest.mark.slow
def test_lifespan_startup_failure_exits_3_with_the_apps_message(
    cli: Callable[..., CliProcess], tmp_path: Path
) -> None:
    write_app(
        tmp_path,
        "failing",
        textwrap.dedent(
            """
            async def app(scope, receive, send):
                await receive()
                await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
            """
        ),
    )
    process = cli("failing:app", "--port", "0")
    assert process.finish() == 3
    assert "Application startup failed: database unreachable" in process.stderr
    assert "Hatchway running" not in process.stderr
    _no_traceback_of_hatchway(process.stderr)


@pytest.mark.slow
def test_second_sigint_forces_shutdown(cli: Callable[..., CliProcess], project: Path) -> None:
    process = cli("main:app", "--port", "0", "--timeout-graceful-shutdown", "600")
    url = process.wait_started()
    errors: list[BaseException] = []

    def request() -> None:
        try:
            httpx.get(f"{url}/slow", timeout=30 * UNIT)
        except BaseException as exc:
            errors.append(exc)

    client = threading.Thread(target=request, daemon=True)
    client.start()
    # Once the request is in the app, the first SIGINT waits for it; the second one cuts it off.
    process.wait_for("SLOW REQUEST RECEIVED")
    process.proc.send_signal(signal.SIGINT)
    process.wait_for("Shutting down")
    process.proc.send_signal(signal.SIGINT)
    assert process.finish() == 0
    client.join(10 * UNIT)
    assert errors, "the slow request should have been cut off"


@pytest.mark.slow
def test_trace_log_level(cli: Callable[..., CliProcess]) -> None:
    process = cli("hatchway.demo:app", "--port", "0", "--log-level", "trace")
    url = process.wait_started()
    httpx.get(url, timeout=5 * UNIT)
    process.wait_for(r"TRACE:\s+ASGI \[\d+\] Send \{'type': 'http.response.start'")
    assert process.stop() == 0


@pytest.mark.slow
def test_console_script_finds_main_app_in_the_current_directory(project: Path) -> None:
    script = Path(sys.executable).parent / "hatchway"
    if not script.exists():
        pytest.skip("the hatchway console script is not installed next to this interpreter")
    # The console script's sys.path[0] is its bin directory: --app-dir's default "" must add the cwd.
    process = CliProcess([], cwd=project, command=[str(script), "main:app", "--port", "0"])
    try:
        url = process.wait_started()
        assert httpx.get(url, timeout=5 * UNIT).json()["root_path"] == ""
        assert process.stop() == 0
    finally:
        process.kill()


@pytest.fixture
def captured_run(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Run the CLI in-process with hatchway.run replaced, to see exactly which options it passes."""
    import hatchway._run

    seen: dict[str, object] = {}

    def fake_run(app: object, **options: object) -> None:
        seen.update(options, app=app)

    monkeypatch.setattr(hatchway._run, "run", fake_run)
    return seen


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, {"app": "main:app", "app_dir": ""}),  # only what the user set, plus the CLI's --app-dir ""
        (["--timeout-graceful-shutdown", "none"], {}, {"timeout_graceful_shutdown": None}),
        (["--timeout-graceful-shutdown", "2.5"], {}, {"timeout_graceful_shutdown": 2.5}),
        ([], {"HATCHWAY_PORT": "9001", "HATCHWAY_NO_SUCH": "x"}, {"port": 9001}),
        (
            [],
            {"HATCHWAY_ACCESS_LOG": "false", "HATCHWAY_LOG_LEVEL": "TRACE"},
            {"access_log": False, "log_level": "trace"},
        ),
        (["--port", "9002"], {"HATCHWAY_PORT": "9001"}, {"port": 9002}),  # the flag wins over the environment
        (["--header", "X-A: 1", "--header", "X-B:2"], {}, {"headers": ["X-A: 1", "X-B:2"]}),
        (
            [],
            {"HATCHWAY_HEADERS": "Cache-Control: no-cache, no-store\nX-B: 2\n"},
            {"headers": ["Cache-Control: no-cache, no-store", "X-B: 2"]},
        ),
        (["--no-proxy-headers", "--use-colors"], {}, {"proxy_headers": False, "use_colors": True}),
        (["--http", "zttp", "--http2"], {}, {"http": "zttp", "http2": True}),
        (
            ["--h2-max-concurrent-streams", "250"],
            {"HATCHWAY_H2_MAX_FRAME_SIZE": "32768"},
            {"h2_max_concurrent_streams": 250, "h2_max_frame_size": 32768},
        ),
    ],
)
def test_cli_passes_only_given_options(
    captured_run: dict[str, object], args: list[str], env: dict[str, str], expected: dict[str, object]
) -> None:
    from click.testing import CliRunner

    from hatchway._cli import command

    result = CliRunner().invoke(command, ["main:app", *args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert {k: v for k, v in captured_run.items() if k in expected} == expected
    extra = set(captured_run) - set(expected) - {"app", "app_dir"}
    assert extra == set()


def test_help_offers_only_values_config_accepts() -> None:
    # Every choice --help lists must start a server: an offered value that Config then refuses is a trap.
    import click

    from hatchway._cli import command
    from hatchway._config import Config

    for param in command.params:
        if isinstance(param, click.Option) and isinstance(param.type, click.Choice):
            for choice in param.type.choices:
                Config("main:app", **{str(param.name): choice})
