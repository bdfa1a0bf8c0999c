"""Server: ``serve()``/``run()``, readiness as events, graceful bounded shutdown, opt-in signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from hatchway._app import asgi_version, load_app
from hatchway._config import Config
from hatchway._errors import HatchwayError, ServerStateError, StartupError, for_caller
from hatchway._health import HealthApp
from hatchway._http import protocol as http_protocol
from hatchway._lifespan import Lifespan
from hatchway._logs import configure_logging, logger
from hatchway._loop import loop_factory, run_coroutine
from hatchway._observe import start_observing
from hatchway._signals import install_signal_handlers as handle_signals
from hatchway._signals import not_serving, serving
from hatchway._sockets import bind_sockets, describe, forget_serving, note_serving
from hatchway._startup import connection_factory, implementation_notices
from hatchway._state import ServerState
from hatchway._tls import ssl_context
from hatchway._version import __version__


class Server:
    """An ASGI server for one Config. ``run()`` blocks; ``await serve()`` runs in the current loop.

    Readiness: ``await wait_started()`` in the loop, or ``ready.wait(timeout)`` from any thread.
    ``stop()`` is thread-safe and idempotent; setting ``should_exit = True`` does the same, as in uvicorn.
    """

    #: Whether this server serves its own metrics (``metrics_address``); a supervisor's child does not.
    serves_metrics = True

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
        # Futures of wait_started() callers, each in its own loop; settled when start-up ends either way.
        self._start_waiters: list[asyncio.Future[None]] = []
        self._lock = threading.Lock()
        self._app: Any = None
        self._signal_count = 0
        self._uds_path: str | None = None
        self._notifier: asyncio.Task[None] | None = None
        # Called (in the server's thread) once it listens and lifespan start-up is done: the background
        # helper's readiness signal, without a waiter task in the loop.
        self._on_started: Callable[[], None] | None = None
        self._metrics: Any = None  # hatchway._metrics.ServerMetrics while serving with metrics_address
        # The drain before a shutdown (shutdown_delay): readiness answers 503 meanwhile.
        self._health: HealthApp | None = None
        self._draining = False
        self._drain_timer: asyncio.TimerHandle | None = None

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
        """Return once the server is listening; raise the start-up error if it failed.

        Works from any event loop or thread, and may be called before ``serve()`` has begun (for example
        right after ``asyncio.create_task(server.serve())``). Bound it with ``asyncio.wait_for``.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._started:
                return
            if not self._running and self.startup_error is not None:
                raise self._startup_failure()
            waiter: asyncio.Future[None] = loop.create_future()
            self._start_waiters.append(waiter)
        await waiter

    def _startup_failure(self) -> BaseException:
        error = self.startup_error
        if isinstance(error, HatchwayError):
            return error
        failure = StartupError("The server stopped before it started listening.", code="HW300")
        failure.__cause__ = error
        return failure

    def _settle_start(self, started: bool) -> None:
        """Wake every wait_started() caller: started, or failed with ``startup_error``."""
        with self._lock:
            self._started = started
            waiters, self._start_waiters = self._start_waiters, []
        for waiter in waiters:
            with contextlib.suppress(RuntimeError):  # that caller's loop has closed: nobody is waiting
                waiter.get_loop().call_soon_threadsafe(self._resolve, waiter, started)
        if started:
            self.ready.set()
            if self._on_started is not None:
                self._on_started()

    def _resolve(self, waiter: asyncio.Future[None], started: bool) -> None:
        if waiter.done():
            return
        if started:
            waiter.set_result(None)
        else:
            waiter.set_exception(self._startup_failure())

    def stop(self, force: bool = False) -> None:
        """Begin a graceful shutdown (``force=True``: close everything now). Safe from any thread.

        Calling it again while a graceful shutdown waits for open connections forces it, like a second Ctrl+C.
        """
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

    @property
    def draining(self) -> bool:
        """True from the start of a drain (``drain()``, or SIGTERM with ``shutdown_delay``) until stopped."""
        return self._draining

    def drain(self, delay: float | None = None) -> None:
        """Keep serving for ``delay`` seconds (default: ``shutdown_delay``) with ``ready_path`` answering 503,
        then stop gracefully. Safe from any thread. ``stop()`` itself never waits: it is the way to end a drain
        early. With signal handling, SIGTERM calls this when ``shutdown_delay`` is set."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._begin_drain, delay, True)

    def _begin_drain(self, delay: float | None, stop_after: bool) -> None:
        """In the loop: mark the server draining; ``stop_after``: stop once ``delay`` has passed (a supervised
        worker's supervisor keeps the time itself and sends SIGTERM)."""
        if self._draining or self._should_exit or self.state is None:
            return
        self._draining = True
        if self._health is not None:
            self._health.draining = True
        if not stop_after:
            logger.info("Draining: readiness answers 503 until the supervisor stops this worker.")
            return
        delay = self.config.shutdown_delay if delay is None else delay
        logger.info("Draining for %ss before shutting down; readiness answers 503.", delay)
        self._drain_timer = asyncio.get_running_loop().call_later(max(delay, 0.0), self._drain_over)

    def _drain_over(self) -> None:
        self._drain_timer = None
        if not self._should_exit:
            logger.info("Drain over.")
            self.stop()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """uvicorn's signal entry point: the first call stops gracefully, a second SIGINT forces."""
        self._on_signal(signal.Signals(sig))

    # -- running --------------------------------------------------------------------------------------
    def run(self, sockets: Sequence[socket.socket] | None = None) -> None:
        """Run in a new event loop until stopped. Handles SIGINT/SIGTERM when on the main thread.

        A start-up failure raises the StartupError (or ServerStateError) with a traceback that starts at the
        caller's line; ``__cause__`` is kept only when the user's code failed (see ``_errors.for_caller``).
        """
        handle_signals = threading.current_thread() is threading.main_thread()
        try:
            factory = loop_factory(self.config.loop)
            run_coroutine(self.serve(sockets, install_signal_handlers=handle_signals), factory)
        except HatchwayError as exc:
            for_caller(exc)
            raise

    async def serve(
        self, sockets: Sequence[socket.socket] | None = None, *, install_signal_handlers: bool = False
    ) -> None:
        """Serve until ``stop()``; raises StartupError (never exits) when start-up fails."""
        with self._lock:
            if self._running:
                raise ServerStateError(
                    "this Server is already running; wait for it to stop, or create another Server to serve twice"
                )
            self._running = True
            self.startup_error = None
        if self.finished.is_set():  # served before (clear() takes the Event's lock: a first run skips it)
            self.finished.clear()
        if self.ready.is_set():
            self.ready.clear()
        self._signal_count = 0
        self._draining = False
        self._stop_event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._should_exit:  # stop() came before serve(): start, then stop at once, as uvicorn does
            self._stop_event.set()
        serving(self)
        restore = handle_signals(self._on_signal) if install_signal_handlers else None
        lifespan: Lifespan | None = None
        try:
            configure_logging(self.config)
            lifespan = await self._startup(sockets)
            await self._stop_event.wait()
            await self._shutdown(lifespan)
        except BaseException as exc:
            if lifespan is None:
                self.startup_error = exc
            raise
        finally:
            if restore is not None:
                restore()
            if self._metrics is not None:
                self._metrics.close()
                self._metrics = None
            self._close_listeners()
            self._remove_uds()
            self.addresses = []
            with self._lock:
                self._running = False
                self._should_exit = False
                self._loop = None
            self._settle_start(False)
            self.force_exit = False
            not_serving(self)
            self.finished.set()

    async def _startup(self, sockets: Sequence[socket.socket] | None) -> Lifespan:
        config = self.config
        logger.info("Started server process [%d]", os.getpid())
        if logger.isEnabledFor(logging.DEBUG):
            if http_protocol.__file__.endswith(".py"):
                build = "pure Python (a non-editable install with a C compiler compiles it)"
            else:
                build = "compiled"
            logger.debug("hatchway %s: hot path %s", __version__, build)
        # TLS files are read before the app is imported or its lifespan runs: a wrong certificate or key
        # must not be reported after the app's start-up has done its work (connected, migrated, ...).
        tls = ssl_context(config)
        if self._app is None:
            self._app = load_app(config)
        state = ServerState(config, on_request_limit=self.request_limit_reached)
        self.state = state
        self._metrics = start_observing(config, state, endpoint=self.serves_metrics)
        if config.limit_max_requests is not None:
            jitter = (
                random.randint(0, config.limit_max_requests_jitter) if config.limit_max_requests_jitter else 0
            )
            state.request_limit = config.limit_max_requests + jitter
        implementation_notices(config)
        state.asgi_version = asgi_version(self._app)
        lifespan = Lifespan(
            self._app,
            config.lifespan,
            state.lifespan_state,
            config.timeout_lifespan_startup,
            state.asgi_version,
        )
        await lifespan.startup()
        try:
            await self._listen(sockets, state, tls)
        except BaseException:
            await lifespan.shutdown(config.timeout_graceful_shutdown)
            raise
        self._settle_start(True)
        if config.callback_notify is not None:
            self._notifier = asyncio.get_running_loop().create_task(self._notify_loop())
        return lifespan

    async def _listen(
        self, sockets: Sequence[socket.socket] | None, state: ServerState, tls: ssl.SSLContext | None
    ) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        app = self._app
        if config.ready_path is not None or config.live_path is not None:
            app = self._health = HealthApp(app, config.ready_path, config.live_path, config.root_path)
        factory = connection_factory(config, state, app, loop)

        announce = sockets is None
        owned = list(sockets) if sockets is not None else bind_sockets(config)
        try:
            for sock in owned:
                if sock.family == socket.AF_UNIX:
                    server = await loop.create_unix_server(
                        factory, sock=sock, ssl=tls, backlog=config.backlog
                    )
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
        note_serving(config, owned)  # config.bind_socket() now reports these instead of binding anew
        if announce and config.uds:
            self._uds_path = config.uds
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
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        # From here nothing listens, so nothing may report the server as started.
        self._close_listeners()
        with self._lock:
            self._started = False
        self.ready.clear()
        if self._notifier is not None:  # a supervisor's heartbeat must stop with the server
            self._notifier.cancel()
            self._notifier = None
        for conn in list(state.connections):
            conn.shutdown()
        timeout = self.config.timeout_graceful_shutdown
        if not self.force_exit and (state.tasks or state.connections):
            if not state.connections:
                state.all_closed.set()
            drained = asyncio.ensure_future(self._drained(state))
            self._stop_event = asyncio.Event()  # a second stop() now means: force
            forced = asyncio.ensure_future(self._stop_event.wait())
            done, _ = await asyncio.wait(
                {drained, forced}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in (drained, forced):
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
        # Bounded by the same timeout as the connections: a hanging shutdown handler cannot block a restart.
        await lifespan.shutdown(timeout)
        logger.info("Finished server process [%d]", os.getpid())

    @staticmethod
    async def _drained(state: ServerState) -> None:
        """Return once every connection has closed and every request task has finished."""
        await state.all_closed.wait()
        if state.tasks:
            await asyncio.wait(list(state.tasks))

    def _close_listeners(self) -> None:
        for server in self.servers:
            server.close()
        if self.sockets:
            forget_serving(self.config, self.sockets)
        self.servers = []
        self.sockets = []

    def _remove_uds(self) -> None:
        # uvicorn.run removes the socket file it bound; so does hatchway, for the socket it bound itself.
        path, self._uds_path = self._uds_path, None
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def request_limit_reached(self) -> None:
        """Called once ``limit_max_requests`` (plus jitter) requests were served; stops the server.

        Override to act first (a worker tells its supervisor, so a replacement starts meanwhile).
        """
        logger.warning(
            "Maximum request limit of %d exceeded. Terminating process.", self.config.limit_max_requests
        )
        self.stop()

    async def _notify_loop(self) -> None:
        callback = self.config.callback_notify
        assert callback is not None
        while self._started:
            await asyncio.sleep(self.config.timeout_notify)
            await callback()

    # -- signals --------------------------------------------------------------------------------------
    def _on_signal(self, sig: signal.Signals) -> None:
        self._signal_count += 1
        if self._drain_timer is not None:
            logger.info("Received %s while draining; shutting down now.", sig.name)
            self._drain_timer.cancel()
            self._drain_timer = None
            self.stop()
        elif (
            sig == signal.SIGTERM
            and self._signal_count == 1
            and self.config.shutdown_delay > 0
            and self._started
            and not self._should_exit
        ):
            # Kubernetes, systemd and docker stop with SIGTERM; Ctrl+C (SIGINT) does not wait.
            self._begin_drain(None, True)
        elif self._signal_count > 1 or self.force_exit:
            logger.info("Received %s again; closing all connections now.", sig.name)
            self.stop(force=True)
        else:
            self.stop()
