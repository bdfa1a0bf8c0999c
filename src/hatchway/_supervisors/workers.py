"""The worker pool: N fresh interpreters serving the sockets the parent bound once.

Health: a worker that exits, or whose event loop stops beating for ``timeout_worker_healthcheck`` seconds, is
replaced (SIGKILL first when hung) while the others keep serving. A worker that fails while starting stops the
pool with WorkerStartupError, since every replacement would fail the same way. Signals (main thread only):
SIGHUP rolling restart (new worker ready before the old one stops), SIGTTIN/SIGTTOU one worker more/less,
SIGINT/SIGTERM graceful stop (twice: now); with ``shutdown_delay``, SIGTERM first drains: every worker's
readiness path answers 503 while they keep serving for that long (a second signal ends the drain).

Recycling (``limit_max_requests``, ``limit_max_rss``, ``limit_max_lifetime``): the replacement starts first,
and the old worker is asked to stop once it is ready (for the request limit, the old worker stops itself
meanwhile). One memory or age replacement at a time, so the pool never holds more than one extra worker for
them. Memory is each worker's RSS from /proc, read every ``RSS_INTERVAL`` seconds.
``restarts`` counts replacements by reason, for metrics.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import time
from typing import Any

from hatchway._logs import logger
from hatchway._supervisors._base import Supervisor
from hatchway._supervisors._process import Child, ChildState

RSS_INTERVAL = 1.0
#: The reasons ``WorkerPool.restarts`` counts.
RESTART_REASONS = ("died", "hung", "requests", "rss", "lifetime", "sighup")


class WorkerPool(Supervisor):
    """Keeps ``target`` workers serving; see the module docstring for the rules."""

    name = "worker"

    #: What ``restarts`` counts, in the order metrics list them (metrics read it here: no import of this module).
    restart_reasons = RESTART_REASONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.target = self.config.workers or 1
        #: Workers still to be replaced by the rolling restart in progress (SIGHUP), oldest first.
        self.to_roll: list[Child] = []
        #: The new worker being brought up for the rolling restart, and the old one it replaces.
        self.rolling: tuple[Child, Child] | None = None
        self.booted = False  # every first-generation worker reported ready once
        #: Workers replaced so far, by reason (RESTART_REASONS); read by metrics. Only grows.
        self.restarts: collections.Counter[str] = collections.Counter()
        #: Replacements for memory or age being brought up, each with the worker it replaces.
        self.replacing: dict[Child, Child] = {}
        self._no_recycle: set[Child] = set()  # its replacement failed to start: kept as it is
        self._expires: dict[Child, float] = {}  # limit_max_lifetime (+ jitter), from ready
        self._next_rss_check = 0.0
        self._drain_until: float | None = None

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
            replaced = self.replacing.pop(child, None)
            if replaced is not None:
                replaced.terminate(self._grace())
            lifetime = self.config.limit_max_lifetime
            if lifetime is not None:
                jitter = random.uniform(0, self.config.limit_max_lifetime_jitter)
                self._expires[child] = time.monotonic() + lifetime + jitter
            if self._drain_until is not None:
                child.drain()
            if not self.booted and self.all_ready():
                self.booted = True
        elif kind == "failed":
            self._failed(child, child.failure or "unknown error")
        elif kind == "retiring" and not self.stopping:
            # limit_max_requests: start the replacement now; the old worker finishes its requests and exits.
            logger.info("Worker [%d] reached its request limit; starting a replacement.", child.pid)
            child.state = ChildState.STOPPING
            self.restarts["requests"] += 1
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
        old = self.replacing.pop(child, None)
        if old is not None:
            logger.error(
                "New worker [%d] failed to start (%s); keeping worker [%d], which will not be recycled again.",
                child.pid,
                message,
                old.pid,
            )
            old.retiring = False
            self._no_recycle.add(old)
            child.terminate(0)
            return
        self.fail(f"Worker [{child.pid}] failed to start: {message}")

    def on_child_exit(self, child: Child) -> None:
        self._expires.pop(child, None)
        self._no_recycle.discard(child)
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
            self.restarts["died"] += 1
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
                self.restarts["hung"] += 1
                child.kill()
            elif child.state is ChildState.STARTING and now - child.started_at > self._startup_allowance:
                self._failed(child, f"not ready after {self._startup_allowance:.0f} seconds")
        if self.stopping:
            return
        if self._drain_until is not None and now >= self._drain_until:
            logger.info("Drain over; stopping workers.")
            self.begin_stop()
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
        if self.config.recycles_workers and self._drain_until is None:
            self._recycle(now)

    def _recycle(self, now: float) -> None:
        """Replace one worker past its lifetime or memory limit (one at a time), new worker first."""
        if self.replacing or self.rolling is not None:
            return
        limit = self.config.limit_max_rss
        check_rss = limit is not None and now >= self._next_rss_check
        if check_rss:
            self._next_rss_check = now + RSS_INTERVAL
        for child in self.children:
            if child.state is not ChildState.READY or child.retiring or child in self._no_recycle:
                continue
            expires = self._expires.get(child)
            if expires is not None and now >= expires:
                logger.info(
                    "Worker [%d] reached its lifetime (limit_max_lifetime=%ss); starting a replacement.",
                    child.pid,
                    self.config.limit_max_lifetime,
                )
                self._replace(child, "lifetime")
                return
            rss = child.rss() if check_rss else None
            if rss is not None and limit is not None and rss > limit * 1024 * 1024:
                logger.warning(
                    "Worker [%d] uses %.0f MiB, more than limit_max_rss=%d; starting a replacement.",
                    child.pid,
                    rss / (1024 * 1024),
                    limit,
                )
                self._replace(child, "rss")
                return

    def _replace(self, old: Child, reason: str) -> None:
        old.retiring = True  # no longer counted as serving; stopped once its replacement is ready
        self._expires.pop(old, None)
        self.restarts[reason] += 1
        self.replacing[self.spawn()] = old

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
            self.restarts["sighup"] += len([c for c in self.children if c.state is ChildState.READY])
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
        elif sig == signal.SIGTERM and self.config.shutdown_delay > 0 and not self.stopping:
            if self._drain_until is None:
                delay = self.config.shutdown_delay
                logger.info(
                    "Received SIGTERM; draining for %ss before stopping (readiness answers 503).", delay
                )
                self._drain_until = time.monotonic() + delay
                for child in self.children:
                    if child.state is ChildState.READY:
                        child.drain()
            else:
                logger.info("Received SIGTERM while draining; stopping now.")
                self.begin_stop()
        else:
            super().handle_signal(sig)
