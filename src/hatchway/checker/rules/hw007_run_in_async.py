"""HW007: a blocking ``run()`` (or ``Server.run()``) called inside ``async def``."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from hatchway.checker._context import FileContext
from hatchway.checker._imports import spelled
from hatchway.checker._model import Finding, rule
from hatchway.checker.rules._common import label


@rule(
    "HW007",
    "run-in-async",
    "run() or Server.run() called inside async def, where an event loop is already running",
    "{func} inside `async def {name}` cannot start: it runs its own event loop (asyncio.run), which fails inside "
    "the loop already running this coroutine; use `await Server(config).serve()` there, or "
    "`async with hatchway.serving(app) as server:`",
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for call in ctx.calls:
        if call.ref.kind == "run":
            yield from _report(ctx, call.node, label(call))
    instances = ctx.server_instances
    for node in ctx.method_calls:
        assert isinstance(node.func, ast.Attribute)
        if node.func.attr != "run":
            continue
        owner = node.func.value
        api = ctx.imports.api(owner.func) if isinstance(owner, ast.Call) else None
        if api is not None and api.kind == "Server":
            yield from _report(ctx, node, f"{api.spelled}(...).run()")
        elif isinstance(owner, (ast.Name, ast.Attribute)) and spelled(owner) in instances:
            yield from _report(ctx, node, f"{spelled(node.func)}()")


def _report(ctx: FileContext, node: ast.Call, func: str) -> Iterator[Finding]:
    # Only the innermost function counts: a sync def nested in async def may run in a thread.
    scope = ctx.function_of(node)
    if isinstance(scope, ast.AsyncFunctionDef):
        yield ctx.finding(check, node, func=func, name=scope.name)
