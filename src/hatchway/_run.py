"""run(): one server, the reloader or the workers. Raises on failure; never calls sys.exit."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from hatchway._config import Config
from hatchway._errors import HatchwayError, ServerStateError, for_caller
from hatchway._importer import importing_app
from hatchway._logs import configure_logging, logger
from hatchway._server import Server
from hatchway._supervisors import supervise
from hatchway._supervisors._child import note_unguarded_run

_GUARD_HINT = (
    "hatchway.run() was called while hatchway imports %r (the module calls run() at top level, without "
    '`if __name__ == "__main__":`); this call does nothing, the server is already starting. '
    "Put the call under that guard to silence this message."
)


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run(app: Any, **kwargs: Any) -> None:
    """Serve ``app`` (an ASGI app, a factory, or an import string such as ``"main:app"``) until stopped.

    Accepts uvicorn's ``run`` parameters. With ``reload=True`` or ``workers=N`` an app object works too:
    hatchway finds its import string (ConfigError HW106 explains when none exists). Raises ConfigError for
    bad options and StartupError subclasses when the server cannot start.

    Called from a module that hatchway is importing (a script without a main guard, re-imported by a
    reload child, a worker or the CLI), ``run()`` returns at once: the server is already being started.
    """
    importing = importing_app()
    if importing is not None:
        if note_unguarded_run():
            logger.info(_GUARD_HINT, importing)
        return
    try:
        _run(app, kwargs)
    except HatchwayError as exc:
        # The public boundary: what the user sees is their own line and the message, not hatchway's frames.
        for_caller(exc)
        raise


def _run(app: Any, kwargs: dict[str, Any]) -> None:
    config = Config(app, **kwargs)
    if _in_running_loop():
        raise ServerStateError(
            "hatchway.run() cannot start inside a running event loop; "
            "use `await hatchway.Server(hatchway.Config(app)).serve()` or `async with hatchway.serving(app)`."
        )
    if config.use_subprocess:
        configure_logging(config)
        supervise(config)
        return
    Server(config).run()


def _signature() -> inspect.Signature:
    # run() takes exactly Config's parameters (app positional, the rest by keyword), as uvicorn.run does;
    # publishing them lets editors and inspect.signature show the options.
    params = list(inspect.signature(Config).parameters.values())
    rest = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params[1:]]
    return inspect.Signature([params[0], *rest], return_annotation=None)


run.__signature__ = _signature()  # type: ignore[attr-defined]
