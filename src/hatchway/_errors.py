"""The one exception tree of hatchway; library code raises these, only the CLI turns them into exit codes.

::

    HatchwayError                  every error hatchway raises on purpose
    ├── ConfigError                bad options; carries every Problem found (also a ValueError)
    ├── StartupError               the server could not start; ``__cause__`` holds the original error
    │   ├── AppImportError         the application could not be imported or built
    │   ├── BindError              a socket could not be bound (address in use, ...); also an OSError
    │   ├── LifespanStartupError   the app's lifespan start-up failed or timed out
    │   └── WorkerStartupError     a worker or reload child failed while starting
    └── ServerStateError           a Server used in a state that does not allow it (already running, ...)

    ClientDisconnected             raised inside an app that sends after its client went away (an OSError,
                                   as ASGI asks; not a HatchwayError: it is the app's to handle)

Every error has a stable ``code`` (``HW1xx`` configuration, ``HW2xx`` import, ``HW3xx`` sockets, ``HW4xx``
lifespan, ``HW5xx`` processes); ``docs/errors.md`` has one entry per code with the fix.

Leaving through a blocking entry point (``hatchway.run()``, ``Server.run()``), an error is trimmed for the
script that called it (``for_caller``): its traceback starts at the caller's line, and ``__cause__`` is kept
only when it is the user's own code failing (their module, factory or lifespan), trimmed to their frames.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DOCS_URL = "docs/errors.md"


def docs_ref(code: str) -> str:
    """Where the catalogue entry for ``code`` lives, as printed at the end of messages: the page in the docs,
    and the command that prints it offline from the installed package (``hatchway explain``)."""
    return f"{DOCS_URL}#{code.lower()} or run `hatchway explain {code}`"


class HatchwayError(Exception):
    """Base class of every error hatchway raises on purpose."""

    code: str = "HW000"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: which option, what was expected, what was got."""

    option: str
    message: str
    code: str = "HW100"
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.option}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(HatchwayError, ValueError):
    """The options are invalid; ``problems`` lists every one of them, not just the first."""

    code = "HW100"

    def __init__(self, problems: Sequence[Problem] | str, *, code: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(option="config", message=problems, code=code or self.code)]
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.code = code or (self.problems[0].code if self.problems else self.code)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            problem = self.problems[0]
            return f"{problem} [{problem.code}, see {docs_ref(problem.code)}]"
        lines = [f"{len(self.problems)} invalid options:"]
        lines += [f"  - {p} [{p.code}]" for p in self.problems]
        lines.append(f"See {docs_ref(self.code)}")
        return "\n".join(lines)

    @property
    def options(self) -> list[str]:
        """The names of the options found wrong, in the order they were checked."""
        return [p.option for p in self.problems]


class StartupError(HatchwayError):
    """The server could not start. The original exception, if any, is ``__cause__``."""

    code = "HW300"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        if code is not None:
            self.code = code
        self.message = message
        super().__init__(f"{message} [{self.code}, see {docs_ref(self.code)}]")


class AppImportError(StartupError):
    """The application could not be imported, found, or built by its factory."""

    code = "HW200"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        import_string: str | None = None,
        user_traceback: str | None = None,
    ) -> None:
        self.import_string = import_string
        #: The traceback of the user's own code (hatchway's frames trimmed), when their module raised.
        self.user_traceback = user_traceback
        super().__init__(message, code=code)


class BindError(StartupError, OSError):
    """A listening socket could not be bound.

    Also an ``OSError`` carrying the original ``errno``, so code written for uvicorn's ``Config.bind_socket()``
    (``except OSError``, ``exc.errno == errno.EADDRINUSE``) keeps working.
    """

    code = "HW302"

    def __init__(
        self, message: str, *, code: str | None = None, address: str | None = None, errno: int | None = None
    ) -> None:
        self.address = address
        super().__init__(message, code=code)
        self.errno = errno


class LifespanStartupError(StartupError):
    """The application's lifespan start-up failed (``lifespan.startup.failed``, an exception, or a timeout)."""

    code = "HW400"


class WorkerStartupError(StartupError):
    """A child process (worker or reload child) failed while starting, so the supervisor gave up."""

    code = "HW500"


class ServerStateError(HatchwayError, RuntimeError):
    """A ``Server`` was used in a state that does not allow it, e.g. started twice at once."""

    code = "HW501"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"{message} [{self.code}, see {docs_ref(self.code)}]")


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``name``, for did-you-mean hints; None when nothing is close."""
    import difflib

    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


class ClientDisconnected(OSError):
    """``send`` was called after the client went away (ASGI: a server-specific OSError).

    Defined here rather than beside the HTTP cycle because compiled modules cannot subclass built-in
    exceptions (mypyc)."""


# -- errors leaving hatchway ---------------------------------------------------------------------------------
# Frames that are machinery, not the user's code: hatchway itself, and importlib (the frozen bootstrap and
# importlib/__init__.py, whose import_module() starts every import error).
_MACHINERY = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(os.path.abspath(importlib.__file__ or "")) + os.sep,
    "<frozen importlib",
)


def _user_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """A copy of the traceback chain ``tb`` without the machinery frames; None when nothing else is left."""
    kept: list[types.TracebackType] = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_MACHINERY):
            kept.append(tb)
        tb = tb.tb_next
    head: types.TracebackType | None = None
    for entry in reversed(kept):
        head = types.TracebackType(head, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return head


def _trim_chain(exc: BaseException, seen: set[int]) -> None:
    # The causes and contexts of ``exc``: the user's code keeps its frames, hatchway's own errors go (their
    # message is already in the error that explains them).
    seen.add(id(exc))
    for attr in ("__cause__", "__context__"):
        linked: BaseException | None = getattr(exc, attr)
        if linked is None or id(linked) in seen:
            continue
        frames = _user_frames(linked.__traceback__)
        if frames is None:
            setattr(exc, attr, None)
            continue
        linked.__traceback__ = frames
        _trim_chain(linked, seen)


def for_caller(exc: BaseException) -> None:
    """Trim ``exc`` (a ``HatchwayError`` about to leave a public entry point) for the user who called it.

    Call it in an ``except`` block, then re-raise with a bare ``raise``: on Python 3.11+ the traceback then
    starts at the caller's own line, with no frame of hatchway (a bare ``raise`` takes the exception's own
    ``__traceback__``, which is cleared here). Python 3.10 re-raises the traceback saved when the ``except``
    block was entered, so one frame remains there: the entry point's own line. ``__cause__`` and
    ``__context__`` are kept only when they come from the user's code, with hatchway's and importlib's frames
    removed; an error of hatchway's own (an ``OSError`` from ``bind``) is dropped, since the message states it.
    """
    tb = exc.__traceback__
    if tb is not None and sys.version_info < (3, 11):
        tb.tb_next = None  # the entry point's frame only: the object 3.10's bare ``raise`` re-raises
    exc.__traceback__ = None
    _trim_chain(exc, set())
