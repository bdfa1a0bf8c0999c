"""HW001: an app object, not an import string, given to uvicorn together with reload, workers or debug."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from hatchway.checker._context import FileContext, ServerCall
from hatchway.checker._model import Edit, Finding, rule
from hatchway.checker.rules._common import (
    app_kind,
    label,
    module_factory,
    option_calls,
    process_option,
    text,
)


def import_string_for(ctx: FileContext, call: ServerCall, app: ast.expr) -> str | None:
    """The import string that names ``app`` for certain: a module-level variable of an importable file."""
    module = ctx.module_name
    if module is None or not isinstance(app, ast.Name):
        return None
    func = ctx.function_of(call.node)
    if func is not None and ctx.bound_locally(app.id, func):
        return None
    if ctx.module_binding(app.id) is None or module_factory(ctx, call, app.id):
        # Unbound here, or a factory that also needs factory=True: not a one-for-one replacement.
        return None
    return f"{module}:{app.id}"


@rule(
    "HW001",
    "app-object-with-reload",
    "app object (not an import string) passed to uvicorn with reload, workers or debug",
    "{func} gets the app object {app} with {option}: reload and workers import the app again in each new "
    "process, which takes an import string; {consequence}; {fix}",
    fixable=True,
)
def check(ctx: FileContext) -> Iterator[Finding]:
    # hatchway finds the import string of an app object by itself, so only uvicorn code is reported.
    for call in option_calls(ctx):
        if call.ref.flavor != "uvicorn" or (call.ref.kind == "Config" and not ctx.given_to_server(call)):
            continue
        app = call.app
        option = process_option(call)
        if app is None or option is None or app_kind(ctx, app, call.node) != "object":
            continue
        target = import_string_for(ctx, call, app)
        edits: tuple[Edit, ...] = ()
        if call.ref.kind == "Config":
            # Server.run() never supervises, so swapping in the string alone would not make reload work.
            consequence = (
                "Server.run() starts neither a reloader nor workers, so the option is silently ignored"
            )
            name = f'"{target}"' if target else '"<module>:<name>"'
            fix = f"call uvicorn.run({name}, {option}) instead"
        else:
            consequence = (
                'uvicorn exits at start-up with "You must pass the application as an import string to enable '
                "'reload' or 'workers'\""
            )
            if target is not None:
                fix = f'use "{target}" instead of {text(app)}'
                if ctx.source is not None:
                    start, end = ctx.span(app)
                    edits = (Edit(start, end, f'"{target}"'),)
            else:
                fix = f'pass an import string "<module>:<name>" naming a module-level app instead of {text(app)}'
        yield ctx.finding(
            check,
            app,
            edits,
            func=label(call),
            app=text(app),
            option=option,
            consequence=consequence,
            fix=fix,
        )
