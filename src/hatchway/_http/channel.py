"""The ``receive`` and ``send`` an app gets for one HTTP request: compiled coroutines whose waits are relayed.

A mypyc coroutine passes an exception thrown into it on to what it awaits as ``throw(type, value, traceback)``,
which Python 3.12 deprecates (hatchway/_app_task.py says more), so the coroutine that awaits the app itself
stays in that pure-Python module. These two wait only when the request body has not arrived yet or the
client reads slower than the app writes; the usual request calls each without waiting at all, so compiled
they spare the interpreter two coroutines per response (about 2 % of a small request's CPU instructions on
3.13). When they do wait, they wait through ``Relay``, which takes mypyc's three-argument ``throw`` and passes
the exception on with one (tests/test_app_task.py checks that every await in a compiled module is relayed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hatchway._http.cycle import Cycle

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Relay:
    """``await Relay(awaitable)`` waits on ``awaitable``, passing an exception thrown in on with one argument.

    What a compiled coroutine awaits: mypyc throws into it with three arguments, which Python 3.12 deprecates for
    coroutines, generators and futures but not for this class's own ``throw``. (Used where waiting is rare: a
    relayed step costs a Python call, and its StopIteration passes through compiled code.)
    """

    __slots__ = ("_inner",)

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self._inner: Any = awaitable.__await__()

    def __await__(self) -> Relay:
        return self

    def __iter__(self) -> Relay:
        return self

    def __next__(self) -> Any:
        # send(None), not next(): a coroutine's return value rides on its StopIteration, which next() drops.
        return self._inner.send(None)

    def send(self, value: Any) -> Any:
        return self._inner.send(value)

    def throw(self, typ: Any, value: Any = None, traceback: Any = None) -> Any:
        if value is None:
            value = typ() if isinstance(typ, type) else typ
        if traceback is not None:
            value = value.with_traceback(traceback)
        return self._inner.throw(value)

    def close(self) -> None:
        self._inner.close()


def http_channel(cycle: Cycle) -> tuple[Receive, Send]:
    """The ``receive``/``send`` pair of ``cycle``'s request."""

    async def receive() -> Message:
        waiter = cycle.receive_waiter()
        if waiter is not None:
            await Relay(waiter)
        return cycle.receive_message()

    async def send(message: Message) -> None:
        waiter = cycle.send_message(message)
        if waiter is not None:  # the transport's buffer is full: wait for the client to read
            await Relay(waiter)
            cycle.room_made(message)

    return receive, send
