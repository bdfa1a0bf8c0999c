"""Safe rewrites: the edits a fix consists of, and applying them to a file's text without touching the rest."""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterable

from hatchway.checker._context import FileContext
from hatchway.checker._model import Edit, Finding

GUARD = 'if __name__ == "__main__":'


def main_guard_edits(ctx: FileContext, stmt: ast.stmt) -> tuple[Edit, ...]:
    """Edits that put ``stmt`` under ``if __name__ == "__main__":``; empty when that is not certainly safe.

    Only whole lines are indented, so the statement must own its lines (no ``a; b``), and it must hold no
    string spanning lines, whose content indenting would change.
    """
    if ctx.source is None or not _owns_lines(ctx, stmt):
        return ()
    for node in ast.walk(stmt):
        if isinstance(node, (ast.Constant, ast.JoinedStr)) and node.end_lineno != node.lineno:
            return ()
    first = ctx.lines[stmt.lineno - 1]
    indent = first[: len(first) - len(first.lstrip(" \t"))]
    unit = "\t" if "\t" in indent else "    "
    newline = first[len(first.rstrip("\r\n")) :] or "\n"
    start = ctx.line_starts[stmt.lineno - 1]
    # One edit for the first line: two insertions at one offset would have no defined order.
    edits = [Edit(start, start + len(indent), f"{indent}{GUARD}{newline}{indent}{unit}")]
    for lineno in range(stmt.lineno + 1, (stmt.end_lineno or stmt.lineno) + 1):
        if ctx.lines[lineno - 1].strip():
            at = ctx.line_starts[lineno - 1]
            edits.append(Edit(at, at, unit))
    return tuple(edits)


def _owns_lines(ctx: FileContext, stmt: ast.stmt) -> bool:
    first, last = ctx.lines[stmt.lineno - 1], ctx.lines[(stmt.end_lineno or stmt.lineno) - 1]
    if first[: ctx.char_col(stmt.lineno, stmt.col_offset)].strip():
        return False
    rest = last[ctx.char_col(stmt.end_lineno or stmt.lineno, stmt.end_col_offset or 0) :].strip()
    if rest and not rest.startswith("#"):
        return False
    parent = ctx.parents.get(stmt)
    for name in ("body", "orelse", "finalbody"):
        siblings = getattr(parent, name, None)
        if isinstance(siblings, list) and stmt in siblings:
            i = siblings.index(stmt)
            before = siblings[i - 1] if i else None
            after = siblings[i + 1] if i + 1 < len(siblings) else None
            if before is not None and (before.end_lineno or 0) >= stmt.lineno:
                return False
            if after is not None and after.lineno <= (stmt.end_lineno or stmt.lineno):
                return False
    return True


def parses(source: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(source)
        except (SyntaxError, ValueError, RecursionError):
            return False
    return True


def apply_fixes(source: str, findings: Iterable[Finding]) -> tuple[str, list[Finding]]:
    """Apply every fix that does not overlap an earlier one and keeps the file parsing.

    Returns the new text and the findings that were fixed. Fixes are tried one finding at a time, all of
    its edits or none, so a fix that would break the file is dropped and the rest still apply.
    """
    taken: set[Edit] = set()
    fixed: list[Finding] = []
    current = source
    for finding in sorted(findings, key=Finding.sort_key):
        edits = [e for e in finding.edits if e not in taken]
        if not finding.edits:
            continue
        if any(_overlaps(e, t) for e in edits for t in taken):
            continue
        candidate = _apply(source, [*taken, *edits])
        if not parses(candidate):
            continue
        taken.update(edits)
        current = candidate
        fixed.append(finding)
    return current, fixed


def _overlaps(a: Edit, b: Edit) -> bool:
    if a.start == a.end == b.start == b.end:
        return True  # two insertions at one point: their order would be a guess
    return a.start < b.end and b.start < a.end


def _apply(source: str, edits: list[Edit]) -> str:
    # From the end backwards, so each edit's offsets still refer to the original text.
    out = source
    for edit in sorted(edits, reverse=True):
        out = out[: edit.start] + edit.text + out[edit.end :]
    return out
