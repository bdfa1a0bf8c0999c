"""HW005: reload_* options without reload."""

import sys

import uvicorn
from hatchway import Config


async def app(scope, receive, send):
    pass


if __name__ == "__main__":
    uvicorn.run("hw005_reload_options:app", reload_dirs=["src"])  # error: HW005
    uvicorn.run("hw005_reload_options:app", reload=False, reload_delay=0.5)  # error: HW005
    Config(
        app,
        port=8000,
        reload_includes=["*.html"],  # error: HW005
        reload_excludes=["*.tmp"],
    )

    # Compliant: reload on, reload decided at run time, or the option left at its default.
    uvicorn.run("hw005_reload_options:app", reload=True, reload_dirs=["src"])
    uvicorn.run("hw005_reload_options:app", reload="--dev" in sys.argv, reload_delay=1.0)
    uvicorn.run("hw005_reload_options:app", reload_dirs=None)
