"""HW010: a keyword argument that ``run``/``Config`` do not accept, with a did-you-mean."""

from __future__ import annotations

from collections.abc import Iterator

from hatchway._config import OPTION_NAMES, OPTIONS, RUN_PARAMETERS
from hatchway._errors import closest
from hatchway.checker._context import FileContext
from hatchway.checker._model import Finding, rule
from hatchway.checker.rules._common import label, option_calls

# uvicorn code may still use uvicorn's old ``debug`` (see HW001); hatchway has no such option.
_UVICORN_EXTRA = frozenset({"debug"})
_HATCHWAY_ONLY = frozenset(o.name for o in OPTIONS if o.hatchway_only)


@rule(
    "HW010",
    "unknown-option",
    "keyword argument that run()/Config() do not accept (a typo, or a hatchway-only option given to uvicorn)",
    "{func} has no option {name!r}, so it fails at start-up with {error}; {hint}",
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for call in option_calls(ctx):
        uvicorn = call.ref.flavor == "uvicorn"
        for name, kw in call.keywords.items():
            if uvicorn and name in _UVICORN_EXTRA:
                continue
            if uvicorn and name in _HATCHWAY_ONLY:
                hint = "it is a hatchway-only option: switch to hatchway (same API) or drop it"
            elif name in RUN_PARAMETERS:
                continue
            elif name == "debug":
                hint = "debug is uvicorn's old option: use reload=True and/or log_level='debug'"
            else:
                near = closest(name, OPTION_NAMES)
                hint = f"did you mean {near!r}?" if near else "see `hatchway --help` for the options"
            error = "TypeError" if uvicorn else "ConfigError (HW100)"
            yield ctx.finding(check, kw, func=label(call), name=name, hint=hint, error=error)
