"""HW011: hatchway's run() with reload or workers given an app that only exists inside a function."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from hatchway.checker._context import FileContext, Function
from hatchway.checker._model import Finding, rule
from hatchway.checker._project import own_nodes
from hatchway.checker.rules._common import label, option_calls, process_option

#: Calls that fetch an existing object by name (which may well be module-level) rather than build one.
_FETCHERS = ("import", "getattr", "get_app", "load")
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@rule(
    "HW011",
    "local-app-with-reload",
    "hatchway run() with reload or workers given an app built inside a function (no import string exists)",
    "{func} gets {app}, built inside {scope}() by `{origin}`, with {option}: the new processes import the app "
    "by name, and a function's local variable has none, so run() raises ConfigError (HW106) before serving; "
    "{fix}",
)
def check(ctx: FileContext) -> Iterator[Finding]:
    # uvicorn code gets HW001 for every app object, local or not; hatchway finds module-level ones itself.
    for call in option_calls(ctx):
        if call.ref.flavor != "hatchway" or call.ref.kind != "run" or not isinstance(call.app, ast.Name):
            continue
        option = process_option(call)
        if option is None:
            continue
        found = local_origin(ctx, call.app.id, call.node)
        if found is None:
            continue
        scope, origin = found
        module = ctx.module_name or "main"
        fix = (
            f"assign it at module level (`{call.app.id} = ...` outside any function) and pass that, or pass the "
            f'import string "{module}:{call.app.id}"'
        )
        yield ctx.finding(
            check,
            call.app,
            func=label(call),
            app=call.app.id,
            scope=getattr(scope, "name", "<lambda>"),
            origin=_describe(origin),
            option=option,
            fix=fix,
        )


def local_origin(ctx: FileContext, name: str, at: ast.AST) -> tuple[Function, ast.AST] | None:
    """The function ``name`` is local to at ``at`` and the statement building it, when it is certainly new there.

    Certain means every binding of ``name`` in that function builds a new object: a call of a class or factory
    (``FastAPI()``, ``create_app()``), a lambda, or a nested def/class. An alias of another name, a parameter,
    ``global``/``nonlocal``, or a value fetched by name (``import_from_string(...)``) may be module-level,
    which hatchway finds; those are not reported.
    """
    for scope in ctx.ancestors(at):
        if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if not ctx.bound_locally(name, scope):
            continue  # a free variable: look in the enclosing function
        return _new_in(ctx, name, scope)
    return None


def _new_in(ctx: FileContext, name: str, func: Function) -> tuple[Function, ast.AST] | None:
    args = func.args
    if any(p is not None and p.arg == name for p in [*args.posonlyargs, *args.args, *args.kwonlyargs]):
        return None
    if any(p is not None and p.arg == name for p in (args.vararg, args.kwarg)):
        return None
    origins: list[ast.AST] = []
    for node in own_nodes(func):
        if isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
            return None
        if isinstance(node, _DEFS) and node.name == name:
            origins.append(node)
        elif isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            parent = ctx.parents.get(node)
            simple = (isinstance(parent, ast.Assign) and parent.targets == [node]) or (
                isinstance(parent, ast.AnnAssign) and parent.target is node
            )
            value = getattr(parent, "value", None)
            if not (simple and isinstance(value, ast.expr) and _builds(ctx, value)):
                return None  # unpacking, for, with, += ...: what it holds cannot be seen
            assert parent is not None
            origins.append(parent)
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (a.asname or a.name.partition(".")[0]) == name for a in node.names
        ):
            return None
    return (func, origins[-1]) if origins else None


def _builds(ctx: FileContext, value: ast.expr) -> bool:
    """Whether ``value`` certainly makes a new object, which no module-level variable can hold."""
    if isinstance(value, ast.Lambda):
        return True
    if not isinstance(value, ast.Call):
        return False
    callee = value.func
    dotted = ctx.imports.dotted(callee)
    if dotted is not None:
        last = dotted.rpartition(".")[2].lower()
        return not dotted.startswith(("os.", "sys.", "importlib.")) and not any(f in last for f in _FETCHERS)
    if isinstance(callee, ast.Name):
        if any(ctx.bound_locally(callee.id, f) for f in _functions_around(ctx, value)):
            return False  # a local callable: what it returns cannot be seen
        binding = ctx.module_binding(callee.id)
        if isinstance(binding, ast.ClassDef):
            return True
        if isinstance(binding, ast.FunctionDef) and not any(f in callee.id.lower() for f in _FETCHERS):
            return not _returns_module_name(ctx, binding)
    return False


def _functions_around(ctx: FileContext, node: ast.AST) -> list[Function]:
    return [
        a for a in ctx.ancestors(node) if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    ]


def _returns_module_name(ctx: FileContext, func: ast.FunctionDef) -> bool:
    """``return app`` of a module-level name: the factory hands out an object hatchway can find."""
    for node in own_nodes(func):
        if isinstance(node, ast.Return):
            value = node.value
            if not isinstance(value, ast.Name) or ctx.bound_locally(value.id, func):
                continue
            if ctx.module_binding(value.id) is not None:
                return True
    return False


def _describe(origin: ast.AST) -> str:
    if isinstance(origin, ast.ClassDef):
        return f"class {origin.name}"
    if isinstance(origin, (ast.FunctionDef, ast.AsyncFunctionDef)):
        prefix = "async def" if isinstance(origin, ast.AsyncFunctionDef) else "def"
        return f"{prefix} {origin.name}(...)"
    text = ast.unparse(origin).splitlines()[0]
    return text if len(text) <= 60 else text[:57] + "..."
