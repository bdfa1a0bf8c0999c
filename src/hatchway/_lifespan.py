"""The lifespan exchange: start-up and shutdown messages, the state dict, and ``auto | on | off``."""

from __future__ import annotations

import asyncio
from typing import Any

from hatchway._errors import LifespanStartupError
from hatchway._logs import logger


class Lifespan:
    """Runs the app's lifespan protocol in a task; ``startup()`` raises LifespanStartupError on failure."""

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
        self._receive_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
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
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._receive_queue.put({"type": "lifespan.startup"})
        waiter = asyncio.ensure_future(self._startup_done.wait())
        try:
            done, _ = await asyncio.wait(
                {waiter, self._task}, timeout=self.startup_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            # Start-up was cancelled from outside: the app's lifespan task must not outlive it.
            waiter.cancel()
            await asyncio.shield(self._cancel())
            raise
        if not done:
            waiter.cancel()
            await self._cancel()
            raise LifespanStartupError(
                f"Application startup did not complete within {self.startup_timeout} seconds "
                "(timeout_lifespan_startup).",
                code="HW401",
            )
        if not self._startup_done.is_set():
            waiter.cancel()
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
        await self._receive_queue.put({"type": "lifespan.shutdown"})
        waiter = asyncio.ensure_future(self._shutdown_done.wait())
        done, _ = await asyncio.wait(
            {waiter, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if not done:
            # A shutdown handler that hangs must not keep the process alive forever.
            logger.error("Application shutdown did not complete within %s seconds; cancelling it.", timeout)
            await self._cancel()
            return
        if self._shutdown_failed is not None:
            logger.error("Application shutdown failed: %s", self._shutdown_failed)
        else:
            logger.info("Application shutdown complete.")

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
            elif self._startup_done.is_set():
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
            if not self._startup_done.is_set():
                if self.mode == "auto":
                    self._unsupported = True
                else:
                    self._failure = "the application returned before sending lifespan.startup.complete"
        finally:
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> dict[str, Any]:
        return await self._receive_queue.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self._failure = message.get("message") or "the app sent lifespan.startup.failed"
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self._shutdown_failed = message.get("message") or "the app sent lifespan.shutdown.failed"
            self._shutdown_done.set()
        else:
            raise RuntimeError(f"Unexpected ASGI lifespan message {kind!r}.")
