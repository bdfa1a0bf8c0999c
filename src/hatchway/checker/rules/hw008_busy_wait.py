"""HW008: waiting for ``server.started`` in a loop that has no way out but success."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from hatchway.checker._context import FileContext
from hatchway.checker._imports import spelled
from hatchway.checker._model import Finding, rule
from hatchway.checker._project import own_nodes

#: Context managers that bound the time of their body (asyncio, anyio, trio, async_timeout).
_TIMEOUT_CONTEXTS = ("timeout", "timeout_at", "fail_after", "fail_at", "move_on_after", "move_on_at")


@rule(
    "HW008",
    "busy-wait-started",
    "busy-waiting on server.started with no timeout",
    "`while not {flag}:` waits with no timeout: if start-up fails (port in use, app import error, lifespan "
    "error) {flag} never turns true and this loops forever, hiding the error; use "
    "`with hatchway.background(app) as server:` (returns once serving, raises if start-up fails) or add a "
    "deadline that raises",
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for loop in ctx.whiles:
        flag = _started_flag(loop.test)
        if flag is None or _has_exit(loop) or _under_timeout(ctx, loop):
            continue
        yield ctx.finding(check, loop, flag=flag)


def _started_flag(test: ast.expr) -> str | None:
    """``x.started`` from ``not x.started``, ``x.started is False`` or ``x.started == False``."""
    target: ast.expr | None = None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        target = test.operand
    elif isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Is, ast.Eq)):
        right = test.comparators[0]
        if isinstance(right, ast.Constant) and right.value is False:
            target = test.left
    if isinstance(target, ast.Attribute) and target.attr == "started":
        return spelled(target)
    return None


def _has_exit(loop: ast.While) -> bool:
    """A raise, return or break of this loop: some way out other than the flag."""
    for node in own_nodes(loop):
        if isinstance(node, (ast.Raise, ast.Return)):
            return True
        if isinstance(node, ast.Break) and _loop_of(loop, node):
            return True
    return False


def _loop_of(loop: ast.While, brk: ast.Break) -> bool:
    # A break inside a nested loop leaves that loop, not ours.
    stack: list[ast.AST] = list(loop.body)
    while stack:
        node = stack.pop()
        if node is brk:
            return True
        if not isinstance(node, (ast.For, ast.AsyncFor, ast.While, ast.FunctionDef, ast.AsyncFunctionDef)):
            stack.extend(ast.iter_child_nodes(node))
    return False


def _under_timeout(ctx: FileContext, loop: ast.While) -> bool:
    for anc in ctx.ancestors(loop):
        if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return False
        if isinstance(anc, (ast.With, ast.AsyncWith)):
            for item in anc.items:
                expr = item.context_expr
                if isinstance(expr, ast.Call):
                    name = spelled(expr.func).rpartition(".")[2]
                    if name in _TIMEOUT_CONTEXTS:
                        return True
    return False
