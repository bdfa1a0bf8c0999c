"""Write backpressure shared by the HTTP and WebSocket protocols: pause/resume, drain, and the send timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class WriteFlow:
    """asyncio's ``pause_writing``/``resume_writing`` as an awaitable ``waiter()``, plus a send timeout.

    While the transport's buffer is above its high-water mark, senders wait instead of growing it; a client
    that reads nothing for ``timeout`` seconds meanwhile gets ``on_timeout()`` (the protocol drops it).
    """

    __slots__ = ("_loop", "_on_timeout", "_timeout", "_timer", "_waiter", "paused")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, timeout: float | None, on_timeout: Callable[[], None]
    ) -> None:
        self._loop = loop
        self._timeout = timeout
        self._on_timeout = on_timeout
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.paused = False

    def pause(self) -> None:
        self.paused = True
        if self._timeout and self._timer is None:
            self._timer = self._loop.call_later(self._timeout, self._expired)

    def resume(self) -> None:
        self.paused = False
        self._cancel_timer()
        self.release()

    def release(self) -> None:
        """Wake every waiting sender (writing resumed, or the connection is gone)."""
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        self._cancel_timer()
        self.release()

    def waiter(self) -> asyncio.Future[None]:
        """What a sender awaits until writing may go on; the caller checks ``paused`` first (the fast path).

        Awaited by hatchway._app_task, not here: see there why this module holds no coroutine.
        """
        if self._waiter is None:
            self._waiter = self._loop.create_future()
        # Shielded: one sender cancelled must not cancel the future the others wait on.
        return asyncio.shield(self._waiter)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.paused:
            self._on_timeout()
