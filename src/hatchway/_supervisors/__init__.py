"""Process supervisors: the reloader and the worker pool."""

from __future__ import annotations

from hatchway._config import Config


def supervise(config: Config) -> None:
    """Run ``config`` under the reloader (``reload=True``) or the worker supervisor (``workers > 1``)."""
    raise NotImplementedError("reload and workers arrive with the supervisors")
