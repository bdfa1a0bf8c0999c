"""The checker's rules, one module each; importing this package registers them all in ``RULES``."""

from __future__ import annotations

from hatchway.checker.rules import (
    hw001_app_object,
    hw002_reload_workers,
    hw003_main_guard,
    hw004_import_string,
    hw005_reload_options,
    hw006_factory,
    hw007_run_in_async,
    hw008_busy_wait,
    hw009_internals,
    hw010_unknown_option,
    hw011_local_app,
    hw012_option_value,
)

__all__ = [
    "hw001_app_object",
    "hw002_reload_workers",
    "hw003_main_guard",
    "hw004_import_string",
    "hw005_reload_options",
    "hw006_factory",
    "hw007_run_in_async",
    "hw008_busy_wait",
    "hw009_internals",
    "hw010_unknown_option",
    "hw011_local_app",
    "hw012_option_value",
]
