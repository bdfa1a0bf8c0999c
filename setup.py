"""Build script: the package metadata is in pyproject.toml; this file only compiles the hot path.

The per-request modules are compiled to C with mypyc (from their own type hints; the source stays plain
Python) on every CPython hatchway supports (3.10 and later). A mypyc coroutine passes a thrown exception on as
``throw(type, value, traceback)``, which Python 3.12 deprecates, so the awaits of the request path live in
``hatchway/_app_task.py``, which is compiled only before 3.12, except the rare waits of an HTTP request's
``receive``/``send`` (``hatchway/_http/channel.py``), which go through a relay that takes that call (the
docstrings say more; tests/test_app_task.py checks that every compiled await is relayed). Where compiling is not possible (no C compiler, another Python) the build
falls back to the pure-Python modules, which behave the same, only slower. ``HATCHWAY_COMPILE=0`` skips
compiling; an editable install (``pip install -e .``) never compiles, so edits to the source take effect at
once.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

# The modules every request or WebSocket message passes through. Not h11_codec (it leans on h11 internals),
# not _app_task (the coroutines that wait, see above) and nothing that runs once per process.
COMPILED = [
    "src/hatchway/_http/events.py",
    "src/hatchway/_http/channel.py",
    "src/hatchway/_http/validate.py",
    "src/hatchway/_http/httptools_codec.py",
    "src/hatchway/_http/wire.py",
    "src/hatchway/_http/exchange.py",
    "src/hatchway/_http/cycle.py",
    "src/hatchway/_http/h2_stream.py",
    "src/hatchway/_http/scope.py",
    "src/hatchway/_http/connection.py",
    "src/hatchway/_http/protocol.py",
    "src/hatchway/_http/files.py",
    "src/hatchway/_flow.py",
    "src/hatchway/_state.py",
    "src/hatchway/_ws/protocol.py",
    "src/hatchway/_ws/session.py",
]
# Compiled only before Python 3.12: the request's coroutines, which await the app and the connection's futures.
# A mypyc coroutine passes a thrown exception on as throw(type, value, traceback), which 3.12 deprecates
# (hatchway/_app_task.py says more), so from 3.12 on they stay pure Python; before it that call is fine, and
# compiled they keep the CPU per request of 3.10 and 3.11 where it was (5-12 % less than pure Python for
# small and streamed responses, benchmarks/hotpath.py).
COMPILED_BEFORE_3_12 = ["src/hatchway/_app_task.py"]


# The pages `hatchway explain` prints, copied from docs/ into the package at build time so that an installed
# hatchway carries them (hatchway._explain.SHIPPED names the same; tests/test_explain.py compares the copy).
DOCS = Path(__file__).resolve().parent / "docs"
DOCS_SHIPPED = ("errors.md", "checker.md", "rules/HW*.md")


def _warn(message: str) -> None:
    print(f"hatchway: {message}; installing the pure-Python modules instead.", file=sys.stderr)


def _wants_compile() -> bool:
    if os.environ.get("HATCHWAY_COMPILE", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if platform.python_implementation() != "CPython":
        return False
    # Only the commands that build modules compile: not the metadata steps, and not an editable install
    # (PEP 660 runs ``editable_wheel``), which keeps the source live for development.
    return not {"bdist_wheel", "build", "build_ext", "install"}.isdisjoint(sys.argv[1:])


class OptionalBuildExt(build_ext):
    """Compiles the extensions, and falls back to pure Python if the C compiler fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            _warn(f"could not compile the hot path ({exc})")
            # All or nothing: the modules share one compiled runtime library, so a half-built set must not
            # reach the wheel.
            for output in self.get_outputs():
                if os.path.exists(output):
                    os.remove(output)
            self.extensions = []


class BuildPyWithDocs(build_py):
    """Also copies the explain pages into ``hatchway/_docs/`` (an editable install reads docs/ directly)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "hatchway" / "_docs"
        for pattern in DOCS_SHIPPED:
            pages = sorted(DOCS.glob(pattern))
            if not pages:
                # A wheel without them would install an `explain` that cannot explain anything.
                raise SystemExit(f"hatchway: docs/{pattern} is missing; build from a checkout or an sdist")
            for page in pages:
                destination = target / page.relative_to(DOCS)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(page, destination)


def _extensions() -> list[Any]:
    if not _wants_compile():
        return []
    try:
        from mypyc.build import mypycify

        # Type-checked without the runtime dependencies (the build environment holds only the build tools):
        # their types count as Any, which compiles to generic, still correct, code.
        return list(
            mypycify(
                [
                    "--config-file=",
                    "--ignore-missing-imports",
                    "--python-version",
                    f"{sys.version_info[0]}.{sys.version_info[1]}",
                    *COMPILED,
                    *(COMPILED_BEFORE_3_12 if sys.version_info < (3, 12) else []),
                ],
                opt_level="3",
            )
        )
    except BaseException:
        traceback.print_exc()
        _warn("mypyc could not compile the hot path")
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPyWithDocs})
