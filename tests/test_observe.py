"""Access-log formats (gunicorn's atoms), JSON logs and request ids, over real servers and real clients."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import hatchway
from hatchway import Config, ConfigError
from hatchway._logs import AccessFormatter, DefaultFormatter, JsonFormatter
from hatchway._observe import AccessFormat
from tests.conftest import CliProcess, write_app
from tests.utils import UNIT

APP = """
import os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    ext = scope["extensions"].get("hatchway.request_id")
    headers = [(b"content-type", b"text/plain"), (b"x-served-by", str(os.getpid()).encode())]
    if scope["path"] == "/own-id":
        headers.append((b"X-Request-ID", b"the-apps-own"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": (ext["id"] if ext else "none").encode()})
"""


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=1)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    """What hatchway's access and error loggers emit (the servers here run with ``log_config=None``)."""
    handler = Records()
    loggers = [logging.getLogger("hatchway.access"), logging.getLogger("hatchway.error")]
    saved = [(lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.disabled = False
    yield handler
    for lg, (level, disabled) in zip(loggers, saved, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)
        lg.disabled = disabled


async def echo_id(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    ext = scope["extensions"].get("hatchway.request_id")
    headers = [(b"content-type", b"text/plain")]
    if scope["path"] == "/own-id":
        headers.append((b"X-Request-ID", b"the-apps-own"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": (ext["id"] if ext else "none").encode()})


def access_messages(records: Records) -> list[str]:
    return [r.getMessage() for r in records.records if r.name == "hatchway.access"]


# -- the default stays uvicorn's -------------------------------------------------------------------------------
def test_nothing_set_means_no_observer_and_uvicorns_line(records: Records) -> None:
    with hatchway.background(echo_id) as server:
        response = httpx.get(server.url + "/a?b=1", timeout=5 * UNIT)
        assert "x-request-id" not in response.headers
        assert response.text == "none"
    (message,) = access_messages(records)
    assert re.fullmatch(r'127\.0\.0\.1:\d+ - "GET /a\?b=1 HTTP/1\.1" 200', message)
    (record,) = [r for r in records.records if r.name == "hatchway.access"]
    assert isinstance(record.args, tuple)
    assert len(record.args) == 5
    assert not hasattr(record, "request_id")


# -- access_log_format -------------------------------------------------------------------------------------------
GUNICORN = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


def test_gunicorn_atoms(records: Records) -> None:
    fmt = (
        GUNICORN + " m=%(m)s U=%(U)s q=%(q)s H=%(H)s B=%(B)s T=%(T)s D=%(D)s M=%(M)s L=%(L)s p=%(p)s "
        "in=%({X-Custom}i)s out=%({content-type}o)s missing=%({x-none}i)s env=%({HATCHWAY_TEST_ATOM}e)s 100%%"
    )
    os.environ["HATCHWAY_TEST_ATOM"] = "from-env"
    try:
        with hatchway.background(echo_id, access_log_format=fmt) as server:
            httpx.get(
                server.url + "/p/a?x=1&y=2",
                headers={"referer": "http://ref/", "user-agent": "agent/1.0", "x-custom": "c1"},
                timeout=5 * UNIT,
            )
    finally:
        del os.environ["HATCHWAY_TEST_ATOM"]
    (line,) = access_messages(records)
    pattern = (
        r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /p/a\?x=1&y=2 HTTP/1\.1" 200 4 '
        r'"http://ref/" "agent/1\.0" m=GET U=/p/a q=x=1&y=2 H=HTTP/1\.1 B=4 T=0 D=(\d+) M=(\d+) '
        r"L=(0\.\d{6}) p=<(\d+)> in=c1 out=text/plain missing=- env=from-env 100%"
    )
    found = re.fullmatch(pattern, line)
    assert found, line
    micro, milli, seconds, pid = found.groups()
    assert int(micro) // 1000 == int(milli)
    assert abs(float(seconds) - int(micro) / 1e6) < 1e-5
    assert int(pid) == os.getpid()


def test_client_text_is_escaped_in_custom_lines(records: Records) -> None:
    with hatchway.background(echo_id, access_log_format='"%(r)s" "%(a)s"') as server:
        httpx.get(server.url + '/q"x', headers={"user-agent": 'evil" 200 "forged'}, timeout=5 * UNIT)
    (line,) = access_messages(records)
    assert line == '"GET /q%22x HTTP/1.1" "evil\\" 200 \\"forged"'


def test_a_format_is_parsed_once_and_wrong_ones_are_config_errors() -> None:
    parsed = AccessFormat("%(h)s %(D)s %({x-request-id}o)s")
    assert parsed.uses_time
    assert parsed.uses_response_headers
    assert not AccessFormat("%(h)s %(s)s").uses_time
    for wrong, says in [
        ("%(nope)s", "unknown atom %(nope)s"),
        ("%(h)d", "starts no atom"),
        ("50% done", "starts no atom"),
        ("%({}i)s", "unknown atom"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(says)) as info:
            Config(echo_id, access_log_format=wrong)
        assert info.value.code == "HW101"


@pytest.mark.slow
def test_custom_format_on_the_command_line(cli: Callable[..., CliProcess], tmp_path: Path) -> None:
    write_app(tmp_path, "observed", APP)
    proc = cli("observed:app", "--port", "0", "--access-log-format", GUNICORN + " %(D)s")
    url = proc.wait_started()
    httpx.get(url + "/x", headers={"user-agent": "ua"}, timeout=5 * UNIT)
    # gunicorn's way: the line as the format says, without a level prefix, on stdout.
    proc.wait_for(r'^127\.0\.0\.1 - - \[.+\] "GET /x HTTP/1\.1" 200 4 "-" "ua" \d+$')
    assert proc.stop() == 0
    bad = cli("observed:app", "--port", "0", "--access-log-format", "%(zz)s")
    assert bad.finish() == 2
    assert "access_log_format: unknown atom %(zz)s" in bad.stderr


# -- request ids --------------------------------------------------------------------------------------------------
def test_request_id_generated_in_scope_header_and_log(records: Records) -> None:
    with hatchway.background(echo_id, request_id=True) as server:
        first = httpx.get(server.url + "/", timeout=5 * UNIT)
        second = httpx.get(server.url + "/", timeout=5 * UNIT)
    for response in (first, second):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
        assert response.text == response.headers["x-request-id"]
    assert first.text != second.text
    access = [r for r in records.records if r.name == "hatchway.access"]
    assert [r.__dict__["request_id"] for r in access] == [first.text, second.text]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123", True),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("svc.a:b/c+d=e@f~g_h", True),
        ("x" * 200, True),
        ("x" * 201, False),
        ("has space", False),
        ('quote"d', False),
        ("", False),
    ],
)
def test_incoming_request_id_from_a_trusted_peer_is_validated(sent: str, kept: bool) -> None:
    with hatchway.background(echo_id, request_id=True) as server:  # 127.0.0.1 is trusted by default
        response = httpx.get(server.url + "/", headers={"x-request-id": sent}, timeout=5 * UNIT)
    rid = response.headers["x-request-id"]
    if kept:
        assert rid == sent == response.text
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", rid)


def test_incoming_request_id_from_an_untrusted_peer_is_replaced() -> None:
    with hatchway.background(echo_id, request_id=True, forwarded_allow_ips="10.9.8.7") as server:
        response = httpx.get(server.url + "/", headers={"x-request-id": "abc-123"}, timeout=5 * UNIT)
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    with hatchway.background(echo_id, request_id=True, proxy_headers=False) as server:
        response = httpx.get(server.url + "/", headers={"x-request-id": "abc-123"}, timeout=5 * UNIT)
    assert response.headers["x-request-id"] != "abc-123"


def test_two_incoming_ids_are_not_trusted() -> None:
    with hatchway.background(echo_id, request_id=True) as server:
        response = httpx.get(
            server.url + "/", headers=[("x-request-id", "a1"), ("x-request-id", "b2")], timeout=5 * UNIT
        )
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_the_apps_own_request_id_header_is_not_doubled() -> None:
    with hatchway.background(echo_id, request_id=True) as server:
        response = httpx.get(server.url + "/own-id", timeout=5 * UNIT)
    assert response.headers.get_list("x-request-id") == ["the-apps-own"]


def test_an_app_error_line_and_its_500_carry_the_request_id(records: Records) -> None:
    with hatchway.background(echo_id, request_id=True) as server:
        response = httpx.get(server.url + "/boom", headers={"x-request-id": "req-77"}, timeout=5 * UNIT)
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-77"
    (error,) = [r for r in records.records if r.levelno == logging.ERROR]
    assert error.getMessage().startswith("Exception in ASGI application")
    assert error.__dict__["request_id"] == "req-77"
    (access,) = [r for r in records.records if r.name == "hatchway.access"]
    assert access.__dict__["request_id"] == "req-77"


def test_text_lines_of_a_request_show_its_id() -> None:
    record = logging.LogRecord(
        "hatchway.error", logging.ERROR, "", 0, "Exception in ASGI application", None, None
    )
    record.request_id = "req-1"
    assert DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False).format(record) == (
        "ERROR:    [req-1] Exception in ASGI application"
    )
    plain = logging.LogRecord("hatchway.error", logging.INFO, "", 0, "Started", None, None)
    assert (
        DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False).format(plain) == "INFO:     Started"
    )
    # A format that places the id itself gets no prefix; records without one show '-'.
    placed = DefaultFormatter("%(request_id)s %(message)s", use_colors=False)
    assert placed.format(record) == "req-1 Exception in ASGI application"
    assert placed.format(plain) == "- Started"


def test_uvicorns_access_formatter_still_formats_custom_lines() -> None:
    # A --log-config written for uvicorn (its AccessFormatter, its fields) with a custom access format.
    formatter = AccessFormatter(
        '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False
    )
    record = logging.LogRecord("hatchway.access", logging.INFO, "", 0, "%s", ("custom line",), None)
    assert formatter.format(record) == 'INFO:     - - "-" -'


# -- JSON ------------------------------------------------------------------------------------------------------------
def test_json_formatter_fields() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "hatchway.error", logging.ERROR, "", 0, "Exception\n", None, sys.exc_info()
        )
    record.request_id = "r1"
    data = json.loads(formatter.format(record))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data.pop("time"))
    exc = data.pop("exc_info")
    assert exc.startswith("Traceback")
    assert exc.endswith("ValueError: bad")
    assert data == {
        "level": "ERROR",
        "logger": "hatchway.error",
        "message": "Exception",
        "pid": os.getpid(),
        "request_id": "r1",
    }


@pytest.mark.slow
def test_json_logs_on_the_command_line(cli: Callable[..., CliProcess], tmp_path: Path) -> None:
    write_app(tmp_path, "observed", APP)
    proc = cli("observed:app", "--port", "0", "--log-format", "json", "--request-id")
    url = proc.wait_started()
    ok = httpx.post(url + "/path?q=1", content=b"12345", headers={"x-request-id": "rid-1"}, timeout=5 * UNIT)
    boom = httpx.get(url + "/boom", timeout=5 * UNIT)
    proc.wait_for(r'"path": "/boom"')
    assert proc.stop() == 0
    stdout = [json.loads(line) for line in proc.stdout_lines]
    stderr = [json.loads(line) for line in proc.stderr_lines]  # every line is one JSON object
    first, second = stdout
    assert first["duration_ms"] >= 0
    assert second["duration_ms"] >= 0
    del first["duration_ms"], second["duration_ms"], first["time"], second["time"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", first.pop("client"))
    pid = int(ok.headers["x-served-by"])
    assert first == {
        "level": "INFO",
        "logger": "hatchway.access",
        "message": first["message"],
        "pid": pid,
        "method": "POST",
        "path": "/path",
        "query": "q=1",
        "http_version": "1.1",
        "status": 200,
        "bytes": 5,
        "request_id": "rid-1",
    }
    assert re.fullmatch(r'127\.0\.0\.1:\d+ - "POST /path\?q=1 HTTP/1\.1" 200', first["message"])
    assert second["status"] == 500
    assert second["request_id"] == boom.headers["x-request-id"]
    (error,) = [line for line in stderr if line["level"] == "ERROR"]
    assert error["message"] == "Exception in ASGI application"
    assert error["request_id"] == boom.headers["x-request-id"]
    assert "RuntimeError: boom" in error["exc_info"]
    assert any(line["message"].startswith("Hatchway running on") for line in stderr)


@pytest.mark.slow
def test_a_log_config_of_your_own_wins_over_log_format(
    cli: Callable[..., CliProcess], tmp_path: Path
) -> None:
    write_app(tmp_path, "observed", APP)
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "MINE %(name)s %(message)s"}},
        "handlers": {
            "out": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"}
        },
        "loggers": {"hatchway": {"handlers": ["out"], "level": "INFO", "propagate": False}},
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    proc = cli("observed:app", "--port", "0", "--log-format", "json", "--log-config", str(path))
    url = proc.wait_started()
    httpx.get(url + "/", timeout=5 * UNIT)
    proc.wait_for(r'^MINE hatchway\.access 127\.0\.0\.1:\d+ - "GET / HTTP/1\.1" 200$')
    assert proc.stop() == 0
