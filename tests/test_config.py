"""Config: validated when built, one error naming every problem, immutable, env handling, bind_socket()."""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import hatchway
from hatchway import BindError, Config, ConfigError
from hatchway._config import OPTIONS

ROOT = Path(__file__).resolve().parent.parent


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    pass


class MyProtocol:
    """Stands for a custom asyncio protocol class, which uvicorn accepts and hatchway does not."""


def test_defaults_are_valid_and_normalized() -> None:
    config = Config(app)
    assert config.host == "127.0.0.1"
    assert config.port == 8000
    assert config.workers == 1
    assert config.forwarded_allow_ips == "127.0.0.1,::1"
    assert config.timeout_graceful_shutdown == 10
    assert config.reload_dirs == []


def test_config_is_immutable_and_replace_validates() -> None:
    config = Config(app, port=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    assert config.replace(port=8080).port == 8080
    assert config.port == 0
    with pytest.raises(ConfigError, match="port"):
        config.replace(port=70000)


def test_one_error_names_every_bad_option_with_expected_got_and_did_you_mean() -> None:
    with pytest.raises(ConfigError) as info:
        Config(app, workers=0, port=-5, http="nonsense", lifespn="on")
    error = info.value
    assert sorted(error.options) == ["http", "lifespn", "port", "workers"]
    text = str(error)
    assert "4 invalid options" in text
    assert "expected a whole number between 0 and 65535, got -5" in text
    assert "expected a whole number at least 1, got 0" in text
    assert "expected one of 'auto', 'h11', 'httptools', 'zttp', got 'nonsense'" in text
    assert "did you mean 'lifespan'?" in text
    assert isinstance(error, ValueError)


def test_run_rejects_unknown_keyword_before_binding() -> None:
    with pytest.raises(ConfigError) as info:
        hatchway.run(app, port=0, colour=True, workers=0)
    assert info.value.options == ["colour", "workers"]
    assert "did you mean 'use_colors'?" in str(info.value)


@pytest.mark.parametrize(
    ("options", "option", "fragment"),
    [
        ({"http": "h2"}, "http", "expected one of 'auto', 'h11', 'httptools', 'zttp'"),
        ({"http2": "yes"}, "http2", "expected True or False"),
        ({"h2_max_concurrent_streams": 0}, "h2_max_concurrent_streams", "at least 1"),
        ({"h2_initial_window_size": 2**31}, "h2_initial_window_size", "between 1 and 2147483647"),
        ({"h2_max_frame_size": 16383}, "h2_max_frame_size", "between 16384 and 16777215"),
        ({"h2_max_frame_size": 2**24}, "h2_max_frame_size", "between 16384 and 16777215"),
        ({"h2_max_header_list_size": 0}, "h2_max_header_list_size", "at least 1"),
        ({"h2_max_header_frames": 0}, "h2_max_header_frames", "at least 1"),
        ({"h2_max_resets_per_second": 0}, "h2_max_resets_per_second", "at least 1"),
        ({"h2_max_control_frames_per_second": 0}, "h2_max_control_frames_per_second", "at least 1"),
        ({"loop": "zuvloop"}, "loop", "not available in hatchway"),
        ({"http": MyProtocol}, "http", "protocol classes are not accepted"),
        ({"ws": MyProtocol}, "ws", "protocol classes are not accepted"),
        ({"lifespan": "maybe"}, "lifespan", "expected one of 'auto', 'on', 'off'"),
        ({"interface": "asgi4"}, "interface", "did you mean 'asgi3'?"),
        ({"log_level": "verbose"}, "log_level", "expected one of"),
        ({"timeout_graceful_shutdown": -1}, "timeout_graceful_shutdown", "got -1"),
        ({"backlog": 0}, "backlog", "at least 1"),
        ({"root_path": "api"}, "root_path", "starting with '/'"),
        ({"headers": [("Bad Name", "x")]}, "headers", "invalid header"),
        ({"reload": True, "workers": 2}, "workers", "cannot be combined"),
        ({"app": "no_colon"}, "app", "'<module>:<attribute>'"),
    ],
)
def test_rejected_values_name_the_option(options: dict[str, Any], option: str, fragment: str) -> None:
    options = {"app": app, **options}
    with pytest.raises(ConfigError) as info:
        Config(**options)
    assert info.value.options == [option]
    assert fragment in str(info.value)


def test_accepts_uvicorn_spellings() -> None:
    config = Config(app, ws="websockets-sansio", log_level="TRACE", loop="asyncio", headers=["X-A: 1"])
    assert config.ws == "websockets"
    assert config.headers == [("X-A", "1")]
    assert Config(app, log_level=5).log_level == 5


def test_http2_and_zttp_are_accepted() -> None:
    # uvicorn's HTTP/2 switch and its zttp implementation: served by hatchway's own (zttp as "auto").
    config = Config(app, http="zttp", http2=True)
    assert (config.http, config.http2) == ("zttp", True)
    assert Config(app).http2 is False


def test_http2_limits_take_their_bounds() -> None:
    config = Config(
        app,
        h2_max_concurrent_streams=1,
        h2_initial_window_size=2**31 - 1,
        h2_max_frame_size=16777215,
        h2_max_header_list_size=1,
        h2_max_header_frames=1,
        h2_max_resets_per_second=1,
        h2_max_control_frames_per_second=1,
    )
    assert (config.h2_initial_window_size, config.h2_max_frame_size) == (2**31 - 1, 16777215)
    defaults = Config(app)
    assert (
        defaults.h2_max_concurrent_streams,
        defaults.h2_initial_window_size,
        defaults.h2_max_frame_size,
        defaults.h2_max_header_list_size,
        defaults.h2_max_header_frames,
        defaults.h2_max_resets_per_second,
        defaults.h2_max_control_frames_per_second,
    ) == (100, 65535, 16384, 65536, 16, 100, 500)


def test_positional_parameters_follow_uvicorn() -> None:
    config = Config(app, "0.0.0.0", 9000)
    assert (config.host, config.port) == ("0.0.0.0", 9000)


def test_web_concurrency_and_forwarded_allow_ips_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    config = Config(app)
    assert config.workers == 3
    assert config.forwarded_allow_ips == "10.0.0.0/8"
    assert Config(app, workers=2, forwarded_allow_ips="*").workers == 2


def test_bad_web_concurrency_is_reported_with_other_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "lots")
    with pytest.raises(ConfigError) as info:
        Config(app, port=-1)
    assert info.value.options == ["port", "workers"]
    assert "$WEB_CONCURRENCY must be a whole number" in str(info.value)


