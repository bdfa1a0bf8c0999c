"""The public API is exactly ``hatchway.__all__``; everything in it exists and is what it claims to be."""

from __future__ import annotations

import hatchway
from hatchway import _errors

#: The names this suite knows; the lead adds new public names here when __init__.py gains them.
EXPECTED = {
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
}


def test_all_is_exactly_the_public_api() -> None:
    assert set(hatchway.__all__) == EXPECTED
    assert len(hatchway.__all__) == len(set(hatchway.__all__)), "duplicates in __all__"
    assert sorted(hatchway.__all__) == hatchway.__all__, "keep __all__ sorted"


def test_every_name_in_all_exists() -> None:
    for name in hatchway.__all__:
        assert getattr(hatchway, name, None) is not None, name


def test_no_other_public_names_leak() -> None:
    public = {name for name in vars(hatchway) if not name.startswith("_")}
    # Submodules imported by __init__ are reachable as attributes; they are not part of __all__.
    modules = {name for name in public if type(getattr(hatchway, name)).__name__ == "module"}
    assert public - modules <= set(hatchway.__all__)


def test_exception_tree() -> None:
    assert issubclass(hatchway.ConfigError, hatchway.HatchwayError)
    assert issubclass(hatchway.ConfigError, ValueError)
    for name in ("AppImportError", "BindError", "LifespanStartupError", "WorkerStartupError"):
        assert issubclass(getattr(hatchway, name), hatchway.StartupError), name
    assert issubclass(hatchway.BindError, OSError)
    assert issubclass(hatchway.StartupError, hatchway.HatchwayError)
    assert issubclass(hatchway.ServerStateError, RuntimeError)
    # Every exception class in _errors is drawn in its docstring and exported.
    for name, value in vars(_errors).items():
        if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == _errors.__name__:
            assert name in (_errors.__doc__ or ""), name
            assert name in hatchway.__all__, name


def test_version_is_a_string() -> None:
    assert isinstance(hatchway.__version__, str)
    assert hatchway.__version__.count(".") >= 1
