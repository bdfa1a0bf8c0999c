"""What a server observes of each request: request ids, the access line (any format), log fields, metrics.

Pure Python and off the default path: the server installs an ``Observer`` on its state only when one of
``access_log_format``, ``log_format="json"``, ``request_id`` or ``metrics_address`` is set. Without one, the
cycle logs uvicorn's access line exactly as before and nothing here runs. With one, a request costs what its
options use: the access format is parsed once, at start-up, into a list of small functions, and a value the
format does not name (a header, the time of day, a formatted duration) is never computed.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hatchway._logs import access_logger, escape

if TYPE_CHECKING:
    from hatchway._config import Config
    from hatchway._http.cycle import Cycle
    from hatchway._metrics import RequestMetrics, ServerMetrics
    from hatchway._state import ServerState

#: Where a request's id is in the ASGI scope: ``scope["extensions"]["hatchway.request_id"]["id"]``.
REQUEST_ID_EXTENSION = "hatchway.request_id"
REQUEST_ID_HEADER = b"x-request-id"
# An incoming id is kept only when it is short and made of characters that are safe in a log line and a
# header (UUIDs, ULIDs, hex, base64 and the usual "service-123.abc" forms); anything else is replaced.
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._~:/+=@-]{1,200}")


class RequestRecord:
    """What is observed of one request while it runs (the cycle holds it as ``cycle.record``)."""

    __slots__ = ("received", "request_id", "response_headers", "sent", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.request_id = ""
        self.received = 0  # request body bytes
        self.sent = 0  # response body bytes
        self.response_headers: Any = ()


_random = random.Random()  # seeded from os.urandom; each worker is a fresh interpreter with its own


def new_request_id() -> str:
    """A fresh request id: 32 hex digits (128 random bits), as ``uuid4().hex`` but without a system call."""
    return f"{_random.getrandbits(128):032x}"


def incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The request's own ``X-Request-ID``, when it has exactly one and it is valid."""
    found: str | None = None
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if found is not None or not _VALID_REQUEST_ID.fullmatch(value):
                return None
            found = value.decode("ascii")
    return found


# -- the access-log format -----------------------------------------------------------------------------------
# gunicorn's atoms (its "access_log_format"), read from the ASGI scope and the cycle. Each atom is a function
# (cycle, record, seconds) -> str. Client-supplied text goes through ``escape``: a quote or a newline in a
# path or a header must not forge fields or lines.
Atom = Callable[["Cycle", RequestRecord, float], str]


