"""How a server meets its process: signal handlers when it owns the process, and a stop when the interpreter exits."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stoppable(Protocol):
    def stop(self, force: bool = False) -> None: ...


_live_servers: weakref.WeakSet[Any] = weakref.WeakSet()
_exit_hook_installed = False


def serving(server: Stoppable) -> None:
    """Note ``server`` as serving: it is stopped when the main thread ends (if it runs in another thread)."""
    _live_servers.add(server)
    if threading.current_thread() is not threading.main_thread():
        _install_exit_hook()


def not_serving(server: Stoppable) -> None:
    _live_servers.discard(server)


def _stop_servers_at_exit() -> None:
    # Runs when the main thread ends, before non-daemon threads are joined: a server in a thread must
    # not keep the process alive.
    for server in list(_live_servers):
        server.stop()


def _install_exit_hook() -> None:
    global _exit_hook_installed
    if _exit_hook_installed:
        return
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        with contextlib.suppress(RuntimeError):
            register(_stop_servers_at_exit)
            _exit_hook_installed = True


def install_signal_handlers(on_signal: Callable[[signal.Signals], None]) -> Callable[[], None] | None:
    """Route SIGINT and SIGTERM to ``on_signal`` in the running loop, on the main thread only; the function
    that puts back what the program had before, or None when nothing was installed."""
    loop = asyncio.get_running_loop()
    if threading.current_thread() is not threading.main_thread():
        return None
    installed: dict[signal.Signals, Any] = {}
    try:
        for sig in HANDLED_SIGNALS:
            previous = signal.getsignal(sig)
            loop.add_signal_handler(sig, functools.partial(on_signal, sig))
            installed[sig] = previous
    except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
        pass

    def restore() -> None:
        # remove_signal_handler() resets to the default action; put back what the program had before.
        for sig, previous in installed.items():
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
            if previous is not None:
                with contextlib.suppress(Exception):
                    signal.signal(sig, previous)

    return restore
