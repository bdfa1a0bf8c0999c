"""Listening sockets: host/port (port 0), IPv6, UNIX sockets, inherited descriptors, systemd activation."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from hatchway import BindError, Config, Server
from tests.conftest import CliProcess
from tests.utils import UNIT, port_of, serve_in_thread

needs_unix = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs UNIX sockets")


async def where(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = f"{scope['server']} {scope['client']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_port_zero_reports_the_real_port() -> None:
    with serve_in_thread(where, port=0) as server:
        port = port_of(server)
        assert port > 0
        assert server.addresses == [f"http://127.0.0.1:{port}"]
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5 * UNIT).status_code == 200


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_loopback() -> None:
    with serve_in_thread(where, host="::1") as server:
        port = port_of(server)
        assert server.url == f"http://[::1]:{port}"
        response = httpx.get(f"http://[::1]:{port}/", timeout=5 * UNIT)
        assert response.status_code == 200
        assert response.text.startswith("('::1',")


@needs_unix
def test_unix_socket_serves_and_is_removed_after_stop(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    with serve_in_thread(where, uds=path) as server:
        assert server.addresses == [f"unix:{path}"]
        assert oct(os.stat(path).st_mode & 0o777) == oct(0o666)
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport, timeout=5 * UNIT) as client:
            assert client.get("http://localhost/").status_code == 200
    assert not os.path.exists(path)


@needs_unix
def test_stale_unix_socket_is_replaced_but_a_live_one_is_not(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays behind, nobody listens
    with serve_in_thread(where, uds=path) as server:
        assert server.started
        with pytest.raises(BindError) as info:
            Config(where, uds=path).bind_socket()
        assert info.value.code == "HW301"


def test_inherited_file_descriptor() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with serve_in_thread(where, fd=listener.fileno()) as server:
        assert server.url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5 * UNIT).status_code == 200
    listener.detach()  # the server owned and closed the descriptor


def test_bad_file_descriptor_is_a_bind_error(tmp_path: Path) -> None:
    with open(tmp_path / "not-a-socket", "w") as file:
        server = Server(Config(where, fd=file.fileno(), log_config=None))
        with pytest.raises(BindError, match="not an open socket") as info:
            server.run()
    assert info.value.code == "HW304"


def test_sockets_passed_to_serve_are_used_without_binding() -> None:
    sock = Config(where, port=0).bind_socket()
    port = sock.getsockname()[1]
    server = Server(Config(where, port=1, log_config=None))  # port 1 would fail if it were bound
    import threading

    thread = threading.Thread(target=server.run, args=([sock],), daemon=True)
    thread.start()
    try:
        assert server.ready.wait(10 * UNIT)
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5 * UNIT).status_code == 200
    finally:
        server.stop()
        thread.join(10 * UNIT)
    assert not thread.is_alive()


def test_unavailable_address_is_a_bind_error_carrying_the_errno() -> None:
    server = Server(Config(where, host="192.0.2.1", port=0, log_config=None))  # TEST-NET-1: not ours
    with pytest.raises(BindError) as info:
        server.run()
    assert info.value.errno == errno.EADDRNOTAVAIL
    assert "192.0.2.1" in str(info.value)
    # Server.run() is an entry point for scripts: bind's own OSError is in the message and the errno, and is
    # not chained as a second traceback (Config.bind_socket() and serve() keep it as __cause__).
    assert info.value.__cause__ is None


# -- Config.bind_socket() while the Config is being served -----------------------------------------------
def test_bind_socket_inside_a_running_server_reports_the_listening_socket() -> None:
    with serve_in_thread(where) as server:
        listening = server.sockets[0].getsockname()
        sock = server.config.bind_socket()
        try:
            # Before: a second socket, bound to another free port that nobody listens on.
            assert sock.getsockname() == listening
        finally:
            sock.close()
        # Closing what bind_socket() returned leaves the server's own socket alone.
        assert httpx.get(f"{server.url}/", timeout=5 * UNIT).status_code == 200


def test_the_blogs_final_example_reports_a_port_that_answers() -> None:
    # The last recipe of the blog post in /work/shared/seeds (002): uvicorn's Server subclassed with a
    # run_in_thread() context manager, then config.bind_socket().getsockname() to learn the address.
    import contextlib
    import threading
    import time
    from collections.abc import Iterator

    class ThreadedServer(Server):
        @contextlib.contextmanager
        def run_in_thread(self) -> Iterator[None]:
            thread = threading.Thread(target=self.run)
            thread.start()
            try:
                deadline = time.monotonic() + 10 * UNIT
                while not self.started:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.001)
                yield
            finally:
                self.should_exit = True
                thread.join(10 * UNIT)
                assert not thread.is_alive()

    server = ThreadedServer(config=Config(app=where, port=0, log_config=None))
    with server.run_in_thread():
        sock = server.config.bind_socket()
        address, port = sock.getsockname()
        sock.close()
        assert f"http://{address}:{port}" == server.url
        assert httpx.get(f"http://{address}:{port}/", timeout=5 * UNIT).status_code == 200


def test_bind_socket_binds_anew_once_the_server_has_stopped() -> None:
    with serve_in_thread(where) as server:
        port = port_of(server)
    sock = server.config.bind_socket()
    try:
        assert sock.getsockname()[1] not in (0, port)  # a fresh free port, the old socket is closed
    finally:
        sock.close()


def test_bind_socket_under_a_background_server_reports_its_socket() -> None:
    from hatchway.testing import background

    with background(where) as server:
        sock = server.config.bind_socket()
        with sock:
            assert sock.getsockname()[1] == server.port


@pytest.mark.slow
def test_systemd_socket_activation(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    fd = listener.fileno()
    # sd_listen_fds(): the socket is descriptor 3 and LISTEN_PID is the server's own pid; exec keeps the
    # launcher's pid, so the launcher can name it before becoming the server.
    launcher = (
        "import os, sys\n"
        f"os.dup2({fd}, 3)\n"
        "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid()))\n"
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
    )
    # --port 1 would fail: the inherited socket must be used instead.
    args = ["-m", "hatchway", "hatchway.demo:app", "--port", "1"]
    command = [sys.executable, "-c", launcher, *args]
    process = CliProcess([], cwd=tmp_path, command=command, pass_fds=[fd])
    try:
        listener.close()  # the child holds its own copy
        assert process.wait_started() == f"http://127.0.0.1:{port}"
        response = httpx.get(f"http://127.0.0.1:{port}/json", timeout=5 * UNIT)
        assert response.json()["server"] == "hatchway"
        assert process.stop() == 0
    finally:
        process.kill()


@pytest.mark.skipif(not shutil.which("ss"), reason="needs ss (iproute2) to read a listening socket's backlog")
def test_backlog_is_applied_to_the_listening_socket() -> None:
    with serve_in_thread(where, backlog=7) as server:
        port = port_of(server)
        output = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    # For a listening socket, ss shows the backlog in the Send-Q column.
    columns = output.split()
    assert columns[0] == "LISTEN"
    assert columns[2] == "7"


def test_permission_denied_names_the_fix() -> None:
    from hatchway._sockets import _bind_error

    cause = PermissionError(errno.EACCES, "Permission denied")
    error = _bind_error(cause, "127.0.0.1:80", Config(where, port=80))
    assert error.code == "HW302"
    assert error.errno == errno.EACCES
    assert str(error).startswith("Permission denied binding 127.0.0.1:80; ports below 1024 need privileges")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may bind any port")
def test_privileged_port_is_a_bind_error() -> None:
    with pytest.raises(BindError, match="Permission denied") as info:
        Config(where, port=1).bind_socket()
    assert info.value.errno == errno.EACCES


@pytest.mark.slow
def test_bind_socket_under_a_worker_supervisor_reports_the_parents_socket() -> None:
    from hatchway.testing import background

    # The supervisor binds once and passes the socket to its workers; bind_socket() reports that one.
    with background("tests.test_sockets:where", workers=2, timeout=30 * UNIT) as server:
        with server.config.bind_socket() as sock:
            assert sock.getsockname()[1] == server.port
        assert httpx.get(f"{server.url}/", timeout=5 * UNIT).status_code == 200
