"""hatchway.workers.HatchwayWorker under a real gunicorn arbiter."""

from __future__ import annotations

import shutil
import signal
import socket
from pathlib import Path

import pytest

from tests.fixtures.supervisors.proc import HERE, PYTHON, UNIT, Proc, get_text, running, wait_until

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gunicorn(tmp_path: Path, app: str, *extra: str) -> tuple[list[str], str]:
    shutil.copy(HERE / "plain_app.py", tmp_path / "plain_app.py")
    port = _free_port()
    args = [
        PYTHON,
        "-m",
        "gunicorn",
        app,
        "-k",
        "hatchway.workers.HatchwayWorker",
        "-b",
        f"127.0.0.1:{port}",
        "--no-control-socket",
        "--graceful-timeout",
        "2",
        *extra,
    ]
    return args, f"http://127.0.0.1:{port}"


def test_gunicorn_serves_with_the_hatchway_worker(tmp_path: Path) -> None:
    args, url = _gunicorn(tmp_path, "plain_app:app", "-w", "2")
    with running(args, tmp_path) as proc:
        pids: set[int] = set()

        def two_workers() -> bool:
            text = get_text(url, timeout=1 * UNIT)
            if text and text.startswith("plain "):
                pids.add(int(text.split()[1]))
            return len(pids) == 2

        wait_until(two_workers, 15 * UNIT, interval=0.01)
        proc.signal(signal.SIGTERM)
        assert proc.wait(10 * UNIT) == 0
    assert "Started server process" in proc.output


def test_gunicorn_with_an_unguarded_module(tmp_path: Path) -> None:
    args, url = _gunicorn(tmp_path, "main:app", "-w", "1")
    shutil.copy(HERE / "app_script.py", tmp_path / "main.py")
    with running(args, tmp_path) as proc:
        assert wait_until(lambda: (get_text(url, timeout=1 * UNIT) or "").startswith("v1 "), 15 * UNIT)
    assert "this call does nothing" in proc.output
    assert "Hatchway running on" not in proc.output  # no server of its own inside the gunicorn worker


def test_gunicorn_stops_when_the_app_cannot_start(tmp_path: Path) -> None:
    args, _ = _gunicorn(tmp_path, "plain_app:missing")
    proc = Proc(args, tmp_path)
    try:
        code = proc.wait(15 * UNIT)
    finally:
        proc.stop()
    assert code != 0
    assert "missing" in proc.output
