"""uvicorn 0.54 parity: every parameter and CLI flag exists in hatchway with the same default, or is a
documented, deliberate difference."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import hatchway
from hatchway._cli import command
from hatchway._config import OPTIONS, RUN_PARAMETERS
from hatchway._logs import LOGGING_CONFIG

uvicorn = pytest.importorskip("uvicorn")
uvicorn_main = pytest.importorskip("uvicorn.main")
ROOT = Path(__file__).resolve().parent.parent

#: Deliberate differences, each documented in docs/configuration.md ("Differences from uvicorn").
DIFFERENT_DEFAULTS: dict[str, Any] = {"timeout_graceful_shutdown": 10}
_MISSING = object()


def _hatchway_defaults() -> dict[str, Any]:
    return {
        name: param.default
        for name, param in inspect.signature(hatchway.Config).parameters.items()
        if param.default is not inspect.Parameter.empty
    }


def _renamed(value: Any) -> Any:
    """uvicorn's logging config with its names replaced by hatchway's, for comparison."""
    if isinstance(value, dict):
        return {_renamed(k): _renamed(v) for k, v in value.items()}
    if isinstance(value, str):
        return value.replace("uvicorn", "hatchway").replace("hatchway.logging.", "hatchway._logs.")
    return value


def test_every_uvicorn_config_parameter_exists_with_the_same_default() -> None:
    ours = _hatchway_defaults()
    ours["log_config"] = hatchway.Config(lambda: None).log_config  # a fresh copy of the default
    mismatches = []
    for name, param in inspect.signature(uvicorn.Config).parameters.items():
        if name == "app":
            continue
        theirs = _renamed(param.default) if name == "log_config" else param.default
        expected = DIFFERENT_DEFAULTS.get(name, theirs)
        if ours.get(name, _MISSING) != expected:
            mismatches.append(f"{name}: uvicorn {theirs!r}, hatchway {ours.get(name, 'missing')!r}")
    assert mismatches == []


def test_uvicorn_config_positional_order_is_kept() -> None:
    def positional(cls: Any) -> list[str]:
        params = inspect.signature(cls).parameters.values()
        return [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]

    assert positional(hatchway.Config) == positional(uvicorn.Config)


def test_every_uvicorn_run_parameter_is_accepted_with_the_same_default() -> None:
    ours = _hatchway_defaults()
    mismatches = []
    for name, param in inspect.signature(uvicorn.run).parameters.items():
        if name == "app" or name == "log_config":
            continue
        if name not in RUN_PARAMETERS:
            mismatches.append(f"{name}: missing")
        elif ours[name] != DIFFERENT_DEFAULTS.get(name, param.default):
            mismatches.append(f"{name}: uvicorn {param.default!r}, hatchway {ours[name]!r}")
    assert mismatches == []


def test_differences_are_exactly_the_declared_ones() -> None:
    # Every changed default is declared; meanings that differ are declared (and documented) too.
    declared = {info.name for info in OPTIONS if info.differs}
    assert set(DIFFERENT_DEFAULTS) <= declared
    doc = (ROOT / "docs" / "configuration.md").read_text()
    section = doc.split("## Differences from uvicorn", 1)[1]
    for name in declared:
        assert f"`{name}`" in section


def _plain(default: Any) -> Any:
    # click 8.3 reports "no default" as a sentinel and multiple options as (); both mean "not given".
    return None if default in ((), []) or type(default).__name__ == "Sentinel" else default


def _params(cmd: click.Command) -> dict[str, click.Parameter]:
    return {param.opts[0]: param for param in cmd.params if isinstance(param, click.Option)}


def test_every_uvicorn_flag_exists_with_the_same_default() -> None:
    ours = _params(command)
    mismatches = []
    for flag, theirs in _params(uvicorn_main.main).items():
        mine = ours.get(flag)
        if mine is None:
            mismatches.append(f"{flag}: missing")
            continue
        assert isinstance(theirs, click.Option)
        assert isinstance(mine, click.Option)
        if list(mine.secondary_opts) != list(theirs.secondary_opts):
            mismatches.append(f"{flag}: secondary {theirs.secondary_opts} vs {mine.secondary_opts}")
        if bool(mine.is_flag) != bool(theirs.is_flag) or bool(mine.multiple) != bool(theirs.multiple):
            mismatches.append(f"{flag}: flag/multiple kind differs")
        name = mine.name or ""
        expected = DIFFERENT_DEFAULTS.get(name, theirs.default)
        if _plain(mine.default) != _plain(expected):
            mismatches.append(f"{flag}: uvicorn default {theirs.default!r}, hatchway {mine.default!r}")
        if isinstance(theirs.type, click.Choice):
            assert isinstance(mine.type, click.Choice), flag
            assert set(theirs.type.choices) <= set(mine.type.choices), flag
    assert mismatches == []


def test_every_option_reads_its_environment_variable() -> None:
    ours = {param.name: param for param in command.params}
    for info in OPTIONS:
        if info.cli.flag is None:
            assert info.name not in ours
            continue
        assert ours[info.name].envvar == f"HATCHWAY_{info.name.upper()}"
    app_argument = next(p for p in command.params if isinstance(p, click.Argument))
    assert app_argument.envvar == "HATCHWAY_APP"


def test_version_output_has_uvicorns_shape() -> None:
    ours = CliRunner().invoke(command, ["--version"]).output
    theirs = CliRunner().invoke(uvicorn_main.main, ["--version"]).output
    shape = r"Running {name} (\S+) with (\S+) (\S+) on (\S+)\n"
    mine = re.fullmatch(shape.format(name="hatchway"), ours)
    other = re.fullmatch(shape.format(name="uvicorn"), theirs)
    assert mine is not None, ours
    assert other is not None, theirs
    assert mine.group(1) == hatchway.__version__
    assert mine.groups()[1:] == other.groups()[1:]


def test_logger_names_follow_uvicorns_with_hatchway_prefix() -> None:
    assert set(LOGGING_CONFIG["loggers"]) == {"hatchway", "hatchway.error", "hatchway.access"}
    assert _renamed(uvicorn.config.LOGGING_CONFIG) == LOGGING_CONFIG


def test_server_keeps_uvicorns_everyday_surface() -> None:
    server = hatchway.Server(hatchway.Config(lambda: None))
    for name in ("config", "run", "serve", "started", "should_exit", "force_exit", "handle_exit", "servers"):
        assert hasattr(server, name), name
    assert list(inspect.signature(server.run).parameters) == ["sockets"]
    assert next(iter(inspect.signature(server.serve).parameters)) == "sockets"
    config = hatchway.Config(lambda: None)
    for name in ("bind_socket", "is_ssl", "use_subprocess", "should_reload", "get_loop_factory"):
        assert hasattr(config, name), name


def test_uvicorns_http_values_and_http2_are_accepted() -> None:
    # The same, not a difference: every --http name uvicorn knows (zttp is served as "auto") and --http2.
    for value in uvicorn.config.HTTP_PROTOCOLS:
        config = hatchway.Config(lambda: None, http=value, http2=True)
        assert (config.http, config.http2) == (value, True)
    result = CliRunner().invoke(command, ["--help"])
    assert "--http2" in result.output
    assert "[auto|h11|httptools|zttp]" in result.output
