"""Validated Configs remembered by their plain options, for tools that build the same Config again and again."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hatchway._config import Config

# Tools that build the same Config again and again (a test suite starting a background server per test, the
# background helper's start/stop cycle) pay for the checks once per distinct set of options. Only plain values
# take part: options that are objects (a loop factory, a logging dict, callbacks) or have side effects
# (env_file) always go through full validation.
_PLAIN_TYPES = (type(None), bool, int, float, str)
_VALIDATED: dict[tuple[Any, ...], tuple[dict[str, Any], tuple[str, ...]]] = {}
_VALIDATED_MAX = 32


def _validation_key(app: Any, options: Mapping[str, Any]) -> tuple[Any, ...] | None:
    if isinstance(app, str):
        kind: tuple[Any, ...] = ("str", app)  # its format is checked
    elif callable(app):
        kind = ("callable",)  # the only check on an app object
    else:
        return None
    if options.get("env_file") is not None:
        return None
    items = []
    for name, value in options.items():
        if type(value) not in _PLAIN_TYPES:
            return None
        items.append((name, type(value), value))  # the type too: True == 1, but port=True is refused
    items.sort()  # names are unique: only they are compared
    # What validation and normalisation read from the environment.
    env = (os.environ.get("WEB_CONCURRENCY"), os.environ.get("FORWARDED_ALLOW_IPS"))
    return (kind, tuple(items), env)


def validated_config(app: Any, options: Mapping[str, Any]) -> Config:
    """``Config(app, **options)``; validated once per distinct plain ``options`` (and app kind), then copied.

    Every call returns a new Config, equal to what ``Config(app, **options)`` builds; errors are raised
    exactly as it raises them, since only Configs that passed validation are remembered.
    """
    key = _validation_key(app, options)
    known = _VALIDATED.get(key) if key is not None else None
    if known is None:
        config = Config(app, **options)
        if key is not None:
            values = {k: v for k, v in config.__dict__.items() if k != "app"}
            if all(type(v) in _PLAIN_TYPES or _is_plain_list(v) for v in values.values()):
                if len(_VALIDATED) >= _VALIDATED_MAX:
                    _VALIDATED.pop(next(iter(_VALIDATED)))
                _VALIDATED[key] = (values, tuple(k for k, v in values.items() if type(v) is list))
        return config
    values, lists = known
    config = object.__new__(Config)
    state = config.__dict__
    state["app"] = app
    state.update(values)
    for name in lists:  # each Config has lists of its own
        state[name] = list(state[name])
    return config


def _is_plain_list(value: Any) -> bool:
    return type(value) is list and all(type(v) in _PLAIN_TYPES for v in value)
