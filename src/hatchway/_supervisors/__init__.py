"""Process supervisors: the reloader and the worker pool, over children that are fresh interpreters.

How a child starts (never multiprocessing): ``python -m hatchway._supervisors.child`` with the listening
sockets passed by descriptor (``pass_fds``) and a JSON spec in ``HATCHWAY_CHILD_SPEC``. The child imports the
app by its import string under its real module name, so the user's ``__main__`` is never re-run, and a
``hatchway.run()`` at the top of that module (no main guard) is a no-op there.

Two ways in:

* ``supervise(config)``: blocking, for ``run()``; handles signals when on the main thread; raises
  WorkerStartupError when a worker cannot start.
* ``start_supervisor(config)``: runs the reloader or pool on a daemon thread and returns a
  ``SupervisorHandle``; installs no signal handlers (for background servers).
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Protocol

from hatchway._config import Config
from hatchway._errors import StartupError
from hatchway._logs import logger
from hatchway._sockets import bind_sockets
from hatchway._supervisors._spec import build_spec

__all__ = ["SupervisorHandle", "start_supervisor", "supervise"]


class SupervisorHandle(Protocol):
    """A running reloader or worker pool, controlled from any thread."""

    #: URLs of the sockets the parent bound, e.g. ``["http://127.0.0.1:54321"]``.
    addresses: list[str]

    def wait_ready(self, timeout: float) -> None:
        """Return when all children are ready; raise WorkerStartupError/StartupError if one fails to start,
        TimeoutError after ``timeout`` seconds."""

    def stop(self) -> None:
        """Stop every child and close the sockets; thread-safe, idempotent, returns when all is done."""


class _ThreadHandle:
    """``SupervisorHandle`` over a supervisor whose loop runs on a daemon thread."""

    def __init__(self, supervisor: _SupervisorType) -> None:
        self._supervisor = supervisor
        self.addresses = list(supervisor.addresses)
        self._thread = threading.Thread(target=self._run, name=f"hatchway-{supervisor.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._supervisor.run()
        except BaseException:  # kept in supervisor.error; wait_ready() raises it
            pass

    def wait_ready(self, timeout: float) -> None:
        self._supervisor.wait_ready(timeout)

    def stop(self) -> None:
        self._supervisor.request_stop()
        self._thread.join()


if TYPE_CHECKING:  # the supervisors themselves are imported only when used
    from hatchway._supervisors._base import Supervisor as _SupervisorType


def _build(config: Config) -> _SupervisorType:
    if sys.platform == "win32":
        raise StartupError(
            "reload and workers pass listening sockets to child processes by descriptor, which needs a POSIX "
            "system; on Windows run one process (no reload, workers=1) or use WSL",
            code="HW500",
        )
    role = "reload" if config.reload else "worker"
    # The import string first: a ConfigError (HW106) must come before any socket is bound or process started.
    spec = build_spec(config, role)
    sockets = bind_sockets(config)
    try:
        # Loaded when used (start-up cost): a single server, the common case, needs neither.
        if config.reload:
            from hatchway._supervisors.reload import Reloader

            return Reloader(config, spec, sockets)
        from hatchway._supervisors.workers import WorkerPool

        return WorkerPool(config, spec, sockets)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise


def _announce(supervisor: _SupervisorType) -> None:
    for address in supervisor.addresses:
        where = f"unix socket {address[5:]}" if address.startswith("unix:") else address
        logger.info(
            "Hatchway running on %s (Press CTRL+C to quit)",
            where,
            extra={"color_message": "Hatchway running on \033[1m%s\033[0m (Press CTRL+C to quit)"},
        )


def start_supervisor(config: Config) -> SupervisorHandle:
    """Start the reloader (``config.reload``) or the worker pool on a daemon thread; no signal handlers."""
    supervisor = _build(config)
    _announce(supervisor)
    return _ThreadHandle(supervisor)


def supervise(config: Config) -> None:
    """Run the reloader or the worker pool until SIGINT/SIGTERM; raises WorkerStartupError on start-up failure."""
    supervisor = _build(config)
    _announce(supervisor)
    restore = None
    if threading.current_thread() is threading.main_thread():
        restore = supervisor.install_signal_handlers()
    try:
        supervisor.run()
    finally:
        if restore is not None:
            restore()
