"""Running the rules: find the files, parse each once, apply select/ignore and ``# noqa``, and fix."""

from __future__ import annotations

import ast
import functools
import io
import os
import re
import tokenize
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hatchway.checker import rules as _rules  # noqa: F401  (registers every rule)
from hatchway.checker._context import FileContext
from hatchway.checker._fix import apply_fixes
from hatchway.checker._imports import ImportMap
from hatchway.checker._model import PARSE_ERROR, RULES, Finding, Severity
from hatchway.checker._project import SKIP_DIRS as SKIP_DIRS  # where it always was
from hatchway.checker._project import Project, skipped_dir

# Directories not entered while walking: SKIP_DIRS and skipped_dir() in _project. A directory named on the
# command line is always checked, so ``hatchway check .venv/lib/.../site-packages`` works.
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
# Files mentioning neither name cannot import them; the rules are skipped but the file is still parsed.
_NEEDLES = ("uvicorn", "hatchway")


class SelectionError(ValueError):
    """A --select/--ignore entry that matches no rule."""


@dataclass(frozen=True)
class Selection:
    """Which rules run: codes or code prefixes (``HW00``), like ruff's --select/--ignore."""

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for entry in (*self.select, *self.ignore):
            if not any(code.startswith(entry.upper()) for code in RULES):
                raise SelectionError(
                    f"unknown rule code or prefix {entry!r}; known: {', '.join(sorted(RULES))}"
                )

    def enabled(self, code: str) -> bool:
        if code == PARSE_ERROR:
            return True
        chosen = not self.select or any(code.startswith(s.upper()) for s in self.select)
        return chosen and not any(code.startswith(i.upper()) for i in self.ignore)


@dataclass
class Result:
    """What a run found; ``findings`` are sorted and already filtered by selection and noqa.

    ``fail_on`` is the least severity that makes the run fail: "error" (the default: warnings are reported
    but exit 0, as in ESLint or mypy's notes) or "warning" (every finding fails, as in ruff and flake8).
    """

    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    fixed: list[Finding] = field(default_factory=list)
    fail_on: Severity = "error"

    @property
    def parse_errors(self) -> int:
        return sum(f.code == PARSE_ERROR for f in self.findings)

    @property
    def failing(self) -> list[Finding]:
        """The findings that make the run fail under ``fail_on``."""
        if self.fail_on == "warning":
            return list(self.findings)
        return [f for f in self.findings if f.severity == "error"]

    @property
    def exit_code(self) -> int:
        if self.parse_errors:
            return 2
        return 1 if self.failing else 0


def check_tree(
    tree: ast.Module, path: str, source: str | None = None, project: Project | None = None
) -> list[Finding]:
    """Every rule on an already parsed module; no selection, no noqa (the flake8 plugin's entry)."""
    if source is not None and not any(n in source for n in _NEEDLES):
        return []
    imports = ImportMap(tree)
    if not imports.relevant:
        return []
    ctx = FileContext(path, tree, source, project or Project(), imports)
    found = [f for r in RULES.values() for f in r.check(ctx)]
    return sorted(set(found), key=Finding.sort_key)


def check_source(
    source: str, path: str = "<string>", *, selection: Selection | None = None, project: Project | None = None
) -> list[Finding]:
    """Check one file's text as if it lived at ``path`` (which import strings are resolved against)."""
    selection = selection or Selection()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(source, path)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            return [_parse_error(path, exc)]
    found = check_tree(tree, path, source, project)
    return [f for f in found if selection.enabled(f.code) and not _suppressed(f, source)]


def check_paths(
    paths: Iterable[str | os.PathLike[str]] = (".",),
    *,
    selection: Selection | None = None,
    fix: bool = False,
    jobs: int | None = None,
    fail_on: Severity = "error",
) -> Result:
    """Check every Python file under ``paths``; with ``fix``, rewrite what is safe and report what is left.

    Parsing dominates the time, so big trees are spread over ``jobs`` processes (default: one per CPU once
    there are at least ``PARALLEL_FROM`` files); every file is still parsed exactly once.
    """
    selection = selection or Selection()
    files = list(discover(paths))
    result = Result(files=len(files), fail_on=fail_on)
    workers = jobs if jobs is not None else (os.cpu_count() or 1) if len(files) >= PARALLEL_FROM else 1
    work = functools.partial(_check_file, selection=selection, fix=fix)
    if workers > 1 and len(files) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(files))) as pool:
            outcomes = list(pool.map(work, files, chunksize=max(1, min(64, len(files) // (workers * 4)))))
    else:
        project = Project()
        outcomes = [work(path, project=project) for path in files]
    for found, fixed in outcomes:
        result.findings += found
        result.fixed += fixed
    result.findings.sort(key=Finding.sort_key)
    return result


PARALLEL_FROM = 200
_WORKER_PROJECT = Project()  # one cache per worker process, reused across the files it is sent


def _check_file(
    path: str, *, selection: Selection, fix: bool, project: Project | None = None
) -> tuple[list[Finding], list[Finding]]:
    """Findings left in one file and the findings fixed in it."""
    loaded = _read(path)
    if isinstance(loaded, Finding):
        return [loaded], []
    source, encoding = loaded
    project = project or _WORKER_PROJECT
    found = check_source(source, path, selection=selection, project=project)
    if not (fix and any(f.fixable for f in found)):
        return found, []
    new, fixed = apply_fixes(source, found)
    if not fixed:
        return found, []
    Path(path).write_bytes(new.encode(encoding))
    return check_source(new, path, selection=selection, project=Project()), fixed


def discover(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """Python files under each path, sorted; a file named explicitly is checked whatever its suffix."""
    for given in paths:
        root = os.fspath(given)
        if not os.path.isdir(root):
            if not os.path.exists(root):
                raise FileNotFoundError(root)
            yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not skipped_dir(dirpath, d))
            for name in sorted(filenames):
                if name.endswith(".py"):
                    yield os.path.join(dirpath, name)


def _read(path: str) -> tuple[str, str] | Finding:
    try:
        data = Path(path).read_bytes()
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding), encoding
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError) as exc:
        return _parse_error(path, exc)


def _parse_error(path: str, exc: BaseException) -> Finding:
    line, col = 1, 1
    if isinstance(exc, SyntaxError):
        line, col = exc.lineno or 1, exc.offset or 1
        message = f"SyntaxError: {exc.msg}"
    else:
        message = f"{type(exc).__name__}: {exc}"
    return Finding(path, line, max(col, 1), PARSE_ERROR, f"{message} (file not checked)")


def _suppressed(finding: Finding, source: str) -> bool:
    """``# noqa`` (every code) or ``# noqa: HW001,HW002`` on the finding's line."""
    if "noqa" not in source:
        return False
    lines = io.StringIO(source, newline="").readlines()
    if finding.line > len(lines):
        return False
    match = _NOQA.search(lines[finding.line - 1])
    if match is None:
        return False
    codes = match.group("codes")
    return codes is None or finding.code in {c.upper() for c in re.split(r"[\s,]+", codes)}
