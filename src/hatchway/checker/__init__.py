"""``hatchway check``: a static checker for uvicorn/hatchway run-time traps (see docs/checker.md)."""

from __future__ import annotations

from hatchway.checker._cli import main
from hatchway.checker._model import RULES, Edit, Finding, Rule
from hatchway.checker._runner import Result, Selection, check_paths, check_source, check_tree

__all__ = [
    "RULES",
    "Edit",
    "Finding",
    "Result",
    "Rule",
    "Selection",
    "check_paths",
    "check_source",
    "check_tree",
    "main",
]
