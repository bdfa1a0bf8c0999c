"""flake8 plugin: the checker's rules as flake8 ``HW`` codes (entry point in pyproject.toml)."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from typing import Any

from hatchway._version import __version__
from hatchway.checker._runner import check_tree


class Plugin:
    """A flake8 AST plugin; flake8 handles selection and ``# noqa`` itself."""

    name = "hatchway-check"
    version = __version__

    def __init__(
        self, tree: ast.Module, filename: str = "<unknown>", lines: Sequence[str] | None = None
    ) -> None:
        self.tree = tree
        self.filename = filename
        # flake8 passes the file's lines when asked; without them columns stay in bytes, as flake8 counts.
        self.source = "".join(lines) if lines is not None else None

    def run(self) -> Iterator[tuple[int, int, str, type[Any]]]:
        for finding in check_tree(self.tree, self.filename, self.source):
            yield finding.line, finding.col - 1, f"{finding.code} {finding.message}", type(self)
