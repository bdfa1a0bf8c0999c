"""A gunicorn worker class: ``gunicorn -k hatchway.workers.HatchwayWorker main:app``.

gunicorn's arbiter owns the processes (spawn, restart, signals, max requests); each worker runs one hatchway
``Server`` on the sockets gunicorn bound. Compared with uvicorn's ``UvicornWorker``: the worker notifies the
arbiter twice per ``--timeout`` (not once, which races the arbiter's check), and a failed start-up exits with
gunicorn's WORKER_BOOT_ERROR so the arbiter stops instead of respawning forever.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker

from hatchway._config import Config
from hatchway._importer import app_import_scope
from hatchway._loop import loop_factory, run_coroutine
from hatchway._server import Server

__all__ = ["HatchwayH11Worker", "HatchwayWorker"]


class HatchwayWorker(Worker):  # type: ignore[misc]  # gunicorn is untyped
    """Serves an ASGI app (gunicorn's loaded ``wsgi`` object) with hatchway."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # hatchway's loggers write through gunicorn's handlers, at gunicorn's levels.
        for name, source in (
            ("hatchway.error", self.log.error_log),
            ("hatchway.access", self.log.access_log),
        ):
            target = logging.getLogger(name)
            target.handlers = source.handlers
            target.setLevel(source.level)
            target.propagate = False

    def config_kwargs(self) -> dict[str, Any]:
        """The Config options taken from gunicorn's settings."""
        cfg = self.cfg
        kwargs: dict[str, Any] = {
            "log_config": None,
            "timeout_keep_alive": cfg.keepalive,
            "timeout_notify": max(1, int(self.timeout) // 2),
            "callback_notify": self.callback_notify,
            "limit_max_requests": self.max_requests if 0 < self.max_requests < sys.maxsize else None,
            "forwarded_allow_ips": cfg.forwarded_allow_ips,
        }
        if cfg.is_ssl:
            ssl = cfg.ssl_options
            kwargs.update(
                {
                    "ssl_keyfile": ssl.get("keyfile"),
                    "ssl_certfile": ssl.get("certfile"),
                    "ssl_keyfile_password": ssl.get("password"),
                    "ssl_version": ssl.get("ssl_version"),
                    "ssl_cert_reqs": ssl.get("cert_reqs"),
                    "ssl_ca_certs": ssl.get("ca_certs"),
                    "ssl_ciphers": ssl.get("ciphers"),
                }
            )
        if cfg.settings["backlog"].value:
            kwargs["backlog"] = cfg.settings["backlog"].value
        kwargs.update(self.CONFIG_KWARGS)
        return kwargs

    def load_wsgi(self) -> None:
        # gunicorn imports the app itself; a module-level hatchway.run() in it (no main guard) must be a
        # no-op here too, as when hatchway imports it.
        with app_import_scope(str(self.cfg.wsgi_app or "the gunicorn app")):
            super().load_wsgi()

    def init_signals(self) -> None:
        # The server installs its own SIGINT/SIGTERM handlers in its loop; gunicorn's would swallow exit codes
        # (uvicorn #894). SIGUSR1 still reopens log files.
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, self.handle_usr1)
        signal.siginterrupt(signal.SIGUSR1, False)

    def run(self) -> None:
        config = Config(self.wsgi, **self.config_kwargs())
        run_coroutine(self._serve(config), loop_factory(config.loop))

    async def _serve(self, config: Config) -> None:
        server = Server(config)
        loop = asyncio.get_running_loop()
        # SIGQUIT: gunicorn's "stop now" (uvicorn #1116).
        loop.add_signal_handler(signal.SIGQUIT, lambda: server.stop(force=True))
        sockets = [getattr(s, "sock", s) for s in self.sockets]
        try:
            serving = asyncio.ensure_future(server.serve(sockets, install_signal_handlers=True))
            started = asyncio.ensure_future(server.wait_started())
            await asyncio.wait({serving, started}, return_when=asyncio.FIRST_COMPLETED)
            if server.ready.is_set():
                self.notify()
            await serving
        except Exception:
            if not server.ready.is_set():
                self.log.exception("Worker failed to boot.")
                # gunicorn's contract: this exit code makes the arbiter stop instead of respawning.
                sys.exit(Arbiter.WORKER_BOOT_ERROR)
            raise
        finally:
            if not started.done():
                started.cancel()

    async def callback_notify(self) -> None:
        self.notify()


class HatchwayH11Worker(HatchwayWorker):
    """The same, with the pure-Python h11 parser and the asyncio loop."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "asyncio", "http": "h11"}
