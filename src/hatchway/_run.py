"""run(): one server, the reloader or the workers. Raises on failure; never calls sys.exit."""

from __future__ import annotations

import asyncio
from typing import Any

from hatchway._config import Config
from hatchway._errors import ServerStateError
from hatchway._logs import configure_logging
from hatchway._server import Server


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run(app: Any, **kwargs: Any) -> None:
    """Serve ``app`` (an ASGI app, a factory, or an import string such as ``"main:app"``) until stopped.

    Accepts uvicorn's ``run`` parameters. With ``reload=True`` or ``workers=N`` an app object works too:
    hatchway finds its import string. Raises ConfigError for bad options and StartupError subclasses when
    the server cannot start.
    """
    config = Config(app, **kwargs)
    if _in_running_loop():
        raise ServerStateError(
            "hatchway.run() cannot start inside a running event loop; "
            "use `await hatchway.Server(hatchway.Config(app)).serve()` or `async with hatchway.serving(app)`."
        )
    if config.use_subprocess:
        configure_logging(config)
        from hatchway._supervisors import supervise

        supervise(config)
        return
    Server(config).run()
