"""What a script sees when ``hatchway.run()`` fails to start: its own line and the message, not hatchway's frames.

Each test runs a real script in a fresh interpreter and reads its stderr, as a user would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import hatchway
from tests.conftest import CliProcess, child_env
from tests.utils import UNIT

pytestmark = pytest.mark.slow

HATCHWAY_DIR = os.path.dirname(os.path.abspath(hatchway.__file__)) + os.sep
FRAME = re.compile(r'^\s*File "([^"]+)", line \d+, in (\S+)$', re.MULTILINE)
APP = """
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})
"""


def run_python(args: list[str], cwd: Path, timeout: float = 20 * UNIT) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in ``cwd``; ``subprocess.run`` kills it if it outlives ``timeout``."""
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=timeout
    )


def frames(stderr: str) -> list[tuple[str, str]]:
    """Every (file, function) of every traceback in ``stderr``."""
    return FRAME.findall(stderr)


def assert_only_user_frames(stderr: str, entry_point: str = "run") -> None:
    ours = [frame for frame in frames(stderr) if frame[0].startswith(HATCHWAY_DIR)]
    if sys.version_info >= (3, 11):
        assert ours == [], stderr
    else:
        # 3.10 re-raises the traceback saved when the ``except`` began: the entry point's own frame stays.
        assert [name for _, name in ours] == [entry_point], stderr


