"""The worker supervisor, with real processes: N fresh interpreters on one socket, repaired and restarted."""

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

from hatchway import Config, WorkerStartupError
from hatchway._supervisors import start_supervisor
from tests.fixtures.supervisors.proc import (
    HERE,
    PYTHON,
    UNIT,
    Hammer,
    Proc,
    alive,
    get_text,
    running,
    wait_gone,
    wait_until,
)

pytestmark = pytest.mark.slow


def _script(tmp_path: Path) -> Path:
    shutil.copy(HERE / "app_script.py", tmp_path / "main.py")
    return tmp_path / "main.py"


def _env(tmp_path: Path, **options: object) -> dict[str, str]:
    options.setdefault("timeout_graceful_shutdown", 2)
    return {"HW_OPTIONS": json.dumps(options), "HW_IMPORT_LOG": str(tmp_path / "imports.log")}


def _worker_pids(url: str, count: int, timeout: float = 10 * UNIT) -> set[int]:
    seen: set[int] = set()

    def enough() -> bool:
        text = get_text(url)
        if text:
            seen.add(int(text.split()[-1]))
        return len(seen) >= count

    wait_until(enough, timeout, interval=0.01)
    return seen


def _port_refuses(url: str) -> bool:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
    except OSError:
        return True
    return False


def test_unguarded_script_serves_from_two_workers_importing_once_each(tmp_path: Path) -> None:
    _script(tmp_path)
    with running([PYTHON, "main.py"], tmp_path, _env(tmp_path, workers=2)) as proc:
        url = proc.url()
        pids = _worker_pids(url, 2)
        assert len(pids) == 2
        assert proc.popen.pid not in pids
        assert "Using import string 'main:app'" in proc.output
        assert "without `if __name__" in proc.output  # the guard hint, once
        assert proc.output.count("this call does nothing") == 1
    assert proc.popen.returncode == 0
    assert "bootstrapping phase" not in proc.output
    assert proc.output.count("Hatchway running on") == 1  # one bind, one announcement
    imports = Counter((tmp_path / "imports.log").read_text().split("\n")[:-1])
    # The parent ran the script as __main__ once; each worker imported it as `main` once.
    assert imports[f"{proc.popen.pid} __main__"] == 1
    for pid in pids:
        assert imports[f"{pid} main"] == 1
    assert sum(imports.values()) == 3


def test_killed_worker_is_replaced_while_requests_keep_succeeding(tmp_path: Path) -> None:
    _script(tmp_path)
    with running([PYTHON, "main.py"], tmp_path, _env(tmp_path, workers=2)) as proc:
        url = proc.url()
        pids = _worker_pids(url, 2)
        victim = min(pids)
        with Hammer(url) as hammer:
            time.sleep(0.2)
            with hammer.between_requests():
                os.kill(victim, signal.SIGKILL)
            proc.wait_for(rf"Worker \[{victim}\] died")
            new = wait_until(lambda: _worker_pids(url, 2) - pids, 10 * UNIT)
            time.sleep(0.2)
        assert hammer.failures == []
        assert hammer.ok > 10
        assert len(new) == 1


def test_sighup_replaces_every_worker_without_a_failed_request(tmp_path: Path) -> None:
    _script(tmp_path)
    with running([PYTHON, "main.py"], tmp_path, _env(tmp_path, workers=2)) as proc:
        url = proc.url()
        before = _worker_pids(url, 2)
        with Hammer(url) as hammer:
            time.sleep(0.2)
            mark = len(proc.lines)
            proc.signal(signal.SIGHUP)
            for pid in before:
                proc.wait_for(rf"Finished server process \[{pid}\]", start=mark)
            time.sleep(0.3)
        assert hammer.failures == []
        after = _worker_pids(url, 2)
        assert not before & after
        for pid in before:
            assert wait_gone(pid, 5 * UNIT)


def test_ttin_and_ttou_change_the_number_of_workers(tmp_path: Path) -> None:
    _script(tmp_path)
    with running([PYTHON, "main.py"], tmp_path, _env(tmp_path, workers=2)) as proc:
        url = proc.url()
        _worker_pids(url, 2)
        proc.signal(signal.SIGTTIN)
        proc.wait_for(r"increasing to 3 workers")
        wait_until(lambda: len([line for line in proc.lines if "is ready" in line]) == 3, 10 * UNIT)
        assert len(_worker_pids(url, 3)) == 3
        proc.signal(signal.SIGTTOU)
        proc.wait_for(r"decreasing to 2 workers")
        proc.wait_for(r"Finished server process")


def test_hung_worker_is_killed_and_replaced(tmp_path: Path) -> None:
    _script(tmp_path)
    env = _env(tmp_path, workers=2, timeout_worker_healthcheck=0.5)
    with running([PYTHON, "main.py"], tmp_path, env) as proc:
        url = proc.url()
        pids = _worker_pids(url, 2)
        get_text(url + "/hang", timeout=0.3)  # one worker's loop is now blocked for good
        match = proc.wait_for(r"Worker \[(\d+)\] did not answer", timeout=5 * UNIT)
        hung = int(match.group(1))
        assert hung in pids
        assert wait_gone(hung, 5 * UNIT)
        wait_until(lambda: _worker_pids(url, 2) - pids, 10 * UNIT)


