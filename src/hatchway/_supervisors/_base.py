"""The supervisor loop shared by the reloader and the worker pool: one thread, one selector, no polling flags.

Everything that happens to a supervisor arrives on a file descriptor: child status pipes, and a wake-up pipe
written by signal handlers, by ``stop()`` from other threads, and by the file watcher. The loop wakes at least
every ``TICK`` seconds to reap children and check deadlines.
"""

from __future__ import annotations

import collections
import contextlib
import os
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import FrameType
from typing import TYPE_CHECKING, Any

from hatchway._config import Config
from hatchway._errors import StartupError, WorkerStartupError
from hatchway._logs import logger
from hatchway._sockets import describe
from hatchway._supervisors._process import Child, ChildState
from hatchway._supervisors._spec import ChildSpec

if TYPE_CHECKING:
    from hatchway._metrics import SupervisorMetrics

TICK = 0.25
#: How long a child may take from "go" to ready before the parent gives up on it.
STARTUP_ALLOWANCE = 30.0


class Supervisor:
    """Base class: owns the sockets, the children and the loop. Subclasses react to events."""

    name = "supervisor"

    def __init__(self, config: Config, spec: ChildSpec, sockets: Sequence[socket.socket]) -> None:
        self.config = config
        self.spec = spec
        self.sockets = list(sockets)
        scheme = "https" if config.is_ssl else "http"
        self.addresses = [describe(sock, scheme) for sock in self.sockets]
        self.children: list[Child] = []
        self.error: BaseException | None = None
        self.stopping = False
        self.finished = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._signals: collections.deque[int] = collections.deque()
        self._stop_requested = False
        self._force = False
        self._cond = threading.Condition()
        self._wake_lock = threading.Lock()
        self._startup_allowance = STARTUP_ALLOWANCE + (config.timeout_lifespan_startup or 0)
        self.metrics: SupervisorMetrics | None = None
        if config.metrics_address is not None:
            # Loaded (with prometheus_client) only when metrics are on.
            from hatchway._metrics import SupervisorMetrics

            # Bound now: a busy address fails before any child starts.
            self.metrics = SupervisorMetrics(config, self)
            self.spec = replace(self.spec, env={**self.spec.env, **self.metrics.env})

    # -- called from other threads / signal handlers ------------------------------------------------
    def wake(self) -> None:
        # Under the lock: after the loop closed the pipe, its descriptor number may belong to someone else.
        with self._wake_lock:
            if self._wake_write >= 0:
                with contextlib.suppress(OSError):
                    os.write(self._wake_write, b"!")

    def request_stop(self, force: bool = False) -> None:
        self._stop_requested = True
        self._force = self._force or force
        self.wake()

    def on_signal(self, sig: int, frame: FrameType | None = None) -> None:
        self._signals.append(sig)
        self.wake()

    def install_signal_handlers(self) -> Callable[[], None]:
        """Route the handled signals into the loop (main thread only); returns a function restoring the old ones."""
        previous: dict[int, Any] = {}
        for sig in self.handled_signals():
            with contextlib.suppress(ValueError, OSError):
                previous[sig] = signal.signal(sig, self.on_signal)

        def restore() -> None:
            for sig, handler in previous.items():
                with contextlib.suppress(ValueError, OSError):
                    signal.signal(sig, handler)

        return restore

    def handled_signals(self) -> list[int]:
        return [signal.SIGINT, signal.SIGTERM]

    # -- readiness, for handles ------------------------------------------------------------------------
    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self.error is not None:
                    raise self.error
                if self.all_ready():
                    return
                if self.finished.is_set():
                    raise StartupError("the supervisor stopped before its processes were ready", code="HW500")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the {self.name} processes were not ready within {timeout} seconds")
                self._cond.wait(min(remaining, TICK))

    def all_ready(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def notify_state(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- the loop ---------------------------------------------------------------------------------------
    def spawn(self, *, go: bool = True, hint: bool = False) -> Child:
        child = Child(replace(self.spec, log_unguarded_hint=hint), self.sockets)
        self._selector.register(child.status_fd, selectors.EVENT_READ, child)
        self.children.append(child)
        if go:
            child.go()
        return child

    def run(self) -> None:
        """Run until stopped; errors (e.g. WorkerStartupError) are stored in ``error`` and re-raised."""
        try:
            self.start()
            while not self._loop_done():
                self._step()
        except BaseException as exc:
            if self.error is None:
                self.error = exc
        finally:
            self._shutdown_now()
            self.finished.set()
            self.notify_state()
        if self.error is not None:
            raise self.error

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _loop_done(self) -> bool:
        return self.stopping and not any(c.state is not ChildState.EXITED for c in self.children)

    def _step(self) -> None:
        timeout = self.next_timeout()
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(OSError):
                    while os.read(self._wake_read, 4096):
                        pass
            else:
                child: Child = key.data
                for event in child.read_status():
                    self.on_child_event(child, event)
                if child.eof:
                    self._unregister(child)
        while self._signals:
            self.handle_signal(self._signals.popleft())
        if self._stop_requested and not self.stopping:
            self.begin_stop()
        if self._force:
            for child in self.children:
                child.kill()
        for child in list(self.children):
            if child.state is not ChildState.EXITED and child.popen.poll() is not None:
                self._unregister(child)  # before poll() closes the descriptor
                child.poll()
                if self.metrics is not None:
                    self.metrics.child_exited(child.pid)
                self.on_child_exit(child)
            elif child.state is ChildState.STOPPING and child.overdue:
                logger.warning("Process [%d] did not stop in time; killing it.", child.pid)
                child.kill()
        self.children = [c for c in self.children if c.state is not ChildState.EXITED]
        self.tick()
        self.notify_state()

    def _unregister(self, child: Child) -> None:
        # Looked up by child, not by descriptor: the child may have closed its descriptor already, and its
        # number may be reused by the next pipe.
        for key in list(self._selector.get_map().values()):
            if key.data is child:
                self._selector.unregister(key.fileobj)

    def next_timeout(self) -> float:
        return TICK

    def on_child_event(self, child: Child, event: dict[str, Any]) -> None:
        pass

    def on_child_exit(self, child: Child) -> None:
        pass

    def tick(self) -> None:
        pass

    def handle_signal(self, sig: int) -> None:
        if sig in (signal.SIGINT, signal.SIGTERM):
            if self.stopping:
                logger.info("Received %s again; stopping processes now.", signal.Signals(sig).name)
                self._force = True
            else:
                logger.info("Received %s, stopping.", signal.Signals(sig).name)
                self.begin_stop()

    def begin_stop(self) -> None:
        self.stopping = True
        grace = self.config.timeout_graceful_shutdown
        for child in self.children:
            child.terminate(None if grace is None else grace + 5)

    def fail(self, message: str) -> None:
        """Stop everything and make run()/wait_ready() raise WorkerStartupError(message)."""
        if self.error is None:
            self.error = WorkerStartupError(message)
        logger.error("%s", message)
        self.begin_stop()

    def _shutdown_now(self) -> None:
        # Normal exits get here with every child reaped; after an unexpected error, make sure of it.
        for child in self.children:
            if child.state is not ChildState.EXITED:
                child.kill()
                with contextlib.suppress(Exception):
                    child.popen.wait(5)
                child.poll()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
        if self.config.uds:  # the parent bound it, so the parent removes it (children never do)
            with contextlib.suppress(OSError):
                os.unlink(self.config.uds)
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        self._selector.close()
        with self._wake_lock:
            for fd in (self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_read = self._wake_write = -1
