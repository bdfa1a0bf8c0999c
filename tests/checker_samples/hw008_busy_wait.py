"""HW008: busy-waiting on server.started without a timeout."""

import asyncio
import threading
import time

import uvicorn


def start(server: uvicorn.Server) -> None:
    threading.Thread(target=server.run).start()
    while not server.started:  # error: HW008
        time.sleep(0.01)


async def start_async(server: uvicorn.Server) -> None:
    while not server.started:  # error: HW008
        await asyncio.sleep(0.01)


def start_nested_break(server: uvicorn.Server) -> None:
    while server.started is False:  # error: HW008
        for _ in range(3):
            break
        time.sleep(0.1)


# Compliant: a deadline that raises, a timeout around the loop, or a break out of it.
def start_with_deadline(server: uvicorn.Server) -> None:
    deadline = time.monotonic() + 5
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start")
        time.sleep(0.01)


async def start_with_timeout(server: uvicorn.Server) -> None:
    async with asyncio.timeout(5):
        while not server.started:
            await asyncio.sleep(0.01)


def start_with_attempts(server: uvicorn.Server, thread: threading.Thread) -> None:
    while not server.started:
        if not thread.is_alive():
            break
        time.sleep(0.01)
