"""HW009: reaching into a server's private internals, ``server.servers[0].sockets[0]``."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from hatchway.checker._context import FileContext
from hatchway.checker._imports import spelled
from hatchway.checker._model import Finding, rule


@rule(
    "HW009",
    "server-internals",
    "reaching into server internals such as server.servers[0].sockets[0]",
    "{expr} reaches into the server's internals: `servers` is the private list of asyncio servers, empty "
    "before start-up and different with uds=, fd= or workers, and it changes between versions; use "
    "`with hatchway.background(app) as server: server.url` or `async with hatchway.serving(app) as server:` "
    "to get the bound address",
    severity="warning",
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for attr in ctx.attributes:
        if attr.attr != "sockets" or not isinstance(attr.value, ast.Subscript):
            continue
        servers = attr.value.value
        if isinstance(servers, ast.Attribute) and servers.attr == "servers":
            expr = f"{spelled(servers)}[{ast.unparse(attr.value.slice)}].sockets"
            yield ctx.finding(check, servers, expr=expr)
