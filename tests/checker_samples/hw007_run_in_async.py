"""HW007: run() inside async def."""

import asyncio

import hatchway
import uvicorn
from uvicorn import Config, Server


async def app(scope, receive, send):
    pass


async def main():
    uvicorn.run("hw007_run_in_async:app")  # error: HW007
    hatchway.run(app)  # error: HW007
    Server(Config(app)).run()  # error: HW007
    server = Server(Config(app))
    server.run()  # error: HW007

    # Compliant: serve() in the running loop, or run() in a thread.
    await server.serve()

    def in_thread():
        uvicorn.run(app)

    await asyncio.to_thread(in_thread)


class Runner:
    def __init__(self):
        self.server = uvicorn.Server(uvicorn.Config(app))

    async def start(self):
        self.server.run()  # error: HW007

    def start_sync(self):
        self.server.run()


def sync_main():
    uvicorn.run(app)
    asyncio.run(main())
