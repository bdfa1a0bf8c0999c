"""File responses (the ASGI ``http.response.pathsend`` and ``zerocopysend`` extensions): the file's bytes go from
the page cache to the socket with ``sendfile(2)`` on a plain TCP or UNIX socket, and are copied through the
transport under TLS.

Neither asyncio's nor uvloop's transports can be asked to send a file: asyncio's ``loop.sendfile`` swaps the
protocol out and pauses reading for the transfer, and uvloop has no ``sendfile`` at all (it raises
``NotImplementedError``). So hatchway calls ``os.sendfile`` on the connection's socket itself, only while the
transport's write buffer is empty (nothing the transport holds can then be overtaken), and when the socket's
buffer is full it waits for room on a duplicate of the socket's descriptor: both loops refuse to watch a
descriptor a transport owns. The transport keeps reading meanwhile, so pipelined requests queue as usual.
This module does the work between two waits; the waits are in hatchway._app_task (never compiled).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import stat
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final, Protocol

from hatchway._logs import logger

if TYPE_CHECKING:
    from hatchway._flow import WriteFlow

PATHSEND: Final = "http.response.pathsend"
ZEROCOPYSEND: Final = "http.response.zerocopysend"

# Files up to this size are read and sent as an ordinary body, in one write with their head: sendfile(2) would
# need a second system call and a second TCP segment for the head (measured in benchmarks/README.md).
COPY_MAX: Final = 16384
# One sendfile(2) moves at most this much before the loop gets a turn: a fast client must not keep the other
# connections waiting for the whole of a large file.
_STEP_MAX: Final = 1 << 20
# Under TLS (or where sendfile is refused) the file is read and written in pieces of this size.
_COPY_CHUNK: Final = 65536
#: Bytes of file responses sent by sendfile(2) and by copying, since the process started: how the tests (and
#: anyone debugging) see which way a file went. Never reset.
BYTES_SENT: Final[dict[str, int]] = {"sendfile": 0, "copied": 0}
# sendfile(2) errors that mean "not for this pair of descriptors": copy instead.
_UNSUPPORTED: Final = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK})


class FileConn(Protocol):
    """What a transfer needs from its connection (HttpProtocol)."""

    closed: bool
    write_paused: bool
    flow: WriteFlow
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def write(self, data: bytes) -> None: ...
    def write_waiter(self) -> Awaitable[None] | None: ...
    def abort(self) -> None: ...


def sendfile_target(transport: asyncio.BaseTransport) -> int:
    """The descriptor ``os.sendfile`` may write this connection's bytes to, or -1 (TLS, no socket, not a
    stream socket)."""
    if transport.get_extra_info("sslcontext") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    if sock is None or not hasattr(os, "sendfile"):
        return -1
    try:
        if sock.type != socket.SOCK_STREAM:
            return -1
        return int(sock.fileno())
    except (AttributeError, OSError, ValueError):
        return -1


def open_file(message: dict[str, Any], kind: str) -> tuple[int, int, int, bool, Any]:
    """The file a ``pathsend`` or ``zerocopysend`` message names: (fd, offset, count, close it after, the
    file object whose position follows the transfer, if any).

    pathsend opens ``path`` and sends all of it (the app is responsible for closing nothing). zerocopysend takes
    an open file or descriptor: from ``offset`` (else the file's position, which then moves past what was
    sent) for ``count`` bytes (else to the end); the app closes it. Only regular files are accepted.
    """
    if kind == PATHSEND:
        path = message.get("path")
        if not isinstance(path, (str, os.PathLike)):
            raise RuntimeError(f"'http.response.pathsend' needs a 'path' string, got {path!r}.")
        # O_NONBLOCK: opening a FIFO for reading would otherwise block the event loop until a writer came;
        # a regular file ignores the flag for reads, and anything else is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise RuntimeError(f"'http.response.pathsend' path {path!r} is not a regular file.")
        except BaseException:
            os.close(fd)
            raise
        return fd, 0, info.st_size, True, None
    file = message.get("file")
    fd = file if isinstance(file, int) else -1
    if fd < 0:
        try:
            fd = int(file.fileno())  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError, TypeError):
            raise RuntimeError(
                f"'http.response.zerocopysend' needs a 'file' with a file descriptor, got {file!r}."
            ) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise RuntimeError("'http.response.zerocopysend' needs a regular file.")
    offset = message.get("offset")
    follows: Any = None
    if offset is None:
        # "Otherwise, it will be read from the current position of file": a Python file object knows its
        # position better than its descriptor does (it may have read ahead).
        if hasattr(file, "tell") and hasattr(file, "seek"):
            offset = int(file.tell())  # type: ignore[union-attr]
        else:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        follows = file
    elif not isinstance(offset, int) or offset < 0:
        raise RuntimeError(f"Invalid 'offset' {offset!r} in 'http.response.zerocopysend'.")
    count = message.get("count")
    if count is None:
        count = max(info.st_size - offset, 0)
    elif not isinstance(count, int) or count < 0:
        raise RuntimeError(f"Invalid 'count' {count!r} in 'http.response.zerocopysend'.")
    return fd, offset, count, False, follows


def _set_result(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class FileSender:
    """Moves ``count`` bytes of a file from ``offset`` to the client, then writes ``suffix`` (chunked framing).

    ``step()`` sends what the socket takes and returns what to wait for before the next step, or None when
    the transfer has ended (all sent, or failed: ``finish()`` says which and releases the descriptors).
    """

    __slots__ = (
        "_conn",
        "_dup",
        "_limits",
        "_sock",
        "_waiter",
        "_watching",
        "abort_after",
        "close_fd",
        "failed",
        "fd",
        "follows",
        "offset",
        "remaining",
        "sent_total",
        "suffix",
    )

    def __init__(self, fd: int, offset: int, count: int, suffix: bytes, close_fd: bool, follows: Any) -> None:
        self.fd = fd
        self.offset = offset
        self.remaining = count
        self.suffix = suffix
        self.close_fd = close_fd
        self.follows = follows
        self.failed = False
        #: The response is to be cut after this part (its Content-Length said otherwise).
        self.abort_after = False
        self.sent_total = 0
        self._conn: FileConn | None = None
        self._sock = -1
        self._dup = -1
        self._watching = False
        self._waiter: asyncio.Future[None] | None = None
        self._limits: tuple[int, int] | None = None

    def read_all(self) -> bytes:
        """All ``count`` bytes, read at once (small files); fewer if the file is shorter."""
        data = os.pread(self.fd, self.remaining, self.offset) if self.remaining else b""
        self.offset += len(data)
        self.remaining = 0
        BYTES_SENT["copied"] += len(data)
        return data

    def start(self, conn: FileConn | None, sock: int) -> Awaitable[None] | None:
        """Begin on ``conn`` (None: the connection is gone); ``sock`` is its sendfile target or -1."""
        self._conn = conn
        self._sock = sock
        if conn is None:
            self.failed = True
            return None
        return self.step()

    def step(self) -> Awaitable[None] | None:
        conn = self._conn
        if conn is None:
            return None
        self._stop_waiting(conn)
        moved = 0
        while True:
            if conn.closed or conn.transport.is_closing():
                self.failed = True
                return None
            if not self.remaining:
                if self.suffix:
                    conn.write(self.suffix)
                    self.suffix = b""
                return None
            if moved >= _STEP_MAX:
                # Let the other connections have the loop; the next step comes on its next turn.
                turn = conn.loop.create_future()
                conn.loop.call_soon(_set_result, turn)
                return turn
            if self._sock >= 0:
                if conn.transport.get_write_buffer_size():
                    return self._wait_drained(conn)
                try:
                    sent = os.sendfile(self._sock, self.fd, self.offset, min(self.remaining, _STEP_MAX))
                    BYTES_SENT["sendfile"] += sent
                except BlockingIOError:
                    return self._wait_writable(conn)
                except OSError as exc:
                    if exc.errno in _UNSUPPORTED and not self.sent_total:
                        self._sock = -1  # this descriptor pair cannot: copy instead
                        continue
                    logger.debug("sendfile failed (%s); closing the connection.", exc)
                    self.failed = True
                    conn.abort()
                    return None
            else:
                try:
                    data = os.pread(self.fd, min(self.remaining, _COPY_CHUNK), self.offset)
                except OSError as exc:
                    logger.error("Could not read the file of a response (%s); the connection is closed.", exc)
                    self.failed = True
                    return None
                sent = len(data)
                if sent:
                    conn.write(data)
                    BYTES_SENT["copied"] += sent
            if not sent:
                logger.error(
                    "The file of a response ended %d bytes early (it shrank while being sent); "
                    "the connection is closed.",
                    self.remaining,
                )
                self.failed = True
                return None
            self.offset += sent
            self.remaining -= sent
            self.sent_total += sent
            moved += sent
            if self._sock < 0 and conn.write_paused:
                room = conn.write_waiter()
                if room is not None:
                    return room

    def _wait_drained(self, conn: FileConn) -> Awaitable[None] | None:
        # Something is still in the transport's buffer (a response before this one, the head): wait until it
        # is empty. With both limits at 0 the transport pauses the protocol now and resumes it exactly then;
        # the protocol's send timeout runs meanwhile.
        transport = conn.transport
        if self._limits is None:
            self._limits = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(high=0, low=0)
        waiter = conn.write_waiter()
        if waiter is not None:
            return waiter
        # (Not expected: the transport paused the protocol just now.) Try again on the loop's next turn.
        later = conn.loop.create_future()
        conn.loop.call_soon(_set_result, later)
        return later

    def _wait_writable(self, conn: FileConn) -> Awaitable[None]:
        # The socket's buffer is full. The loops will not watch the transport's own descriptor, so a duplicate
        # of it is watched; the connection's write flow carries the send timeout and wakes this wait if the
        # connection is lost.
        if self._dup < 0:
            self._dup = os.dup(self._sock)
        flow = conn.flow
        flow.pause()
        conn.loop.add_writer(self._dup, flow.resume)
        self._watching = True
        return flow.waiter()

    def _stop_waiting(self, conn: FileConn) -> None:
        if self._watching:
            self._watching = False
            conn.loop.remove_writer(self._dup)
            conn.flow.resume()
        if self._limits is not None and not conn.transport.is_closing():
            low, high = self._limits
            self._limits = None
            conn.transport.set_write_buffer_limits(high=high, low=low)

    def finish(self) -> bool:
        """Release what the transfer held; True when every byte (and the suffix) went out."""
        conn = self._conn
        if conn is not None:
            try:
                self._stop_waiting(conn)
            except Exception:  # pragma: no cover - a closed loop or transport
                logger.debug("Could not stop waiting for the socket.", exc_info=True)
        if self._dup >= 0:
            os.close(self._dup)
            self._dup = -1
        if self.close_fd:
            self.close_fd = False
            os.close(self.fd)
        elif self.follows is not None:
            # The file's position moves past what was sent, as sendfile(2) without an offset would move it.
            follows, self.follows = self.follows, None
            try:
                if isinstance(follows, int):
                    os.lseek(follows, self.offset, os.SEEK_SET)
                else:
                    follows.seek(self.offset)
            except (OSError, ValueError):
                pass
        return not self.failed and not self.remaining and not self.suffix
