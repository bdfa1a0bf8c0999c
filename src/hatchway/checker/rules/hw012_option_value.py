"""HW012: an option value hatchway's Config refuses (``workers=0``, ``port=-1``), found by Config's own checks."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import cast

from hatchway._config import OPTIONS, Config
from hatchway._errors import Problem
from hatchway.checker._context import NOT_LITERAL, FileContext, ServerCall, literal
from hatchway.checker._model import Finding, rule
from hatchway.checker.rules._common import label, option_calls

#: Every option's default, read from the declarations in hatchway._config.
DEFAULTS: dict[str, object] = {o.name: o.default for o in OPTIONS}
#: The options whose values are checked: numbers, True/False and fixed choices, whose validity is the same
#: on every machine. Paths (ssl_certfile, env_file, reload_dirs) are read from the directory the server
#: starts in, and strings such as host or loop are looked up at run time: a checker cannot judge them.
CHECKED: frozenset[str] = frozenset(
    o.name
    for o in OPTIONS
    if o.cli.choices is not None
    or o.cli.type in (int, float, bool)
    or (isinstance(o.default, (int, float)) and o.cli.type is None)
)
#: Problems that are other rules' business: the app (HW004) and reload with workers (HW002).
_OTHER_RULES = frozenset({"HW103", "HW104"})


class _Unknown:
    """A value the code does not show: truthy, not None, not a number or string, so checks pass over it."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()


@rule(
    "HW012",
    "invalid-option-value",
    "option value that hatchway's Config refuses (workers=0, a negative port, an unknown choice)",
    "{func} sets {name}={value}, which hatchway refuses with ConfigError ({code}) before serving: "
    "{problem}; {hint}",
)
def check(ctx: FileContext) -> Iterator[Finding]:
    # uvicorn does not check these values (workers=0 quietly runs one process): only hatchway code is reported.
    reported: set[tuple[int, int]] = set()  # a dict unpacked into two calls is reported once, at its entry
    for call in option_calls(ctx):
        if call.ref.flavor != "hatchway":
            continue
        given = {name: literal(kw.value) for name, kw in call.keywords.items() if name in DEFAULTS}
        shown = {name for name, value in given.items() if value is not NOT_LITERAL and name in CHECKED}
        if not shown:
            continue
        # What the defaults alone get wrong comes from this machine ($WEB_CONCURRENCY), not from the code.
        baseline = set(config_problems(_values(call, {})))
        for problem in config_problems(_values(call, given)):
            if problem.option not in shown or problem.code in _OTHER_RULES or problem in baseline:
                continue
            kw = call.keywords[problem.option]
            if (kw.lineno, kw.col_offset) in reported:
                continue
            reported.add((kw.lineno, kw.col_offset))
            yield ctx.finding(
                check,
                kw,
                func=label(call),
                name=problem.option,
                value=ast.unparse(kw.value),
                code=problem.code,
                problem=problem.message,
                hint=problem.hint or f"pass a value {problem.option} accepts (see `hatchway --help`)",
            )


def _values(call: ServerCall, given: dict[str, object]) -> dict[str, object]:
    """Every option's value as Config would hold it; UNKNOWN where the code does not show it."""
    values: dict[str, object] = {}
    for name, default in DEFAULTS.items():
        if name in given:
            values[name] = UNKNOWN if given[name] is NOT_LITERAL else given[name]
        elif name in call.keywords or call.hidden:
            values[name] = UNKNOWN  # given, or maybe given through **options
        else:
            values[name] = default
    values["app"] = "main:app"
    return values


class _Values:
    """Stands in for a Config: the checks only read attributes."""

    def __init__(self, values: dict[str, object]) -> None:
        self.__dict__.update(values)


def config_problems(values: dict[str, object]) -> list[Problem]:
    """Config's own checks (hatchway._config_checks.CHECKS) run on ``values``, without building a Config.

    Building one would read an env file and the environment and raise on the first bad set; the checks
    themselves are pure functions of the values.
    """
    # Loaded on first use, as Config itself does: most files never get here.
    from hatchway._config_checks import CHECKS

    stand_in = cast(Config, _Values(values))
    found: list[Problem] = []
    for config_check in CHECKS:
        try:
            found.extend(config_check(stand_in))
        except Exception:  # a check that cannot handle an UNKNOWN value: nothing certain to report
            continue
    return found
