"""The lifespan exchange: start-up and shutdown messages, the state dict, and ``auto | on | off``."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from hatchway._errors import LifespanStartupError
from hatchway._logs import logger


class Lifespan:
    """Runs the app's lifespan protocol in a task; ``startup()`` raises LifespanStartupError on failure.

    The exchange is one message each way per phase, so it is done with plain flags and two futures: the
    one the app's ``receive()`` waits on, and the one ``startup()``/``shutdown()`` waits on (resolved when
    the app answers, when its task ends, or at the timeout). Starting and stopping a server pays for no
    queue, events or waiter tasks.
    """

    def __init__(
        self,
        app: Any,
        mode: str,
        state: dict[str, Any],
        startup_timeout: float | None,
        asgi_version: str = "3.0",
    ) -> None:
        self.app = app
        self.asgi_version = asgi_version
        self.mode = mode
        self.state = state
        self.startup_timeout = startup_timeout
        self._inbox: deque[dict[str, Any]] = deque()
        self._receivers: list[asyncio.Future[None]] = []  # the app's receive() calls waiting for a message
        self._startup_done = False
        self._shutdown_done = False
        self._task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None  # startup() or shutdown(), while it waits
        self._failure: str | None = None
        self._failure_cause: BaseException | None = None
        self._unsupported = False
        self._shutdown_failed: str | None = None

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    async def startup(self) -> None:
        if not self.enabled:
            return
        logger.info("Waiting for application startup.")
        task = self._task = asyncio.get_running_loop().create_task(self._main())
        task.add_done_callback(self._wake)
        self._deliver({"type": "lifespan.startup"})
        try:
            done = await self._wait(self._startup_finished, self.startup_timeout)
        except BaseException:
            # Start-up was cancelled from outside: the app's lifespan task must not outlive it.
            await asyncio.shield(self._cancel())
            raise
        if not done:
            await self._cancel()
            raise LifespanStartupError(
                f"Application startup did not complete within {self.startup_timeout} seconds "
                "(timeout_lifespan_startup).",
                code="HW401",
            )
        if self._failure is not None:
            raise LifespanStartupError(
                f"Application startup failed: {self._failure}"
            ) from self._failure_cause
        if self._unsupported:
            return
        logger.info("Application startup complete.")

    async def shutdown(self, timeout: float | None = None) -> None:
        """Send ``lifespan.shutdown`` and wait for the app, at most ``timeout`` seconds (None: no limit)."""
        if not self.enabled or self._unsupported or self._task is None or self._failure is not None:
            return
        if self._task.done():
            return
        logger.info("Waiting for application shutdown.")
        self._deliver({"type": "lifespan.shutdown"})
        if not await self._wait(self._shutdown_finished, timeout):
            # A shutdown handler that hangs must not keep the process alive forever.
            logger.error("Application shutdown did not complete within %s seconds; cancelling it.", timeout)
            await self._cancel()
            return
        if self._shutdown_failed is not None:
            logger.error("Application shutdown failed: %s", self._shutdown_failed)
        else:
            logger.info("Application shutdown complete.")

    def _startup_finished(self) -> bool:
        return self._startup_done

    def _shutdown_finished(self) -> bool:
        return self._shutdown_done

    async def _wait(self, finished: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``finished()`` or the app's task has ended (True), or ``timeout`` passes (False)."""
        task = self._task
        assert task is not None
        if finished() or task.done():
            return True
        loop = asyncio.get_running_loop()
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            self._wake()

        expiry = loop.call_later(timeout, expire) if timeout is not None else None
        try:
            while not (finished() or task.done()):
                if expired:
                    return False
                waiter = self._waiter = loop.create_future()
                try:
                    await waiter
                finally:
                    self._waiter = None
            return True
        finally:
            if expiry is not None:
                expiry.cancel()

    def _wake(self, *_: object) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except BaseException:
                pass

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": self.asgi_version, "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            if self._failure is not None:
                logger.debug("Lifespan error after startup failed", exc_info=exc)
            elif self._startup_done:
                logger.error("Exception in 'lifespan' protocol\n", exc_info=exc)
                self._shutdown_failed = self._shutdown_failed or f"{type(exc).__name__}: {exc}"
            elif self.mode == "auto":
                self._unsupported = True
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
                logger.debug("Lifespan error", exc_info=exc)
            else:
                self._failure = f"{type(exc).__name__}: {exc}"
                self._failure_cause = exc
                logger.error("Exception in 'lifespan' protocol\n", exc_info=exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        else:
            if not self._startup_done:
                if self.mode == "auto":
                    self._unsupported = True
                else:
                    self._failure = "the application returned before sending lifespan.startup.complete"
        finally:
            self._startup_done = True
            self._shutdown_done = True
            self._wake()

    def _deliver(self, message: dict[str, Any]) -> None:
        self._inbox.append(message)
        for receiver in self._receivers:
            if not receiver.done():
                receiver.set_result(None)

    async def _receive(self) -> dict[str, Any]:
        while not self._inbox:
            receiver = asyncio.get_running_loop().create_future()
            self._receivers.append(receiver)
            try:
                await receiver
            finally:
                self._receivers.remove(receiver)
        return self._inbox.popleft()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._startup_done = True
        elif kind == "lifespan.startup.failed":
            self._failure = message.get("message") or "the app sent lifespan.startup.failed"
            self._startup_done = True
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_done = True
        elif kind == "lifespan.shutdown.failed":
            self._shutdown_failed = message.get("message") or "the app sent lifespan.shutdown.failed"
            self._shutdown_done = True
        else:
            raise RuntimeError(f"Unexpected ASGI lifespan message {kind!r}.")
        self._wake()
