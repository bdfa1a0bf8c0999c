"""``python -m hatchway.checker``: the same as ``hatchway check``."""

from __future__ import annotations

from hatchway.checker import main

# Guarded: the process pool may start workers by importing this module again (spawn/forkserver).
if __name__ == "__main__":
    raise SystemExit(main())
