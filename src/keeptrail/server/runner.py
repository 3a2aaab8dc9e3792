"""Running the app under uvicorn: settings to ``uvicorn.Config``, TLS and mTLS included.

``keeptrail serve`` calls :func:`serve`; tests and benchmarks build the same config with
:func:`uvicorn_config` and run it on a socket they bound themselves. Proxy headers
(``X-Forwarded-For``) are not trusted: the client address in self-audit events is the peer's.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence

import uvicorn

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
    """Serve until interrupted (SIGINT/SIGTERM stop gracefully; commits are never half-done)."""
    uvicorn.Server(uvicorn_config(settings, sources=sources)).run()


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket (port 0: the system picks a free one), for tests and benchmarks."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
