"""Proxy headers: the trust rules in memory, over sockets, and behind a real nginx on a UNIX socket."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hatchway._proxy import TrustedProxies, apply_proxy_headers
from tests.daemons import binary, daemon, free_port
from tests.utils import UNIT, serve_in_thread

PEER = ("127.0.0.1", 5000)


def headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in values.items()]


# -- trust -----------------------------------------------------------------------------------------------
def test_trusted_addresses_networks_and_literals() -> None:
    trusted = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8", "/tmp/app.sock", " "])
    assert "127.0.0.1" in trusted
    assert "10.1.2.3" in trusted
    assert "0:0:0:0:0:0:0:1" in trusted  # compared as addresses, not text
    assert "fd00::5" in trusted
    assert "/tmp/app.sock" in trusted
    assert "11.0.0.1" not in trusted
    assert "127.0.0.2" not in trusted
    assert None not in trusted
    assert "" not in trusted
    assert "x" * 300 not in trusted


def test_trust_everything() -> None:
    trusted = TrustedProxies(["*"])
    assert "203.0.113.9" in trusted
    assert None in trusted


# -- X-Forwarded-* ---------------------------------------------------------------------------------------
def test_untrusted_peer_headers_ignored() -> None:
    trusted = TrustedProxies(["10.0.0.1"])
    got = apply_proxy_headers(
        trusted, "127.0.0.1", headers(x_forwarded_for="1.2.3.4", x_forwarded_proto="https"), "http", PEER
    )
    assert got == ("http", PEER)


def test_x_forwarded_for_and_proto() -> None:
    trusted = TrustedProxies(["127.0.0.1"])
    got = apply_proxy_headers(
        trusted, "127.0.0.1", headers(x_forwarded_for="1.2.3.4", x_forwarded_proto="https"), "http", PEER
    )
    assert got == ("https", ("1.2.3.4", 0))


def test_x_forwarded_for_chain_stops_at_first_untrusted_hop() -> None:
    trusted = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    # A client can put anything on the left; only hops appended by trusted proxies are believed.
    value = "6.6.6.6, 1.2.3.4, 10.0.0.2"
    got = apply_proxy_headers(trusted, "127.0.0.1", headers(x_forwarded_for=value), "http", PEER)
    assert got == ("http", ("1.2.3.4", 0))


def test_x_forwarded_for_all_trusted_takes_the_first() -> None:
    trusted = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    got = apply_proxy_headers(
        trusted, "127.0.0.1", headers(x_forwarded_for="10.0.0.3, 10.0.0.2"), "http", PEER
    )
    assert got == ("http", ("10.0.0.3", 0))


def test_x_forwarded_for_with_ports_and_ipv6() -> None:
    trusted = TrustedProxies(["*"])
    assert apply_proxy_headers(trusted, None, headers(x_forwarded_for="1.2.3.4:8080"), "http", None)[1] == (
        "1.2.3.4",
        8080,
    )
    assert apply_proxy_headers(trusted, None, headers(x_forwarded_for="[2001:db8::1]:443"), "http", None)[
        1
    ] == ("2001:db8::1", 443)
    assert apply_proxy_headers(trusted, None, headers(x_forwarded_for="2001:db8::1"), "http", None)[1] == (
        "2001:db8::1",
        0,
    )


def test_x_forwarded_for_split_across_fields() -> None:
    trusted = TrustedProxies(["127.0.0.1"])
    fields = [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"1.2.3.4")]
    assert apply_proxy_headers(trusted, "127.0.0.1", fields, "http", PEER)[1] == ("1.2.3.4", 0)


def test_empty_x_forwarded_for_keeps_the_peer() -> None:
    trusted = TrustedProxies(["127.0.0.1"])
    assert apply_proxy_headers(trusted, "127.0.0.1", headers(x_forwarded_for=""), "http", PEER) == (
        "http",
        PEER,
    )


@pytest.mark.parametrize(
    ("value", "scheme", "expected"),
    [
        ("https", "http", "https"),
        ("HTTPS", "http", "https"),
        ("gopher", "http", "http"),
        ("https", "ws", "wss"),
        ("http", "wss", "ws"),
    ],
)
def test_x_forwarded_proto(value: str, scheme: str, expected: str) -> None:
    trusted = TrustedProxies(["127.0.0.1"])
    assert (
        apply_proxy_headers(trusted, "127.0.0.1", headers(x_forwarded_proto=value), scheme, PEER)[0]
        == expected
    )


# -- RFC 7239 Forwarded ------------------------------------------------------------------------------------
def test_forwarded() -> None:
    trusted = TrustedProxies(["127.0.0.1"])
    value = 'for=192.0.2.60;proto=https;by=203.0.113.43, for="[2001:db8:cafe::17]:4711";proto=http'
    got = apply_proxy_headers(trusted, "127.0.0.1", headers(forwarded=value), "http", PEER, "forwarded")
    assert got == ("http", ("2001:db8:cafe::17", 4711))


def test_forwarded_walks_past_trusted_hops_and_takes_that_elements_proto() -> None:
    trusted = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    # The client wrote the first element itself; the edge proxy (10.0.0.2's peer) vouches for the second.
    value = "for=6.6.6.6;proto=http, for=192.0.2.60;proto=https, for=10.0.0.2;proto=http"
    got = apply_proxy_headers(trusted, "127.0.0.1", headers(forwarded=value), "http", PEER, "forwarded")
    assert got == ("https", ("192.0.2.60", 0))


# The security rule: exactly one family is read, the one the operator chose; the other is ignored, never
# merged. A proxy that sets X-Forwarded-* passes a client's own Forwarded header through untouched, and the
# other way round.
def test_x_forwarded_family_ignores_forwarded() -> None:
    trusted = TrustedProxies(["127.0.0.1"])
    fields = headers(
        forwarded="for=6.6.6.6;proto=https", x_forwarded_for="192.0.2.60", x_forwarded_proto="http"
    )
    assert apply_proxy_headers(trusted, "127.0.0.1", fields, "http", PEER) == ("http", ("192.0.2.60", 0))
    only_forwarded = headers(forwarded="for=6.6.6.6;proto=https")
    assert apply_proxy_headers(trusted, "127.0.0.1", only_forwarded, "http", PEER) == ("http", PEER)


def test_forwarded_family_ignores_x_forwarded() -> None:
    trusted = TrustedProxies(["127.0.0.1"])
    fields = headers(
        forwarded="for=192.0.2.60;proto=http", x_forwarded_for="6.6.6.6", x_forwarded_proto="https"
    )
    got = apply_proxy_headers(trusted, "127.0.0.1", fields, "http", PEER, "forwarded")
    assert got == ("http", ("192.0.2.60", 0))
    only_x = headers(x_forwarded_for="6.6.6.6", x_forwarded_proto="https")
    assert apply_proxy_headers(trusted, "127.0.0.1", only_x, "http", PEER, "forwarded") == ("http", PEER)


@pytest.mark.parametrize("value", ["for=unknown", "for=_hidden", 'for="_gazonk"'])
def test_forwarded_obfuscated_keeps_the_peer(value: str) -> None:
    trusted = TrustedProxies(["127.0.0.1"])
    got = apply_proxy_headers(trusted, "127.0.0.1", headers(forwarded=value), "http", PEER, "forwarded")
    assert got == ("http", PEER)


# -- over sockets -----------------------------------------------------------------------------------------
async def scope_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    client = scope["client"]
    text = f"{scope['scheme']} {client[0] if client else None}"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": text.encode()})


@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "https 1.2.3.4"),  # 127.0.0.1 is trusted by default
        ({"forwarded_allow_ips": "10.0.0.1"}, "http 127.0.0.1"),
        ({"proxy_headers": False}, "http 127.0.0.1"),
        ({"forwarded_allow_ips": "*"}, "https 1.2.3.4"),
    ],
)
def test_proxy_headers_over_sockets(
    http: str, options: dict[str, Any], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    with serve_in_thread(scope_app, http=http, **options) as server:
        response = httpx.get(
            server.url,  # type: ignore[arg-type]
            headers={"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"},
            timeout=5 * UNIT,
        )
    assert response.text == expected


# -- behind nginx on a UNIX socket ------------------------------------------------------------------------
NGINX_CONF = """
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
    upstream hatchway {{ server unix:{sock}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://hatchway;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # As when nginx terminates TLS in front of the app.
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
    # The configurations docs/proxies.md gives, one per proxy_headers_family.
    server {{
        listen 127.0.0.1:{port_x};
        location / {{
            proxy_pass http://hatchway;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-ID $request_id;
        }}
    }}
    map $remote_addr $proxy_forwarded_for {{
        ~^[0-9.]+$        "for=$remote_addr";
        ~^[0-9A-Fa-f:.]+$ "for=\\"[$remote_addr]\\"";
        default           "for=unknown";
    }}
    server {{
        listen 127.0.0.1:{port_fwd};
        location / {{
            proxy_pass http://hatchway;
            proxy_set_header Host $host;
            proxy_set_header Forwarded "$proxy_forwarded_for;proto=$scheme";
            proxy_set_header X-Request-ID $request_id;
        }}
    }}
}}
"""


NGINX_FAMILY_PORTS: dict[str, int] = {}


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    nginx_binary = binary("nginx")
    tmp = tmp_path_factory.mktemp("nginx")
    sock = Path(tempfile_dir()) / f"hatchway-nginx-{os.getpid()}.sock"  # short: sun_path is 108 bytes
    port, port_x, port_fwd = free_port(), free_port(), free_port()
    conf = tmp / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(
        NGINX_CONF.format(user=user, tmp=tmp, sock=sock, port=port, port_x=port_x, port_fwd=port_fwd)
    )
    argv = [nginx_binary, "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"]
    try:
        with daemon(argv, [port, port_x, port_fwd], "nginx"):
            NGINX_FAMILY_PORTS.update({"x-forwarded": port_x, "forwarded": port_fwd})
            yield f"http://127.0.0.1:{port}", sock
    finally:
        sock.unlink(missing_ok=True)


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()


@pytest.mark.slow
@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize(
    ("allow", "expected"),
    [
        # The socket path is the peer's literal; nginx's own hop (127.0.0.1) is the first untrusted one.
        ("{sock}", "https 127.0.0.1"),
        ("{sock},127.0.0.1", "https 203.0.113.7"),
        ("*", "https 203.0.113.7"),
        # Not trusted: the headers are ignored, and a UNIX-socket peer has no address.
        ("127.0.0.1", "http None"),
    ],
)
def test_behind_nginx_on_a_unix_socket(nginx: tuple[str, Path], http: str, allow: str, expected: str) -> None:
    url, sock = nginx
    with serve_in_thread(scope_app, http=http, uds=str(sock), forwarded_allow_ips=allow.format(sock=sock)):
        response = httpx.get(url + "/", headers={"X-Forwarded-For": "203.0.113.7"}, timeout=5 * UNIT)
    assert response.status_code == 200, response.text
    assert response.text == expected


# A client of the proxy sends its own proxy headers of both families; nginx, configured for one family,
# passes the other family's through untouched. The app must see only what nginx vouched for: the client's
# real address (127.0.0.1 here, not trusted: only nginx's socket is) and plain http.
SPOOFS = {
    "forwarded": {"Forwarded": "for=6.6.6.6;proto=https"},
    "x-forwarded chain": {"X-Forwarded-For": "6.6.6.6, 7.7.7.7", "X-Forwarded-Proto": "https"},
    "both": {
        "Forwarded": "for=6.6.6.6;proto=https",
        "X-Forwarded-For": "6.6.6.6, 7.7.7.7",
        "X-Forwarded-Proto": "https",
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("family", ["x-forwarded", "forwarded"])
@pytest.mark.parametrize("spoof", list(SPOOFS))
def test_behind_nginx_a_client_cannot_choose_its_address_or_scheme(
    nginx: tuple[str, Path], family: str, spoof: str
) -> None:
    _, sock = nginx
    url = f"http://127.0.0.1:{NGINX_FAMILY_PORTS[family]}/"
    with serve_in_thread(
        scope_app, uds=str(sock), forwarded_allow_ips=str(sock), proxy_headers_family=family
    ):
        honest = httpx.get(url, timeout=5 * UNIT)
        spoofed = httpx.get(url, headers=SPOOFS[spoof], timeout=5 * UNIT)
    assert honest.text == "http 127.0.0.1"
    assert spoofed.status_code == 200, spoofed.text
    assert spoofed.text == "http 127.0.0.1"


# -- behind HAProxy ------------------------------------------------------------------------------------------
HAPROXY_CONF = """
global
    maxconn 64
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
# The configurations docs/proxies.md gives, one per proxy_headers_family.
frontend x_forwarded
    bind 127.0.0.1:{port_x}
    option forwardfor
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    http-request set-header X-Forwarded-Proto http if !{{ ssl_fc }}
    unique-id-format %[uuid()]
    http-request set-header X-Request-ID %[unique-id]
    default_backend app
