"""Workers recycled on memory (limit_max_rss) and age (limit_max_lifetime): new worker first, no failed request."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import httpx
import pytest

from hatchway import Config
from hatchway._supervisors import start_supervisor
from tests.fixtures.supervisors.proc import PYTHON, Hammer, Proc, get_text, wait_gone, wait_until
from tests.utils import UNIT

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    import os

    hoard = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] == "/grow":
            hoard.append(bytearray(os.urandom(1024)) * (96 * 1024))  # 96 MiB, every page touched
        body = f"app {os.getpid()}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    """
)


def _pid(url: str) -> int:
    text = get_text(url)
    assert text is not None
    return int(text.split()[-1])


def _pids(url: str, count: int) -> set[int]:
    seen: set[int] = set()

    def enough() -> bool:
        text = get_text(url)  # None until a worker listens
        if text:
            seen.add(int(text.split()[-1]))
        return len(seen) >= count

    wait_until(enough, 10 * UNIT, interval=0.01)
    return seen


def _start(tmp_path: Path, *args: str) -> Proc:
    (tmp_path / "main.py").write_text(APP)
    argv = [PYTHON, "-m", "hatchway", "main:app", "--port", "0", "--timeout-graceful-shutdown", "2", *args]
    return Proc(argv, tmp_path)


def test_a_worker_past_its_memory_limit_is_replaced_without_a_failed_request(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--workers", "2", "--limit-max-rss", "80")
    try:
        url = proc.url()
        before = _pids(url, 2)
        with Hammer(url + "/") as hammer:
            time.sleep(0.2)
            grown = _pid(url + "/grow")
            match = proc.wait_for(rf"Worker \[{grown}\] uses (\d+) MiB, more than limit_max_rss=80", 5 * UNIT)
            assert int(match.group(1)) > 80
            proc.wait_for(r"Worker \[\d+\] is ready", start=_line_of(proc, f"Worker [{grown}] uses"))
            assert wait_gone(grown, 10 * UNIT)
            time.sleep(0.3)
        assert hammer.failures == []
        assert hammer.ok > 10
        after = _pids(url, 2)
        assert grown not in after
        assert len(after & before) == 1  # the other worker, under its limit, was left alone
    finally:
        proc.stop()


def test_one_worker_with_a_lifetime_runs_under_the_supervisor(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--limit-max-lifetime", "1", "--limit-max-lifetime-jitter", "0.5")
    try:
        url = proc.url()
        proc.wait_for(r"Started parent process \[\d+\] with 1 workers")
        first = next(iter(_pids(url, 1)))
        with Hammer(url + "/") as hammer:
            wait_until(lambda: len(hammer.pids) >= 3, 15 * UNIT)
        assert hammer.failures == []
        assert first in hammer.pids
        assert "reached its lifetime (limit_max_lifetime=1.0s)" in proc.output
    finally:
        proc.stop()


def _line_of(proc: Proc, text: str) -> int:
    return next(i for i, line in enumerate(proc.lines) if text in line)


def test_restarts_are_counted_by_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lifetime_app.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = Config(
        "lifetime_app:app",
        port=0,
        workers=2,
        log_config=None,
        limit_max_lifetime=0.5,
        timeout_graceful_shutdown=1,
    )
    handle = start_supervisor(config)
    try:
        handle.wait_ready(15 * UNIT)
        pool = handle._supervisor  # type: ignore[attr-defined]
        wait_until(lambda: pool.restarts["lifetime"] >= 3, 15 * UNIT)
        assert set(pool.restarts) == {"lifetime"}
        assert httpx.get(handle.addresses[0], timeout=5 * UNIT).status_code == 200
    finally:
        handle.stop()


def test_a_replacement_that_cannot_start_keeps_the_old_worker(tmp_path: Path) -> None:
    # The module refuses to be imported again once the marker file exists: every replacement fails.
    (tmp_path / "main.py").write_text(
        "import os\nif os.path.exists('broken'):\n    raise RuntimeError('the new release is broken')\n" + APP
    )
    argv = [PYTHON, "-m", "hatchway", "main:app", "--port", "0", "--limit-max-lifetime", "0.5"]
    proc = Proc(argv, tmp_path)
    try:
        url = proc.url()
        first = next(iter(_pids(url, 1)))
        (tmp_path / "broken").write_text("")
        proc.wait_for(
            rf"failed to start .*keeping worker \[{first}\], which will not be recycled again", 10 * UNIT
        )
        time.sleep(1.0)  # past another lifetime: no second attempt
        assert proc.output.count("reached its lifetime") == 1
        assert _pid(url) == first
        assert proc.popen.poll() is None
    finally:
        proc.stop()
