"""The pure-Python codec: h11 as a parser only. The only module that imports h11."""

from __future__ import annotations

import h11

from hatchway._http.events import REQUEST_END, Body, Event, Limits, ParseError, RequestHead, split_target
from hatchway._http.validate import expects_continue, head_problem, keep_alive, upgrade_token

# h11 tracks both sides of the connection; hatchway writes responses itself, so it tells h11 that a
# response went out with this stand-in once the real one is complete.
_DONE = h11.Response(status_code=200, headers=[(b"content-length", b"0")])
_END = h11.EndOfMessage()


class H11Codec:
    """Bytes in, events out, with the same limits and checks as the httptools codec."""

    def __init__(self, limits: Limits, max_incomplete_event_size: int | None = None) -> None:
        self._max_line = limits.limit_request_line
        self._max_fields = limits.limit_request_fields
        self._conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=max_incomplete_event_size or limits.limit_request_head_size
        )
        self._failed = False
        self._upgrade = False

    def feed(self, data: bytes) -> list[Event]:
        if self._failed:
            return []
        try:
            self._conn.receive_data(data)
        except RuntimeError:
            # Data after the peer's EOF or while h11 is closed: nothing more to parse.
            return []
        return self._drain()

    def next_cycle(self) -> list[Event]:
        conn = self._conn
        if self._failed or conn.their_state is h11.MUST_CLOSE:
            return []
        try:
            conn.send(_DONE)
            conn.send(_END)
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return []
        self._upgrade = False
        return self._drain()

    def trailing_data(self) -> bytes:
        return self._conn.trailing_data[0]

    def _drain(self) -> list[Event]:
        events: list[Event] = []
        conn = self._conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._failed = True
                events.append(ParseError(exc.error_status_hint, str(exc)))
                return events
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return events
            if isinstance(event, h11.Request):
                head = self._head(event)
                events.append(head)
                if isinstance(head, ParseError):
                    self._failed = True
                    return events
            elif isinstance(event, h11.Data):
                events.append(Body(bytes(event.data)))
            elif isinstance(event, h11.EndOfMessage):
                events.append(REQUEST_END)
            else:  # ConnectionClosed
                return events

    def _head(self, event: h11.Request) -> RequestHead | ParseError:
        target = bytes(event.target)
        if len(target) > self._max_line:
            return ParseError(414, "request line too long")
        headers = [(bytes(n), bytes(v)) for n, v in event.headers.raw_items()]
        headers = [(n.lower(), v) for n, v in headers]
        if len(headers) > self._max_fields:
            return ParseError(431, "too many header fields")
        http_version = event.http_version.decode("ascii")
        problem = head_problem(http_version, headers)
        if problem is not None:
            return problem
        tokens: set[bytes] = set()
        for name, value in headers:
            if name == b"connection":
                tokens.update(t.strip().lower() for t in value.split(b","))
        raw_path, query = split_target(target)
        return RequestHead(
            event.method.decode("ascii"),
            raw_path,
            query,
            http_version,
            headers,
            keep_alive(http_version, tokens),
            upgrade_token(headers, tokens),
            expects_continue(headers),
        )
