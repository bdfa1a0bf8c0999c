"""The project around a file: its package root, its dotted module name, and where an import string points."""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hatchway._errors import closest

_EXTENSION_SUFFIXES = (".so", ".pyd")
_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
#: The files a project declares its dependencies in (read by ``Project.declares``).
_DEPENDENCY_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "requirements*.txt", "requirements/*.txt")
#: Directories ``Project.names_anywhere`` visits at most before giving up (a project is rarely this big).
WALK_LIMIT = 5000
#: Directories that are never the project's own code (ruff's defaults plus installed-package trees); besides
#: these, any name starting with "." and any directory holding a pyvenv.cfg (a virtualenv) is skipped.
SKIP_DIRS = frozenset(
    {
        "__pycache__",
        "__pypackages__",
        "_build",
        "buck-out",
        "build",
        "dist",
        "dist-packages",
        "node_modules",
        "site-packages",
        "venv",
    }
)


def skipped_dir(parent: str, name: str) -> bool:
    """Whether the directory ``parent/name`` is skipped while walking a tree."""
    if name.startswith(".") or name in SKIP_DIRS:
        return True
    return os.path.exists(os.path.join(parent, name, "pyvenv.cfg"))  # a virtualenv by another name


@dataclass(frozen=True)
class ModuleInfo:
    """What a module binds at module level, as far as can be seen without running it."""

    names: frozenset[str]
    #: Names of module-level functions that look like app factories (sync, no required arguments, return a value).
    factories: frozenset[str]
    #: ``from x import *`` or a module ``__getattr__``: any name may exist, so none is reported missing.
    dynamic: bool


@dataclass(frozen=True)
class Resolution:
    """Where a dotted module name leads, looked up in a list of directories.

    ``found``: ``path`` is the module's source. ``missing``: the project has the package but not the module
    (``certain`` when the parent is a regular package or a plain module, which cannot gain submodules from
    elsewhere). ``absent``: no directory has even the top-level name, so it may be an installed package.
    ``opaque``: it exists but cannot be read (a namespace package, an extension module).
    """

    status: Literal["found", "missing", "absent", "opaque"]
    path: Path | None = None
    certain: bool = False
    missing: str = ""
    suggestion: str | None = None