def _client_host(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    client = cycle.scope.get("client")
    return escape(str(client[0])) if client else "-"


def _path(cycle: Cycle) -> str:
    return escape(cycle.scope["raw_path"].decode("latin-1"))


def _query(cycle: Cycle) -> str:
    query: bytes = cycle.scope["query_string"]
    return escape(query.decode("latin-1")) if query else ""


def _request_line(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    scope = cycle.scope
    query = _query(cycle)
    target = _path(cycle) + ("?" + query if query else "")
    return f"{escape(scope['method'])} {target} HTTP/{scope['http_version']}"


def _request_header(name: str) -> Atom:
    wanted = name.lower().encode("latin-1")

    def atom(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
        values = [v for n, v in cycle.scope["headers"] if n == wanted]
        return escape(b",".join(values).decode("latin-1")) if values else "-"

    return atom


def _response_header(name: str) -> Atom:
    wanted = name.lower().encode("latin-1")

    def atom(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
        values = [bytes(v) for n, v in record.response_headers if bytes(n).lower() == wanted]
        if not values and wanted == REQUEST_ID_HEADER and record.request_id:
            return record.request_id  # the header hatchway added itself
        return escape(b",".join(values).decode("latin-1")) if values else "-"

    return atom


def _constant(text: str) -> Atom:
    def atom(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
        return text

    return atom


def _time(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    return time.strftime("[%d/%b/%Y:%H:%M:%S %z]")


def _method(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    return escape(cycle.scope["method"])


def _url_path(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    return _path(cycle)


def _query_string(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    return _query(cycle)


def _protocol(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    return "HTTP/" + str(cycle.scope["http_version"])


def _status(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    return str(cycle.status)


def _length(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    return str(record.sent)


def _length_clf(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    return str(record.sent) if record.sent else "-"


def _seconds(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    return str(int(seconds))


def _microseconds(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    return str(int(seconds * 1_000_000))


def _milliseconds(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    return str(int(seconds * 1000))


def _decimal_seconds(cycle: Cycle, record: RequestRecord, seconds: float) -> str:
    return f"{seconds:.6f}"


_ATOMS: dict[str, Atom] = {
    "h": _client_host,
    "l": _constant("-"),
    "u": _constant("-"),  # gunicorn's user from Basic auth; hatchway does not decode credentials
    "t": _time,
    "r": _request_line,
    "m": _method,
    "U": _url_path,
    "q": _query_string,
    "H": _protocol,
    "s": _status,
    "B": _length,
    "b": _length_clf,
    "f": _request_header("referer"),
    "a": _request_header("user-agent"),
    "T": _seconds,
    "D": _microseconds,
    "M": _milliseconds,
    "L": _decimal_seconds,
    "p": _constant(f"<{os.getpid()}>"),
}
#: The atoms and what they stand for, for the documentation and error messages.
ATOM_HELP: dict[str, str] = {
    "h": "remote address",
    "l": "'-'",
    "u": "user name ('-')",
    "t": "date of the request",
    "r": "request line (method, path and query, protocol)",
    "m": "request method",
    "U": "URL path without the query string",
    "q": "query string",
    "H": "protocol (HTTP/1.1)",
    "s": "status",
    "B": "response body length",
    "b": "response body length, '-' when 0",
    "f": "referer",
    "a": "user agent",
    "T": "request time in seconds",
    "D": "request time in microseconds",
    "M": "request time in milliseconds",
    "L": "request time in decimal seconds",
    "p": "process id",
    "{header}i": "request header",
    "{header}o": "response header",
    "{variable}e": "environment variable",
}
_TOKEN = re.compile(r"%\(([^)]*)\)s|%%|%")
_TIMED = frozenset("TDML")


class AccessFormat:
    """An access-log format, parsed once: ``render`` builds the line of one request."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[Atom] = []
        self.uses_response_headers = False
        self.uses_time = False
        position = 0
        for match in _TOKEN.finditer(text):
            if match.start() > position:
                self.parts.append(_constant(text[position : match.start()]))
            position = match.end()
            token = match.group(0)
            if token == "%%":
                self.parts.append(_constant("%"))
                continue
            key = match.group(1)
            if key is None:
                raise ValueError(
                    f"a '%' at position {match.start()} starts no atom; write %(name)s for an atom or %% for '%'"
                )
            self.parts.append(self._atom(key))
        if position < len(text):
            self.parts.append(_constant(text[position:]))

    def _atom(self, key: str) -> Atom:
        if key in _ATOMS:
            self.uses_time = self.uses_time or key in _TIMED
            return _ATOMS[key]
        if key.startswith("{") and key[-2:-1] == "}" and len(key) > 3:
            name, kind = key[1:-2], key[-1]
            if kind == "i":
                return _request_header(name)
            if kind == "o":
                self.uses_response_headers = True
                return _response_header(name)
            if kind == "e":
                return _constant(os.environ.get(name, "-"))
        known = ", ".join(ATOM_HELP)
        raise ValueError(f"unknown atom %({key})s; the atoms are {known}")

    def render(self, cycle: Cycle, record: RequestRecord, seconds: float) -> str:
        return "".join([part(cycle, record, seconds) for part in self.parts])


def check_access_log_format(value: Any) -> str | None:
    """What is wrong with ``value`` as an access-log format, or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"expected a format string such as '%(h)s \"%(r)s\" %(s)s %(D)s', got {value!r}"
    try:
        AccessFormat(value)
    except ValueError as exc:
        return str(exc)
    return None


# -- the observer ---------------------------------------------------------------------------------------------
class Observer:
    """Installed on a ``ServerState`` when any observing option is on; the cycle calls it at three points."""

    def __init__(self, config: Config, metrics: RequestMetrics | None) -> None:
        self.access_log = config.access_log
        self.format = AccessFormat(config.access_log_format) if config.access_log_format else None
        self.structured = config.log_format == "json"
        self.request_ids = bool(config.request_id)
        self.metrics = metrics
        self.keep_response_headers = self.format is not None and self.format.uses_response_headers

    def request_began(self, cycle: Cycle, trusted: bool) -> None:
        """A request's head was parsed and its cycle made; ``trusted``: the peer may send proxy headers."""
        record = RequestRecord(time.perf_counter())
        if self.request_ids:
            scope = cycle.scope
            rid = incoming_request_id(scope["headers"]) if trusted else None
            record.request_id = rid or new_request_id()
            scope["extensions"][REQUEST_ID_EXTENSION] = {"id": record.request_id}
        cycle.record = record

    def response_started(self, record: RequestRecord, headers: Any) -> bytes:
        """The app's response head: keeps its headers if the format names one; the header lines to add."""
        if self.keep_response_headers:
            record.response_headers = headers
        if record.request_id:
            for name, _ in headers:
                if bytes(name).lower() == REQUEST_ID_HEADER:
                    return b""  # the app set its own
            return b"x-request-id: " + record.request_id.encode("ascii") + b"\r\n"
        return b""

    def request_done(self, cycle: Cycle) -> None:
        """The response is complete: metrics, then the access line."""
        record: RequestRecord = cycle.record
        seconds = time.perf_counter() - record.start
        if self.metrics is not None:
            self.metrics.observe(cycle.scope["method"], cycle.status, seconds, record.received, record.sent)
        if self.access_log and access_logger.isEnabledFor(logging.INFO):
            self._log(cycle, record, seconds)

    def _log(self, cycle: Cycle, record: RequestRecord, seconds: float) -> None:
        extra: dict[str, Any] | None = None
        if self.structured:
            extra = access_fields(cycle, record, seconds)
        elif record.request_id:
            extra = {"request_id": record.request_id}
        if self.format is not None:
            access_logger.info("%s", self.format.render(cycle, record, seconds), extra=extra)
            return
        # uvicorn's line, as the default: its arguments are what uvicorn's AccessFormatter expects, so
        # formatters written for it (--log-config) keep working.
        scope = cycle.scope
        client = scope.get("client")
        query = scope["query_string"]
        path = scope["raw_path"].decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d',
            escape(f"{client[0]}:{client[1]}" if client else "-"),
            escape(scope["method"]),
            escape(path),
            scope["http_version"],
            cycle.status,
            extra=extra,
        )

    def log_extra(self, record: RequestRecord | None) -> dict[str, Any] | None:
        """``extra`` for the error lines of one request."""
        if record is not None and record.request_id:
            return {"request_id": record.request_id}
        return None


def access_fields(cycle: Cycle, record: RequestRecord, seconds: float) -> dict[str, Any]:
    """The fields of a JSON access line (documented in docs/logging.md; keep the names stable)."""
    scope = cycle.scope
    client = scope.get("client")
    return {
        "client": f"{client[0]}:{client[1]}" if client else None,
        "method": scope["method"],
        "path": scope["raw_path"].decode("latin-1"),
        "query": scope["query_string"].decode("latin-1"),
        "http_version": scope["http_version"],
        "status": cycle.status,
        "bytes": record.sent,
        "duration_ms": round(seconds * 1000, 3),
        "request_id": record.request_id or None,
    }


def observing(config: Config) -> bool:
    """Whether ``config`` asks for anything this module does."""
    return bool(
        config.access_log_format or config.log_format == "json" or config.request_id or config.metrics_address
    )


def install(config: Config, state: ServerState, metrics: RequestMetrics | None) -> Observer | None:
    """Put an Observer on ``state`` when ``config`` needs one."""
    if not observing(config):
        return None
    observer = Observer(config, metrics)
    state.observer = observer
    return observer


def start_observing(config: Config, state: ServerState, *, endpoint: bool) -> ServerMetrics | None:
    """Install what ``config`` asks for on a starting server's ``state``; its metrics (to close), if any.

    ``endpoint``: this server serves its metrics itself (False in a supervisor's child, whose supervisor
    serves the sum). Raises StartupError when the metrics address cannot be bound.
    """
    if not observing(config):
        return None
    metrics = None
    if config.metrics_address is not None:
        from hatchway._metrics import ServerMetrics  # with its prometheus_client, only when metrics are on

        metrics = ServerMetrics(config, state, endpoint=endpoint)
    install(config, state, metrics.requests if metrics is not None else None)
    return metrics
