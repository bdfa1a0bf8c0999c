"""The FastAPI scenario's app, in its own module so only the process serving it imports FastAPI and pydantic.

(A module-level ``__getattr__`` would do that too, but hypercorn looks the attribute up with ``eval``, which
never consults it.)
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel


class Item(BaseModel):
    id: int
    name: str
    price: float
    tags: list[str]


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/{path:path}")
async def item(path: str) -> Item:
    return Item(id=1, name="widget", price=9.99, tags=["a", "b"])
