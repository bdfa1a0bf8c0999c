"""websockets' sans-I/O ``ServerProtocol`` with the one correction hatchway makes to its frame rules.

This module is not compiled with mypyc (``_ws.protocol`` is): a compiled class cannot subclass a class from a
library the build does not type-check (the build environment holds only the build tools), so the subclass
lives here, in plain Python, like ``h11_codec``'s subclass of ``h11.Connection``.
"""

from __future__ import annotations

from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol as _LibraryServerProtocol

__all__ = ["ServerProtocol"]

_CLOSE = Opcode.CLOSE


class ServerProtocol(_LibraryServerProtocol):
    """websockets' server side, except that a Close frame between the fragments of a message closes cleanly."""

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is _CLOSE:
            # RFC 6455 5.4: "control frames MAY be injected in the middle of a fragmented message", and Close is a
            # control frame (5.5). websockets fails such a connection with 1002 ("incomplete fragmented
            # message"); the peer is closing, which abandons the unfinished message, so the Close is answered as
            # any other: the peer's code is echoed and the app receives it in websocket.disconnect.
            # websockets names the running size of a message ``current_size`` now and ``cur_size`` in older releases.
            for name in ("current_size", "cur_size"):
                if getattr(self, name, None) is not None:
                    setattr(self, name, None)
        super().recv_frame(frame)