def module_info(tree: ast.Module) -> ModuleInfo:
    names: set[str] = set()
    factories: set[str] = set()
    dynamic = False
    for node in _module_level(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    dynamic = True
                else:
                    names.add(alias.asname or alias.name.partition(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if node.name == "__getattr__":
                dynamic = True
            if isinstance(node, ast.FunctionDef) and is_factory(node):
                factories.add(node.name)
        else:
            names.update(_bound_names(node))
    # A function may bind a module-level name through ``global``; count it as bound.
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Global):
            names.update(sub.names)
    return ModuleInfo(frozenset(names), frozenset(factories), dynamic)


def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements that run at import time, descending into if/try/with/for blocks but not into defs."""
    out: list[ast.stmt] = []
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for attr in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, attr, None)
            if not isinstance(children, list):
                continue
            for child in reversed(children):
                if isinstance(child, ast.stmt):
                    stack.append(child)
                elif isinstance(child, (ast.ExceptHandler, ast.match_case)):
                    stack.extend(reversed(child.body))
    return out


def _bound_names(node: ast.stmt) -> set[str]:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor)) or (
        isinstance(node, ast.AnnAssign) and node.value is not None
    ):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
    names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    if not hasattr(node, "body"):  # compound statements' blocks are visited on their own
        names.update(n.target.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr))
    return names


def is_factory(node: ast.FunctionDef) -> bool:
    """A sync function callable with no arguments that returns a value: the shape of ``create_app()``."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    if len(args.defaults) < len(positional) or any(d is None for d in args.kw_defaults):
        return False
    return any(isinstance(n, ast.Return) and n.value is not None for n in own_nodes(node))


def own_nodes(func: ast.AST) -> list[ast.AST]:
    """Every node inside ``func``'s body, not descending into nested functions, lambdas or classes."""
    out: list[ast.AST] = []
    body = getattr(func, "body", [])
    stack: list[ast.AST] = list(body) if isinstance(body, list) else [body]
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return out


class Project:
    """Caches package roots and module infos so a run over many files reads each directory and file once."""

    def __init__(self) -> None:
        self._roots: dict[Path, Path] = {}
        self._infos: dict[Path, ModuleInfo | None] = {}
        self._tops: dict[Path, Path | None] = {}
        self._everywhere: dict[Path, frozenset[str] | None] = {}
        self._declared: dict[Path, str] = {}

    def package_root(self, directory: Path) -> Path:
        """The first ancestor (or ``directory`` itself) that is not a package: where imports start from."""
        if directory in self._roots:
            return self._roots[directory]
        root = directory
        if (directory / "__init__.py").is_file() and directory.parent != directory:
            root = self.package_root(directory.parent)
        self._roots[directory] = root
        return root

    def top(self, directory: Path) -> Path | None:
        """The nearest ancestor holding a project marker (pyproject.toml, setup.py, .git, ...), if any."""
        if directory not in self._tops:
            if any((directory / m).exists() for m in _PROJECT_MARKERS):
                self._tops[directory] = directory
            else:
                parent = directory.parent
                self._tops[directory] = None if parent == directory else self.top(parent)
        return self._tops[directory]

    def module_name(self, path: Path) -> str | None:
        """The dotted name ``path`` is imported as from its package root; None if some part is not a name."""
        path = path.absolute()
        root = self.package_root(path.parent)
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        if not parts or not all(p.isidentifier() for p in parts):
            return None
        return ".".join(parts)

    def remember(self, path: Path, info: ModuleInfo) -> None:
        self._infos[path.absolute()] = info

    def info(self, path: Path) -> ModuleInfo | None:
        """Module-level names of another file, parsed once; None when it cannot be read or parsed."""
        path = path.absolute()
        if path not in self._infos:
            try:
                tree = ast.parse(path.read_bytes(), str(path))
            except (OSError, SyntaxError, ValueError, RecursionError):
                self._infos[path] = None
            else:
                self._infos[path] = module_info(tree)
        return self._infos[path]

    def names_anywhere(self, top: Path) -> frozenset[str] | None:
        """Every module and package name anywhere under the project directory ``top`` (skipped dirs aside).

        A name found here may be importable when the server runs from another directory than the one the
        checker guesses, so it is never reported as missing from the project. Walked once per ``top``; None
        when the tree is too big to walk (a home directory under git, say), which means "cannot tell".
        """
        if top not in self._everywhere:
            names: set[str] = set()
            for walked, (dirpath, dirnames, filenames) in enumerate(os.walk(top), start=1):
                if walked > WALK_LIMIT:
                    self._everywhere[top] = None
                    break
                dirnames[:] = [d for d in dirnames if not skipped_dir(dirpath, d)]
                names.update(d for d in dirnames if d.isidentifier())
                names.update(
                    f.partition(".")[0] for f in filenames if f.endswith((".py", *_EXTENSION_SUFFIXES))
                )
            else:
                self._everywhere[top] = frozenset(names)
        return self._everywhere[top]

    def declares(self, top: Path, name: str) -> bool:
        """Whether the project's packaging files (pyproject.toml, setup.py/.cfg, requirements*.txt) name ``name``.

        A dependency is installed where the project runs, not necessarily where the checker does (pre-commit).
        Distribution names spell ``_`` as ``-`` or ``.`` and ignore case, so every spelling is looked for.
        """
        if top not in self._declared:
            texts = []
            for pattern in _DEPENDENCY_FILES:
                for path in sorted(top.glob(pattern)):
                    try:
                        texts.append(path.read_text(errors="replace").lower())
                    except OSError:
                        continue
            self._declared[top] = "\n".join(texts)
        text = self._declared[top]
        spelled = re.escape(name.lower()).replace("_", "[-_.]")
        return re.search(rf"(?<![\w.-]){spelled}(?![\w])", text) is not None

    def resolve(self, module: str, bases: list[Path]) -> Resolution:
        """Look ``module`` up in each base directory, the way ``sys.path`` entries are searched."""
        parts = module.split(".")
        for base in bases:
            if (
                (base / f"{parts[0]}.py").is_file()
                or (base / parts[0]).is_dir()
                or _extension(base, parts[0])
            ):
                return _walk(base, parts)
        local = {n for base in bases for n in _module_names(base)}
        return Resolution("absent", suggestion=closest(parts[0], local))


def _walk(base: Path, parts: list[str]) -> Resolution:
    current = base
    regular = True  # the base directory itself is a sys.path entry: nothing merges into it
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        package = current / part
        if last and (current / f"{part}.py").is_file():
            return Resolution("found", path=current / f"{part}.py")
        if package.is_dir():
            if last:
                init = package / "__init__.py"
                return Resolution("found", path=init) if init.is_file() else Resolution("opaque")
            current, regular = package, (package / "__init__.py").is_file()
            continue
        if _extension(current, part):
            return Resolution("opaque")
        if (current / f"{part}.py").is_file():
            # A plain module has no submodules.
            return Resolution("missing", certain=True, missing=".".join(parts[: i + 2]))
        return Resolution(
            "missing",
            certain=regular,
            missing=".".join(parts[: i + 1]),
            suggestion=closest(part, _module_names(current)),
        )
    return Resolution("opaque")


def _extension(directory: Path, name: str) -> bool:
    try:
        entries = os.listdir(directory)
    except OSError:
        return False
    return any(e.startswith(f"{name}.") and e.endswith(_EXTENSION_SUFFIXES) for e in entries)


def _module_names(directory: Path) -> set[str]:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return set()
    names = set()
    for entry in entries:
        if entry.name.endswith(".py"):
            names.add(entry.name[:-3])
        elif entry.is_dir() and entry.name.isidentifier():
            names.add(entry.name)
    return names
