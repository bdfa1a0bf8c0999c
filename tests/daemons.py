"""Real peers for the tests (nginx, HAProxy): a free port, starting one, waiting for its ports, stopping it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

from tests.utils import UNIT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary(name: str) -> str:
    """The path of ``name`` (on PATH or in /usr/sbin), or skip the test: CI installs it."""
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/local/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if found is None:
        pytest.skip(f"{name} is not installed (apt-get install {name}); CI installs it")
    return found


def wait_listening(process: subprocess.Popen[bytes], ports: Sequence[int], what: str) -> None:
    """Return once every port accepts a connection; fail with the daemon's output if it exits first."""
    deadline = time.monotonic() + 10 * UNIT
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=UNIT).close()
                break
            except OSError:
                if process.poll() is not None:
                    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                    pytest.fail(f"{what} exited: {output}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{what} did not listen on port {port}")
                time.sleep(0.02)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10 * UNIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10 * UNIT)
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def daemon(argv: Sequence[str], ports: Sequence[int], what: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` in the foreground until the block ends; entered once it listens on every port."""
    process = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_listening(process, ports, what)
        yield process
    finally:
        stop(process)