def get_once_ready(url: str, timeout: float) -> str:
    """GET ``url``, retrying while nothing listens yet: a reload child listens once its app is loaded."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5 * UNIT).text
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def last_line(stderr: str) -> str:
    return stderr.rstrip().splitlines()[-1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# -- item: the traceback starts at the user's call --------------------------------------------------------
def test_an_import_string_that_does_not_import(tmp_path: Path) -> None:
    write(tmp_path / "serve.py", 'import hatchway\n\nhatchway.run("no_such_module_hw13:app", port=0)\n')
    result = run_python(["serve.py"], tmp_path)
    assert result.returncode == 1  # an uncaught exception: raised, not sys.exit(3)
    assert_only_user_frames(result.stderr)
    assert f'File "{tmp_path / "serve.py"}", line 3, in <module>' in result.stderr
    assert last_line(result.stderr).startswith("hatchway._errors.AppImportError: Could not import module")
    assert "[HW201" in last_line(result.stderr)
    assert "The above exception" not in result.stderr  # no ModuleNotFoundError from inside hatchway


def test_an_app_made_in_a_function_with_reload(tmp_path: Path) -> None:
    write(
        tmp_path / "serve.py",
        """
        import hatchway

        def main():
            async def app(scope, receive, send):
                pass
            hatchway.run(app, reload=True, port=0)

        main()
        """,
    )
    result = run_python(["serve.py"], tmp_path)
    assert result.returncode == 1
    assert_only_user_frames(result.stderr)
    assert [name for _, name in frames(result.stderr)][:2] == ["<module>", "main"]
    line = last_line(result.stderr)
    assert line.startswith("hatchway._errors.ConfigError: app: reload=True starts new processes")
    # An async function is an app, not a factory.
    assert "the app 'app' was built inside the function main() in serve.py" in line
    assert 'hatchway.run("serve:app", reload=True)' in line


def test_an_app_object_under_python_dash_c_with_reload(tmp_path: Path) -> None:
    code = "import hatchway\nasync def app(s, r, w): pass\nhatchway.run(app, reload=True, port=0)\n"
    result = run_python(["-c", code], tmp_path)
    assert result.returncode == 1
    assert_only_user_frames(result.stderr)
    assert frames(result.stderr)[-1] == ("<string>", "<module>") or sys.version_info < (3, 11)
    assert "HW106" in last_line(result.stderr)
    assert "Hatchway running" not in result.stderr


def test_the_users_module_raising_keeps_its_own_traceback(tmp_path: Path) -> None:
    write(
        tmp_path / "broken_hw13.py",
        """
        def connect():
            raise RuntimeError("database url is missing")

        connect()
        """,
    )
    write(
        tmp_path / "serve.py",
        'import hatchway\n\nif __name__ == "__main__":\n    hatchway.run("broken_hw13:app", port=0)\n',
    )
    result = run_python(["serve.py"], tmp_path)
    assert result.returncode == 1
    assert_only_user_frames(result.stderr)
    assert "importlib" not in result.stderr
    # The cause is the user's own error, with their frames: what they need to fix it.
    cause, _, error = result.stderr.partition("The above exception was the direct cause of the following")
    assert f'File "{tmp_path / "broken_hw13.py"}", line 5, in <module>' in cause
    assert f'File "{tmp_path / "broken_hw13.py"}", line 3, in connect' in cause
    assert "RuntimeError: database url is missing" in cause
    assert f'File "{tmp_path / "serve.py"}", line 4, in <module>' in error
    assert last_line(error).startswith(
        "hatchway._errors.AppImportError: Error while importing 'broken_hw13:app'"
    )


def test_server_run_with_the_address_in_use(tmp_path: Path) -> None:
    write(
        tmp_path / "serve.py",
        "import socket\nimport hatchway\n"
        + APP
        + textwrap.dedent(
            """
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = hatchway.Config(app, port=taken.getsockname()[1])
        hatchway.Server(config).run()
        """
        ),
    )
    result = run_python(["serve.py"], tmp_path)
    assert result.returncode == 1
    assert_only_user_frames(result.stderr, entry_point="run")
    assert "[HW301" in last_line(result.stderr)
    assert "OSError" not in result.stderr  # bind's own error is in the message, not a second traceback
    assert "The above exception" not in result.stderr


def test_errors_caught_in_code_start_at_the_call(tmp_path: Path) -> None:
    # What ``except`` sees: the same exception, its traceback starting in the caller's frame.
    write(
        tmp_path / "serve.py",
        """
        import traceback
        import hatchway

        try:
            hatchway.run("no_such_module_hw13:app", port=0)
        except hatchway.AppImportError as exc:
            print(exc.code, [frame.name for frame in traceback.extract_tb(exc.__traceback__)])
        """,
    )
    result = run_python(["serve.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    if sys.version_info >= (3, 11):
        assert result.stdout.strip() == "HW201 ['<module>']"
    else:
        assert result.stdout.strip() == "HW201 ['<module>', 'run']"


# -- item: python pkg/server.py finds pkg as the command line would --------------------------------------
def test_a_script_inside_its_package_finds_the_package(
    tmp_path: Path, cli: Callable[..., CliProcess]
) -> None:
    write(tmp_path / "pkg" / "__init__.py", "")
    write(
        tmp_path / "pkg" / "server.py",
        "import hatchway\n"
        + APP
        + 'if __name__ == "__main__":\n    hatchway.run("pkg.server:app", port=0)\n',
    )
    # Before: "Could not import module 'pkg'": python puts pkg/ on sys.path, not the directory holding it.
    process = cli(command=[sys.executable, "pkg/server.py"])
    url = process.wait_started()
    assert httpx.get(url, timeout=5 * UNIT).text == "hello"
    assert process.stop(signal.SIGINT) == 0, process.stderr


def test_a_module_missing_everywhere_still_names_the_current_directory(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "server.py", 'import hatchway\nhatchway.run("pkg_absent.server:app", port=0)\n')
    result = run_python(["pkg/server.py"], tmp_path)
    assert result.returncode == 1
    assert f"no such module in the current directory ({tmp_path})" in last_line(result.stderr)


# -- item: "__main__:app" with reload --------------------------------------------------------------------
def test_main_import_string_under_python_dash_c_with_reload_fails_fast(tmp_path: Path) -> None:
    code = (
        "import hatchway\nasync def app(s, r, w): pass\nhatchway.run('__main__:app', reload=True, port=0)\n"
    )
    # Before: the reloader started, the child could not find the app, and it waited for file changes forever.
    result = run_python(["-c", code], tmp_path, timeout=15 * UNIT)
    assert result.returncode == 1
    line = last_line(result.stderr)
    assert line.startswith("hatchway._errors.ConfigError: app: reload=True starts new processes")
    assert "'__main__:app' refers to __main__" in line
    assert "python -c" in line
    assert "HW106" in line
    assert "Waiting for file changes" not in result.stderr
    assert "Hatchway running" not in result.stderr
    assert_only_user_frames(result.stderr)


def test_main_import_string_from_a_script_with_reload_serves(
    tmp_path: Path, cli: Callable[..., CliProcess]
) -> None:
    write(
        tmp_path / "serve_hw13.py",
        "import hatchway\n"
        + APP
        + 'if __name__ == "__main__":\n    hatchway.run("__main__:app", reload=True, port=0)\n',
    )
    process = cli(command=[sys.executable, "serve_hw13.py"])
    url = process.wait_started()
    # The reload child imports the script by its real name; before, it looked in its own __main__ (HW202)
    # and then waited for file changes.
    assert get_once_ready(url, 20 * UNIT) == "hello"
    assert process.stop(signal.SIGINT) == 0, process.stderr
    assert "Using import string 'serve_hw13:app' for '__main__:app'" in process.stderr
    assert "HW202" not in process.stderr
