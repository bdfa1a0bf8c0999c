"""Import strings ("pkg.mod:attr") to objects, with errors that name what is missing."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

from hatchway._errors import AppImportError, closest

_OWN_DIR = os.path.dirname(os.path.abspath(__file__))


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` with hatchway's and importlib's frames removed: the user's code only."""
    te = traceback.TracebackException.from_exception(exc)
    _trim(te)
    return "".join(te.format())


def _trim(te: traceback.TracebackException) -> None:
    kept = [
        frame
        for frame in te.stack
        if not frame.filename.startswith(_OWN_DIR) and not frame.filename.startswith("<frozen importlib")
    ]
    te.stack = traceback.StackSummary.from_list(kept)
    if te.__cause__ is not None:
        _trim(te.__cause__)
    if te.__context__ is not None:
        _trim(te.__context__)


def import_from_string(import_str: Any) -> Any:
    """Return the object named by ``"module:attr.sub"``; objects pass through unchanged.

    Raises AppImportError with code HW201 (module missing), HW202 (attribute missing) or HW203 (the user's
    module raised while being imported; the trimmed traceback is in ``user_traceback``).
    """
    if not isinstance(import_str, str):
        return import_str
    module_str, _, attrs_str = import_str.partition(":")
    if not module_str or not attrs_str:
        raise AppImportError(
            f"Import string {import_str!r} must be in format '<module>:<attribute>'.",
            code="HW103",
            import_string=import_str,
        )
    try:
        module = importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_str
        if module_str == missing or module_str.startswith(missing + "."):
            where = f"the current directory ({os.getcwd()})"
            raise AppImportError(
                f"Could not import module {missing!r} for {import_str!r}: no such module in {where} or on sys.path.",
                code="HW201",
                import_string=import_str,
            ) from None
        raise _user_error(import_str, exc) from exc
    except Exception as exc:
        raise _user_error(import_str, exc) from exc

    instance: Any = module
    try:
        for attr in attrs_str.split("."):
            instance = getattr(instance, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        near = closest(attrs_str.split(".")[-1], names)
        hint = f" Did you mean {module_str}:{near}?" if near else ""
        raise AppImportError(
            f"Attribute {attrs_str!r} not found in module {module_str!r}.{hint}",
            code="HW202",
            import_string=import_str,
        ) from None
    return instance


def _user_error(import_str: str, exc: BaseException) -> AppImportError:
    return AppImportError(
        f"Error while importing {import_str!r}: {type(exc).__name__}: {exc}",
        code="HW203",
        import_string=import_str,
        user_traceback=user_traceback(exc),
    )


def insert_app_dir(app_dir: str | None) -> None:
    """Put ``app_dir`` (default: the current directory) first on sys.path, as the CLI does."""
    path = os.path.abspath(app_dir) if app_dir else os.getcwd()
    if not sys.path or sys.path[0] != path:
        sys.path.insert(0, path)
