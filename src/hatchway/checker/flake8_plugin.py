"""flake8 plugin: the checker's rules as flake8 ``HW`` codes (entry point in pyproject.toml)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

from hatchway._version import __version__
from hatchway.checker._runner import check_tree


class Plugin:
    """A flake8 AST plugin; flake8 handles selection and ``# noqa`` itself."""

    name = "hatchway-check"
    version = __version__

    def __init__(self, tree: ast.Module, filename: str = "<unknown>") -> None:
        self.tree = tree
        self.filename = filename

    def run(self) -> Iterator[tuple[int, int, str, type[Any]]]:
        source: str | None
        try:
            with open(self.filename, encoding="utf-8") as f:
                source = f.read()
        except (OSError, UnicodeDecodeError):
            source = None  # stdin or an unreadable file: columns stay in bytes, which flake8 expects anyway
        for finding in check_tree(self.tree, self.filename, source):
            yield finding.line, finding.col - 1, f"{finding.code} {finding.message}", type(self)
