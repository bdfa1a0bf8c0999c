"""One parsed file and what the rules ask of it: its server calls, the parent of each node, offsets, findings."""

from __future__ import annotations

import ast
import io
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from hatchway.checker._imports import ApiRef, ImportMap, spelled
from hatchway.checker._model import Edit, Finding, Rule
from hatchway.checker._project import ModuleInfo, Project, module_info, own_nodes

State = Literal["absent", "off", "on", "dynamic"]
Function = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
_UNSET = object()
#: What ``literal`` returns for an expression that is not a literal.
NOT_LITERAL = _UNSET


@dataclass
class ServerCall:
    """A call of uvicorn's or hatchway's ``run``, ``Config`` or ``Server``."""

    node: ast.Call
    ref: ApiRef
    #: Options by name: the call's keywords, plus the entries of a literal dict passed as ``**options``
    #: (see ``FileContext.expand_options``), whose keyword nodes are placed at the dict's key.
    keywords: dict[str, ast.keyword] = field(default_factory=dict)
    #: Some options cannot be seen: a ``**options`` that is not a literal dict, or options passed by position.
    hidden: bool = False

    def __post_init__(self) -> None:
        self.keywords = {k.arg: k for k in self.node.keywords if k.arg is not None}
        # The first positional argument is the app (or the Server's config); more are options by position.
        self.hidden = len(self.node.args) > 1 or any(isinstance(a, ast.Starred) for a in self.node.args)

    @property
    def app(self) -> ast.expr | None:
        """The first argument (``app`` for run/Config, ``config`` for Server)."""
        if self.node.args and not isinstance(self.node.args[0], ast.Starred):
            return self.node.args[0]
        kw = self.keywords.get("config" if self.ref.kind == "Server" else "app")
        return kw.value if kw else None

    def state(self, name: str, threshold: int = 0) -> State:
        """Whether option ``name`` is on: a literal above ``threshold`` (``workers`` needs more than one)."""
        kw = self.keywords.get(name)
        if kw is None:
            return "absent"
        value = literal(kw.value)
        if value is _UNSET:
            return "dynamic"
        if isinstance(value, bool) or not isinstance(value, int):
            return "on" if value else "off"
        return "on" if value > threshold else "off"

    def value(self, name: str) -> object:
        """The literal value of option ``name``; None when absent or not a literal."""
        kw = self.keywords.get(name)
        found = literal(kw.value) if kw else None
        return None if found is _UNSET else found


def literal(expr: ast.expr) -> object:
    try:
        return ast.literal_eval(expr)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNSET


def is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"``, either way round."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and any(
        isinstance(s, ast.Constant) and s.value == "__main__" for s in sides
    )


