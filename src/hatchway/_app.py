"""The application as the server calls it: import, factory, interface detection and adapters."""

from __future__ import annotations

import importlib
import inspect
import itertools
import logging
import os
import traceback
from typing import TYPE_CHECKING, Any

from hatchway._errors import AppImportError
from hatchway._importer import import_from_string, insert_app_dir
from hatchway._logs import TRACE_LOG_LEVEL, logger

# Frames from these places are machinery, not the user's code: hatchway itself and importlib (both the
# frozen bootstrap and importlib/__init__.py, whose import_module() is the first frame of every import error).
_MACHINERY = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(os.path.abspath(importlib.__file__)) + os.sep,
    "<frozen importlib",
)
asgi_logger = logging.getLogger("hatchway.asgi")
_ids = itertools.count(1)


def user_traceback(exc: BaseException) -> str:
    """The formatted traceback of ``exc`` with hatchway's and importlib's frames removed."""
    te = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    stack = [te]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        frames = [f for f in current.stack if not f.filename.startswith(_MACHINERY)]
        current.stack = traceback.StackSummary.from_list(frames)
        stack += [t for t in (current.__cause__, current.__context__) if t is not None]
    return "".join(te.format())


if TYPE_CHECKING:
    from hatchway._config import Config


class ASGI2Middleware:
    """Calls an ASGI 2 (double-callable) app the ASGI 3 way."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        instance = self.app(scope)
        await instance(receive, send)


def asgi_version(app: Any) -> str:
    """The ASGI version scopes report for ``app`` as loaded: "2.0" behind the ASGI 2 adapter."""
    return "2.0" if isinstance(app, ASGI2Middleware) else "3.0"


def _is_factory(obj: Any) -> bool:
    if not inspect.isfunction(obj) or inspect.iscoroutinefunction(obj):
        return False
    params = inspect.signature(obj).parameters.values()
    return not any(
        p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params
    )


def _is_asgi3(app: Any) -> bool:
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    if inspect.isfunction(app):
        return inspect.iscoroutinefunction(app)
    call = getattr(app, "__call__", None)  # noqa: B004 - the callable's own __call__ is what is awaited
    return inspect.iscoroutinefunction(call)


def load_app(config: Config) -> Any:
    """Import (if needed), build (factory) and wrap the app; raises AppImportError with a clear cause."""
    if isinstance(config.app, str) and config.app_dir is not None:
        # As uvicorn: the CLI passes app_dir="" (the current directory); run(app_dir=None) leaves sys.path alone.
        insert_app_dir(config.app_dir)
    try:
        app = import_from_string(config.app)
    except AppImportError as exc:
        if exc.user_traceback is not None and exc.__cause__ is not None:
            exc.user_traceback = user_traceback(exc.__cause__)
        raise
    if config.factory or _is_factory(app):
        if not config.factory:
            logger.warning(
                "ASGI app factory detected. Using it, but please consider setting the --factory flag explicitly."
            )
        if not callable(app):
            raise AppImportError(f"The app factory {config.app!r} is not callable.", code="HW204")
        try:
            app = app()
        except Exception as exc:
            raise AppImportError(
                f"Error calling the app factory {config.app!r}: {type(exc).__name__}: {exc}",
                code="HW204",
                user_traceback=user_traceback(exc),
            ) from exc
    if not callable(app):
        raise AppImportError(
            f"The app {config.app!r} is not callable: got {type(app).__name__}.", code="HW205"
        )
    interface = config.interface
    if interface == "auto":
        interface = "asgi3" if _is_asgi3(app) else "asgi2"
    if interface == "wsgi":
        from hatchway._wsgi import WSGIMiddleware  # only WSGI apps need it (and its thread pool)

        app = WSGIMiddleware(app)
    elif interface == "asgi2":
        app = ASGI2Middleware(app)
    if asgi_logger.isEnabledFor(TRACE_LOG_LEVEL):
        app = MessageLogger(app)
    return app


class MessageLogger:
    """With ``log_level="trace"``: log every ASGI message exchanged with the app, as uvicorn does."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        task = next(_ids)
        asgi_logger.log(TRACE_LOG_LEVEL, "ASGI [%d] Started scope=%s", task, _short(scope))

        async def logged_receive() -> Any:
            message = await receive()
            asgi_logger.log(TRACE_LOG_LEVEL, "ASGI [%d] Receive %s", task, _short(message))
            return message

        async def logged_send(message: Any) -> None:
            asgi_logger.log(TRACE_LOG_LEVEL, "ASGI [%d] Send %s", task, _short(message))
            await send(message)

        try:
            await self.app(scope, logged_receive, logged_send)
        except BaseException:
            asgi_logger.log(TRACE_LOG_LEVEL, "ASGI [%d] Raised exception", task)
            raise
        asgi_logger.log(TRACE_LOG_LEVEL, "ASGI [%d] Completed", task)


def _short(message: dict[str, Any]) -> dict[str, Any]:
    # Bodies can be large or secret: log their size only, as uvicorn's message logger does.
    return {
        k: (f"<{len(v)} bytes>" if k in ("body", "bytes", "text") and isinstance(v, (bytes, str)) else v)
        for k, v in message.items()
        if k != "state"
    }
