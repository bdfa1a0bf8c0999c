"""Readiness and liveness paths answered by the server itself, and the drain state they report.

With ``ready_path`` or ``live_path`` set, the server puts ``HealthApp`` in front of the app on the HTTP side
(the lifespan still talks to the app itself). A request for one of those paths is answered here, through
the ordinary request cycle (framing, keep-alive, HEAD, default headers), and the app is never called; past
``limit_concurrency`` too, where other requests get 503 (the protocol asks ``answers``). Unset, nothing is
wrapped: the plain request path does not change.

Readiness: 200 ``ok`` once the server serves, 503 ``draining`` from the start of a drain (``shutdown_delay``
after SIGTERM, or ``Server.drain()``) until the process ends. Liveness: 200 ``ok`` whenever the event loop
answers at all, draining or not (a draining server is alive; restarting it would cut its requests).
"""

from __future__ import annotations

from typing import Any

_OK = b"ok"
_DRAINING = b"draining"
_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")]


class HealthApp:
    """The app, with ``ready_path`` and ``live_path`` answered in front of it."""

    def __init__(self, app: Any, ready_path: str | None, live_path: str | None, root_path: str = "") -> None:
        self.app = app
        # The scope's path carries root_path in front of what the client asked for.
        self.ready_path = root_path + ready_path if ready_path else None
        self.live_path = root_path + live_path if live_path else None
        #: Set by the server when a drain begins: readiness answers 503 from then on.
        self.draining = False

    def answers(self, scope: dict[str, Any]) -> bool:
        """Whether a request is for one of the paths answered here (asked past ``limit_concurrency``)."""
        path: str = scope["path"]
        return scope["type"] == "http" and path in (self.ready_path, self.live_path)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "http":
            path = scope["path"]
            if path == self.ready_path:
                return await _answer(send, 503 if self.draining else 200, _DRAINING if self.draining else _OK)
            if path == self.live_path:
                return await _answer(send, 200, _OK)
        return await self.app(scope, receive, send)


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": body})
