"""Server: ``serve()``/``run()``, readiness as events, graceful bounded shutdown, opt-in signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import signal
import socket
import threading
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from hatchway._app import load_app
from hatchway._config import Config
from hatchway._errors import ServerStateError, StartupError
from hatchway._http.protocol import HttpProtocol, make_codec_factory
from hatchway._lifespan import Lifespan
from hatchway._logs import configure_logging, logger
from hatchway._proxy import TrustedProxies
from hatchway._sockets import bind_sockets, describe
from hatchway._state import ServerState
from hatchway._tls import ssl_context

T = TypeVar("T")
_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_live_servers: weakref.WeakSet[Server] = weakref.WeakSet()
_exit_hook_installed = False


def loop_factory(choice: Any) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop factory for ``loop=``: uvloop when available for ``auto``, else asyncio."""
    if callable(choice):
        return choice  # type: ignore[no-any-return]
    if choice == "none":
        return None
    if choice in ("auto", "uvloop"):
        try:
            import uvloop

            return uvloop.new_event_loop  # type: ignore[no-any-return]
        except ImportError:
            if choice == "uvloop":
                raise StartupError("loop='uvloop' needs uvloop installed: pip install uvloop", code="HW306") from None
    if choice in ("auto", "asyncio"):
        return asyncio.new_event_loop
    from hatchway._importer import import_from_string

    factory: Callable[[], asyncio.AbstractEventLoop] = import_from_string(choice)
    return factory


def run_coroutine(coro: Coroutine[Any, Any, T], factory: Callable[[], asyncio.AbstractEventLoop] | None) -> T:
    """``asyncio.run`` with a loop factory, on every supported Python."""
    loop = (factory or asyncio.new_event_loop)()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


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


