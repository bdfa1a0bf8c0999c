"""HW003: uvicorn started with reload/workers at import time, outside the main guard."""

import uvicorn
from uvicorn import run


async def app(scope, receive, send):
    pass


uvicorn.run("hw003_main_guard:app", reload=True)  # error: HW003


def main():
    run("hw003_main_guard:app", workers=2)


def cli():
    main()


main()  # error: HW003
cli()  # error: HW003


def plain():
    uvicorn.run("hw003_main_guard:app")


# Compliant: no reloader or workers, or under the guard.
plain()
uvicorn.run("hw003_main_guard:app", port=8001)

if __name__ == "__main__":
    uvicorn.run("hw003_main_guard:app", reload=True)
    main()
