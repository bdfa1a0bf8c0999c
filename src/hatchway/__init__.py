"""hatchway: an ASGI server with uvicorn's API and command line, and fewer ways to get it wrong."""

from hatchway._config import Config
from hatchway._errors import (
    AppImportError,
    BindError,
    ClientDisconnected,
    ConfigError,
    HatchwayError,
    LifespanStartupError,
    ServerStateError,
    StartupError,
    WorkerStartupError,
)
from hatchway._run import run
from hatchway._server import Server
from hatchway._version import __version__
from hatchway.testing import background, serving

__all__ = [
    "AppImportError",
    "BindError",
    "ClientDisconnected",
    "Config",
    "ConfigError",
    "HatchwayError",
    "LifespanStartupError",
    "Server",
    "ServerStateError",
    "StartupError",
    "WorkerStartupError",
    "__version__",
    "background",
    "run",
    "serving",
]
