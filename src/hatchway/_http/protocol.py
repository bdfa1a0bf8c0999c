"""The one asyncio.Protocol: codec events to cycles, pipelining, and the choice of HTTP/1.1 or HTTP/2.

The adapter is mechanical: feed bytes to the codec, act on each event, write what cycles produce. What the
connection knows of its ends and the scope it builds are in ``scope.py``, its writes, flow control and
timers in ``connection.py`` (the base classes of ``HttpProtocol``); what an h2c upgrade needs in ``upgrade.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

from hatchway._app_task import run_http, service_unavailable
from hatchway._health import HealthApp
from hatchway._http.connection import ConnectionIO
from hatchway._http.cycle import HIGH_WATER, Cycle
from hatchway._http.events import Body, Codec, ParseError, RequestEnd, RequestHead
from hatchway._http.h2_connection import PREFACE, H2Connection, new_connection
from hatchway._http.scope import ERROR_TEXT, make_codec_factory
from hatchway._http.upgrade import h2c_settings
from hatchway._http.wire import plain_response
from hatchway._logs import escape, logger
from hatchway._proxy import TrustedProxies

if TYPE_CHECKING:
    from hatchway._config import Config
    from hatchway._http.httptools_codec import HttptoolsCodec
    from hatchway._state import ServerState
    from hatchway._ws.handoff import WebSocketHandoff

# make_codec_factory is imported from here by the server's start-up and benchmarks/hotpath.py (which also runs
# older trees, where it was defined here).
__all__ = ["HttpProtocol", "make_codec_factory"]

_PIPELINE_MAX: Final = 64  # parsed-but-unanswered requests held before reading pauses
_TASK_NAME: Final = "hatchway.request"
# How long a stopping server still waits for a request that has begun (or whose connection was just
# accepted) before closing; keep-alive connections between requests are closed at once.
_SHUTDOWN_GRACE: Final = 1.0


def _llhttp_codec(codec: Codec) -> HttptoolsCodec | None:
    try:
        from hatchway._http.httptools_codec import HttptoolsCodec
    except ImportError:  # no httptools (not CPython): h11 serves
        return None
    return codec if isinstance(codec, HttptoolsCodec) else None


class HttpProtocol(ConnectionIO):
    """One client connection speaking HTTP/1.1."""

    def __init__(
        self,
        config: Config,
        state: ServerState,
        app: Any,
        codec_factory: Callable[[], Codec],
        trusted: TrustedProxies | None,
        loop: asyncio.AbstractEventLoop | None = None,
        websockets: WebSocketHandoff | None = None,
    ) -> None:
        super().__init__(config, state, trusted, loop)
        self.app = app
        # Where WebSocket upgrades go (handed in by the server, None when ws="none": served as plain HTTP).
        self.websockets = websockets
        self.codec = codec_factory()
        # The same codec when it is the usual one, typed as itself: the compiled build then calls it directly
        # on the per-request path (calls through the Codec protocol go by name, about 350 CPU instructions
        # each on 3.13).
        self._llhttp = _llhttp_codec(self.codec)
        # The cycle whose response is being produced, and the parsed requests waiting their turn.
        self.cycle: Cycle | None = None
        self.pipeline: deque[Cycle | ParseError | RequestHead] = deque()
        self._upgrades: dict[Cycle, RequestHead] = {}  # pipelined WebSocket requests, decided in turn
        self.body_target: Cycle | None = None
        self.client_eof = False
        self.plain_tasks = self.loop.get_task_factory() is None
        # Read per request: kept here, as Config is a plain Python object (its attributes cost a lookup each).
        self._limit = config.limit_concurrency
        self._reset_contextvars = config.reset_contextvars
        self._head_timeout = config.timeout_request_header
        self._keep_alive_timeout = config.timeout_keep_alive
        # With http2: the connection's HTTP/2 side once it speaks HTTP/2, and whether its first bytes are
        # still to be looked at for the HTTP/2 preface (h2c with prior knowledge).
        self.h2: H2Connection | None = None
        self._sniff = b"" if config.http2 else None

    # -- asyncio callbacks --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state.connections.add(self)
        self._find_ends(transport)
        if self.scheme == "https":
            self._sniff = None  # TLS: ALPN decides, not the first bytes
        if self.state.shutting_down:
            # Accepted after the stopping server's sweep, which may already have finished waiting.
            transport.close()
            return
        if self.scheme == "https" and self.config.http2:
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
                self._speak_h2().start(b"")
                return
        self._arm("head", self._head_timeout)

    def _speak_h2(self) -> H2Connection:
        """From now on the connection speaks HTTP/2."""
        self._cancel_timer()
        self._sniff = None
        self.h2 = new_connection(self, self.config, self.state)
        return self.h2

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._out = None
        self.state.connection_closed(self)
        self._cancel_timers()
        for item in (self.cycle, *self.pipeline):
            if isinstance(item, Cycle):
                item.connection_lost()
        self.pipeline.clear()
        self._upgrades.clear()
        self.flow.close()
        if self.h2 is not None:
            self.h2.connection_lost()

    def eof_received(self) -> bool | None:
        if self.h2 is not None:
            return None  # HTTP/2 has no half-close: the client is gone
        target = self.body_target
        if self.cycle is None or (target is not None and not target.request_complete):
            # Idle, or a body cut short that can never complete: close (the app sees http.disconnect). The
            # transport closes itself, not through close(): what is queued must be handed to it first.
            self._flush_out()
            return None
        # A half-closed client may still be waiting for its responses (RFC 9112 9.6): answer every request
        # it sent, then close.
        self.client_eof = True
        self.cycle.eof_received()
        return True

    def data_received(self, data: bytes) -> None:
        # try costs nothing until something raises (PEP 659); a fault in hatchway's own code (codec, cycle
        # set-up) then costs this connection only, with one clear log line instead of asyncio's.
        try:
            if self.h2 is not None:
                self.h2.data_received(data)
                return
            if self._sniff is not None and self._sniffed_h2(data):
                return
            if self._timer_kind == "keep-alive":
                # The next request has begun: the head must now arrive within the head timeout.
                self._arm("head", self._head_timeout)
            llhttp = self._llhttp
            if llhttp is not None:
                self._dispatch(llhttp.feed(data))
                buffered = llhttp.buffered()
            else:
                self._dispatch(self.codec.feed(data))
                buffered = self.codec.buffered()
            if buffered > HIGH_WATER:
                # Bytes the codec holds for later (requests behind the one being served, data after an
                # upgrade) are bounded too: the client waits in the kernel's buffers, not in ours.
                self.pause_reading()
        except Exception:
            logger.exception("Error while handling data from %s; closing the connection.", self.peer_text())
            self.abort()

    def _sniffed_h2(self, data: bytes) -> bool:
        """h2c with prior knowledge (RFC 9113 3.3): a connection that opens with the HTTP/2 preface speaks
        HTTP/2; anything else is HTTP/1.1. True when ``data`` went to HTTP/2 (or is kept until it is known)."""
        seen = self._sniff_bytes() + data
        if seen[:24] == PREFACE[: len(seen[:24])]:
            if len(seen) < len(PREFACE):
                self._sniff = seen  # a preface cut short by the network: wait for the rest
                return True
            self._speak_h2().start(seen)
            return True
        self._sniff = None
        if len(seen) > len(data):  # the bytes held back were HTTP/1.1 after all
            self._dispatch(self.codec.feed(seen[: len(seen) - len(data)]))
        return False

    def _sniff_bytes(self) -> bytes:
        return self._sniff or b""

    def _dispatch(self, events: list[Any]) -> None:
        for event in events:
            cls = event.__class__
            if cls is Body:
                target = self.body_target
                if target is None:
                    continue
                if self._body_timer is not None:
                    self._body_timer.cancel()
                    self._body_timer = None
                if target.response_complete:
                    # Answered already: the rest of the body is dropped, within the body idle timeout.
                    self._arm_body_timer(target)
                    continue
                target.body_received(event.data)
                if target.body_size > HIGH_WATER and not self.reading_paused:
                    self.pause_reading()
            elif cls is RequestHead:
                self._on_head(event)
            elif cls is RequestEnd:
                target, self.body_target = self.body_target, None
                if target is not None:
                    if self._body_timer is not None:
                        self._body_timer.cancel()
                        self._body_timer = None
                    target.request_ended()
                    if target.response_complete and target is self.cycle:
                        self._next()
            else:
                self._on_parse_error(event)
                return

    # write_paused mirrors flow.paused as a plain attribute: a cycle reads it on every body send.
    def pause_writing(self) -> None:
        self.write_paused = True
        self.flow.pause()

    def resume_writing(self) -> None:
        self.write_paused = False
        self.flow.resume()
        if self.h2 is not None:
            self.h2.resume_writing()

    def wait_for_body(self, cycle: Cycle) -> None:
        if self._body_timer is None and cycle is self.body_target:
            self._arm_body_timer(cycle)

    def cycle_done(self, cycle: Cycle) -> None:
        self.state.count_request()
        if not cycle.keep_alive or self.closing:
            self.close()
            return
        if cycle.request_complete:
            self._next()
            return
        if cycle.expect_continue:
            # 100 Continue was never sent, so the client may never send the body (RFC 9110 10.1.1): close.
            self.close()
            return
        # The app answered without reading the whole body: what it left is dropped (bounded by the body
        # idle timeout) and the next request follows the body's end.
        cycle.body_dropped()
        self.resume_reading()
        if self._body_timer is None:
            self._arm_body_timer(cycle)

    # -- requests -----------------------------------------------------------------------------------
    def _on_head(self, head: RequestHead) -> None:
        if self._timer_kind == "head":
            self._cancel_timer()
        if self.cycle is None and not self.pipeline:
            self._start(head)
        else:
            # The cycle is made now so the request's end (already parsed) is recorded on it; a WebSocket
            # upgrade is decided when its turn comes.
            cycle = self._make_cycle(head)
            if head.upgrade == b"websocket":
                self._upgrades[cycle] = head
            self.pipeline.append(cycle)
            if len(self.pipeline) > _PIPELINE_MAX:
                self.pause_reading()

    def _make_cycle(self, head: RequestHead) -> Cycle:
        cycle = Cycle(self.http_scope(head), self, self.state, head.keep_alive, head.expect_continue, self)
        self.body_target = cycle
        if self.state.observer is not None:
            # A request id is taken from the request only when its peer is a trusted proxy.
            self.state.observer.request_began(cycle, self.use_proxy)
        return cycle

    def _start(self, item: RequestHead | Cycle) -> None:
        if isinstance(item, RequestHead):
            if item.upgrade is not None and self._upgraded(item):
                return
            cycle = self._make_cycle(item)
        else:
            cycle = item
            if self._upgrades:
                head = self._upgrades.pop(cycle, None)
                if head is not None and self._try_websocket(head):
                    return
        self.cycle = cycle
        if self.closing or self.state.shutting_down:
            cycle.close_after_response()
        self.start_cycle(cycle)

    def start_cycle(self, cycle: Cycle) -> None:
        """Run the app for ``cycle`` (an HTTP/1.1 request, or an HTTP/2 stream) in its own task."""
        app = self.app
        limit = self._limit
        # Past the limit, the health paths are answered even so (a liveness probe failing on a busy server
        # would restart it); they are looked at only there, so the plain path pays nothing for them.
        if (
            limit is not None
            and (len(self.state.connections) > limit or len(self.state.tasks) >= limit)
            and not (isinstance(app, HealthApp) and app.answers(cycle.scope))
        ):
            logger.warning("Exceeded concurrency limit.")
            app = service_unavailable
        coro = run_http(cycle, app)
        if self._reset_contextvars:
            task = contextvars.Context().run(self._new_task, coro)
        else:
            task = self._new_task(coro)
        # The cycle takes its task out of the set when it ends: no done callback, so no loop callback per
        # request for it.
        if self.plain_tasks or not task.done():
            cycle.attach_task(task)
            self.state.tasks.add(task)
        # else: an eager task factory (Python 3.12+) ran the request to its end inside _new_task, before
        # there was a task to register; counting it now would keep it "in flight" for ever.

    def _new_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        if self.plain_tasks:
            # A name given up front spares the Task formatting a unique one per request (Python < 3.12).
            return asyncio.Task(coro, loop=self.loop, name=_TASK_NAME)
        return self.loop.create_task(coro)  # the loop has a task factory: it decides

    def _next(self) -> None:
        self.cycle = None
        if self.closed:
            return
        llhttp = self._llhttp
        events = llhttp.next_cycle() if llhttp is not None else self.codec.next_cycle()
        if self.pipeline:
            item = self.pipeline.popleft()
            if isinstance(item, ParseError):
                self._on_parse_error(item)
                return
            if self.reading_paused and len(self.pipeline) < _PIPELINE_MAX // 2:
                self.resume_reading()
            self._start(item)
        elif llhttp.head_started() if llhttp is not None else self.codec.head_started():
            # The next head is on its way: it must be complete within the head timeout (slow clients).
            self.resume_reading()
            self._arm("head", self._head_timeout)
        else:
            self.resume_reading()
            self._arm("keep-alive", self._keep_alive_timeout)
        if events:
            self._dispatch(events)
        if self.client_eof:
            self._close_if_idle()

    def _close_if_idle(self) -> None:
        # Its own method: inside _next, mypy keeps self.cycle narrowed to None across _dispatch (which may
        # start a cycle), and the compiled build would turn that into a TypeError.
        if self.cycle is None:
            self.close()

    def _on_parse_error(self, error: ParseError) -> None:
        target, self.body_target = self.body_target, None
        if self.cycle is not None:
            if target is self.cycle and not target.request_complete:
                # The body of the request in progress is malformed (RFC 9112 7.1): nothing after it can be
                # framed, so answer the error unless a response has begun, and close.
                logger.warning("Invalid HTTP request received: %s", escape(error.reason[:200]))
                answer = target.claim_response()
                target.connection_lost()
                if answer:
                    self.write(
                        plain_response(
                            error.status,
                            ERROR_TEXT.get(error.status, "Bad Request"),
                            self.state.default_headers(),
                        )
                    )
                self.close()
                return
            if target is not None and not target.request_complete and target in self.pipeline:
                # A queued request whose body is malformed: the error answers it, in order.
                self.pipeline.remove(target)
            # Answer in order: the requests already accepted come first.
            self.pipeline.append(error)
            self.pause_reading()
            return
        self._cancel_timer()
        # Client bytes in a reason (h11 quotes the offending line) are escaped and cut to one short line.
        logger.warning("Invalid HTTP request received: %s", escape(error.reason[:200]))
        self.write(
            plain_response(
                error.status, ERROR_TEXT.get(error.status, "Bad Request"), self.state.default_headers()
            )
        )
        self.close()

    def _upgraded(self, head: RequestHead) -> bool:
        if head.upgrade == b"websocket":
            return self._try_websocket(head)
        if head.upgrade == b"h2c" and self.config.http2 and self.scheme == "http":
            return self._try_h2c(head)
        return False

    def _try_h2c(self, head: RequestHead) -> bool:
        """``Upgrade: h2c`` (RFC 7540 3.2): taken unless the request has a body or no valid settings."""
        settings = h2c_settings(head)
        if settings is None:
            return False
        self._flush_out()
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
        )
        self._speak_h2().start_upgraded(settings, head, self.codec.trailing_data())
        return True

    def _try_websocket(self, head: RequestHead) -> bool:
        websockets = self.websockets
        if websockets is None:
            return False
        self._cancel_timers()
        self._flush_out()  # a pipelined response before the upgrade goes first
        self.closed = True  # this protocol no longer owns the transport
        self.state.connection_closed(self)
        websockets.over_http1(
            self.transport,
            self.config,
            self.state,
            self.app,
            self.http_scope(head),
            head,
            self.codec.trailing_data(),
        )
        return True

    # -- shutdown, and what a timeout means here ----------------------------------------------------
    def shutdown(self) -> None:
        """Graceful: close now if idle, else after the response in progress."""
        if self.h2 is not None:
            self.h2.shutdown()
            return
        already_closing = self.closing
        self.closing = True
        self.pipeline.clear()
        self._upgrades.clear()
        if self.cycle is None and self._timer_kind == "head" and not already_closing:
            # Not idle: a client that has just connected, or is sending a head, has a request on its way.
            # Closing now would lose it; it gets a short grace (within the head timeout) and a closing answer.
            grace = _SHUTDOWN_GRACE
            if self.config.timeout_graceful_shutdown is not None:
                grace = min(grace, self.config.timeout_graceful_shutdown / 2)
            left = self._deadline - self.loop.time() if self._timer is not None else grace
            self._arm("head", min(max(left, 0.001), grace))
            return
        if self.cycle is None or self.cycle.response_complete or self.cycle.disconnected:
            self.close()
        else:
            self.cycle.close_after_response()

    def _on_timeout(self) -> None:
        self._timer = None
        # A stopping server's grace that saw no byte ends in a plain close, like an idle connection's.
        if (
            self._timer_kind == "head"
            and self.cycle is None
            and not self.transport.is_closing()
            and (not self.closing or self.codec.head_started())
        ):
            logger.debug("Request head not received in time; closing.")
            self.write(plain_response(408, "Request Timeout", self.state.default_headers()))
        self.close()
