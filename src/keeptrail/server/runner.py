"""Running the app under uvicorn: settings to ``uvicorn.Config``, TLS and mTLS included.

``keeptrail serve`` calls :func:`serve`; tests and benchmarks build the same config with
:func:`uvicorn_config` and run it on a socket they bound themselves. Proxy headers
(``X-Forwarded-For``) are not trusted: the client address in self-audit events is the peer's.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Sequence
from typing import cast

import uvicorn
from fastapi import FastAPI

from keeptrail.errors import UserError
from keeptrail.server.app import create_app
from keeptrail.server.settings import Settings
from keeptrail.server.state import Source


def uvicorn_config(
    settings: Settings, *, sources: Sequence[Source] = (), **overrides: object
) -> uvicorn.Config:
    """The uvicorn configuration for these settings (a new app inside)."""
    tls: dict[str, object] = {}
    if settings.tls_cert is not None and settings.tls_key is not None:
        tls = {
            "ssl_certfile": str(settings.tls_cert),
            "ssl_keyfile": str(settings.tls_key),
            "ssl_keyfile_password": settings.tls_key_password,
        }
        if settings.tls_client_ca is not None:
            tls["ssl_ca_certs"] = str(settings.tls_client_ca)
            tls["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "proxy_headers": False,
        "server_header": False,
        "access_log": settings.access_log,
        "log_level": "info",
        "lifespan": "on",
        "timeout_graceful_shutdown": 10,
        **tls,
        **overrides,
    }
    app = create_app(settings, sources=sources)
    return uvicorn.Config(app, **options)  # type: ignore[arg-type]


def serve(settings: Settings, *, sources: Sequence[Source] = ()) -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop gracefully; commits are never half-done).

    A server that cannot start raises ``UserError`` (the CLI prints one line, exit 2) instead
    of uvicorn's exit status 3: when the lifespan failed with a ``UserError`` (a bad
    configuration table, an unreachable PostgreSQL, another server's ledger key) that message
    is the error and the lifespan's traceback is not logged; anything else keeps its traceback
    in the log, since it is a bug to report.
    """
    config = uvicorn_config(settings, sources=sources)
    app = cast(FastAPI, config.app)
    hide = _HideUserErrorTraceback(app)
    log = logging.getLogger("uvicorn.error")
    log.addFilter(hide)
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit:
        if server.started:
            raise
    finally:
        log.removeFilter(hide)
    if not server.started:
        error = _startup_error(app)
        if error is not None:
            raise UserError(f"the server did not start: {error}") from None
        raise UserError("the server did not start (the reason is in the log above)")


def _startup_error(app: FastAPI) -> UserError | None:
    error = getattr(app.state, "startup_error", None)
    return error if isinstance(error, UserError) else None


class _HideUserErrorTraceback(logging.Filter):
    """Drops the lifespan traceback uvicorn logs when startup failed with a ``UserError``."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__()
        self.app = app

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Traceback") and _startup_error(self.app) is not None)


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket (port 0: the system picks a free one), for tests and benchmarks."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
