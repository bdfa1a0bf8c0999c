"""HW003: uvicorn started with reload or workers at import time, outside ``if __name__ == "__main__":``."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from hatchway.checker._context import FileContext
from hatchway.checker._fix import main_guard_edits
from hatchway.checker._model import Finding, rule
from hatchway.checker._project import own_nodes
from hatchway.checker.rules._common import label, process_option


@rule(
    "HW003",
    "run-without-main-guard",
    'uvicorn run() with reload or workers reachable at import time without `if __name__ == "__main__":`',
    "{where} with {option} runs at import time: uvicorn starts the reloader and workers with multiprocessing's "
    "spawn, which imports this module again in the child, runs this line again and dies with "
    '"RuntimeError: An attempt has been made to start a new process before the current process has finished '
    'its bootstrapping phase"; put it under `if __name__ == "__main__":`',
    fixable=True,
)
def check(ctx: FileContext) -> Iterator[Finding]:
    # hatchway's supervisors tolerate being imported again, so only uvicorn code is reported.
    starters: dict[str, str] = {}  # module-level function name -> option that its run() call sets
    for call in ctx.calls:
        option = process_option(call)
        if call.ref.flavor != "uvicorn" or call.ref.kind != "run" or option is None:
            continue
        func = ctx.function_of(call.node)
        if func is None:
            if not ctx.guarded(call.node):
                stmt = ctx.statement_of(call.node)
                yield ctx.finding(
                    check, call.node, main_guard_edits(ctx, stmt), where=label(call), option=option
                )
        elif isinstance(func, ast.FunctionDef) and func in ctx.tree.body:
            starters.setdefault(func.name, option)
    yield from _indirect(ctx, starters)


def _indirect(ctx: FileContext, starters: dict[str, str]) -> Iterator[Finding]:
    """Module-level calls of functions that (maybe through each other) call run(): ``main()`` unguarded."""
    defs = {d.name: d for d in ctx.tree.body if isinstance(d, ast.FunctionDef)}
    changed = True
    while changed:
        changed = False
        for name, func in defs.items():
            if name in starters:
                continue
            for node in own_nodes(func):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in starters
                ):
                    starters[name] = starters[node.func.id]
                    changed = True
                    break
    for call in ctx.name_calls:
        assert isinstance(call.func, ast.Name)
        name = call.func.id
        if name not in starters or ctx.function_of(call) is not None or ctx.guarded(call):
            continue
        stmt = ctx.statement_of(call)
        where = f"{name}(), which calls uvicorn's run(),"
        yield ctx.finding(check, call, main_guard_edits(ctx, stmt), where=where, option=starters[name])