def test_env_file_is_loaded_before_defaults_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dotenv")
    env_file = tmp_path / ".env"
    env_file.write_text("HATCHWAY_TEST_SECRET=from-env-file\nWEB_CONCURRENCY=2\n")
    monkeypatch.delenv("HATCHWAY_TEST_SECRET", raising=False)
    config = Config(app, env_file=env_file)
    assert os.environ["HATCHWAY_TEST_SECRET"] == "from-env-file"
    assert config.workers == 2
    monkeypatch.delenv("HATCHWAY_TEST_SECRET")


def test_missing_env_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="env_file: expected an existing file"):
        Config(app, env_file=str(tmp_path / "missing.env"))


def test_bind_socket_returns_a_bound_socket() -> None:
    sock = Config(app, port=0).bind_socket()
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
        assert sock.getsockname()[1] != 0
    finally:
        sock.close()


def test_bind_socket_raises_an_ordinary_exception_carrying_the_cause() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as info:  # code written for uvicorn catches OSError
            Config(app, port=port).bind_socket()
    error = info.value
    assert isinstance(error, BindError)
    assert error.errno == errno.EADDRINUSE
    assert error.code == "HW301"
    assert f"127.0.0.1:{port}" in str(error)
    assert isinstance(error.__cause__, OSError)


def test_options_doc_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_options_doc.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_option_is_in_the_doc() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for info in OPTIONS:
        assert f"`{info.name}`" in text
