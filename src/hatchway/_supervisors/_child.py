"""The child side of a supervised process: import the app by name, serve inherited sockets, report to the parent.

Protocol with the parent (two pipes, both passed with ``pass_fds``):

* control pipe (parent -> child): the line ``go`` starts the app import (a reload child is started ahead of
  time and waits here, so a restart skips interpreter start-up); EOF means the parent is gone: stop.
* status pipe (child -> parent): JSON lines ``{"event": "ready"}``, ``{"event": "failed", "message": ...}``,
  ``{"event": "beat"}`` once per ``beat_interval`` from the event loop (a hung loop goes silent), and
  ``{"event": "retiring"}`` when ``limit_max_requests`` is reached (the parent starts a replacement at once).
* after ``go``, the control line ``drain`` makes a serving child's readiness path answer 503 (the pool's
  ``shutdown_delay``); the SIGTERM that ends the drain comes from the parent.

On Linux the child also asks the kernel for SIGTERM when the parent dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import socket
import sys
from typing import Any

from hatchway._config import Config
from hatchway._errors import AppImportError, HatchwayError
from hatchway._importer import import_from_string
from hatchway._logs import configure_logging
from hatchway._loop import loop_factory, run_coroutine
from hatchway._server import Server
from hatchway._supervisors._spec import ENV_SPEC, ChildSpec

STARTUP_FAILURE = 3
#: None outside a supervised child; in one, whether to log the missing-main-guard hint (first child only).
_hint_allowed: bool | None = None
_hint_logged = False


def note_unguarded_run() -> bool:
    """Called by run() when it is re-entered during the app import; True when the hint should be logged."""
    global _hint_logged
    if _hint_logged or _hint_allowed is False:
        return False
    _hint_logged = True
    return True


class StatusWriter:
    """Non-blocking JSON lines to the parent; a full pipe drops a beat rather than block the event loop."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.parent_gone = False
        os.set_blocking(fd, False)

    def send(self, event: str, **data: Any) -> None:
        if self.fd < 0 or self.parent_gone:
            return
        line = (json.dumps({"event": event, **data}) + "\n").encode()
        try:
            os.write(self.fd, line)
        except BlockingIOError:
            if event != "beat":  # one important line may wait; beats are expendable
                os.set_blocking(self.fd, True)
                with contextlib.suppress(OSError):
                    os.write(self.fd, line)
                os.set_blocking(self.fd, False)
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF):
                self.parent_gone = True


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl; the control pipe still works
        pass


def _wait_for_go(fd: int) -> bool:
    """Block until the parent says ``go`` (True) or goes away (False)."""
    buffer = b""
    while b"\n" not in buffer:
        try:
            chunk = os.read(fd, 64)
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        if not chunk:
            return False
        buffer += chunk
    return buffer.split(b"\n", 1)[0].strip() == b"go"


def main() -> int:
    """Entry point of ``python -m hatchway._supervisors.child``; returns the exit code."""
    global _hint_allowed
    raw = os.environ.pop(ENV_SPEC, None)  # popped: the app's own subprocesses are not hatchway children
    if raw is None:
        print(
            "hatchway._supervisors.child is started by hatchway's reloader and worker supervisor.",
            file=sys.stderr,
        )
        return 2
    spec = ChildSpec.from_json(raw)
    os.environ.update(spec.env)  # before anything reads it: prometheus_client picks its mode at import
    # Ctrl-C reaches the whole process group; the supervisor decides, and stops us with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_parent_death_signal()
    if os.getppid() != spec.parent_pid:  # the parent died before prctl took effect
        return 0
    for fd in (spec.status_fd, spec.control_fd, *spec.socket_fds):
        os.set_inheritable(fd, False)  # the app's own subprocesses must not hold the port or the pipes
    status = StatusWriter(spec.status_fd)
    if spec.control_fd >= 0 and not _wait_for_go(spec.control_fd):
        return 0
    _hint_allowed = spec.log_unguarded_hint
    sys.path[:] = spec.sys_path
    sys.argv[:] = spec.argv  # a script that parses argv at import time sees what the parent saw
    return _serve(spec, status)


def _serve(spec: ChildSpec, status: StatusWriter) -> int:
    try:
        options = spec.config_options()
        configure_logging(Config(_placeholder_app, **options))
        app = import_from_string(spec.app)
        config = Config(app, **options)
    except HatchwayError as exc:
        if isinstance(exc, AppImportError) and exc.user_traceback:
            print(exc.user_traceback.rstrip(), file=sys.stderr)
        status.send("failed", message=str(exc))
        return STARTUP_FAILURE
    except BaseException as exc:  # the user's module raised something unusual (SystemExit, ...)
        status.send("failed", message=f"Error while importing {spec.app!r}: {type(exc).__name__}: {exc}")
        return STARTUP_FAILURE
    sockets = [socket.socket(fileno=fd) for fd in spec.socket_fds]
    return run_coroutine(_serve_async(config, sockets, spec, status), loop_factory(config.loop))


async def _placeholder_app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never served
    raise RuntimeError("placeholder")


async def _serve_async(
    config: Any, sockets: list[socket.socket], spec: ChildSpec, status: StatusWriter
) -> int:
    class ChildServer(Server):
        serves_metrics = False  # the supervisor serves the sum over its children

        def request_limit_reached(self) -> None:
            # Tell the parent first so the replacement starts while this one finishes its requests.
            status.send("retiring")
            super().request_limit_reached()

    server = ChildServer(config)
    loop = asyncio.get_running_loop()
    terms = 0

    def on_term() -> None:
        nonlocal terms
        terms += 1
        server.stop(force=terms > 1)

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGINT, lambda: None)

    def on_control() -> None:
        try:
            data = os.read(spec.control_fd, 64)
        except OSError:
            data = b""
        if not data:  # the supervisor is gone (even SIGKILLed): never outlive it
            loop.remove_reader(spec.control_fd)
            server.stop()
        elif b"drain" in data:  # the pool drains (shutdown_delay); its SIGTERM follows
            server._begin_drain(None, False)

    if spec.control_fd >= 0:
        loop.add_reader(spec.control_fd, on_control)
    serving = asyncio.ensure_future(server.serve(sockets))
    started = asyncio.ensure_future(server.wait_started())
    await asyncio.wait({serving, started}, return_when=asyncio.FIRST_COMPLETED)
    if not started.done():
        started.cancel()
    with contextlib.suppress(BaseException):
        await started  # its outcome is read from the server below; this only consumes it
    if not server.ready.is_set():
        exc = serving.exception() if serving.done() else None
        message = str(exc) if exc is not None else "the server stopped before it was ready"
        trace = getattr(exc, "user_traceback", None)
        if trace:
            print(str(trace).rstrip(), file=sys.stderr)
        status.send("failed", message=message)
        if not serving.done():
            server.stop(force=True)
            with contextlib.suppress(BaseException):
                await serving
        return STARTUP_FAILURE
    status.send("ready", pid=os.getpid())
    beating = asyncio.ensure_future(_beat(status, spec.beat_interval))
    try:
        await serving
    finally:
        beating.cancel()
    return 0


async def _beat(status: StatusWriter, interval: float) -> None:
    while True:
        status.send("beat")
        await asyncio.sleep(interval)
