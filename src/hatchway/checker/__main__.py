"""``python -m hatchway.checker``: the same as ``hatchway check``."""

from __future__ import annotations

from hatchway.checker import main

raise SystemExit(main())
