"""No findings: compliant uvicorn and hatchway code, reached through every import style."""

import asyncio
import subprocess

import hatchway
import hatchway as hw
import uvicorn as u
from hatchway import run as hatch_run
from uvicorn import Config, Server
from uvicorn.main import run as serve


async def app(scope, receive, send):
    pass


class Job:
    def run(self, reload=False, workers=1):
        pass


def run(app, reload=False, workers=1):
    pass


# hatchway finds the import string of an app object itself and tolerates a missing main guard.
hatchway.run(app, reload=True)
hw.run(app, workers=4)
hatch_run(app, reload=True, reload_dirs=["."])

run(app, reload=True, workers=4)
Job().run(reload=True, workers=4)
subprocess.run(["true"], check=False)


async def main():
    server = Server(Config("clean_aliases:app"))
    await server.serve()
    async with hatchway.serving(app) as running:
        print(running.url)


if __name__ == "__main__":
    u.run("clean_aliases:app", reload=True)
    serve("clean_aliases:app", workers=2)
    asyncio.run(main())
    with hatchway.background(app) as server:
        print(server.url)
