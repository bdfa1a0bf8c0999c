"""The reloader: one child serving the parent's sockets, replaced when a watched file changes.

* The watcher (watchfiles' Rust notifier, in a thread) is running before the first child starts, so no
  change is lost, even one saved the instant a load error is printed.
* Which paths count is ``ReloadFilter``, a pure callable: no file system access, unit-tested with plain paths.
* A standby child (a fresh interpreter that has imported hatchway, not the app) waits for "go", so a restart
  costs the app's import, not interpreter start-up. The old child is stopped while the new one imports; the
  parent keeps the socket open, so connections made meanwhile wait in the backlog rather than fail.
* A child that fails to import (a syntax error) prints its error; the reloader waits for the next change.
* ``reload_delay``: the minimum time between two restarts; changes within it are batched into one restart.
"""

from __future__ import annotations

import fnmatch
import os
import queue
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath
from typing import Any

from hatchway._config import Config
from hatchway._errors import WorkerStartupError
from hatchway._logs import logger
from hatchway._supervisors._base import Supervisor
from hatchway._supervisors._process import Child, ChildState

DEFAULT_INCLUDES = ("*.py",)
DEFAULT_EXCLUDES = (".*", "*.py[cod]", "*.sw.*", "~*", "*~")
#: Directory names never watched: version control, caches, dependencies, virtual environments.
DEFAULT_EXCLUDE_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".hypothesis",
        "node_modules",
        ".venv",
        "venv",
        ".idea",
        "site-packages",
        "dist-packages",
    }
)
# watchfiles: ``step`` is how long the notifier waits for more events after one arrives before returning a
# batch, so it is most of the save -> restart latency; 10 ms still groups an editor's write+rename bursts.
WATCH_STEP_MS = 10
WATCH_DEBOUNCE_MS = 400


class ReloadFilter:
    """Whether a changed path should restart the app. Pure: decides from the path text alone.

    ``includes``/``excludes`` are glob patterns matched against the file name (or the path's tail when they
    contain a ``/``); ``exclude_dirs`` are directory *paths* (virtual environments found at start, directories
    given in ``reload_excludes``); ``DEFAULT_EXCLUDE_DIRS`` are directory *names* ignored anywhere.
    User includes win over default excludes and vice versa, as in uvicorn.
    """

    def __init__(
        self,
        includes: Sequence[str] = (),
        excludes: Sequence[str] = (),
        exclude_dirs: Iterable[str] = (),
    ) -> None:
        self.includes = [p for p in DEFAULT_INCLUDES if p not in excludes] + list(includes)
        self.excludes = [p for p in DEFAULT_EXCLUDES if p not in includes] + [
            p for p in excludes if p not in DEFAULT_INCLUDES
        ]
        self.exclude_dirs = tuple(os.path.normpath(d) for d in exclude_dirs)
        self.exclude_names = DEFAULT_EXCLUDE_DIRS - {p.strip("/") for p in includes}

    def __call__(self, change: Any, path: str) -> bool:
        pure = PurePath(path)
        if any(part in self.exclude_names for part in pure.parts[:-1]):
            return False
        for directory in self.exclude_dirs:
            if path == directory or path.startswith(directory + os.sep):
                return False
        if not any(_matches(pure, pattern) for pattern in self.includes):
            return False
        if any(str(pure).endswith(pattern) for pattern in self.includes if not _is_glob(pattern)):
            return True  # a file named explicitly is watched even if an exclude pattern matches it
        return not any(_matches(pure, pattern) for pattern in self.excludes)

    def __repr__(self) -> str:
        return f"ReloadFilter(includes={self.includes!r}, excludes={self.excludes!r}, exclude_dirs={self.exclude_dirs!r})"


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _matches(path: PurePath, pattern: str) -> bool:
    if "/" in pattern or os.sep in pattern:
        return path.match(pattern)
    return fnmatch.fnmatchcase(path.name, pattern)


def watch_dirs(config: Config) -> list[str]:
    """The directories to watch: ``reload_dirs`` (default: the current directory), nested ones dropped."""
    dirs = [os.path.abspath(d) for d in (config.reload_dirs or [os.getcwd()])]
    missing = [d for d in dirs if not os.path.isdir(d)]
    if missing:
        logger.warning("reload_dirs: not a directory, not watched: %s", ", ".join(map(repr, missing)))
    dirs = [d for d in dirs if os.path.isdir(d)] or [os.getcwd()]
    unique: list[str] = []
    for d in sorted(set(dirs), key=len):
        if not any(d == u or d.startswith(u.rstrip(os.sep) + os.sep) for u in unique):
            unique.append(d)
    return unique


def find_exclude_dirs(roots: Sequence[str], excludes: Sequence[str]) -> list[str]:
    """Directories to ignore: given in ``reload_excludes``, or virtual environments (``pyvenv.cfg``) near the roots."""
    found = [os.path.abspath(e) for e in excludes if not _is_glob(e) and os.path.isdir(e)]
    prefix = os.path.abspath(sys.prefix)
    for root in roots:
        if prefix.startswith(root.rstrip(os.sep) + os.sep):
            found.append(prefix)
        for current, subdirs, _ in _walk_shallow(root, depth=2):
            for name in subdirs:
                candidate = os.path.join(current, name)
                if os.path.isfile(os.path.join(candidate, "pyvenv.cfg")):
                    found.append(candidate)
    return sorted(set(found))


def _walk_shallow(root: str, depth: int) -> Iterable[tuple[str, list[str], list[str]]]:
    base = root.rstrip(os.sep).count(os.sep)
    for current, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in DEFAULT_EXCLUDE_DIRS]
        if current.count(os.sep) - base >= depth:
            subdirs[:] = []
        yield current, subdirs, files


