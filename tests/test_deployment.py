"""docs/deployment.md: its configuration blocks are the files in examples/deploy/, and each one is run here.

nginx (TCP and UNIX socket upstreams) and systemd socket activation run for real; the HAProxy configuration
runs in tests/test_proxy_protocol.py. The Dockerfile's command and the Kubernetes container's settings are
run as hatchway command lines (no image is built, no cluster exists here), and the Deployment's timing rule
is checked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import hatchway
from tests.conftest import CliProcess
from tests.daemons import binary, daemon, free_port
from tests.utils import UNIT

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "deployment.md"
DEPLOY = ROOT / "examples" / "deploy"
FILE_MARKER = re.compile(r"^<!-- file: (examples/deploy/\S+) -->$")

APP = textwrap.dedent(
    """
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"].endswith("shutdown"):
                    return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": scope["client"][0]})
            await send({"type": "websocket.close"})
            return
        body = repr((scope["client"][0] if scope["client"] else None, scope["scheme"])).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    """
)


def doc_files() -> dict[str, str]:
    """Each ``<!-- file: examples/deploy/NAME -->`` marker of the guide, with the fenced block under it."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        marker = FILE_MARKER.match(line)
        if not marker:
            continue
        assert lines[index + 1].startswith("```"), f"no code block under {line}"
        end = lines.index("```", index + 2)
        found[marker.group(1)] = "\n".join(lines[index + 2 : end]) + "\n"
    return found


def test_the_guide_shows_every_example_file_verbatim() -> None:
    shown = doc_files()
    files = {f"examples/deploy/{p.name}" for p in DEPLOY.iterdir() if p.is_file()}
    assert set(shown) == files
    for name, text in shown.items():
        assert text == (ROOT / name).read_text(encoding="utf-8"), f"{name} differs from docs/deployment.md"


# -- nginx ------------------------------------------------------------------------------------------------------
NGINX_MAIN = """
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/hatchway.conf;
}}
"""


