"""The reloader: the pure path filter, and real reloads of an unguarded script with real file edits."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from collections import Counter
from pathlib import Path

import pytest

from hatchway import Config
from hatchway._supervisors.reload import ReloadFilter, find_exclude_dirs, watch_dirs
from tests.fixtures.supervisors.proc import HERE, PYTHON, UNIT, get_text, running, wait_gone, wait_until

ADDED = 1  # watchfiles.Change.added; the filter ignores the kind of change


# -- which paths count: pure, no files ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/srv/app/main.py", True),
        ("/srv/app/pkg/views.py", True),
        ("/srv/app/main.pyc", False),
        ("/srv/app/__pycache__/main.cpython-311.py", False),
        ("/srv/app/.git/hooks/pre-commit.py", False),
        ("/srv/app/.venv/lib/python3.11/site-packages/x.py", False),
        ("/srv/app/venv/lib/python3.11/site-packages/x.py", False),
        ("/srv/app/node_modules/pkg/build.py", False),
        ("/srv/app/.mypy_cache/3.11/x.py", False),
        ("/srv/app/.pytest_cache/v/x.py", False),
        ("/srv/app/.tox/py311/x.py", False),
        ("/srv/app/.hidden.py", False),
        ("/srv/app/main.py~", False),
        ("/srv/app/.main.py.swp", False),
        ("/srv/app/templates/index.html", False),
        ("/srv/app/README.md", False),
    ],
)
def test_default_filter(path: str, expected: bool) -> None:
    assert ReloadFilter()(ADDED, path) is expected


def test_includes_excludes_and_exclude_dirs() -> None:
    path_filter = ReloadFilter(
        includes=["*.html", "settings.toml"], excludes=["*_test.py"], exclude_dirs=["/srv/app/env"]
    )
    assert path_filter(ADDED, "/srv/app/templates/index.html")
    assert path_filter(ADDED, "/srv/app/settings.toml")
    assert path_filter(ADDED, "/srv/app/main.py")
    assert not path_filter(ADDED, "/srv/app/main_test.py")
    assert not path_filter(ADDED, "/srv/app/env/lib/site.py")  # a virtual environment found at start
    assert path_filter(ADDED, "/srv/app/environment.py")  # a sibling with the same prefix is not inside it


def test_user_patterns_override_defaults() -> None:
    # Excluding *.py drops the default include; including .* drops the default hidden-file exclude.
    assert not ReloadFilter(excludes=["*.py"])(ADDED, "/srv/app/main.py")
    assert ReloadFilter(includes=[".*"])(ADDED, "/srv/app/.env")


def test_path_patterns_match_the_tail() -> None:
    assert not ReloadFilter(excludes=["migrations/*.py"])(ADDED, "/srv/app/migrations/0001.py")
    assert ReloadFilter(excludes=["migrations/*.py"])(ADDED, "/srv/app/models.py")


def test_watch_dirs_default_and_nested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "src" / "inner").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert watch_dirs(Config("main:app", reload=True)) == [str(tmp_path)]
    nested = Config(
        "main:app", reload=True, reload_dirs=[str(tmp_path / "src"), str(tmp_path / "src" / "inner")]
    )
    assert watch_dirs(nested) == [str(tmp_path / "src")]


def test_virtual_environments_are_found_by_pyvenv_cfg(tmp_path: Path) -> None:
    (tmp_path / "myenv").mkdir()
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "code").mkdir()
    found = find_exclude_dirs([str(tmp_path)], [str(tmp_path / "code"), "*.tmp"])
    assert str(tmp_path / "myenv") in found
    assert str(tmp_path / "code") in found


# -- real processes ---------------------------------------------------------------------------------------
def _script(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(HERE / "app_script.py", project / "main.py")
    return project


def _env(tmp_path: Path, **options: object) -> dict[str, str]:
    options.setdefault("reload", True)
    options.setdefault("reload_delay", 0.05)
    options.setdefault("timeout_graceful_shutdown", 1)
    return {"HW_OPTIONS": json.dumps(options), "HW_IMPORT_LOG": str(tmp_path / "imports.log")}


def _text(url: str) -> str | None:
    body = get_text(url, timeout=2 * UNIT)
    return body.split()[0] if body else None


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


@pytest.mark.slow
def test_unguarded_script_reloads_on_edit_and_survives_a_syntax_error(tmp_path: Path) -> None:
    project = _script(tmp_path)
    main = project / "main.py"
    with running([PYTHON, "main.py"], project, _env(tmp_path)) as proc:
        url = proc.url()
        assert wait_until(lambda: _text(url) == "v1", 10 * UNIT)
        _edit(main, 'TEXT = "v1"', 'TEXT = "v2"')
        assert wait_until(lambda: _text(url) == "v2", 10 * UNIT)

        mark = len(proc.lines)
        _edit(main, 'TEXT = "v2"', 'TEXT = "v3" +')  # a syntax error
        proc.wait_for(r"The app failed to start: .*SyntaxError", start=mark)
        proc.wait_for(r"Waiting for file changes", start=mark)
        assert "main.py" in proc.output  # the user's file and line are shown
        # Saved the instant the error is printed: not lost.
        _edit(main, 'TEXT = "v3" +', 'TEXT = "v4"')
        assert wait_until(lambda: _text(url) == "v4", 10 * UNIT)
        children = proc.child_pids()
    assert proc.popen.returncode == 0
    assert "bootstrapping phase" not in proc.output
    for pid in children:
        assert wait_gone(pid, 5 * UNIT)
    imports = Counter((tmp_path / "imports.log").read_text().split("\n")[:-1])
    assert imports[f"{proc.popen.pid} __main__"] == 1
    assert all(count == 1 for count in imports.values()), imports  # once per process


@pytest.mark.slow
def test_cli_reload_and_ctrl_c(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(HERE / "plain_app.py", project / "plain_app.py")
    args = [PYTHON, "-m", "hatchway", "plain_app:app", "--reload", "--port", "0", "--reload-delay", "0.05"]
    with running(args, project) as proc:
        url = proc.url()
        assert wait_until(lambda: _text(url) == "plain", 10 * UNIT)
        _edit(project / "plain_app.py", 'f"plain', 'f"edited')
        assert wait_until(lambda: _text(url) == "edited", 10 * UNIT)
        # Edits in ignored places restart nothing.
        mark = len(proc.lines)
        (project / "notes.txt").write_text("x")
        (project / "__pycache__").mkdir(exist_ok=True)
        (project / "__pycache__" / "junk.py").write_text("x = 1")
        time.sleep(0.5)
        assert not any("Reloading" in line for line in proc.lines[mark:])
        proc.signal(signal.SIGINT)
        assert proc.wait(10 * UNIT) == 0
    assert "Stopping reloader process" in proc.output
    assert _child_interpreters_in(project) == []  # the serving child and the standby are gone


@pytest.mark.slow
def test_sigkill_of_the_reloader_leaves_no_child(tmp_path: Path) -> None:
    project = _script(tmp_path)
    with running([PYTHON, "main.py"], project, _env(tmp_path)) as proc:
        url = proc.url()
        assert wait_until(lambda: _text(url) == "v1", 10 * UNIT)
        proc.signal(signal.SIGKILL)
        proc.wait(5 * UNIT)
        for pid in proc.child_pids():
            assert wait_gone(pid, 5 * UNIT), f"reload child {pid} outlived the reloader"
        host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)

        def refused() -> bool:
            try:
                socket.create_connection((host, int(port)), timeout=0.5).close()
            except OSError:
                return True
            return False

        assert wait_until(refused, 5 * UNIT)
    # The standby interpreter (waiting for "go", never announced) must be gone too.
    assert wait_until(lambda: not _child_interpreters_in(project), 5 * UNIT)


def _child_interpreters_in(cwd: Path) -> list[int]:
    """PIDs of hatchway child interpreters whose working directory is ``cwd`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if b"hatchway._supervisors.child" not in cmdline.read():
                    continue
            if os.readlink(f"/proc/{entry}/cwd") == str(cwd):
                found.append(int(entry))
        except OSError:
            continue
    return found
