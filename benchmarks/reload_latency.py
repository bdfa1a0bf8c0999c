"""Save -> new code answering: hatchway --reload against uvicorn --reload, both as subprocesses, same machine.

Usage: python benchmarks/reload_latency.py [--edits N] [--servers hatchway,uvicorn]

For each server: write a small app in a fresh directory, start ``<server> app:app --reload`` on a free port,
then N times: rewrite the app to answer a new version, and poll (a new connection per request) until that
version answers. The time from the end of the write to the first new answer is one sample. Every wait is
bounded; each server is stopped (SIGINT, then SIGKILL) before the next starts. Prints min/median/p90/max.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = """\
VERSION = {version}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": str(VERSION).encode()}})
"""

COMMANDS = {
    "hatchway": [sys.executable, "-m", "hatchway", "app:app", "--reload", "--log-level", "warning"],
    "uvicorn": [sys.executable, "-m", "uvicorn", "app:app", "--reload", "--log-level", "warning"],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(port: int, timeout: float) -> str | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_for_version(port: int, version: int, timeout: float) -> float | None:
    """Seconds until ``version`` answers, or None after ``timeout``."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if fetch(port, timeout=timeout) == str(version):
            return time.perf_counter() - start
        time.sleep(0.002)
    return None


def write_app(directory: Path, version: int) -> None:
    path = directory / "app.py"
    path.write_text(APP.format(version=version))


def measure(name: str, edits: int, pause: float) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_app(directory, 0)
        port = free_port()
        proc = subprocess.Popen(
            [*COMMANDS[name], "--port", str(port)],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        samples: list[float] = []
        try:
            if wait_for_version(port, 0, timeout=20) is None:
                raise RuntimeError(f"{name} did not start")
            time.sleep(pause)
            for version in range(1, edits + 1):
                write_app(directory, version)
                took = wait_for_version(port, version, timeout=10)
                if took is None:
                    print(f"  {name}: edit {version} not served within 10 s", file=sys.stderr)
                else:
                    samples.append(took)
                time.sleep(pause)  # let the reloader settle (reload_delay) before the next save
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return samples


def report(name: str, samples: list[float]) -> None:
    if not samples:
        print(f"{name:>9}: no samples")
        return
    ms = sorted(s * 1000 for s in samples)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    print(
        f"{name:>9}: n={len(ms):2d}  min {ms[0]:6.1f} ms  median {statistics.median(ms):6.1f} ms  "
        f"p90 {p90:6.1f} ms  max {ms[-1]:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--pause", type=float, default=0.6, help="seconds between edits")
    parser.add_argument("--servers", default="hatchway,uvicorn")
    parser.add_argument(
        "--json",
        action="store_true",
        help="also write results/reload_latency.json (the figures the docs quote)",
    )
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.edits} edits per server")
    figures = {}
    for name in args.servers.split(","):
        with contextlib.suppress(KeyboardInterrupt):
            samples = measure(name, args.edits, args.pause)
            report(name, samples)
            if samples:
                ms = sorted(s * 1000 for s in samples)
                figures[name] = {
                    "edits": len(ms),
                    "min_ms": round(ms[0], 1),
                    "median_ms": round(statistics.median(ms), 1),
                    "p90_ms": round(ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))], 1),
                    "max_ms": round(ms[-1], 1),
                }
    if args.json:
        import uvicorn
        from _record import write

        write("reload_latency", figures, {"uvicorn": uvicorn.__version__})


if __name__ == "__main__":
    main()
