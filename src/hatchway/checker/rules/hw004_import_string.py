"""HW004: an import string that does not resolve to a module and module-level name in the project."""

from __future__ import annotations

import ast
import functools
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

from hatchway._errors import closest
from hatchway.checker._context import FileContext, ServerCall
from hatchway.checker._model import Finding, rule
from hatchway.checker._project import ModuleInfo, Resolution
from hatchway.checker.rules._common import is_import_string, option_calls


@rule(
    "HW004",
    "unresolved-import-string",
    "import string whose module or module-level name does not exist in the project",
    "import string {string!r} does not resolve: {problem}, so the server fails at start-up when it imports "
    "it; {hint}",
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for call in option_calls(ctx):
        app = call.app
        if not is_import_string(app):
            continue
        assert isinstance(app, ast.Constant)
        assert isinstance(app.value, str)
        problem = _problem(ctx, call, app.value)
        if problem is not None:
            yield ctx.finding(check, app, string=app.value, problem=problem[0], hint=problem[1])


def bases(ctx: FileContext, call: ServerCall) -> list[Path]:
    """Directories the import may start from, most likely first.

    ``app_dir=``, the package root and the file's own directory; then, because the server is often started
    from elsewhere in the project (a ``scripts/`` file naming ``"app.main:app"``), every directory up to
    the project's top (the nearest pyproject.toml, setup.py or .git) and its ``src/``.
    """
    here = ctx.file.absolute().parent
    root = ctx.project.package_root(here)
    found: list[Path] = []
    app_dir = call.value("app_dir")
    if isinstance(app_dir, str) and app_dir:
        found += [here / app_dir, root / app_dir]
    found += [root, here]
    top = ctx.project.top(here)
    if top is not None:
        found += [d for d in here.parents if d == top or top in d.parents]
        found.append(top / "src")
    return list(dict.fromkeys(p.resolve() if ".." in p.parts else p for p in found))


def resolve_info(ctx: FileContext, call: ServerCall, module: str) -> tuple[Resolution, ModuleInfo | None]:
    if module == ctx.module_name and not ctx.file.exists():
        # check_source() on text that lives at no real path: the module it names as itself is this text.
        return Resolution("found", path=ctx.file.absolute()), ctx.info
    res = ctx.project.resolve(module, bases(ctx, call))
    if res.status != "found" or res.path is None:
        return res, None
    if res.path == ctx.file.absolute():
        return res, ctx.info
    return res, ctx.project.info(res.path)


def _problem(ctx: FileContext, call: ServerCall, string: str) -> tuple[str, str] | None:
    module, _, attrs = string.partition(":")
    if not module or not attrs:
        return "it is not in the form <module>:<attribute>", 'write it as "module:app", e.g. "main:app"'
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts):
        return (
            f"{module!r} is not a valid module name",
            "rename the file so every part is a Python identifier",
        )
    attr = attrs.partition(".")[0]
    res, info = resolve_info(ctx, call, module)
    if res.status == "found" and info is not None and not info.dynamic and attr not in info.names:
        near = closest(attr, info.names)
        hint = f'did you mean "{module}:{near}"?' if near else "name a variable assigned at module level"
        return f"module {module!r} has no module-level name {attr!r}", hint
    if res.status == "missing" and (res.certain or res.suggestion):
        hint = f"did you mean {res.suggestion!r}?" if res.suggestion else "check the module path"
        return f"there is no module {res.missing!r} in the project", hint
    if res.status == "absent" and not _importable(parts[0]) and not _elsewhere_in_project(ctx, parts[0]):
        if res.suggestion:
            return f"there is no module {parts[0]!r} here or installed", f"did you mean {res.suggestion!r}?"
        return _absent(ctx, call, parts[0])
    return None


def _elsewhere_in_project(ctx: FileContext, top: str) -> bool:
    """Whether ``top`` exists anywhere under the project's top directory, or is a declared dependency.

    The server may be started from another directory than the ones ``bases`` guesses, and a dependency is
    installed where the project runs even when the checker runs elsewhere: neither is reported missing.
    """
    project_top = ctx.project.top(ctx.file.absolute().parent)
    if project_top is None:
        return False
    if ctx.project.declares(project_top, top):
        return True  # a declared dependency: installed where the project runs
    names = ctx.project.names_anywhere(project_top)
    return names is None or top in names  # too big to walk: it may be there


def _absent(ctx: FileContext, call: ServerCall, top: str) -> tuple[str, str] | None:
    """A module found neither in the project nor in this environment, when both answers can be trusted.

    "Not installed" is trusted only when the file's own imports are installed here; otherwise the checker
    runs where the project's dependencies are not (a pre-commit environment), and a missing module may just
    be one of them.
    """
    if not _environment_matches(ctx, call):
        return None
    here = ctx.file.absolute().parent
    where = ctx.project.top(here) or here
    return (
        f"there is no module {top!r} in the project (nothing by that name under {str(where)!r}) and none is "
        f"installed in this environment ({sys.prefix})",
        "check the spelling; if the module lives in a directory the server is started from, pass app_dir= "
        "with that directory; if it is a package, add it to the project's dependencies and install it",
    )


def _environment_matches(ctx: FileContext, call: ServerCall) -> bool:
    """Whether every module the file imports at its top level is the project's, the stdlib's or installed."""
    for node in ctx.tree.body:
        if isinstance(node, ast.Import):
            tops = [alias.name.partition(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops = [node.module.partition(".")[0]]
        else:
            continue  # imports under try/if (optional or type-checking ones) say nothing about the environment
        for top in tops:
            if top == "__future__" or _importable(top):
                continue
            if ctx.project.resolve(top, bases(ctx, call)).status != "absent":
                continue
            return False
    return True


@functools.lru_cache(maxsize=1024)
def _importable(top: str) -> bool:
    """Whether the top-level module ``top`` exists outside the project (stdlib or installed); unsure: yes.

    find_spec on a top-level name only asks the finders, it imports and runs nothing; a dotted name would
    import its parent packages, so only the first part is ever looked up.
    """
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return True