class Server:
    """An ASGI server for one Config. ``run()`` blocks; ``await serve()`` runs in the current loop.

    Readiness: ``await wait_started()`` in the loop, or ``ready.wait(timeout)`` from any thread.
    ``stop()`` is thread-safe and idempotent; setting ``should_exit = True`` does the same, as in uvicorn.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.servers: list[asyncio.AbstractServer] = []
        #: The listening sockets while serving, and the URLs clients use (``http://127.0.0.1:54321``).
        self.sockets: list[socket.socket] = []
        self.addresses: list[str] = []
        #: Set (from the server's thread) once listening and lifespan start-up is complete.
        self.ready = threading.Event()
        #: Set once serve() has returned, whether it started or failed.
        self.finished = threading.Event()
        self.state: ServerState | None = None
        self.startup_error: BaseException | None = None
        self.force_exit = False
        self._started = False
        self._running = False
        self._should_exit = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._started_event: asyncio.Event | None = None
        self._app: Any = None
        self._signal_count = 0

    # -- public state ---------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._started

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self.stop()
        else:
            self._should_exit = False

    @property
    def url(self) -> str | None:
        return self.addresses[0] if self.addresses else None

    async def wait_started(self) -> None:
        """Return once the server is listening (in the server's own loop)."""
        if self._started_event is None:
            raise ServerStateError("the server is not running; call serve() first")
        await self._started_event.wait()

    def stop(self, force: bool = False) -> None:
        """Begin a graceful shutdown (``force=True``: close everything now). Safe from any thread."""
        self._should_exit = True
        if force:
            self.force_exit = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._request_stop)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _request_stop(self) -> None:
        if self._stop_event is not None:
            self._stop_event.set()

    # -- running --------------------------------------------------------------------------------------
    def run(self, sockets: Sequence[socket.socket] | None = None) -> None:
        """Run in a new event loop until stopped. Handles SIGINT/SIGTERM when on the main thread."""
        handle_signals = threading.current_thread() is threading.main_thread()
        factory = loop_factory(self.config.loop)
        run_coroutine(self.serve(sockets, install_signal_handlers=handle_signals), factory)

    async def serve(
        self, sockets: Sequence[socket.socket] | None = None, *, install_signal_handlers: bool = False
    ) -> None:
        """Serve until ``stop()``; raises StartupError (never exits) when start-up fails."""
        if self._running:
            raise ServerStateError("this Server is already running; create another Server to serve twice")
        self._running = True
        self.finished.clear()
        self.ready.clear()
        self.startup_error = None
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._started_event = asyncio.Event()
        if self._should_exit:
            self._stop_event.set()
        _live_servers.add(self)
        if threading.current_thread() is not threading.main_thread():
            _install_exit_hook()
        restore = self._install_signal_handlers() if install_signal_handlers else None
        lifespan: Lifespan | None = None
        try:
            configure_logging(self.config)
            lifespan = await self._startup(sockets)
            await self._stop_event.wait()
            await self._shutdown(lifespan)
        except BaseException as exc:
            if not self._started:
                self.startup_error = exc
            raise
        finally:
            if restore is not None:
                restore()
            self._close_listeners()
            self._started = False
            self._running = False
            self._should_exit = False
            self.force_exit = False
            self._loop = None
            _live_servers.discard(self)
            self.finished.set()

    async def _startup(self, sockets: Sequence[socket.socket] | None) -> Lifespan:
        config = self.config
        logger.info("Started server process [%d]", os.getpid())
        if self._app is None:
            self._app = load_app(config)
        state = ServerState(config, on_request_limit=self._on_request_limit)
        self.state = state
        if config.limit_max_requests is not None:
            jitter = random.randint(0, config.limit_max_requests_jitter) if config.limit_max_requests_jitter else 0
            state.request_limit = config.limit_max_requests + jitter
        lifespan = Lifespan(self._app, config.lifespan, state.lifespan_state, config.timeout_lifespan_startup)
        await lifespan.startup()
        try:
            await self._listen(sockets, state)
        except BaseException:
            await lifespan.shutdown()
            raise
        self._started = True
        self._started_event.set()  # type: ignore[union-attr]
        self.ready.set()
        if config.callback_notify is not None:
            asyncio.get_running_loop().create_task(self._notify_loop())
        return lifespan

    async def _listen(self, sockets: Sequence[socket.socket] | None, state: ServerState) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        tls = ssl_context(config)
        trusted = TrustedProxies(config.trusted_proxies) if config.proxy_headers else None
        codec_factory = make_codec_factory(config)
        app = self._app

        def factory() -> asyncio.Protocol:
            return HttpProtocol(config, state, app, codec_factory, trusted, loop)

        announce = sockets is None
        owned = list(sockets) if sockets is not None else bind_sockets(config)
        try:
            for sock in owned:
                if sock.family == socket.AF_UNIX:
                    server = await loop.create_unix_server(factory, sock=sock, ssl=tls, backlog=config.backlog)
                else:
                    server = await loop.create_server(factory, sock=sock, ssl=tls, backlog=config.backlog)
                self.servers.append(server)
        except OSError as exc:
            self._close_listeners()
            if announce:
                for sock in owned:
                    sock.close()
            raise StartupError(f"Could not listen: {exc}", code="HW303") from exc
        self.sockets = owned
        scheme = "https" if tls is not None else "http"
        self.addresses = [describe(sock, scheme) for sock in owned]
        if announce:
            for address in self.addresses:
                where = f"unix socket {address[5:]}" if address.startswith("unix:") else address
                logger.info(
                    "Hatchway running on %s (Press CTRL+C to quit)",
                    where,
                    extra={"color_message": "Hatchway running on \033[1m%s\033[0m (Press CTRL+C to quit)"},
                )

    async def _shutdown(self, lifespan: Lifespan) -> None:
        state = self.state
        assert state is not None
        logger.info("Shutting down")
        state.shutting_down = True
        for server in self.servers:
            server.close()
        for conn in list(state.connections):
            conn.shutdown()
        timeout = self.config.timeout_graceful_shutdown
        if not self.force_exit and (state.tasks or state.connections):
            if not state.connections:
                state.all_closed.set()
            waiters = [asyncio.ensure_future(state.all_closed.wait())]
            if state.tasks:
                waiters.append(asyncio.ensure_future(asyncio.wait(list(state.tasks))))
            self._stop_event = asyncio.Event()  # a second stop() now means: force
            forced = asyncio.ensure_future(self._stop_event.wait())
            done, _ = await asyncio.wait(
                {asyncio.ensure_future(asyncio.gather(*waiters)), forced},
                timeout=timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for waiter in (*waiters, forced):
                waiter.cancel()
            if not done:
                logger.warning("Graceful shutdown timed out after %ss; closing open connections.", timeout)
        for conn in list(state.connections):
            conn.abort()
        tasks = [t for t in state.tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        self._close_listeners()
        await lifespan.shutdown()
        self._started = False
        logger.info("Finished server process [%d]", os.getpid())

    def _close_listeners(self) -> None:
        for server in self.servers:
            server.close()
        self.servers = []
        self.sockets = []

    def _on_request_limit(self) -> None:
        logger.warning("Maximum request limit of %d exceeded. Terminating process.", self.config.limit_max_requests)
        self.stop()

    async def _notify_loop(self) -> None:
        callback = self.config.callback_notify
        assert callback is not None
        while self._started:
            await asyncio.sleep(self.config.timeout_notify)
            await callback()

    # -- signals --------------------------------------------------------------------------------------
    def _install_signal_handlers(self) -> Callable[[], None] | None:
        loop = asyncio.get_running_loop()
        if threading.current_thread() is not threading.main_thread():
            return None
        installed: list[signal.Signals] = []
        try:
            for sig in _HANDLED_SIGNALS:
                loop.add_signal_handler(sig, functools.partial(self._on_signal, sig))
                installed.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass

        def restore() -> None:
            for sig in installed:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)

        return restore

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signal_count += 1
        if self._signal_count > 1 or self.force_exit:
            logger.info("Received %s again; closing all connections now.", sig.name)
            self.stop(force=True)
        else:
            self.stop()