def test_request_limit_recycles_workers_without_failed_requests(tmp_path: Path) -> None:
    _script(tmp_path)
    env = _env(tmp_path, workers=2, limit_max_requests=15)
    with running([PYTHON, "main.py"], tmp_path, env) as proc:
        url = proc.url()
        proc.wait_for(r"Worker \[\d+\] is ready")
        with Hammer(url) as hammer:
            wait_until(lambda: hammer.ok >= 60, 20 * UNIT)
        assert hammer.failures == []
        assert len(hammer.pids) >= 3
        assert "reached its request limit" in proc.output


def test_import_failure_stops_with_exit_code_3_naming_the_attribute(tmp_path: Path) -> None:
    shutil.copy(HERE / "plain_app.py", tmp_path / "plain_app.py")
    started = time.monotonic()
    proc = Proc([PYTHON, "-m", "hatchway", "plain_app:ap", "--workers", "2", "--port", "0"], tmp_path)
    try:
        code = proc.wait(15 * UNIT)
    finally:
        proc.stop()
    assert code == 3
    assert time.monotonic() - started < 10 * UNIT
    assert "Attribute 'ap' not found in module 'plain_app'" in proc.output
    assert "Did you mean plain_app:app?" in proc.output
    assert "[HW500" in proc.output
    for pid in proc.child_pids():
        assert not alive(pid)


def test_lifespan_failure_stops_the_cli_with_exit_code_3(tmp_path: Path) -> None:
    _script(tmp_path)
    env = {**_env(tmp_path), "HW_LIFESPAN_FAIL": "1"}
    started = time.monotonic()
    proc = Proc([PYTHON, "-m", "hatchway", "main:app", "--workers", "2", "--port", "0"], tmp_path, env)
    try:
        code = proc.wait(15 * UNIT)
    finally:
        proc.stop()
    assert code == 3
    assert time.monotonic() - started < 10 * UNIT
    assert "the database is unreachable" in proc.output
    assert "[HW500" in proc.output


def test_script_with_the_error_gets_worker_startup_error(tmp_path: Path) -> None:
    _script(tmp_path)
    env = {**_env(tmp_path, workers=2), "HW_LIFESPAN_FAIL": "1"}
    proc = Proc([PYTHON, "main.py"], tmp_path, env)
    try:
        code = proc.wait(15 * UNIT)
    finally:
        proc.stop()
    assert code == 1  # a script: the exception propagates out of run() like any other
    assert "hatchway._errors.WorkerStartupError" in proc.output
    assert "respawn" not in proc.output


def test_factory_object_with_workers_under_python_dash_m(tmp_path: Path) -> None:
    package = tmp_path / "proj"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(HERE / "app_script.py", package / "serve.py")
    env = {**_env(tmp_path, workers=2, factory=True), "HW_FACTORY": "1"}
    with running([PYTHON, "-m", "proj.serve"], tmp_path, env) as proc:
        url = proc.url()
        assert len(_worker_pids(url, 2)) == 2
        assert "Using import string 'proj.serve:create_app'" in proc.output
    imports = Counter((tmp_path / "imports.log").read_text().split("\n")[:-1])
    assert all(count == 1 for count in imports.values()), imports


def test_sigkill_of_the_supervisor_leaves_no_worker(tmp_path: Path) -> None:
    _script(tmp_path)
    with running([PYTHON, "main.py"], tmp_path, _env(tmp_path, workers=2)) as proc:
        url = proc.url()
        pids = _worker_pids(url, 2)
        proc.signal(signal.SIGKILL)
        proc.wait(5 * UNIT)
        for pid in pids:
            assert wait_gone(pid, 5 * UNIT), f"worker {pid} outlived its supervisor"
        assert wait_until(lambda: _port_refuses(url), 5 * UNIT)


def test_run_import_string_of_a_package_from_its_own_file(tmp_path: Path) -> None:
    shutil.copytree(HERE / "pkg", tmp_path / "pkg")
    with running([PYTHON, "pkg/server.py"], tmp_path) as proc:
        url = proc.url()
        assert len(_worker_pids(url, 2)) == 2


def test_start_supervisor_handle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(HERE / "plain_app.py", tmp_path / "plain_app.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = Config("plain_app:app", port=0, workers=2, log_config=None, timeout_graceful_shutdown=1)
    handle = start_supervisor(config)
    try:
        handle.wait_ready(15 * UNIT)
        assert len(_worker_pids(handle.addresses[0], 2)) == 2
    finally:
        handle.stop()
        handle.stop()  # idempotent
    assert _port_refuses(handle.addresses[0])

    broken = start_supervisor(config.replace(app="plain_app:missing"))
    try:
        with pytest.raises(WorkerStartupError, match="missing"):
            broken.wait_ready(15 * UNIT)
    finally:
        broken.stop()
