"""The parent's view of one child process: start it, read its status lines, stop it, reap it."""

from __future__ import annotations

import contextlib
import enum
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hatchway._supervisors._spec import ENV_SPEC, ChildSpec

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class ChildState(enum.Enum):
    WAITING = "waiting"  # started ahead of time, waiting for "go" (the reloader's standby)
    STARTING = "starting"  # importing the app, lifespan start-up
    READY = "ready"  # serving
    STOPPING = "stopping"  # asked to stop (SIGTERM sent)
    EXITED = "exited"


class Child:
    """One child interpreter running ``hatchway._supervisors.child`` on the parent's sockets."""

    def __init__(self, spec: ChildSpec, sockets: Sequence[socket.socket]) -> None:
        self.sockets = list(sockets)
        status_read, status_write = os.pipe()
        control_read, control_write = os.pipe()
        fds = [s.fileno() for s in self.sockets]
        spec = replace(spec, socket_fds=fds, status_fd=status_write, control_fd=control_read)
        env = dict(os.environ)
        env[ENV_SPEC] = spec.to_json()
        try:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "hatchway._supervisors.child"],
                pass_fds=[*fds, status_write, control_read],
                env=env,
            )
        finally:
            os.close(status_write)
            os.close(control_read)
        self.pid = self.popen.pid
        self.status_fd = status_read
        os.set_blocking(status_read, False)
        self.control_fd: int | None = control_write
        self.state = ChildState.WAITING
        self.started_at = time.monotonic()
        self.last_beat = self.started_at
        self.failure: str | None = None
        self.retiring = False
        self.was_ready = False
        self.stop_requested = False
        self.eof = False
        self.stop_deadline: float | None = None
        self._buffer = b""

    def __repr__(self) -> str:
        return f"Child(pid={self.pid}, state={self.state.value})"

    def fileno(self) -> int:
        return self.status_fd

    def go(self) -> None:
        """Let a waiting child import the app and serve."""
        if self.state is ChildState.WAITING and self.control_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.control_fd, b"go\n")
            self.state = ChildState.STARTING
            self.started_at = time.monotonic()
            self.last_beat = self.started_at

    def read_status(self) -> list[dict[str, Any]]:
        """Read what the child wrote; returns the events (beats update ``last_beat`` and are returned too)."""
        events: list[dict[str, Any]] = []
        while True:
            try:
                chunk = os.read(self.status_fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
                break
            self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            events.append(event)
            self.last_beat = time.monotonic()
            kind = event.get("event")
            if kind == "ready" and self.state is ChildState.STARTING:
                self.state = ChildState.READY
                self.was_ready = True
            elif kind == "failed":
                self.failure = str(event.get("message", "unknown error"))
            elif kind == "retiring":
                self.retiring = True
        return events

    def poll(self) -> int | None:
        code = self.popen.poll()
        if code is not None and self.state is not ChildState.EXITED:
            self.state = ChildState.EXITED
            self._close()
        return code

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def terminate(self, grace: float | None) -> None:
        """Ask for a graceful stop (SIGTERM); ``grace`` seconds later ``overdue`` says it is time for SIGKILL."""
        if self.state is ChildState.EXITED:
            return
        self.stop_requested = True
        if self.state is ChildState.WAITING:
            # Never started the app: closing its control pipe makes it exit at once.
            self._close_control()
        else:
            self._signal(signal.SIGTERM)
        if self.state is not ChildState.STOPPING:
            self.stop_deadline = None if grace is None else time.monotonic() + grace
        self.state = ChildState.STOPPING

    def drain(self) -> None:
        """Tell a serving child that its pool drains: its readiness path answers 503 until SIGTERM."""
        if self.control_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.control_fd, b"drain\n")

    def rss(self) -> int | None:
        """The child's resident memory in bytes, from ``/proc/PID/statm`` (one small read); None when the
        system has no /proc or the child is gone."""
        try:
            with open(f"/proc/{self.pid}/statm", "rb") as statm:
                return int(statm.read().split()[1]) * _PAGE_SIZE
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        self.stop_requested = True
        self._signal(signal.SIGKILL)
        if self.state is not ChildState.EXITED:
            self.state = ChildState.STOPPING

    @property
    def overdue(self) -> bool:
        return self.stop_deadline is not None and time.monotonic() > self.stop_deadline

    def _signal(self, sig: signal.Signals) -> None:
        if self.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)

    def _close_control(self) -> None:
        if self.control_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.control_fd)
            self.control_fd = None

    def _close(self) -> None:
        self._close_control()
        if self.status_fd >= 0:
            with contextlib.suppress(OSError):
                self.read_status()
                os.close(self.status_fd)
            self.status_fd = -1