@contextmanager
def nginx(tmp: Path, upstream: str, port: int) -> Iterator[None]:
    nginx_binary = binary("nginx")
    text = (DEPLOY / "nginx.conf").read_text()
    # The guide's file, with the test's addresses: the upstream line is the one the guide says to change.
    assert "server unix:/run/hatchway/app.sock;" in text
    assert "listen 80;" in text
    text = text.replace("server unix:/run/hatchway/app.sock;", f"server {upstream};")
    (tmp / "hatchway.conf").write_text(text.replace("listen 80;", f"listen 127.0.0.1:{port};"))
    user = "user root;" if os.geteuid() == 0 else ""
    (tmp / "nginx.conf").write_text(NGINX_MAIN.format(tmp=tmp, user=user))
    with daemon(
        [nginx_binary, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"], [port], "nginx"
    ):
        yield


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    namespace: dict[str, Any] = {}
    exec(APP, namespace)  # the same app as the subprocesses run
    await namespace["app"](scope, receive, send)


@pytest.mark.slow
@pytest.mark.parametrize("upstream", ["unix", "tcp"])
def test_behind_nginx(tmp_path: Path, upstream: str) -> None:
    from websockets.sync.client import connect

    front = free_port()
    # A short path: sun_path holds 108 bytes.
    sock = Path(tempfile.gettempdir()) / f"hatchway-deploy-{os.getpid()}.sock"
    if upstream == "unix":
        # The command line the guide gives: the socket path is the trusted peer's literal.
        options: dict[str, Any] = {"uds": str(sock), "forwarded_allow_ips": str(sock)}
    else:
        options = {"forwarded_allow_ips": "127.0.0.1"}
    try:
        with hatchway.background(_app, ready_path="/ready", **options) as server:
            target = f"unix:{sock}" if upstream == "unix" else server.url.removeprefix("http://")
            with (
                nginx(tmp_path, target, front),
                httpx.Client(
                    base_url=f"http://127.0.0.1:{front}",
                    transport=httpx.HTTPTransport(local_address="127.0.0.3"),
                    timeout=5 * UNIT,
                ) as client,
            ):
                for _ in range(3):  # over nginx's kept-alive upstream connection
                    assert client.get("/").text == "('127.0.0.3', 'http')"
                forged = client.get("/", headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"})
                assert forged.text == "('127.0.0.3', 'http')"  # nginx appends; hatchway takes nginx's hop
                assert client.get("/ready").text == "ok"
                with connect(f"ws://127.0.0.1:{front}/ws", open_timeout=5 * UNIT) as ws:
                    assert ws.recv(timeout=5 * UNIT) == "127.0.0.1"
    finally:
        sock.unlink(missing_ok=True)


async def _request_id_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers the id hatchway gave the request and the X-Request-ID header that reached it."""
    if scope["type"] != "http":
        return
    sent = [value.decode() for name, value in scope["headers"] if name == b"x-request-id"]
    body = json.dumps({"id": scope["extensions"]["hatchway.request_id"]["id"], "header": sent})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


@pytest.mark.slow
@pytest.mark.parametrize("upstream", ["unix", "tcp"])
def test_behind_nginx_a_client_cannot_choose_its_request_id(tmp_path: Path, upstream: str) -> None:
    front = free_port()
    sock = Path(tempfile.gettempdir()) / f"hatchway-deploy-rid-{os.getpid()}.sock"
    if upstream == "unix":
        options: dict[str, Any] = {"uds": str(sock), "forwarded_allow_ips": str(sock)}
    else:
        options = {"forwarded_allow_ips": "127.0.0.1"}
    try:
        with hatchway.background(_request_id_app, request_id=True, **options) as server:
            target = f"unix:{sock}" if upstream == "unix" else server.url.removeprefix("http://")
            with (
                nginx(tmp_path, target, front),
                httpx.Client(base_url=f"http://127.0.0.1:{front}", timeout=5 * UNIT) as client,
            ):
                seen = set()
                for _ in range(3):
                    response = client.get("/", headers={"X-Request-ID": "chosen-by-the-client"})
                    assert response.status_code == 200
                    answer = response.json()
                    # nginx replaced the client's header with its own $request_id (32 hex digits), which
                    # hatchway believes from nginx: the app and the response carry nginx's id.
                    assert answer["header"] != ["chosen-by-the-client"]
                    assert len(answer["header"]) == 1
                    assert re.fullmatch(r"[0-9a-f]{32}", answer["header"][0])
                    assert answer["id"] == answer["header"][0]
                    assert response.headers["x-request-id"] == answer["id"]
                    seen.add(answer["id"])
                assert len(seen) == 3
    finally:
        sock.unlink(missing_ok=True)


# -- systemd socket activation ------------------------------------------------------------------------------------
def unit_value(name: str, key: str) -> str:
    for line in (DEPLOY / name).read_text().splitlines():
        if line.startswith(key + "="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{key}= not in {name}")


@pytest.mark.slow
def test_systemd_socket_activation(tmp_path: Path) -> None:
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate is not installed (Debian: apt-get install systemd)")
    (tmp_path / "main.py").write_text(APP)
    port = free_port()
    listen = unit_value("hatchway.socket", "ListenStream")
    assert listen == "8000"
    command = shlex.split(unit_value("hatchway.service", "ExecStart"))
    assert command[0].endswith("/bin/hatchway")
    args = command[1:]
    for flag in ("--port", "--host", "--uds", "--fd"):
        assert flag not in args  # the socket is systemd's
    # What systemd does for the pair of units: bind the socket, start the service with LISTEN_FDS=1 and
    # LISTEN_PID set to the service's process; systemd-socket-activate does the same by hand.
    proc = CliProcess(
        [],
        cwd=tmp_path,
        command=[activate, "-l", f"127.0.0.1:{port}", sys.executable, "-m", "hatchway", *args],
    )
    try:
        # The service starts on the first connection, which waits in the socket's backlog meanwhile.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20 * UNIT) as client:
            assert client.get("/ready").text == "ok"
            assert client.get("/live").text == "ok"
            seen = {client.get("/").status_code for _ in range(5)}
            assert seen == {200}
        proc.wait_for(r"Started parent process \[\d+\] with 2 workers")
        assert "Address already in use" not in proc.stderr
        # systemd's stop: SIGTERM to the main process (KillMode=mixed); it drains for --shutdown-delay.
        pid = int(proc.wait_for(r"Started parent process \[(\d+)\]").group(1))
        os.kill(pid, signal.SIGTERM)
        proc.wait_for(r"draining for 5")
        os.kill(pid, signal.SIGTERM)  # a second signal ends the drain
        assert proc.finish(15 * UNIT) == 0
    finally:
        proc.kill()


# -- Docker and Kubernetes: the command and settings, run as hatchway command lines ----------------------------
def _run_until_ready(tmp_path: Path, args: list[str], env: dict[str, str] | None = None) -> CliProcess:
    (tmp_path / "main.py").write_text(APP)
    return CliProcess(args, cwd=tmp_path, env=env)


def test_dockerfile_command(tmp_path: Path) -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    cmd = next(line for line in text.splitlines() if line.startswith("CMD "))
    argv = json.loads(cmd[4:])  # the exec form: a JSON array, so hatchway is PID 1 and gets the signals
    assert argv[0] == "hatchway"
    args = argv[1:]
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = "0"
    proc = _run_until_ready(tmp_path, args)
    try:
        url = proc.wait_started()
        proc.wait_for(r"Started parent process \[\d+\] with 2 workers")
        with httpx.Client(base_url=url, timeout=10 * UNIT) as client:
            assert _eventually_ok(client, "/ready")
            assert client.get("/live").text == "ok"
        assert proc.stop(signal.SIGTERM) == 0
    finally:
        proc.kill()


def _eventually_ok(client: httpx.Client, path: str) -> bool:
    deadline = time.monotonic() + 10 * UNIT
    while time.monotonic() < deadline:
        try:
            if client.get(path).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    return False


def _eventually_status(client: httpx.Client, path: str, status: int, within: float) -> bool:
    deadline = time.monotonic() + within * UNIT
    while True:
        if client.get(path).status_code == status:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _container() -> tuple[dict[str, Any], dict[str, Any]]:
    import yaml

    deployment = yaml.safe_load((DEPLOY / "kubernetes.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def test_kubernetes_grace_period_covers_the_drain_and_the_shutdown() -> None:
    pytest.importorskip("yaml")
    pod, container = _container()
    env = {item["name"]: item["value"] for item in container["env"]}
    config = hatchway.Config(
        "main:app", **{k.removeprefix("HATCHWAY_").lower(): v for k, v in _typed(env).items()}
    )
    assert config.shutdown_delay > 0
    assert config.timeout_graceful_shutdown is not None
    assert pod["terminationGracePeriodSeconds"] > config.shutdown_delay + config.timeout_graceful_shutdown
    _, cmd_ready = (
        container["readinessProbe"]["httpGet"]["path"],
        container["livenessProbe"]["httpGet"]["path"],
    )
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f'"--ready-path", "{container["readinessProbe"]["httpGet"]["path"]}"' in dockerfile
    assert f'"--live-path", "{cmd_ready}"' in dockerfile
    assert f'"--port", "{container["ports"][0]["containerPort"]}"' in dockerfile


def _typed(env: dict[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for name, value in env.items():
        try:
            typed[name] = int(value)
        except ValueError:
            typed[name] = value
    return typed


@pytest.mark.slow
def test_kubernetes_container_settings_drain_on_sigterm(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    _, container = _container()
    env = {item["name"]: item["value"] for item in container["env"]}
    env["HATCHWAY_SHUTDOWN_DELAY"] = "1"  # the guide's 10 s, shortened for the test
    text = (DEPLOY / "Dockerfile").read_text()
    args = json.loads(next(line for line in text.splitlines() if line.startswith("CMD "))[4:])[1:]
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = "0"
    proc = _run_until_ready(tmp_path, args, env=env)
    try:
        url = proc.wait_started()
        with httpx.Client(base_url=url, timeout=10 * UNIT) as client:
            assert _eventually_ok(client, container["readinessProbe"]["httpGet"]["path"])
            pid = proc.proc.pid
            started = time.monotonic()
            os.kill(pid, signal.SIGTERM)
            proc.wait_for(r"draining for 1")
            # The supervisor logs the drain as it tells the workers; each answers 503 once its pipe is read.
            assert _eventually_status(client, "/ready", 503, within=0.8)
            assert client.get("/live").status_code == 200
            assert client.get("/").status_code == 200
        assert proc.finish(15 * UNIT) == 0
        assert time.monotonic() - started >= 0.9
    finally:
        proc.kill()
