"""Import strings ("pkg.mod:attr") to objects, with errors that name what is missing."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import linecache
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType, ModuleType
from typing import Any

from hatchway._errors import AppImportError, closest

_OWN_DIR = os.path.dirname(os.path.abspath(__file__))
_IMPORTLIB_DIR = os.path.dirname(os.path.abspath(importlib.__file__ or ""))


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` with hatchway's and importlib's frames removed: the user's code only."""
    te = traceback.TracebackException.from_exception(exc)
    _trim(te)
    return "".join(te.format())


def _trim(te: traceback.TracebackException) -> None:
    kept = [
        frame
        for frame in te.stack
        if not frame.filename.startswith((_OWN_DIR, _IMPORTLIB_DIR + os.sep, "<frozen importlib"))
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
        module = _import_module(module_str, import_str)
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


def _import_module(module_str: str, import_str: str) -> ModuleType:
    try:
        with app_import_scope(import_str):
            return importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        top = module_str.partition(".")[0]
        if exc.name != top or _cwd_on_path():
            raise
        # As the command line does, look in the current directory too: ``python pkg/server.py`` puts pkg/ on
        # sys.path, not the directory holding pkg/, so run("pkg.server:app") would not find its own package.
        # The directory stays on sys.path only when the module is found there.
        cwd = os.getcwd()
        sys.path.insert(0, cwd)
        importlib.invalidate_caches()
        try:
            with app_import_scope(import_str):
                return importlib.import_module(module_str)
        except ModuleNotFoundError as again:
            if again.name != top:
                raise  # found in the current directory; something it imports is missing
            if cwd in sys.path:
                sys.path.remove(cwd)
            raise exc from None


def _cwd_on_path() -> bool:
    cwd = os.getcwd()
    return any(os.path.abspath(entry or os.curdir) == cwd for entry in sys.path if isinstance(entry, str))


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


# -- an app object -> its import string -------------------------------------------------------------------
# A child process is a fresh interpreter: it can only get the app by importing it. So for an object we look for
# a module-level variable that holds exactly this object, in a module the child can import by name.

_state = threading.local()


@contextlib.contextmanager
def app_import_scope(import_str: str) -> Iterator[None]:
    # While hatchway imports the user's module, a module-level ``hatchway.run(...)`` in it (a script without
    # an ``if __name__ == "__main__":`` guard) must not start a second server; run() asks importing_app().
    stack: list[str] = getattr(_state, "stack", [])
    _state.stack = stack
    stack.append(import_str)
    try:
        yield
    finally:
        stack.pop()


def importing_app() -> str | None:
    """The import string hatchway is importing in this thread right now, if any."""
    stack: list[str] = getattr(_state, "stack", [])
    return stack[-1] if stack else None


@dataclass(frozen=True)
class ImportStringResult:
    """Where an app object can be imported from, or why it cannot.

    ``import_string`` is ``"module:attr"`` or None; ``path`` is the directory that must be on ``sys.path``
    for a new interpreter to import ``module`` (None when it already is importable); ``reason`` and
    ``suggestion`` explain a None.
    """

    import_string: str | None
    path: str | None = None
    reason: str | None = None
    suggestion: str | None = None


_PREFERRED_NAMES = ("app", "application", "api", "asgi", "create_app", "make_app", "get_app")


def find_import_string(obj: Any) -> str | None:
    """The ``"module:attr"`` string a new interpreter can import to get ``obj``; None when there is none.

    ``explain_import_string(obj)`` says why not.
    """
    return explain_import_string(obj).import_string


def explain_import_string(obj: Any, *, example: str = "reload=True") -> ImportStringResult:
    """Find ``obj`` as a module-level variable of an importable module, or explain why it cannot be found.

    Looked up, in order: the module named by ``obj.__module__``; the modules of the calling frames (the code
    that called ``hatchway.run``), outside hatchway; ``__main__``. ``__main__`` is translated to its real
    module name (``python -m pkg.mod`` -> ``pkg.mod``; ``python pkg/main.py`` -> ``pkg.main`` when ``pkg`` is
    a package, else ``main``), because that is the name the child process imports it under.
    """
    if isinstance(obj, str):
        module_str, _, attr = obj.partition(":")
        main = sys.modules.get("__main__")
        if module_str == "__main__" and attr and main is not None:
            # "__main__:app" names the script that called run(); in a new process __main__ is hatchway's own
            # module, so the script must be imported under its real name (or cannot be, from python -c).
            return _main_module_name(main, attr)
        return ImportStringResult(obj)
    candidates: list[ModuleType] = []
    owner = sys.modules.get(getattr(obj, "__module__", None) or "")
    if owner is not None:
        candidates.append(owner)
    local: tuple[str, FrameType] | None = None
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (isinstance(name, str) and (name == "hatchway" or name.startswith("hatchway."))):
            module = sys.modules.get(name)
            if module is not None and vars(module) is frame.f_globals and module not in candidates:
                candidates.append(module)
            if local is None and frame.f_code.co_name != "<module>":
                for var, value in frame.f_locals.items():
                    if value is obj:
                        local = (var, frame)
                        break
        frame = frame.f_back  # type: ignore[assignment]
    main = sys.modules.get("__main__")
    if main is not None and main not in candidates:
        candidates.append(main)
    # A real module (importable as it is) beats __main__, whose top-level code the child would have to re-run.
    candidates.sort(key=lambda m: m.__name__ == "__main__")
    main_problem: ImportStringResult | None = None
    for module in candidates:
        attr = _attribute_holding(module, obj)
        if attr is None:
            continue
        if module.__name__ != "__main__":
            return ImportStringResult(f"{module.__name__}:{attr}")
        found = _main_module_name(module, attr)
        if found.import_string is not None:
            return found
        main_problem = found
    if main_problem is not None:
        return main_problem
    return _not_found(obj, local, example)


def _attribute_holding(module: ModuleType, obj: Any) -> str | None:
    namespace = vars(module)
    qualname = getattr(obj, "__qualname__", None)
    if (
        isinstance(qualname, str)
        and "<" not in qualname
        and "." not in qualname
        and namespace.get(qualname) is obj
    ):
        return qualname
    names = [name for name, value in list(namespace.items()) if value is obj]
    if not names:
        return None
    for preferred in _PREFERRED_NAMES:
        if preferred in names:
            return preferred
    public = [n for n in names if not n.startswith("_")]
    return (public or names)[0]


def _main_module_name(main: ModuleType, attr: str) -> ImportStringResult:
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        # python -m pkg.mod: the spec has the real name, and the child's sys.path (the parent's) finds it.
        return ImportStringResult(f"{spec.name}:{attr}")
    filename = getattr(main, "__file__", None)
    if not filename:
        return ImportStringResult(
            None,
            reason="the app was defined in code that has no file (python -c, an interactive session or a "
            "notebook), so a new process cannot import it",
            suggestion=f'put `{attr} = ...` in a file such as main.py and call hatchway.run("main:{attr}", ...) '
            "from `python main.py` or run `hatchway main:app`",
        )
    path = os.path.abspath(filename)
    directory, base = os.path.split(path)
    stem, ext = os.path.splitext(base)
    if ext != ".py":
        return ImportStringResult(
            None,
            reason=f"the script {filename!r} does not end in .py, so it cannot be imported by name",
            suggestion=f'rename it to main.py and call hatchway.run("main:{attr}", ...)',
        )
    parts = [stem]
    # Walk up through packages (directories with __init__.py), as the CLI would find pkg.main from the root.
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
        if not package:
            break
    name = ".".join(parts)
    top = parts[0]
    shadowed = sys.modules.get(top)
    if (
        shadowed is not None
        and shadowed is not main
        and not _is_under(getattr(shadowed, "__file__", None), directory)
    ):
        return ImportStringResult(
            None,
            reason=f"{filename!r} would be imported as {top!r}, which is already the name of another module "
            f"({getattr(shadowed, '__file__', None) or 'built in'})",
            suggestion=f"rename {base} (for example to main.py) so it does not shadow {top!r}",
        )
    return ImportStringResult(f"{name}:{attr}", path=directory)


def _is_under(filename: str | None, directory: str) -> bool:
    if not filename:
        return False
    return os.path.abspath(filename).startswith(directory.rstrip(os.sep) + os.sep)


def _not_found(obj: Any, local: tuple[str, FrameType] | None, example: str) -> ImportStringResult:
    # An ``async def`` function is an ASGI app; a plain function is most likely a factory.
    kind = "factory" if inspect.isfunction(obj) and not inspect.iscoroutinefunction(obj) else "app"
    qualname = getattr(obj, "__qualname__", "")
    if getattr(obj, "__name__", None) == "<lambda>":
        return ImportStringResult(
            None,
            reason="a lambda has no name a new process could import",
            suggestion=f"define it with `def` or assign it at module level (app = ...) and call "
            f'hatchway.run("main:app", {example})',
        )
    if local is not None:
        var, frame = local
        where = os.path.basename(frame.f_code.co_filename)
        module = os.path.splitext(where)[0] or "main"
        line = _assignment_line(frame, var) or f"{var} = ..."
        return ImportStringResult(
            None,
            reason=f"the {kind} {var!r} was built inside the function {frame.f_code.co_name}() in {where}, "
            "so a new process cannot import it",
            suggestion=f"move `{line}` to module level in {where} and call "
            f'hatchway.run("{module}:{var}", {example})',
        )
    if "<locals>" in qualname:
        return ImportStringResult(
            None,
            reason=f"the {kind} {qualname} is defined inside a function, so a new process cannot import it",
            suggestion=f'define it at module level and call hatchway.run("module:name", {example})',
        )
    return ImportStringResult(
        None,
        reason=f"no module-level variable holds this {kind} ({obj!r})",
        suggestion=f'assign it at module level (app = ...) in main.py and call hatchway.run("main:app", {example})',
    )


def _assignment_line(frame: FrameType, var: str) -> str | None:
    code = frame.f_code
    pattern = re.compile(rf"^\s*{re.escape(var)}\s*(:[^=]*)?=(?!=)\s*(.+?)\s*$")
    found = None
    for lineno in range(code.co_firstlineno, frame.f_lineno + 1):
        text = linecache.getline(code.co_filename, lineno)
        match = pattern.match(text)
        if match:
            found = f"{var} = {match.group(2)}"
    return found
