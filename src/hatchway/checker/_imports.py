"""Import alias resolution: which local names stand for uvicorn's or hatchway's run, Config and Server."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Literal

Flavor = Literal["uvicorn", "hatchway"]
Kind = Literal["run", "Config", "Server"]
FLAVORS: tuple[Flavor, ...] = ("uvicorn", "hatchway")

#: Every dotted name under which the checked entry points are reachable. The private module paths are
#: listed because people import them (``from uvicorn.main import run``) and they are the same objects.
API: dict[str, tuple[Flavor, Kind]] = {
    "uvicorn.run": ("uvicorn", "run"),
    "uvicorn.main.run": ("uvicorn", "run"),
    "uvicorn.Config": ("uvicorn", "Config"),
    "uvicorn.config.Config": ("uvicorn", "Config"),
    "uvicorn.Server": ("uvicorn", "Server"),
    "uvicorn.server.Server": ("uvicorn", "Server"),
    "hatchway.run": ("hatchway", "run"),
    "hatchway.Config": ("hatchway", "Config"),
    "hatchway._config.Config": ("hatchway", "Config"),
    "hatchway.Server": ("hatchway", "Server"),
    "hatchway._run.run": ("hatchway", "run"),
    "hatchway._server.Server": ("hatchway", "Server"),
}
# What ``from uvicorn import *`` / ``from hatchway import *`` brings in that we care about.
_STAR_NAMES = ("run", "Config", "Server")


@dataclass(frozen=True)
class ApiRef:
    flavor: Flavor
    kind: Kind
    #: The callee as written, e.g. ``u.run`` or ``serve``; used in messages.
    spelled: str


class ImportMap:
    """Local name -> the dotted name it was imported as, for every import in a module.

    Imports anywhere in the file count (``import uvicorn`` inside ``if __name__ == "__main__":`` is the
    common case). A name bound twice keeps the last binding, which matches how the module reads top-down.
    """

    def __init__(self, tree: ast.Module) -> None:
        self.names: dict[str, str] = {}
        self.flavors: set[Flavor] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self._note_module(alias.name)
                    if alias.asname:
                        self.names[alias.asname] = alias.name
                    else:
                        top = alias.name.partition(".")[0]
                        self.names[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                self._note_module(node.module)
                for alias in node.names:
                    if alias.name == "*":
                        for star in _STAR_NAMES:
                            self.names.setdefault(star, f"{node.module}.{star}")
                    else:
                        self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def _note_module(self, module: str) -> None:
        top = module.partition(".")[0]
        if top in FLAVORS:
            self.flavors.add("uvicorn" if top == "uvicorn" else "hatchway")

    @property
    def relevant(self) -> bool:
        """Whether the module imports uvicorn or hatchway at all; nothing else is checked otherwise."""
        return bool(self.flavors)

    def dotted(self, expr: ast.expr) -> str | None:
        """The imported dotted name ``expr`` refers to (``u.main.run`` -> ``uvicorn.main.run``), if any."""
        if isinstance(expr, ast.Name):
            return self.names.get(expr.id)
        if isinstance(expr, ast.Attribute):
            base = self.dotted(expr.value)
            return f"{base}.{expr.attr}" if base else None
        return None

    def api(self, func: ast.expr) -> ApiRef | None:
        """Which entry point a callee is, if it is one of ours."""
        dotted = self.dotted(func)
        if dotted is None or dotted not in API:
            return None
        flavor, kind = API[dotted]
        return ApiRef(flavor, kind, spelled(func))


def spelled(expr: ast.expr) -> str:
    """A Name/Attribute chain as written in the source, e.g. ``self.server``; other expressions unparsed."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return f"{spelled(expr.value)}.{expr.attr}"
    return ast.unparse(expr)
