"""Listening sockets: host/port (IPv4/IPv6), UNIX sockets, inherited descriptors and systemd activation."""

from __future__ import annotations

import errno
import os
import socket
import stat
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hatchway._errors import BindError

if TYPE_CHECKING:
    from hatchway._config import Config

SD_LISTEN_FDS_START = 3

# The sockets a running server or supervisor listens on, by the Config it serves. ``Config.bind_socket()``
# called while that Config is being served (uvicorn recipes do it to learn the port) reports the listening
# socket instead of binding a second one that nobody serves (with port=0, on another free port).
_serving: weakref.WeakKeyDictionary[Config, list[socket.socket]] = weakref.WeakKeyDictionary()


def note_serving(config: Config, sockets: Sequence[socket.socket]) -> None:
    """Record that ``sockets`` now listen for ``config`` (a Server or supervisor started serving it)."""
    _serving[config] = list(sockets)


def forget_serving(config: Config, sockets: Sequence[socket.socket]) -> None:
    """Forget ``sockets`` for ``config`` (they are being closed); a record of other sockets is kept."""
    held = _serving.get(config)
    if held is not None and any(sock in held for sock in sockets):
        del _serving[config]


def serving_socket(config: Config) -> socket.socket | None:
    """A socket listening for ``config`` right now, if a server in this process serves it."""
    for sock in _serving.get(config, ()):
        if sock.fileno() != -1:  # closed by a supervisor that has stopped
            return sock
    return None


def _bind_error(exc: OSError, address: str, config: Config) -> BindError:
    def error(message: str, code: str) -> BindError:
        return BindError(message, code=code, address=address, errno=exc.errno)

    if exc.errno == errno.EADDRINUSE:
        hint = "stop the other process or pick another port (port=0 picks a free one)"
        return error(f"Address {address} is already in use; {hint}.", "HW301")
    if exc.errno in (errno.EACCES, errno.EPERM):
        if config.uds is None and config.port < 1024:
            hint = "ports below 1024 need privileges; use a port above 1024"
        else:
            hint = "check the permissions of the socket's directory" if config.uds else "check permissions"
        return error(f"Permission denied binding {address}; {hint}.", "HW302")
    if isinstance(exc, socket.gaierror):
        return error(
            f"Cannot resolve host {config.host!r}: {exc.strerror}; use an IP address or a known name.",
            "HW303",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return error(
            f"Cannot bind {address}: no network interface has this address; use 127.0.0.1 or 0.0.0.0.",
            "HW303",
        )
    return error(f"Cannot bind {address}: {exc.strerror or exc}.", "HW303")


def bind_socket(config: Config) -> socket.socket:
    """The one listening socket ``config`` describes: uds, then fd, then host and port (uvicorn's order)."""
    if config.uds:
        return _bind_uds(config)
    if config.fd is not None:
        return _from_fd(config.fd)
    return _bind_tcp(config)


def bind_sockets(config: Config) -> list[socket.socket]:
    """All listening sockets: systemd's (LISTEN_FDS for this process) when present, else ``bind_socket``."""
    if config.uds is None and config.fd is None:
        inherited = systemd_sockets()
        if inherited:
            note_serving(config, inherited)
            return inherited
    sockets = [bind_socket(config)]
    note_serving(config, sockets)
    return sockets


def _bind_tcp(config: Config) -> socket.socket:
    host = config.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address = f"[{host}]:{config.port}" if family == socket.AF_INET6 else f"{host}:{config.port}"
    sock = socket.socket(family=family, type=socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host in ("::", ""):
            # "::" serves IPv4 too where the system allows it, as most peers do.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, config.port))
    except OSError as exc:
        sock.close()
        raise _bind_error(exc, address, config) from exc
    sock.set_inheritable(True)
    return sock


def _bind_uds(config: Config) -> socket.socket:
    path = config.uds or ""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
            # A stale socket file from a previous run; remove it only if nobody answers on it.
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)
            else:
                raise OSError(errno.EADDRINUSE, "in use")
            finally:
                probe.close()
        sock.bind(path)
        os.chmod(path, 0o666)
    except OSError as exc:
        sock.close()
        raise _bind_error(exc, f"unix:{path}", config) from exc
    sock.set_inheritable(True)
    return sock


def _from_fd(fd: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise BindError(
            f"File descriptor {fd} is not an open socket: {exc.strerror}; pass the number of a listening socket.",
            code="HW304",
            address=f"fd:{fd}",
            errno=exc.errno,
        ) from exc
    sock.set_inheritable(True)
    return sock


def systemd_sockets() -> list[socket.socket]:
    """Sockets passed by systemd socket activation (sd_listen_fds), for this process only."""
    listen_fds = os.environ.get("LISTEN_FDS")
    if not listen_fds:  # the common case: one lookup
        return []
    try:
        count = int(listen_fds)
        pid = int(os.environ.get("LISTEN_PID", "0"))
    except ValueError:
        return []
    if count <= 0 or pid != os.getpid():
        return []
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    return [_from_fd(fd) for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count)]


def describe(sock: socket.socket, scheme: str) -> str:
    """The address a client uses, e.g. ``http://127.0.0.1:8000`` or ``unix:/tmp/app.sock``."""
    name = sock.getsockname()
    family = sock.family  # a property that builds an enum member: read it once
    if family == socket.AF_UNIX:
        return f"unix:{name if isinstance(name, str) else name.decode()}"
    host, port = name[0], name[1]
    if family == socket.AF_INET6:
        return f"{scheme}://[{host}]:{port}"
    return f"{scheme}://{host}:{port}"