class Watcher(threading.Thread):
    """watchfiles' notifier in a daemon thread; filtered batches of changed paths go to ``changes``."""

    def __init__(self, roots: list[str], path_filter: ReloadFilter, on_change: Any) -> None:
        super().__init__(name="hatchway-reload-watcher", daemon=True)
        # Created here, in the caller's thread: the notifier is watching when the constructor returns.
        from watchfiles._rust_notify import RustNotify

        self.notify = RustNotify(roots, False, _force_polling(), 300, True, True)
        self.filter = path_filter
        self.on_change = on_change
        self.stop_event = threading.Event()
        self.changes: queue.SimpleQueue[list[str]] = queue.SimpleQueue()

    def run(self) -> None:
        while not self.stop_event.is_set():
            raw = self.notify.watch(WATCH_DEBOUNCE_MS, WATCH_STEP_MS, 1000, self.stop_event)
            if isinstance(raw, str):
                continue  # "timeout", "stop", or "signal" (never in a thread)
            paths = sorted({path for change, path in raw if self.filter(change, path)})
            if paths:
                self.changes.put(paths)
                self.on_change()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(5)
        self.notify.close()


def _force_polling() -> bool:
    value = os.environ.get("WATCHFILES_FORCE_POLLING", "")
    return bool(value) and value.lower() not in ("false", "disable", "disabled")


class Reloader(Supervisor):
    """Serves through one child at a time; a file change swaps in a new one."""

    name = "reload"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.current: Child | None = None
        self.standby: Child | None = None
        self.last_restart = 0.0
        self.pending: list[str] = []
        self.generation_failed: str | None = None
        self.watcher: Watcher | None = None
        self._hint = True

    def all_ready(self) -> bool:
        if self.generation_failed is not None:
            raise WorkerStartupError(f"The app failed to start: {self.generation_failed}")
        return self.current is not None and self.current.state is ChildState.READY

    def start(self) -> None:
        roots = watch_dirs(self.config)
        excludes = find_exclude_dirs(roots, self.config.reload_excludes or [])
        path_filter = ReloadFilter(
            self.config.reload_includes or [], self.config.reload_excludes or [], excludes
        )
        self.watcher = Watcher(roots, path_filter, self.wake)
        self.watcher.start()
        logger.info(
            "Started reloader process [%d] using WatchFiles, watching %s",
            os.getpid(),
            ", ".join(map(repr, roots)),
        )
        self.current = self._new_child()

    def _new_child(self) -> Child:
        child = self.standby or self.spawn(go=False, hint=self._hint)
        self._hint = False
        child.go()
        self.last_restart = time.monotonic()
        self.generation_failed = None
        self.standby = None  # tick() starts the next one once this child is up (not competing for CPU)
        return child

    def next_timeout(self) -> float:
        if self.pending:
            return max(0.0, self.last_restart + self.config.reload_delay - time.monotonic())
        return super().next_timeout()

    def tick(self) -> None:
        if self.stopping:
            return
        watcher = self.watcher
        assert watcher is not None
        while not watcher.changes.empty():
            self.pending.extend(watcher.changes.get_nowait())
        if self.standby is not None and self.standby.state is not ChildState.WAITING:
            self.standby = None  # it died while waiting (killed from outside); start another
        current = self.current
        if self.standby is None and (current is None or current.state is not ChildState.STARTING):
            # Started ahead of the next change, so a restart costs the app's import, not interpreter start-up.
            self.standby = self.spawn(go=False)
        if self.pending and time.monotonic() >= self.last_restart + self.config.reload_delay:
            changed = sorted(set(self.pending))
            self.pending = []
            shown = ", ".join(_display(p) for p in changed[:5]) + (" ..." if len(changed) > 5 else "")
            logger.warning("WatchFiles detected changes in %s. Reloading...", shown)
            old = self.current
            if old is not None:
                grace = self.config.timeout_graceful_shutdown
                old.terminate(None if grace is None else grace + 5)
            self.current = self._new_child()

    def on_child_event(self, child: Child, event: dict[str, Any]) -> None:
        if child is not self.current:
            return
        if event.get("event") == "failed":
            self._report_failure(child.failure or "unknown error")
        elif event.get("event") == "retiring" and not self.stopping:
            self.pending.append("(request limit)")

    def _report_failure(self, message: str) -> None:
        if self.generation_failed is not None:
            return
        self.generation_failed = message
        logger.error("The app failed to start: %s", message)
        logger.info("Waiting for file changes before restarting.")

    def on_child_exit(self, child: Child) -> None:
        if child is self.standby:
            self.standby = None
        if child is not self.current or self.stopping or child.stop_requested:
            return
        if child.failure is not None:
            self._report_failure(child.failure)  # the report and the exit may be noticed together
        elif not child.was_ready:
            self._report_failure(f"the process exited with code {child.returncode} before it was ready")
        elif not child.retiring:
            logger.warning(
                "The app process [%d] exited (code %s); waiting for file changes before restarting.",
                child.pid,
                child.returncode,
            )

    def begin_stop(self) -> None:
        super().begin_stop()
        if self.watcher is not None:
            self.watcher.stop_event.set()

    def _shutdown_now(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        super()._shutdown_now()
        logger.info("Stopping reloader process [%d]", os.getpid())


def _display(path: str) -> str:
    try:
        return repr(str(Path(path).relative_to(Path.cwd())))
    except ValueError:
        return repr(path)