class FileContext:
    """Everything the rules read about one file, computed from a single parse."""

    def __init__(
        self, path: str, tree: ast.Module, source: str | None, project: Project, imports: ImportMap
    ) -> None:
        self.path = path
        self.file = Path(path)
        self.tree = tree
        self.source = source
        self.project = project
        self.imports = imports
        self.parents: dict[ast.AST, ast.AST] = {}
        self.calls: list[ServerCall] = []
        self.whiles: list[ast.While] = []
        self.attributes: list[ast.Attribute] = []
        self.method_calls: list[ast.Call] = []
        self.name_calls: list[ast.Call] = []
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
            if isinstance(parent, ast.Call):
                ref = imports.api(parent.func)
                if ref is not None:
                    self.calls.append(ServerCall(parent, ref))
                elif isinstance(parent.func, ast.Attribute):
                    self.method_calls.append(parent)
                elif isinstance(parent.func, ast.Name):
                    self.name_calls.append(parent)
            elif isinstance(parent, ast.While):
                self.whiles.append(parent)
            elif isinstance(parent, ast.Attribute):
                self.attributes.append(parent)
        for call in self.calls:
            self.expand_options(call)

    # -- the module and the project ------------------------------------------------------------------

    @cached_property
    def info(self) -> ModuleInfo:
        info = module_info(self.tree)
        self.project.remember(self.file, info)
        return info

    @cached_property
    def module_name(self) -> str | None:
        return self.project.module_name(self.file)

    def module_binding(self, name: str) -> ast.stmt | None:
        """The module-level statement that binds ``name`` last (None if none does)."""
        found: ast.stmt | None = None
        for node in self.tree.body:
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name
            ) or (
                isinstance(node, (ast.Assign, ast.AnnAssign, ast.Import, ast.ImportFrom))
                and (name in _simple_bindings(node))
            ):
                found = node
        return found

    # -- where a node sits ----------------------------------------------------------------------------

    def ancestors(self, node: ast.AST) -> list[ast.AST]:
        out = []
        while node in self.parents:
            node = self.parents[node]
            out.append(node)
        return out

    def function_of(self, node: ast.AST) -> Function | None:
        """The innermost function (def, async def or lambda) whose body holds ``node``."""
        for anc in self.ancestors(node):
            if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return anc
        return None

    def statement_of(self, node: ast.AST) -> ast.stmt:
        while not isinstance(node, ast.stmt):
            node = self.parents[node]
        return node

    def guarded(self, node: ast.AST) -> bool:
        """Inside the body of an ``if __name__ == "__main__":`` block."""
        child = node
        for anc in self.ancestors(node):
            if isinstance(anc, ast.If) and is_main_guard(anc.test) and child in anc.body:
                return True
            child = anc
        return False

    def bound_locally(self, name: str, func: Function) -> bool:
        """Whether ``name`` is a parameter, assigned, imported or defined inside ``func`` (so not the module-level name)."""
        args = func.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        if any(p is not None and p.arg == name for p in params):
            return True
        for node in own_nodes(func):
            if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
                return True
            if isinstance(node, (ast.Import, ast.ImportFrom)) and name in _simple_bindings(node):
                return True
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
                return True  # a def or class inside the function binds its name there
        return False

    # -- servers and their configs --------------------------------------------------------------------

    def expand_options(self, call: ServerCall) -> None:
        """Add the entries of ``**{...}`` and of ``**options`` (a literal dict of the same scope) to the options.

        ``options`` counts only when it is bound once, to a dict literal with string keys, in the scope of the
        call (or at module level), and is used nowhere else than in ``**options``: then nothing can have
        changed it. Anything else marks the call's options as partly hidden.
        """
        for kw in call.node.keywords:
            if kw.arg is not None:
                continue
            found = self._literal_dict(kw.value, call.node)
            if found is None:
                call.hidden = True
                continue
            for key, value in zip(found.keys, found.values, strict=True):
                assert isinstance(key, ast.Constant)
                assert isinstance(key.value, str)
                entry = ast.keyword(arg=key.value, value=value)
                entry.lineno, entry.col_offset = key.lineno, key.col_offset
                entry.end_lineno, entry.end_col_offset = value.end_lineno, value.end_col_offset
                call.keywords.setdefault(key.value, entry)

    def _literal_dict(self, expr: ast.expr, at: ast.AST) -> ast.Dict | None:
        if isinstance(expr, ast.Name):
            bound = self._only_binding(expr.id, at)
            if bound is None:
                return None
            expr = bound
        if not isinstance(expr, ast.Dict):
            return None
        if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in expr.keys):
            return None  # a None key is a ``**other`` inside the dict
        return expr

    def _only_binding(self, name: str, at: ast.AST) -> ast.expr | None:
        """The value of the single ``name = {...}`` of the scope ``at`` sees ``name`` in, if nothing else uses it."""
        func = self.function_of(at)
        scope: ast.AST = func if func is not None and self.bound_locally(name, func) else self.tree
        bindings: list[ast.expr] = []
        for node in ast.walk(scope):
            if isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
                return None
            if not (isinstance(node, ast.Name) and node.id == name):
                continue
            parent = self.parents.get(node)
            if isinstance(node.ctx, ast.Load) and isinstance(parent, ast.keyword) and parent.arg is None:
                continue  # another ``**name``: reads it, changes nothing
            if (
                isinstance(node.ctx, ast.Store)
                and isinstance(parent, (ast.Assign, ast.AnnAssign))
                and parent.value is not None
                and (parent.targets == [node] if isinstance(parent, ast.Assign) else parent.target is node)
                and self.function_of(parent) is (None if scope is self.tree else scope)
            ):
                bindings.append(parent.value)
                continue
            return None  # any other use may change it (options["reload"] = True, options.update(...))
        return bindings[0] if len(bindings) == 1 else None

    @cached_property
    def _server_inputs(self) -> tuple[set[int], set[str]]:
        nodes: set[int] = set()
        names: set[str] = set()
        for call in self.calls:
            if call.ref.kind == "Server" and call.app is not None:
                nodes.add(id(call.app))
                if isinstance(call.app, (ast.Name, ast.Attribute)):
                    names.add(spelled(call.app))
        return nodes, names

    def given_to_server(self, call: ServerCall) -> bool:
        """A Config call passed to a Server, directly or through a variable of the same file."""
        nodes, names = self._server_inputs
        if id(call.node) in nodes:
            return True
        parent = self.parents.get(call.node)
        return isinstance(parent, ast.Assign) and any(spelled(t) in names for t in parent.targets)

    @cached_property
    def server_instances(self) -> set[str]:
        """Names (``server``, ``self.server``) assigned a ``Server(...)`` somewhere in the file."""
        out: set[str] = set()
        for call in self.calls:
            parent = self.parents.get(call.node)
            if call.ref.kind == "Server" and isinstance(parent, (ast.Assign, ast.AnnAssign)):
                targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
                out.update(spelled(t) for t in targets if isinstance(t, (ast.Name, ast.Attribute)))
        return out

    # -- text and findings ----------------------------------------------------------------------------

    @cached_property
    def lines(self) -> list[str]:
        # StringIO with newline="" splits on \n, \r\n and \r only, as the tokenizer does (not on \f etc.).
        return io.StringIO(self.source or "", newline="").readlines()

    @cached_property
    def line_starts(self) -> list[int]:
        starts = [0]
        for line in self.lines:
            starts.append(starts[-1] + len(line))
        return starts

    def char_col(self, lineno: int, byte_col: int) -> int:
        """ast columns count UTF-8 bytes; convert to characters (0-based)."""
        if self.source is None or lineno > len(self.lines):
            return byte_col
        line = self.lines[lineno - 1]
        return byte_col if line.isascii() else len(line.encode()[:byte_col].decode(errors="ignore"))

    def offset(self, lineno: int, byte_col: int) -> int:
        return self.line_starts[lineno - 1] + self.char_col(lineno, byte_col)

    def span(self, node: ast.AST) -> tuple[int, int]:
        """Character offsets of ``node`` in the source."""
        start = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def finding(self, rule: Rule, node: ast.AST, edits: tuple[Edit, ...] = (), **fields: object) -> Finding:
        line: int = node.lineno  # type: ignore[attr-defined]
        end_line: int | None = getattr(node, "end_lineno", None)
        end_col = getattr(node, "end_col_offset", None)
        return Finding(
            path=self.path,
            line=line,
            col=self.char_col(line, node.col_offset) + 1,  # type: ignore[attr-defined]
            code=rule.code,
            message=rule.message(**fields),
            severity=rule.severity,
            end_line=end_line,
            end_col=self.char_col(end_line, end_col) + 1 if end_line and end_col is not None else None,
            edits=edits,
        )


def _simple_bindings(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {a.asname or a.name.partition(".")[0] for a in node.names}
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
