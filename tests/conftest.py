"""Shared fixtures: a clean environment, TLS certificates from trustme, and CLI processes that always stop."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.utils import UNIT

STARTUP_LINE = re.compile(r"Hatchway running on (\S+(?: \S+)?) \(Press CTRL\+C to quit\)")
# Variables that change Config's defaults; tests set them explicitly when they mean to.
_AMBIENT = ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*_AMBIENT, *(n for n in os.environ if n.startswith("HATCHWAY_"))]:
        monkeypatch.delenv(name, raising=False)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a hatchway subprocess: ours without hatchway settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _AMBIENT and not k.startswith("HATCHWAY_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class CliProcess:
    """``python -m hatchway ARGS`` with its output collected line by line by reader threads."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        pass_fds: Sequence[int] = (),
        command: Sequence[str] | None = None,
    ) -> None:
        argv = list(command) if command is not None else [sys.executable, "-m", "hatchway", *args]
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=child_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=tuple(pass_fds),
        )
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        self._events: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stderr is not None
        assert self.proc.stdout is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr_lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout_lines), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)
            self._events.put(line)
        self._events.put(None)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    @property
    def stdout(self) -> str:
        return "".join(self.stdout_lines)

    def wait_for(self, pattern: re.Pattern[str] | str, timeout: float = 10 * UNIT) -> re.Match[str]:
        """The first output line matching ``pattern``; fails (with all output so far) after ``timeout``."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        for line in self.stderr_lines + self.stdout_lines:
            if found := regex.search(line):
                return found
        closed = 0
        deadline = time.monotonic() + timeout
        while closed < 2:
            try:
                line = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                closed += 1
            elif found := regex.search(line):
                return found
        raise AssertionError(
            f"no line matched {regex.pattern!r}\nstderr:\n{self.stderr}\nstdout:\n{self.stdout}"
        )

    def wait_started(self) -> str:
        """The URL from the start-up line."""
        return self.wait_for(STARTUP_LINE).group(1)

    def finish(self, timeout: float = 10 * UNIT) -> int:
        """Wait for the process to exit; its return code."""
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10 * UNIT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10 * UNIT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Callable[..., CliProcess]]:
    """Start ``python -m hatchway ...`` in ``tmp_path`` (or ``cwd=``); every process is killed at teardown."""
    started: list[CliProcess] = []

    def start(*args: str, cwd: Path | None = None, **kwargs: Any) -> CliProcess:
        process = CliProcess(args, cwd=cwd or tmp_path, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@dataclass
class Certificates:
    """A trustme CA and a server certificate for 127.0.0.1/localhost/::1, as files."""

    ca: Any
    certfile: str
    keyfile: str
    ca_certfile: str
    directory: Path

    def client_context(self) -> Any:
        import ssl

        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    trustme = pytest.importorskip("trustme")
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    certfile, keyfile, ca_certfile = directory / "server.pem", directory / "server.key", directory / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(ca_certfile))
    return Certificates(ca, str(certfile), str(keyfile), str(ca_certfile), directory)


def write_app(directory: Path, name: str, source: str) -> Path:
    """Write ``source`` as ``directory/name.py``; returns the path."""
    path = directory / f"{name}.py"
    path.write_text(source)
    return path
