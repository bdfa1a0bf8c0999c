"""The TLS context from ``ssl_*`` options or ``ssl_context_factory``, as uvicorn builds it."""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING

from hatchway._errors import StartupError

if TYPE_CHECKING:
    from hatchway._config import Config


def _default_context(config: Config) -> ssl.SSLContext:
    if not config.ssl_certfile:
        raise StartupError(
            "The default SSL context needs ssl_certfile; pass it, or build the context inside ssl_context_factory.",
            code="HW305",
        )
    password = config.ssl_keyfile_password
    try:
        ctx = ssl.SSLContext(config.ssl_version)
    except (ValueError, OSError, ssl.SSLError) as exc:
        raise StartupError(
            f"ssl_version={config.ssl_version!r} is not a protocol ssl.SSLContext accepts ({exc}); "
            f"use the default, ssl.PROTOCOL_TLS_SERVER ({int(ssl.PROTOCOL_TLS_SERVER)}).",
            code="HW305",
        ) from exc
    # Each step names the file or option it read: "PEM lib" alone does not say which of three files is wrong.
    certfile, keyfile = os.fspath(config.ssl_certfile), config.ssl_keyfile
    what = f"the TLS certificate {certfile!r}" + (f" with the key {os.fspath(keyfile)!r}" if keyfile else "")
    try:
        ctx.load_cert_chain(certfile, keyfile, (lambda: password) if password else None)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise StartupError(
            f"Could not load {what}: {exc}. Expected PEM files, the key belonging to the certificate "
            "(and ssl_keyfile_password for an encrypted key).",
            code="HW305",
        ) from exc
    try:
        ctx.verify_mode = ssl.VerifyMode(config.ssl_cert_reqs)
        if config.ssl_ca_certs:
            ctx.load_verify_locations(config.ssl_ca_certs)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise StartupError(
            f"Could not use ssl_ca_certs={config.ssl_ca_certs!r} with ssl_cert_reqs={config.ssl_cert_reqs!r}: "
            f"{exc}. Expected a PEM file of CA certificates and an ssl.VerifyMode value.",
            code="HW305",
        ) from exc
    if config.ssl_ciphers:
        try:
            ctx.set_ciphers(config.ssl_ciphers)
        except ssl.SSLError as exc:
            raise StartupError(
                f"ssl_ciphers={config.ssl_ciphers!r} selects no cipher OpenSSL knows ({exc}); "
                "use an OpenSSL cipher list, or leave it unset for OpenSSL's defaults.",
                code="HW305",
            ) from exc
    return ctx


def ssl_context(config: Config) -> ssl.SSLContext | None:
    """The context to serve TLS with, or None when TLS is off."""
    context = _context(config)
    if context is not None and config.http2:
        # ALPN (RFC 7301): a client offering h2 gets HTTP/2, any other HTTP/1.1 on the same port.
        context.set_alpn_protocols(["h2", "http/1.1"])
    return context


def _context(config: Config) -> ssl.SSLContext | None:
    if config.ssl_context_factory is not None:
        try:
            context = config.ssl_context_factory(config, lambda: _default_context(config))
        except StartupError:
            raise
        except Exception as exc:
            # The factory is user code: its failure is a start-up failure, with the original as the cause.
            raise StartupError(
                f"ssl_context_factory raised {type(exc).__name__}: {exc}", code="HW305"
            ) from exc
        if not isinstance(context, ssl.SSLContext):
            raise StartupError(
                f"ssl_context_factory must return an ssl.SSLContext, got {type(context).__name__}.",
                code="HW305",
            )
        return context
    if config.is_ssl:
        return _default_context(config)
    return None
