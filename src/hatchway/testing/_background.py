"""Background servers: a thread of their own (``background``) or a task in the running loop (``serving``).

Readiness is handed back, never polled: the serving coroutine reports "listening" (``Server.wait_started``)
or its start-up error, and the caller waits on one event. Failures are re-raised as the very exception the
server raised (``BindError``, ``AppImportError``, ``LifespanStartupError``, ``ConfigError`` ...). No signal
handler is ever installed. Stopping is graceful for ``timeout_graceful_shutdown`` seconds (1 by default here),
then open connections are aborted; a server that still will not finish has its serving task cancelled, so
leaving the block always ends with the thread joined and the sockets closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from hatchway import Config, Server, ServerStateError
from hatchway._config_cache import validated_config
from hatchway._loop import close_loop, finish_loop

if TYPE_CHECKING:
    from hatchway._supervisors import SupervisorHandle

#: Start-up bound (seconds) for the helpers, unless ``timeout=`` says otherwise.
DEFAULT_TIMEOUT = 30.0

#: Options the helpers default differently from ``Config``: a free loopback port, logging left exactly as
#: the caller configured it (records go to the ``hatchway.*`` loggers and propagate, so pytest captures them),
#: one process whatever ``$WEB_CONCURRENCY`` says, and a short grace period when stopping.
HELPER_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "log_config": None,
    "workers": 1,
    "timeout_graceful_shutdown": 1.0,
}

# After the grace period: up to 1 s for cancelled request tasks, then the app's lifespan shutdown. Past this
# margin (plus ``timeout``) the serving task is cancelled outright.
_STOP_MARGIN = 2.0
_CANCEL_WAIT = 5.0


def helper_config(app: Any, options: dict[str, Any]) -> Config:
    """The Config the helpers use: ``HELPER_DEFAULTS`` under ``options``; a ready Config is taken as is."""
    if isinstance(app, Config):
        if options:
            raise TypeError(f"pass options either in the Config or as keywords, not both: {sorted(options)}")
        return app
    # Validated once per distinct set of plain options: starting the same server again skips the checks.
    return validated_config(app, {**HELPER_DEFAULTS, **options})


async def _wait_started(server: Server, task: asyncio.Future[None], timeout: float | None) -> bool:
    """True once ``server`` listens, False after ``timeout``; if serve() ended first, raise what it raised."""
    waiter = asyncio.ensure_future(server.wait_started())
    try:
        await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if waiter.done() and not waiter.cancelled():
        waiter.exception()  # retrieved: serve()'s own exception is the one to raise
    if task.done():
        task.result()  # the original BindError, AppImportError, LifespanStartupError, ConfigError ...
        raise ServerStateError("the server was stopped before it finished starting")
    return waiter.done() and not waiter.cancelled()


class BackgroundServer:
    """A hatchway server running in the background, as yielded by ``background()`` and ``serving()``.

    ``url``, ``host``, ``port``, ``addresses`` and (for one process) the listening ``sockets`` are real once
    it is yielded. ``stop()`` is thread-safe and idempotent; leaving the ``with`` block calls it.
    """

    def __init__(self, config: Config, *, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self.config = config
        self.timeout = timeout
        #: The ``hatchway.Server`` (one process); None under the reloader or the worker supervisor.
        self.server: Server | None = None
        self._supervisor: SupervisorHandle | None = None
        self._addresses: list[str] = []
        self._split: tuple[str, str, int | None] | None = None  # url, host, port: parsed once
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Future[Any] | None = None
        # "Started or failed", signalled once from the server's thread: a held lock that it releases (the
        # caller's wait is one C call, without threading.Event's Condition machinery).
        self._settled = False
        self._settled_lock = threading.Lock()
        self._settled_lock.acquire()
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("running" if self._addresses else "not started")
        return f"<BackgroundServer {self.url or '-'} {state}>"

    # -- where it listens --------------------------------------------------------------------------
    @property
    def addresses(self) -> list[str]:
        """Every address clients use, e.g. ``["http://127.0.0.1:54321"]``."""
        return list(self._addresses)

    @property
    def url(self) -> str:
        """The first address, e.g. ``http://127.0.0.1:54321`` (``unix:/path`` for a UNIX socket)."""
        return self._addresses[0] if self._addresses else ""

    @property
    def host(self) -> str:
        """The host of ``url`` (without IPv6 brackets), or the socket path for a UNIX socket."""
        if self.url.startswith("unix:"):
            return self.url[5:]
        return self._split_url()[0]

    @property
    def port(self) -> int:
        """The bound port (the real one when ``port=0`` asked for a free one)."""
        port = self._split_url()[1] if self.url and not self.url.startswith("unix:") else None
        if port is None:
            raise ServerStateError(f"no TCP port to report for {self.url or 'a server that is not running'}")
        return port

    def _split_url(self) -> tuple[str, int | None]:
        url = self.url
        cached = self._split
        if cached is None or cached[0] != url:
            cached = self._split = (url, *_host_and_port(url))
        return cached[1], cached[2]

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets while serving (one process only; empty under a supervisor or once stopped)."""
        return list(self.server.sockets) if self.server is not None else []

    @property
    def running(self) -> bool:
        return bool(self._addresses) and not self._stopped

    # -- in a thread -------------------------------------------------------------------------------
    def start(self) -> BackgroundServer:
        """Start in a thread; return once listening and lifespan start-up is done, else raise its error."""
        if self._supervisor is not None or self._thread is not None or self._task is not None:
            raise ServerStateError("this BackgroundServer was already started; create another")
        if self.config.use_subprocess:
            return self._start_supervisor_blocking()
        self.server = Server(self.config)
        # Readiness straight from the server (listening, lifespan start-up done): no waiter task in its loop.
        self.server._on_started = self._settle
        self._thread = threading.Thread(target=self._thread_main, name="hatchway-background", daemon=True)
        try:
            self._thread.start()
            ready = self._settled_lock.acquire(timeout=-1 if self.timeout is None else self.timeout)
        except BaseException:  # KeyboardInterrupt while waiting: nothing may stay behind
            self.stop()
            raise
        error = self._error
        if error is not None:
            self.stop()
            raise error
        if not ready:
            self.stop()
            raise TimeoutError(f"the server did not start within {self.timeout} seconds (timeout=)")
        self._addresses = list(self.server.addresses)
        return self

    def _thread_main(self) -> None:
        server = self.server
        assert server is not None
        loop = (self.config.get_loop_factory() or asyncio.new_event_loop)()
        finished = False
        try:
            asyncio.set_event_loop(loop)
            # One task and one run of the loop for the whole life of the server, clean-up included: every
            # extra run_until_complete costs a loop start and stop (tens of microseconds with uvloop).
            task = self._task = loop.create_task(self._serve_in_thread(server))
            self._loop = loop  # after _task: _cancel_in_thread must see the task once it sees the loop
            if self._stopped:  # stop() came before the task existed
                task.cancel()
            finished = loop.run_until_complete(task)
        except BaseException as exc:
            self._error = exc
        finally:
            try:
                close_loop(loop, finished=finished)
            finally:
                self._settle()

    def _settle(self) -> None:
        # Only ever called in the server's thread: ready, and again when the thread ends.
        if not self._settled:
            self._settled = True
            self._settled_lock.release()

    async def _serve_in_thread(self, server: Server) -> bool:
        """serve(), then what ``asyncio.run`` does on the way out; True once that clean-up has run."""
        try:
            await server.serve()
        finally:
            await finish_loop()
        return True

    def _cancel_in_thread(self) -> None:
        loop, task = self._loop, self._task
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
            loop.call_soon_threadsafe(task.cancel if task is not None else loop.stop)

    def _stop_wait(self) -> float | None:
        grace = self.config.timeout_graceful_shutdown
        if grace is None:
            return None
        return grace + _STOP_MARGIN + (self.timeout or 0.0)

    def stop(self) -> None:
        """Stop: graceful for ``timeout_graceful_shutdown`` seconds, then close everything. Thread-safe.

        In a thread (``background``), returns once the thread is joined and the sockets are closed. For
        ``serving``, called from the event loop's thread it only begins the shutdown; leaving the
        ``async with`` block (or ``await stopped()``) waits for it.
        """
        with self._lock:
            self._stopped = True
        if self._supervisor is not None:
            self._supervisor.stop()
            return
        if self.server is not None:
            self.server.stop()
        thread = self._thread
        if thread is not None:
            if not self._settled:  # still starting: there is nothing to be graceful about
                self._cancel_in_thread()
            if thread is threading.current_thread():
                return
            thread.join(self._stop_wait())
            if thread.is_alive():
                self._cancel_in_thread()
                thread.join(_CANCEL_WAIT)
            if thread.is_alive():
                raise RuntimeError(f"the server thread did not stop: {self!r}")
        elif (
            self._loop is not None
            and self.server is not None
            and not _in_loop(self._loop)
            and not self.server.finished.wait(self._stop_wait())
        ):
            self._cancel_in_thread()

    # -- in the running event loop ----------------------------------------------------------------
    async def start_serving(self) -> BackgroundServer:
        """Start as a task in the running loop; return once listening, else raise its start-up error."""
        if self._supervisor is not None or self._thread is not None or self._task is not None:
            raise ServerStateError("this BackgroundServer was already started; create another")
        loop = asyncio.get_running_loop()
        if self.config.use_subprocess:
            try:
                await loop.run_in_executor(None, self._start_supervisor_blocking)
            except BaseException:
                await loop.run_in_executor(None, self.stop)
                raise
            return self
        server = self.server = Server(self.config)
        self._loop = loop
        task = self._task = asyncio.ensure_future(server.serve())
        try:
            started = await _wait_started(server, task, self.timeout)
        except BaseException:
            await _cancel(task)
            raise
        if not started:
            await _cancel(task)
            raise TimeoutError(f"the server did not start within {self.timeout} seconds (timeout=)")
        self._addresses = list(server.addresses)
        return self

    async def stopped(self) -> None:
        """Stop (as ``stop()``) and wait until the server has finished, in the event loop."""
        if self._task is None:
            if self._supervisor is not None or self._thread is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.stop)
            return
        self.stop()
        task = self._task
        done, _ = await asyncio.wait({task}, timeout=self._stop_wait())
        if not done:
            await _cancel(task)
            return
        if not task.cancelled():
            task.result()

    def _start_supervisor_blocking(self) -> BackgroundServer:
        from hatchway._supervisors import start_supervisor  # the reloader and pool load only when used

        handle = self._supervisor = start_supervisor(self.config)
        try:
            handle.wait_ready(self.timeout if self.timeout is not None else DEFAULT_TIMEOUT)
        except BaseException:
            handle.stop()
            raise
        self._addresses = list(handle.addresses)
        return self


def _host_and_port(url: str) -> tuple[str, int | None]:
    """``urlsplit(url).hostname or "", urlsplit(url).port``, quickly for the ``scheme://host:port`` URLs
    the server describes itself with (``[...]`` around IPv6 hosts)."""
    _, sep, rest = url.partition("://")
    host, colon, port = rest.rpartition(":")
    if (
        sep
        and colon
        and port.isdigit()
        and int(port) <= 65535
        and "/" not in rest
        and (host.startswith("[") or ":" not in host)
    ):
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return host.lower(), int(port)
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "", parts.port


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def _cancel(task: asyncio.Future[None]) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


@contextlib.contextmanager
def background(
    app: Any, *, timeout: float | None = DEFAULT_TIMEOUT, **options: Any
) -> Iterator[BackgroundServer]:
    """Serve ``app`` in a thread for the duration of the ``with`` block.

    ``app`` is an ASGI app, an import string (``"main:app"``) or a ready ``Config``; ``options`` are
    ``Config``'s, over ``HELPER_DEFAULTS`` (port 0 on 127.0.0.1, ``log_config=None``, ``workers=1``,
    ``timeout_graceful_shutdown=1``). The block is entered once the server listens and lifespan start-up
    has completed; a start-up failure raises the server's own exception, and ``timeout`` seconds without
    either raise ``TimeoutError``. ``reload=True`` or ``workers=N`` run the supervisor instead; the block
    is entered once every child is ready.
    """
    server = BackgroundServer(helper_config(app, options), timeout=timeout)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def serving(
    app: Any, *, timeout: float | None = DEFAULT_TIMEOUT, **options: Any
) -> AsyncIterator[BackgroundServer]:
    """Serve ``app`` as a task in the running event loop for the duration of the ``async with`` block.

    Same arguments, defaults and errors as ``background()``.
    """
    server = BackgroundServer(helper_config(app, options), timeout=timeout)
    await server.start_serving()
    try:
        yield server
    finally:
        await server.stopped()
