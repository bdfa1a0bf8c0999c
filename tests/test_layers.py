"""The package's arrows point down (docs: DESIGN's layout): checked on the source, imports under
``if TYPE_CHECKING:`` excepted (they cost nothing at run time and form no cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "hatchway"

#: module (or package directory) -> the hatchway modules it must never import at run time.
FORBIDDEN = {
    "_http": ("hatchway._ws", "hatchway._server", "hatchway._startup", "hatchway._run", "hatchway._cli"),
    "_logs.py": ("hatchway._config",),
    "_loop.py": ("hatchway._config", "hatchway._server"),
    "_errors.py": ("hatchway._config", "hatchway._logs", "hatchway._loop"),
}


def runtime_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found: list[str] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        if not typing_only:
            if isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.append(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(tree, False)
    return found


@pytest.mark.parametrize("where", sorted(FORBIDDEN))
def test_no_upward_imports(where: str) -> None:
    target = PACKAGE / where
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    assert files
    bad = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in files
        for name in runtime_imports(path)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN[where])
    ]
    assert bad == []
