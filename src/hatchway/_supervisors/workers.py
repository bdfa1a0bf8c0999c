"""The worker pool: N fresh interpreters serving the sockets the parent bound once.

Health: a worker that exits, or whose event loop stops beating for ``timeout_worker_healthcheck`` seconds, is
replaced (SIGKILL first when hung) while the others keep serving. A worker that fails while starting stops the
pool with WorkerStartupError, since every replacement would fail the same way. Signals (main thread only):
SIGHUP rolling restart (new worker ready before the old one stops), SIGTTIN/SIGTTOU one worker more/less,
SIGINT/SIGTERM graceful stop (twice: now).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from hatchway._logs import logger
from hatchway._supervisors._base import Supervisor
from hatchway._supervisors._process import Child, ChildState


class WorkerPool(Supervisor):
    """Keeps ``target`` workers serving; see the module docstring for the rules."""

    name = "worker"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.target = self.config.workers or 1
        #: Workers still to be replaced by the rolling restart in progress (SIGHUP), oldest first.
        self.to_roll: list[Child] = []
        #: The new worker being brought up for the rolling restart, and the old one it replaces.
        self.rolling: tuple[Child, Child] | None = None
        self.booted = False  # every first-generation worker reported ready once

    def handled_signals(self) -> list[int]:
        extra = [getattr(signal, name) for name in ("SIGHUP", "SIGTTIN", "SIGTTOU") if hasattr(signal, name)]
        return [*super().handled_signals(), *extra]

    def all_ready(self) -> bool:
        serving = [c for c in self.children if c.state is ChildState.READY and not c.retiring]
        return len(serving) >= self.target

    def start(self) -> None:
        logger.info("Started parent process [%d] with %d workers", os.getpid(), self.target)
        for index in range(self.target):
            self.spawn(hint=index == 0)

    # -- events -----------------------------------------------------------------------------------------
    def on_child_event(self, child: Child, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "ready":
            logger.info("Worker [%d] is ready", child.pid)
            if self.rolling is not None and self.rolling[0] is child:
                old = self.rolling[1]
                self.rolling = None
                old.terminate(self._grace())
            if not self.booted and self.all_ready():
                self.booted = True
        elif kind == "failed":
            self._failed(child, child.failure or "unknown error")
        elif kind == "retiring" and not self.stopping:
            # limit_max_requests: start the replacement now; the old worker finishes its requests and exits.
            logger.info("Worker [%d] reached its request limit; starting a replacement.", child.pid)
            child.state = ChildState.STOPPING
            self.spawn()

    def _failed(self, child: Child, message: str) -> None:
        if self.stopping:
            return
        if self.rolling is not None and self.rolling[0] is child:
            logger.error(
                "New worker [%d] failed to start (%s); keeping worker [%d] and abandoning the restart.",
                child.pid,
                message,
                self.rolling[1].pid,
            )
            self.rolling = None
            self.to_roll = []
            child.terminate(0)
            return
        self.fail(f"Worker [{child.pid}] failed to start: {message}")

    def on_child_exit(self, child: Child) -> None:
        if self.stopping or child.stop_requested:
            return
        if child.failure is not None:
            self._failed(child, child.failure)
        elif child.retiring:
            pass  # its replacement started when it announced the request limit
        elif child.was_ready:
            logger.warning(
                "Worker [%d] died (exit code %s); starting a replacement.", child.pid, child.returncode
            )
        else:
            self._failed(child, f"exited with code {child.returncode} before it was ready")

    def tick(self) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        limit = self.config.timeout_worker_healthcheck
        for child in list(self.children):
            # timeout_worker_healthcheck=0 turns the hung-worker check off (exits are still noticed).
            if limit > 0 and child.state is ChildState.READY and now - child.last_beat > limit:
                logger.error(
                    "Worker [%d] did not answer for %.1fs; killing it.", child.pid, now - child.last_beat
                )
                child.kill()
            elif child.state is ChildState.STARTING and now - child.started_at > self._startup_allowance:
                self._failed(child, f"not ready after {self._startup_allowance:.0f} seconds")
        if self.stopping:
            return
        new = self.rolling[0] if self.rolling is not None else None
        # Workers that serve or are on their way, not counting the one a rolling restart brings up.
        active = [
            c
            for c in self.children
            if c.state in (ChildState.STARTING, ChildState.READY) and not c.retiring and c is not new
        ]
        for _ in range(self.target - len(active)):
            self.spawn()
        for child in active[self.target :]:
            child.terminate(self._grace())
        self._continue_roll()

    def _continue_roll(self) -> None:
        if self.rolling is not None:
            return
        while self.to_roll:
            old = self.to_roll.pop(0)
            if old.state is ChildState.READY and not old.retiring:
                self.rolling = (self.spawn(), old)
                return

    def _grace(self) -> float | None:
        grace = self.config.timeout_graceful_shutdown
        return None if grace is None else grace + 5

    # -- signals ----------------------------------------------------------------------------------------
    def handle_signal(self, sig: int) -> None:
        if sig == getattr(signal, "SIGHUP", None):
            logger.info("Received SIGHUP, restarting workers one by one.")
            self.to_roll = [c for c in self.children if c.state is ChildState.READY and not c.retiring]
            self._continue_roll()
        elif sig == getattr(signal, "SIGTTIN", None):
            self.target += 1
            logger.info("Received SIGTTIN, increasing to %d workers.", self.target)
        elif sig == getattr(signal, "SIGTTOU", None):
            if self.target <= 1:
                logger.info("Received SIGTTOU, but one worker is the minimum.")
            else:
                self.target -= 1
                logger.info("Received SIGTTOU, decreasing to %d workers.", self.target)
        else:
            super().handle_signal(sig)
