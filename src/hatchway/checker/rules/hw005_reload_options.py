"""HW005: reload_dirs, reload_includes, reload_excludes or reload_delay set while reload is off."""

from __future__ import annotations

from collections.abc import Iterator

from hatchway._config import OPTION_NAMES
from hatchway.checker._context import FileContext
from hatchway.checker._model import Finding, rule
from hatchway.checker.rules._common import label, option_calls

#: The options that only configure the reloader, read from hatchway's option declarations.
RELOAD_OPTIONS = tuple(sorted(n for n in OPTION_NAMES if n.startswith("reload_")))


@rule(
    "HW005",
    "reload-options-without-reload",
    "reload_dirs/reload_includes/reload_excludes/reload_delay set without reload",
    "{func} sets {options} but not reload=True: they only configure the file watcher, which runs only with "
    "reload on, so they do nothing; add reload=True or drop them",
    severity="warning",
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for call in option_calls(ctx):
        if call.state("reload") not in ("absent", "off"):
            continue
        if call.ref.flavor == "uvicorn" and call.state("debug") not in ("absent", "off"):
            continue
        # A literal None, empty list or 0 counts as "off": harmless, so not reported.
        given = [call.keywords[n] for n in RELOAD_OPTIONS if call.state(n) not in ("absent", "off")]
        if given:
            names = ", ".join(str(k.arg) for k in sorted(given, key=lambda k: (k.lineno, k.col_offset)))
            first = min(given, key=lambda k: (k.lineno, k.col_offset))
            yield ctx.finding(check, first, func=label(call), options=names)
