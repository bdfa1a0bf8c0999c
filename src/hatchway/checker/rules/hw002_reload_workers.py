"""HW002: reload and workers set together."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from hatchway.checker._context import FileContext
from hatchway.checker._model import Finding, rule
from hatchway.checker.rules._common import label, option_calls

_CONSEQUENCE = {
    "uvicorn": 'uvicorn ignores workers: it runs a single process and only logs `"workers" flag is ignored '
    "when reloading is enabled.` as a warning",
    "hatchway": "hatchway refuses to start with a configuration error",
}


@rule(
    "HW002",
    "reload-with-workers",
    "reload and workers (more than one, or not a literal) set together",
    "{func} sets {reload} and workers={workers}: reload runs a single process that restarts on code changes, "
    "so {consequence}; use reload for development and workers for production, not both",
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for call in option_calls(ctx):
        # A non-literal reload (reload=args.reload) is the usual CLI wrapper pattern; only a literal is sure.
        if call.state("reload") != "on" or call.state("workers", threshold=1) not in ("on", "dynamic"):
            continue
        workers = call.keywords["workers"]
        yield ctx.finding(
            check,
            workers,
            func=label(call),
            reload=f"reload={ast.unparse(call.keywords['reload'].value)}",
            workers=ast.unparse(workers.value),
            consequence=_CONSEQUENCE[call.ref.flavor],
        )
