"""The coroutines an app's task runs: the ``await`` of the app and the other waits, kept out of compiled code.

setup.py compiles the per-request modules with mypyc, and a coroutine compiled by mypyc (up to at least
mypy 2.4) passes an exception on to the awaitable it waits on as ``throw(type, value, traceback)``. Python
3.12 deprecates that signature for coroutines, generators and asyncio's future iterators alike, so a task
cancelled while a compiled coroutine waited (``asyncio.timeout``, anyio cancel scopes, shutdown) would raise
a DeprecationWarning on the way to the app, and under ``-W error`` the warning would replace the
CancelledError. Hence the split: this module, plain Python in every build from 3.12 on, holds the coroutines
that wait on the app or on a future, while the work they do between two waits (framing, validation, state)
stays compiled. The interpreter's own coroutines pass a thrown exception on with one argument on every
version. The one exception is an HTTP request's ``receive``/``send`` pair (hatchway._http.channel): the usual
request calls them without their waiting, so they are compiled, and their rare waits go through a relay that
takes the three-argument call (tests/test_app_task.py checks that every await in a compiled module is
relayed).

Before 3.12 the three-argument call is not deprecated, and setup.py compiles this module too
(``COMPILED_BEFORE_3_12``): the split then costs 3.10 and 3.11 next to nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hatchway._http.channel import http_channel

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from hatchway._http.cycle import Cycle
    from hatchway._http.files import FileSender
    from hatchway._ws.session import WebSocketSession

Message = dict[str, Any]


async def run_http(cycle: Cycle, app: Any) -> None:
    """Run the app for one HTTP request: its task's coroutine (the ``receive``/``send`` pair it gets is
    compiled, see hatchway._http.channel)."""
    receive, send = http_channel(cycle)
    try:
        # Any awaitable is a valid ASGI return (a coroutine, a Task, a Future).
        result = await app(cycle.scope, receive, send)
    except BaseException as exc:
        if cycle.app_raised(exc):
            raise
    else:
        cycle.app_returned(result)
    finally:
        cycle.app_done()


async def send_file_rest(cycle: Cycle, sender: FileSender, wait: Awaitable[None] | None, final: bool) -> None:
    """The rest of a file response, after its first step filled the socket (see hatchway._http.files)."""
    try:
        while wait is not None:
            await wait
            wait = sender.step()
    finally:
        # Also when the app's task is cancelled here: the descriptors are released and, if the file did not
        # all go out, the connection is closed.
        cycle.file_sent(sender, final)


async def run_websocket(session: WebSocketSession, app: Any) -> None:
    """Run the app for one WebSocket: its task's coroutine, and the ``receive``/``send`` pair it gets."""

    async def receive() -> Message:
        message = session.take()
        while message is None:
            await session.waiter()
            message = session.take()
        return message

    async def send(message: Message) -> None:
        waiter = session.send_message(message)
        if waiter is not None:  # the transport's buffer is full: wait for the client to read
            await waiter
            session.room_made(message)

    try:
        result = await app(session.scope, receive, send)
    except BaseException as exc:
        if session.app_raised(exc):
            raise
    else:
        session.app_returned(result)
    finally:
        session.scope = {}  # break the scope -> app references early


async def service_unavailable(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app run instead of the real one past ``limit_concurrency``."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": b"Service Unavailable"})
