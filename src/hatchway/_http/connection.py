"""The I/O half of a client connection: its transport, write batching, flow control in both directions, timers.

``ConnectionIO`` sits between ``scope.ConnectionScope`` (the connection's ends) and ``protocol.HttpProtocol``
(the asyncio callbacks and HTTP on top); it is one object with them, so the connection's state has one owner.
All timers live here: the request-head timeout (slow clients), keep-alive idle, body idle and send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from hatchway._flow import WriteFlow
from hatchway._http.cycle import Cycle
from hatchway._http.files import FileSender, sendfile_target
from hatchway._http.scope import ConnectionScope
from hatchway._http.wire import plain_response
from hatchway._logs import logger

if TYPE_CHECKING:
    from hatchway._config import Config
    from hatchway._proxy import TrustedProxies
    from hatchway._state import ServerState


class ConnectionIO(ConnectionScope):
    """What one connection writes, when it reads, and its timers."""

    def __init__(
        self,
        config: Config,
        state: ServerState,
        trusted: TrustedProxies | None,
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        super().__init__(config, state, trusted)
        self.loop = loop or asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.reading_paused = False
        self.write_paused = False
        self.flow = WriteFlow(self.loop, config.timeout_send, self._on_send_timeout)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0  # when the scheduled timer fires (asked of the handle, it costs a call)
        self._timer_kind = ""
        self._deadline = 0.0
        # Bound once: the loop's clock is read twice per request (the head and keep-alive timers).
        self._now: Callable[[], float] = self.loop.time
        self._body_timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.closing = False
        # Finished responses waiting for the loop's next turn (see write_soon).
        self._out: list[bytes] | None = None
        self._sendfile_fd = -2  # the socket sendfile(2) writes to, -1 if none (TLS); found at the first file

    # -- writing (the Conn interface used by cycles) ----------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.closed:
            if self._out is not None:  # what was queued goes first, in the same send(2)
                self._out.append(data)
                self._flush_out()
            else:
                self.transport.write(data)

    def writelines(self, data: tuple[bytes, bytes]) -> None:
        if not self.closed:
            self._flush_out()
            self.transport.writelines(data)

    # While other connections are open (or other requests in flight), a finished response is handed to the
    # transport on the loop's next turn, with every other connection's, rather than from inside the app's
    # send(). Under load the apps of one turn then run back to back and the send(2) calls follow together:
    # on loopback a send(2) runs much of the TCP stack on this CPU, and between two apps it evicts the
    # framework's code and data from the caches. Measured with FastAPI, server CPU per request fell by about
    # a third. Every immediate write, writelines and close sends what is queued first, so the order on the
    # wire never changes.
    def write_soon(self, data: bytes) -> None:
        if not self.closed:
            out = self._out
            if out is not None:
                out.append(data)
            elif len(self.state.tasks) > 1 or len(self.state.connections) > 1:
                self._out = [data]
                self.state.flush_soon(self._flush_out)
            else:
                # One client and nothing else in flight: no app to keep apart from the send, and waiting
                # for the next turn would only add latency. (Counting requests in flight alone missed most
                # of the batching under load: the last app of a turn saw only itself. With the open
                # connections counted too, server CPU per request fell by about 5 % in an A/B run on 3.13,
                # 64 connections, plain text.)
                self.transport.write(data)

    def _flush_out(self) -> None:
        out = self._out
        if out is not None:
            self._out = None
            if not self.closed:
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def send_file(self, head: bytes, sender: FileSender) -> Awaitable[None] | None:
        """Write ``head``, then the file ``sender`` moves: sendfile(2) on a plain socket, copied under TLS."""
        if self.closed:
            return sender.start(None, -1)
        self.write(head)  # what was queued goes first
        sock = self._sendfile_fd
        if sock == -2:
            sock = self._sendfile_fd = sendfile_target(self.transport)
        return sender.start(self, sock)

    def write_waiter(self) -> asyncio.Future[None] | None:
        if self.write_paused and not self.closed:
            return self.flow.waiter()
        return None

    def pause_reading(self) -> None:
        if not self.reading_paused and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def cycle_done(self, cycle: Cycle) -> None:
        """``cycle``'s response is complete (``HttpProtocol`` moves on to the next request)."""
        raise NotImplementedError

    def resume_reading(self) -> None:
        if self.reading_paused and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        if not self.closed:
            self._flush_out()
            self.closing = True
            self.transport.close()

    def abort(self) -> None:
        if not self.closed:
            self._flush_out()  # best effort: a forced stop still sends what is finished
            self.transport.abort()

    # -- timers ------------------------------------------------------------------------------------------
    def shorten_head_timeout(self, deadline: float) -> None:
        """The first head must arrive by ``deadline`` (loop time): a PROXY header (``_proxy_gate``) already
        used part of ``timeout_request_header``."""
        if self._timer_kind == "head" and deadline < self._deadline:
            self._arm("head", max(deadline - self.loop.time(), 0.001))

    # The head/keep-alive timer is lazy: re-arming it twice per request (keep-alive -> head -> keep-alive)
    # only moves a deadline. One loop timer stays scheduled; when it fires early it re-schedules itself for
    # the current deadline, so a busy keep-alive connection creates no timer handle per request.
    def _arm(self, kind: str, delay: float) -> None:
        self._timer_kind = kind
        if not delay:
            self._drop_timer()
            return
        deadline = self._now() + delay
        self._deadline = deadline
        timer = self._timer
        if timer is not None:
            if self._timer_when <= deadline:
                return
            timer.cancel()
        self._timer_when = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._timer_kind:
            return
        if self.loop.time() + 0.001 < self._deadline:
            self._timer_when = self._deadline
            self._timer = self.loop.call_at(self._deadline, self._on_timer)
            return
        self._on_timeout()

    def _on_timeout(self) -> None:
        """The head or keep-alive timer ran out (``HttpProtocol`` answers a late head with 408 first)."""
        self._timer = None
        self.close()

    def _cancel_timer(self) -> None:
        # Disarmed, not cancelled: the scheduled handle finds no kind when it fires and does nothing.
        self._timer_kind = ""

    def _drop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cancel_timers(self) -> None:
        self._cancel_timer()
        self._drop_timer()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self.flow.close()

    def _arm_body_timer(self, cycle: Cycle) -> None:
        timeout = self.config.timeout_request_body
        if timeout:
            self._body_timer = self.loop.call_later(timeout, self._on_body_timeout, cycle)

    def _on_body_timeout(self, cycle: Cycle) -> None:
        self._body_timer = None
        if cycle.request_complete or self.closed:
            return
        logger.debug("No request body received for %ss; closing.", self.config.timeout_request_body)
        if cycle.claim_response():
            self.write(plain_response(408, "Request Timeout", self.state.default_headers()))
        self.abort()

    def _on_send_timeout(self) -> None:
        logger.debug("Client read nothing for %ss; closing.", self.config.timeout_send)
        self.abort()
