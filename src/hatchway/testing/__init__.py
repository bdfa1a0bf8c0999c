"""Background servers for tests and tools: ``background()`` in a thread, ``serving()`` in the running loop.

The pytest plugin (``hatchway.testing.pytest_plugin``) is registered by entry point and builds its fixtures
on these two helpers. See ``docs/testing.md``.
"""

from __future__ import annotations

from hatchway.testing._background import (
    DEFAULT_TIMEOUT,
    HELPER_DEFAULTS,
    BackgroundServer,
    background,
    serving,
)

__all__ = ["DEFAULT_TIMEOUT", "HELPER_DEFAULTS", "BackgroundServer", "background", "serving"]
