"""HW002: reload and workers together."""

import sys

import hatchway
import uvicorn


async def app(scope, receive, send):
    pass


count = int(sys.argv[1])

if __name__ == "__main__":
    uvicorn.run("hw002_reload_workers:app", reload=True, workers=4)  # error: HW002
    hatchway.run(app, reload=True, workers=count)  # error: HW002
    uvicorn.Config(
        "hw002_reload_workers:app",
        reload=True,
        workers=2,  # error: HW002
    )

    options = {
        "reload": True,
        "workers": 4,  # error: HW002
    }
    uvicorn.run("hw002_reload_workers:app", **options)

    # Compliant: one or the other, one worker, or a reload decided at run time.
    uvicorn.run("hw002_reload_workers:app", reload=True)
    uvicorn.run("hw002_reload_workers:app", workers=4)
    uvicorn.run("hw002_reload_workers:app", reload=True, workers=1)
    hatchway.run(app, reload="--reload" in sys.argv, workers=4)
