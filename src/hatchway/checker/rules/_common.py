"""Helpers shared by the rules: which calls take options, how to name them, and how an app is passed."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Literal

from hatchway.checker._context import FileContext, ServerCall
from hatchway.checker._imports import spelled
from hatchway.checker._project import own_nodes

#: Options that make uvicorn start a supervisor (reloader or worker manager) in new processes. ``debug``
#: is uvicorn's old spelling of reload and is still found in code written for it.
PROCESS_OPTIONS = ("reload", "workers", "debug")


def option_calls(ctx: FileContext) -> Iterator[ServerCall]:
    """``run(...)`` and ``Config(...)`` calls: the ones that take options."""
    return (c for c in ctx.calls if c.ref.kind in ("run", "Config"))


def label(call: ServerCall) -> str:
    return f"{call.ref.spelled}()"


def process_option(call: ServerCall) -> str | None:
    """The first of reload/workers/debug that is (or may be) on, as written: ``reload=True``."""
    for name in PROCESS_OPTIONS:
        if name == "debug" and call.ref.flavor != "uvicorn":
            continue
        if call.state(name, threshold=1 if name == "workers" else 0) in ("on", "dynamic"):
            return f"{name}={ast.unparse(call.keywords[name].value)}"
    return None


def is_import_string(expr: ast.expr | None) -> bool:
    return isinstance(expr, ast.Constant) and isinstance(expr.value, str)


def module_factory(ctx: FileContext, call: ServerCall, name: str) -> bool:
    """Whether ``name`` at the call refers to a module-level factory-shaped def of this file."""
    func = ctx.function_of(call.node)
    if func is not None and ctx.bound_locally(name, func):
        return False
    binding = ctx.module_binding(name)
    return isinstance(binding, ast.FunctionDef) and name in ctx.info.factories


def text(expr: ast.expr) -> str:
    return spelled(expr)


AppKind = Literal["object", "string", "unknown"]
# Calls that commonly produce an import string from configuration rather than build an app.
_STRING_SOURCES = ("os.", "sys.", "str.")
_STRING_BUILTINS = frozenset({"str", "format", "getattr", "input", "repr", "next", "vars"})


def app_kind(ctx: FileContext, expr: ast.expr, anchor: ast.AST, depth: int = 0) -> AppKind:
    """Whether ``expr`` (seen at ``anchor``) is an app object, an import string, or cannot be told.

    Only "object" is reported by HW001, so anything that might be a string read from settings
    (a parameter, an attribute, ``os.environ[...]``, an imported ALL_CAPS constant) is "unknown".
    """
    if depth > 4:
        return "unknown"
    if isinstance(expr, ast.JoinedStr) or (isinstance(expr, ast.Constant) and isinstance(expr.value, str)):
        return "string"
    if isinstance(expr, ast.Constant):
        return "unknown" if expr.value is None else "object"
    if isinstance(expr, ast.Lambda):
        return "object"
    if isinstance(expr, ast.Call):
        return _call_kind(ctx, expr)
    if not isinstance(expr, ast.Name):
        return "unknown"
    func = ctx.function_of(anchor)
    if func is not None and ctx.bound_locally(expr.id, func):
        return _local_kind(ctx, expr.id, func, depth)
    binding = ctx.module_binding(expr.id)
    if isinstance(binding, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return "object"
    if isinstance(binding, (ast.Import, ast.ImportFrom)):
        return "unknown" if expr.id.isupper() else "object"
    if isinstance(binding, (ast.Assign, ast.AnnAssign)) and binding.value is not None:
        targets = binding.targets if isinstance(binding, ast.Assign) else [binding.target]
        if all(isinstance(t, ast.Name) for t in targets):
            return app_kind(ctx, binding.value, binding, depth + 1)
    return "unknown"


def _local_kind(ctx: FileContext, name: str, func: ast.AST, depth: int) -> AppKind:
    kinds: set[AppKind] = set()
    for node in own_nodes(func):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            kinds.add("object")  # a def or class inside the function: an app (or factory) by construction
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            kinds.add(app_kind(ctx, node.value, node, depth + 1))
        elif (
            isinstance(node, ast.Name)
            and node.id == name
            and isinstance(node.ctx, ast.Store)
            and not isinstance(ctx.parents.get(node), ast.Assign)
        ):
            return "unknown"  # bound by for/with/unpacking/walrus: value not visible
    if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = func.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        if any(p is not None and p.arg == name for p in params):
            return "unknown"
    return kinds.pop() if len(kinds) == 1 else "unknown"


def _call_kind(ctx: FileContext, call: ast.Call) -> AppKind:
    callee = call.func
    if isinstance(callee, ast.Name):
        binding = ctx.module_binding(callee.id)
        if isinstance(binding, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return "object"
        if binding is None and ctx.imports.dotted(callee) is None:
            return "unknown" if callee.id in _STRING_BUILTINS else "object"  # a builtin such as object()
    dotted = ctx.imports.dotted(callee)
    if dotted is None or dotted.startswith(_STRING_SOURCES):
        return "unknown"
    # An imported class (FastAPI(), Starlette()) or factory (create_app()) builds an app.
    return "object"
