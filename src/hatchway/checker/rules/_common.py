"""Helpers shared by the rules: which calls take options, how to name them, and how an app is passed."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from hatchway.checker._context import FileContext, ServerCall
from hatchway.checker._imports import spelled

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
