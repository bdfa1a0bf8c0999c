"""HW006: an app factory function passed without ``factory=True``."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from hatchway.checker._context import FileContext, ServerCall
from hatchway.checker._model import Finding, rule
from hatchway.checker.rules._common import label, module_factory, option_calls
from hatchway.checker.rules.hw004_import_string import resolve_info


@rule(
    "HW006",
    "factory-without-flag",
    "app factory function (no-argument def returning the app) passed without factory=True",
    "{name} looks like an app factory (a function called with no arguments that returns the app) but {func} "
    "does not set factory=True: the server has to guess whether to call it or serve it as the app, and "
    "says so only in a log line; pass factory=True",
    severity="warning",
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for call in option_calls(ctx):
        if call.app is None or call.state("factory") not in ("absent", "off"):
            continue
        name = _factory_name(ctx, call, call.app)
        if name is not None:
            yield ctx.finding(check, call.app, name=name, func=label(call))


def _factory_name(ctx: FileContext, call: ServerCall, app: ast.expr) -> str | None:
    if isinstance(app, ast.Name):
        return f"{app.id}()" if module_factory(ctx, call, app.id) else None
    if isinstance(app, ast.Constant) and isinstance(app.value, str) and ":" in app.value:
        module, _, attr = app.value.partition(":")
        if not module or "." in attr or not all(p.isidentifier() for p in module.split(".")):
            return None
        _, info = resolve_info(ctx, call, module)
        if info is not None and attr in info.factories:
            return f'"{app.value}"'
    return None
