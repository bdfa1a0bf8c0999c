"""The application as the server calls it: import, factory, interface detection and adapters."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from hatchway._errors import AppImportError
from hatchway._importer import import_from_string, insert_app_dir, user_traceback
from hatchway._logs import logger

if TYPE_CHECKING:
    from hatchway._config import Config


class ASGI2Middleware:
    """Calls an ASGI 2 (double-callable) app the ASGI 3 way."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        instance = self.app(scope)
        await instance(receive, send)


def _is_factory(obj: Any) -> bool:
    if not inspect.isfunction(obj) or inspect.iscoroutinefunction(obj):
        return False
    params = inspect.signature(obj).parameters.values()
    return not any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def _is_asgi3(app: Any) -> bool:
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    if inspect.isfunction(app):
        return inspect.iscoroutinefunction(app)
    call = getattr(app, "__call__", None)  # noqa: B004 - the callable's own __call__ is what is awaited
    return inspect.iscoroutinefunction(call)


def load_app(config: Config) -> Any:
    """Import (if needed), build (factory) and wrap the app; raises AppImportError with a clear cause."""
    if isinstance(config.app, str):
        insert_app_dir(config.app_dir)
    app = import_from_string(config.app)
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
        raise AppImportError(f"The app {config.app!r} is not callable: got {type(app).__name__}.", code="HW205")
    interface = config.interface
    if interface == "auto":
        interface = "asgi3" if _is_asgi3(app) else "asgi2"
    if interface == "wsgi":
        from hatchway._wsgi import WSGIMiddleware

        return WSGIMiddleware(app)
    if interface == "asgi2":
        return ASGI2Middleware(app)
    return app
