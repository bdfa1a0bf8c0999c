"""Choosing the event loop (``loop=``) and running a coroutine in a new one to completion."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from hatchway._errors import StartupError
from hatchway._importer import import_from_string

T = TypeVar("T")


def loop_factory(choice: Any) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop factory for ``loop=``: uvloop when available for ``auto``, else asyncio."""
    if callable(choice):
        return choice  # type: ignore[no-any-return]
    if choice == "none":
        return None
    if choice in ("auto", "uvloop"):
        try:
            import uvloop

            return uvloop.new_event_loop
        except ImportError:
            if choice == "uvloop":
                raise StartupError(
                    "loop='uvloop' needs uvloop installed: pip install uvloop", code="HW306"
                ) from None
    if choice in ("auto", "asyncio"):
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = import_from_string(choice)
    return factory


def run_coroutine(coro: Coroutine[Any, Any, T], factory: Callable[[], asyncio.AbstractEventLoop] | None) -> T:
    """``asyncio.run`` with a loop factory, on every supported Python."""
    loop = (factory or asyncio.new_event_loop)()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        close_loop(loop)


def close_loop(loop: asyncio.AbstractEventLoop, *, finished: bool = False) -> None:
    """What ``asyncio.run`` does on the way out: cancel what is left, finish generators and the executor.

    ``finished``: ``finish_loop()`` already did that as the end of the loop's last coroutine, so only
    closing is left (each further run of the loop costs a start and a stop, tens of microseconds).
    """
    try:
        if not finished:
            loop.run_until_complete(finish_loop())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def finish_loop() -> None:
    """``close_loop``'s clean-up from inside the loop, as the last step of its main coroutine.

    Cancels every other task, closes the async generators and joins the default executor's threads (those
    from run_in_executor must not outlive the server).
    """
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks(loop) if t is not current and not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()
