"""What a child process needs to serve: the app's import string, the options, sys.path and argv, as JSON.

The parent builds a ``ChildSpec`` from its Config and hands it to the child in the environment variable
``HATCHWAY_CHILD_SPEC``; the child rebuilds an equivalent Config from it. Options that are objects (a loop
factory, an SSL context factory, ...) travel as import strings, found the same way as the app's.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from hatchway._config import Config
from hatchway._errors import ConfigError, Problem
from hatchway._importer import explain_import_string, import_from_string, insert_app_dir
from hatchway._logs import logger

ENV_SPEC = "HATCHWAY_CHILD_SPEC"
_OBJECT_KEY = "__hatchway_import__"
# Options the child must not inherit: it is one plain server on sockets it is given.
_CHILD_OVERRIDES: dict[str, Any] = {"reload": False, "workers": 1, "uds": None, "fd": None, "env_file": None}


@dataclass
class ChildSpec:
    """Everything a child process needs, JSON-serialisable."""

    app: str
    options: dict[str, Any]
    sys_path: list[str]
    argv: list[str]
    role: str = "worker"  # "worker" or "reload"
    socket_fds: list[int] = field(default_factory=list)
    status_fd: int = -1
    control_fd: int = -1
    parent_pid: int = 0
    beat_interval: float = 1.0
    log_unguarded_hint: bool = True
    #: Variables the child puts in its environment first (the metrics directory, PROMETHEUS_MULTIPROC_DIR).
    env: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ChildSpec:
        return cls(**json.loads(text))

    def config_options(self) -> dict[str, Any]:
        """The options with import strings turned back into objects."""
        decoded: dict[str, Any] = {}
        for name, value in self.options.items():
            if isinstance(value, dict) and set(value) == {_OBJECT_KEY}:
                value = import_from_string(value[_OBJECT_KEY])
            decoded[name] = value
        return decoded


def build_spec(config: Config, role: str) -> ChildSpec:
    """The spec for ``config``'s children; raises ConfigError (HW106) when the app cannot be imported by name."""
    example = "reload=True" if config.reload else f"workers={config.workers}"
    sys_path = list(sys.path)
    if isinstance(config.app, str):
        # As the CLI does: app_dir (default: the current directory) first, in the parent and so in the child.
        insert_app_dir(config.app_dir)
        sys_path = list(sys.path)
        # "__main__:app" is the calling script, which a child imports by its real name (Config refused the
        # cases without one, HW106).
        named = explain_import_string(config.app)
        import_string = named.import_string or config.app
        if named.path is not None and named.path not in sys_path:
            sys_path.insert(0, named.path)
        if import_string != config.app:
            logger.info("Using import string %r for %r in the %s processes.", import_string, config.app, role)
    else:
        found = explain_import_string(config.app, example=example)
        if found.import_string is None:
            what = "factory" if config.factory else "app object"
            mode = "reload=True" if config.reload else f"workers={config.workers}"
            raise ConfigError(
                [
                    Problem(
                        "app",
                        f"{mode} starts new processes, which must import the app by name, but no import string "
                        f"exists for this {what}: {found.reason}",
                        "HW106",
                        found.suggestion,
                    )
                ]
            )
        import_string = found.import_string
        if found.path is not None and found.path not in sys_path:
            sys_path.insert(0, found.path)
        logger.info("Using import string %r for the app in the %s processes.", import_string, role)
    options = {name: _encode(name, value) for name, value in config.options().items()}
    options.update(_CHILD_OVERRIDES)
    return ChildSpec(
        app=import_string,
        options=options,
        sys_path=sys_path,
        argv=list(sys.argv),
        role=role,
        parent_pid=os.getpid(),
        beat_interval=min(1.0, max(0.05, config.timeout_worker_healthcheck / 4)),
    )


def _encode(name: str, value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    if callable(value):
        found = explain_import_string(value)
        if found.import_string is not None:
            return {_OBJECT_KEY: found.import_string}
        detail = found.reason
    else:
        detail = f"{type(value).__name__} values cannot be passed to another process"
    raise ConfigError(
        [
            Problem(
                name,
                f"this option must reach the worker or reload processes, but {detail}",
                "HW106",
                "pass a value that can be written as JSON or a module-level object",
            )
        ]
    )
