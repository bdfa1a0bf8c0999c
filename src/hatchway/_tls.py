"""The TLS context from ``ssl_*`` options or ``ssl_context_factory``, as uvicorn builds it."""

from __future__ import annotations

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
    try:
        ctx.load_cert_chain(config.ssl_certfile, config.ssl_keyfile, (lambda: password) if password else None)
        ctx.verify_mode = ssl.VerifyMode(config.ssl_cert_reqs)
        if config.ssl_ca_certs:
            ctx.load_verify_locations(config.ssl_ca_certs)
        if config.ssl_ciphers:
            ctx.set_ciphers(config.ssl_ciphers)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise StartupError(f"Could not load the TLS certificate or key: {exc}", code="HW305") from exc
    return ctx


def ssl_context(config: Config) -> ssl.SSLContext | None:
    """The context to serve TLS with, or None when TLS is off."""
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