frontend forwarded
    bind 127.0.0.1:{port_fwd}
    http-request set-header Forwarded "for=\\"%[src]\\";proto=https" if {{ ssl_fc }}
    http-request set-header Forwarded "for=\\"%[src]\\";proto=http" if !{{ ssl_fc }}
    unique-id-format %[uuid()]
    http-request set-header X-Request-ID %[unique-id]
    default_backend app
backend app
    server app {sock}
"""


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, int], Path]]:
    haproxy_binary = binary("haproxy")
    tmp = tmp_path_factory.mktemp("haproxy")
    sock = Path(tempfile_dir()) / f"hatchway-haproxy-{os.getpid()}.sock"
    ports = {"x-forwarded": free_port(), "forwarded": free_port()}
    conf = tmp / "haproxy.cfg"
    conf.write_text(HAPROXY_CONF.format(port_x=ports["x-forwarded"], port_fwd=ports["forwarded"], sock=sock))
    try:
        with daemon([haproxy_binary, "-db", "-f", str(conf)], list(ports.values()), "haproxy"):
            yield ports, sock
    finally:
        sock.unlink(missing_ok=True)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["x-forwarded", "forwarded"])
@pytest.mark.parametrize("spoof", list(SPOOFS))
def test_behind_haproxy_a_client_cannot_choose_its_address_or_scheme(
    haproxy: tuple[dict[str, int], Path], family: str, spoof: str
) -> None:
    ports, sock = haproxy
    url = f"http://127.0.0.1:{ports[family]}/"
    # HAProxy's peer on a UNIX socket has no address; the socket path is its literal, as with nginx.
    with serve_in_thread(
        scope_app, uds=str(sock), forwarded_allow_ips=str(sock), proxy_headers_family=family
    ):
        honest = httpx.get(url, timeout=5 * UNIT)
        spoofed = httpx.get(url, headers=SPOOFS[spoof], timeout=5 * UNIT)
    assert honest.text == "http 127.0.0.1"
    assert spoofed.status_code == 200, spoofed.text
    assert spoofed.text == "http 127.0.0.1"


# -- request ids through the same configurations (docs/logging.md) --------------------------------------------
async def request_id_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    got = [value.decode() for name, value in scope["headers"] if name == b"x-request-id"]
    text = f"{scope['extensions']['hatchway.request_id']['id']} {got}"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": text.encode()})


def _check_the_proxys_request_id(url: str, sock: Path, pattern: str) -> None:
    with serve_in_thread(request_id_app, uds=str(sock), forwarded_allow_ips=str(sock), request_id=True):
        response = httpx.get(url, headers={"X-Request-ID": "chosen-by-the-client"}, timeout=5 * UNIT)
    assert response.status_code == 200, response.text
    seen, got = response.text.split(" ", 1)
    assert got == repr([seen])  # the one header the proxy sent is the id
    assert re.fullmatch(pattern, seen), seen
    assert response.headers["x-request-id"] == seen


@pytest.mark.slow
@pytest.mark.parametrize("family", ["x-forwarded", "forwarded"])
def test_behind_nginx_a_client_cannot_choose_its_request_id(nginx: tuple[str, Path], family: str) -> None:
    _, sock = nginx
    _check_the_proxys_request_id(f"http://127.0.0.1:{NGINX_FAMILY_PORTS[family]}/", sock, "[0-9a-f]{32}")


@pytest.mark.slow
@pytest.mark.parametrize("family", ["x-forwarded", "forwarded"])
def test_behind_haproxy_a_client_cannot_choose_its_request_id(
    haproxy: tuple[dict[str, int], Path], family: str
) -> None:
    ports, sock = haproxy
    uuid = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    _check_the_proxys_request_id(f"http://127.0.0.1:{ports[family]}/", sock, uuid)
