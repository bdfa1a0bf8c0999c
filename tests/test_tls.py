"""TLS: uvicorn's ssl_* options and ssl_context_factory, with certificates from trustme."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from hatchway import Config, ConfigError, Server, StartupError
from tests.conftest import Certificates
from tests.utils import UNIT, serve_in_thread


async def scheme(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["scheme"].encode()})


def test_serves_https_with_certfile_and_keyfile(certificates: Certificates) -> None:
    with serve_in_thread(
        scheme, ssl_certfile=certificates.certfile, ssl_keyfile=certificates.keyfile
    ) as server:
        assert server.url is not None
        assert server.url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=certificates.client_context(), timeout=5 * UNIT) as client:
            assert client.get(server.url).text == "https"


def test_encrypted_key_with_password(certificates: Certificates) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(certificates.keyfile).read_bytes(), password=None)
    encrypted = certificates.directory / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    options = {"ssl_certfile": certificates.certfile, "ssl_keyfile": str(encrypted)}
    with (
        serve_in_thread(scheme, ssl_keyfile_password="s3cret", **options) as server,
        httpx.Client(verify=certificates.client_context(), timeout=5 * UNIT) as client,
    ):
        assert client.get(server.url or "").text == "https"
    with pytest.raises(StartupError, match="Could not load the TLS certificate") as info:
        Server(Config(scheme, port=0, log_config=None, ssl_keyfile_password="wrong", **options)).run()
    assert info.value.code == "HW305"
    assert str(encrypted) in str(info.value)


def test_client_certificates_required(certificates: Certificates) -> None:
    client_cert = certificates.ca.issue_cert("client@example.org")
    options = {
        "ssl_certfile": certificates.certfile,
        "ssl_keyfile": certificates.keyfile,
        "ssl_cert_reqs": int(ssl.CERT_REQUIRED),
        "ssl_ca_certs": certificates.ca_certfile,
    }
    with serve_in_thread(scheme, **options) as server:
        anonymous = certificates.client_context()
        with pytest.raises(httpx.HTTPError), httpx.Client(verify=anonymous, timeout=5 * UNIT) as client:
            client.get(server.url or "")
        identified = certificates.client_context()
        client_cert.configure_cert(identified)
        with httpx.Client(verify=identified, timeout=5 * UNIT) as client:
            assert client.get(server.url or "").text == "https"


def test_ssl_context_factory_receives_config_and_default_factory(certificates: Certificates) -> None:
    calls: list[Any] = []

    def factory(config: Config, default: Any) -> ssl.SSLContext:
        context = default()
        calls.append((config, context))
        return context

    with serve_in_thread(
        scheme,
        ssl_certfile=certificates.certfile,
        ssl_keyfile=certificates.keyfile,
        ssl_context_factory=factory,
    ) as server:
        assert server.url is not None
        assert server.url.startswith("https://")
        with httpx.Client(verify=certificates.client_context(), timeout=5 * UNIT) as client:
            assert client.get(server.url).text == "https"
    assert len(calls) == 1
    assert calls[0][0] is server.config
    assert isinstance(calls[0][1], ssl.SSLContext)


def test_ssl_context_factory_may_build_its_own_context(certificates: Certificates) -> None:
    def factory(config: Config, default: Any) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificates.certfile, certificates.keyfile)
        return context

    with (
        serve_in_thread(scheme, ssl_context_factory=factory) as server,
        httpx.Client(verify=certificates.client_context(), timeout=5 * UNIT) as client,
    ):
        assert client.get(server.url or "").text == "https"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ssl_certfile": "{certfile}", "ssl_version": 999}, "ssl_version=999 is not a protocol"),
        (
            {"ssl_certfile": "{certfile}", "ssl_keyfile": "{ca_certfile}"},
            "Could not load the TLS certificate",
        ),
        ({"ssl_context_factory": lambda config, default: "not a context"}, "must return an ssl.SSLContext"),
        ({"ssl_context_factory": lambda config, default: default()}, "needs ssl_certfile"),
        (
            {"ssl_context_factory": lambda config, default: 1 / 0},
            "ssl_context_factory raised ZeroDivisionError",
        ),
    ],
)
def test_tls_setup_failures_are_startup_errors(
    certificates: Certificates, options: dict[str, Any], message: str
) -> None:
    files = {"certfile": certificates.certfile, "ca_certfile": certificates.ca_certfile}
    options = {k: v.format(**files) if isinstance(v, str) else v for k, v in options.items()}
    server = Server(Config(scheme, port=0, log_config=None, **options))
    with pytest.raises(StartupError, match=message) as info:
        server.run()
    assert info.value.code == "HW305"
    assert not server.started


def test_bad_ciphers_are_a_startup_error(certificates: Certificates) -> None:
    config = Config(
        scheme,
        port=0,
        log_config=None,
        ssl_certfile=certificates.certfile,
        ssl_keyfile=certificates.keyfile,
        ssl_ciphers="NO-SUCH-CIPHER",
    )
    with pytest.raises(StartupError, match="ssl_ciphers='NO-SUCH-CIPHER'") as info:
        Server(config).run()
    assert info.value.code == "HW305"
    # OpenSSL's own error is in the message; Server.run() keeps no cause of hatchway's own making.
    assert info.value.__cause__ is None
    assert "No cipher can be selected" in str(info.value)


@pytest.mark.parametrize(
    ("option", "kind"),
    [
        ("ssl_certfile", "a certificate file"),
        ("ssl_keyfile", "a private key file"),
        ("ssl_ca_certs", "a file of CA certificates"),
    ],
)
def test_a_missing_tls_file_is_a_config_error_naming_it(
    certificates: Certificates, tmp_path: Path, option: str, kind: str
) -> None:
    # Checked when the Config is built: nothing is imported, bound or started with a wrong path.
    options: dict[str, Any] = {"ssl_certfile": certificates.certfile, "ssl_keyfile": certificates.keyfile}
    missing = tmp_path / "nowhere" / "file.pem"
    options[option] = str(missing)
    with pytest.raises(ConfigError) as info:
        Config(scheme, **options)
    assert info.value.options == [option]
    assert info.value.code == "HW101"
    message = str(info.value)
    assert f"{option}: expected {kind} (PEM), got {str(missing)!r}, which does not exist" in message
    assert "check the path" in message


def test_a_directory_as_a_tls_file_is_a_config_error(certificates: Certificates) -> None:
    with pytest.raises(
        ConfigError, match=r"ssl_certfile: expected a certificate file .* which is not a file"
    ):
        Config(scheme, ssl_certfile=str(certificates.directory), ssl_keyfile=certificates.keyfile)


def test_a_wrong_key_is_reported_before_the_app_starts(certificates: Certificates, tmp_path: Path) -> None:
    # A key that belongs to another certificate: only OpenSSL can tell, so the server checks it when it
    # starts, before the app is imported or its lifespan start-up runs (which may migrate, connect, ...).
    other = certificates.ca.issue_cert("other.example")
    wrong_key = tmp_path / "other.key"
    other.private_key_pem.write_to_path(str(wrong_key))
    started: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        started.append("lifespan start-up ran")
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    server = Server(
        Config(
            app,
            port=0,
            log_config=None,
            lifespan="on",
            ssl_certfile=certificates.certfile,
            ssl_keyfile=str(wrong_key),
        )
    )
    with pytest.raises(StartupError) as info:
        server.run()
    assert info.value.code == "HW305"
    assert started == []
    message = str(info.value)
    assert f"the TLS certificate {certificates.certfile!r} with the key {str(wrong_key)!r}" in message
    assert "the key belonging to the certificate" in message
    assert not server.started
