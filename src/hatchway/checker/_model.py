"""The checker's data: a Finding, the Edit that fixes it, and the Rule registry every rule module adds to."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from hatchway.checker._context import FileContext

#: "error": the code fails or misbehaves at run time, certainly; the run fails (exit 1). "warning": the code
#: works but is fragile or does less than it seems; reported, and the run fails only with --fail-on warning.
Severity = Literal["error", "warning"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning")
#: Parse failures are reported like findings so every output format carries them, but they are not a
#: rule: they cannot be selected, ignored or suppressed, and they make the exit status 2.
PARSE_ERROR = "HW000"
DOCS_DIR = "docs/rules"


def docs_page(code: str) -> str:
    """The documentation page of a rule, relative to the repository root."""
    return f"{DOCS_DIR}/{code}.md" if code != PARSE_ERROR else "docs/checker.md"


@dataclass(frozen=True, order=True)
class Edit:
    """Replace ``source[start:end]`` with ``text``; offsets are character offsets into the whole file."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Finding:
    """One problem at one place. ``line`` and ``col`` are 1-based, ``col`` counts characters."""

    path: str
    line: int
    col: int
    code: str
    message: str
    severity: Severity = "error"
    end_line: int | None = None
    end_col: int | None = None
    #: Edits that fix this finding with certainty; empty when the fix needs a human.
    edits: tuple[Edit, ...] = field(default=(), compare=False)

    @property
    def fixable(self) -> bool:
        return bool(self.edits)

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.col, self.code)


Check = Callable[["FileContext"], Iterator[Finding]]


@dataclass(frozen=True)
class Rule:
    """A rule: its code, a short name, a one-line summary, one message template and the function that checks."""

    code: str
    name: str
    summary: str
    template: str
    check: Check
    severity: Severity = "error"
    fixable: bool = False

    @property
    def docs(self) -> str:
        return docs_page(self.code)

    def message(self, **fields: object) -> str:
        return self.template.format(**fields)


#: Every rule, by code; filled in by the modules of ``hatchway.checker.rules`` as they are imported.
RULES: dict[str, Rule] = {}


def rule(
    code: str,
    name: str,
    summary: str,
    template: str,
    *,
    severity: Severity = "error",
    fixable: bool = False,
) -> Callable[[Check], Rule]:
    """Register the decorated check function as a rule; the module-level name becomes the Rule."""

    def register(check: Check) -> Rule:
        if code in RULES:
            raise ValueError(f"rule {code} registered twice")
        made = Rule(code, name, summary, template, check, severity, fixable)
        RULES[code] = made
        return made

    return register
