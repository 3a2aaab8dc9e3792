"""Dependency aliases for handlers: the server state and the caller, checked for a permission.

A handler says what it needs in its signature (``principal: Reader``) and gets a
:class:`~keeptrail.server.auth.Principal` only if the token is valid, its role holds the
permission and its rate limit allows the call; otherwise the request ends with 401, 403 or 429
before the handler runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from keeptrail.server.auth import Principal, authenticate, authorize
from keeptrail.server.errors import ApiError
from keeptrail.server.state import ServerState

# Declared so OpenAPI shows the bearer scheme; the header itself is parsed in auth.py, which
# gives clearer messages than the framework's.
_bearer_scheme = HTTPBearer(auto_error=False, description="An API token: Bearer kt_...")


def get_state(request: Request) -> ServerState:
    return cast(ServerState, request.app.state.keeptrail)


StateDep = Annotated[ServerState, Depends(get_state)]


def client_ip(request: Request) -> str | None:
    """The peer address (proxy headers are not trusted unless uvicorn is told to)."""
    return request.client.host if request.client else None


def _requires(permission: str) -> Callable[..., Awaitable[Principal]]:
    async def principal(
        request: Request,
        state: StateDep,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
    ) -> Principal:
        try:
            caller = authenticate(
                state.tokens, request.headers.get("authorization"), client_ip(request)
            )
            authorize(caller, permission)
        except ApiError as exc:
            state.metrics.auth_failures.labels(str(exc.status)).inc()
            raise
        state.limiter.check(caller)
        return caller

    principal.__name__ = f"requires_{permission}"
    return principal


Ingester = Annotated[Principal, Depends(_requires("ingest"))]
Reader = Annotated[Principal, Depends(_requires("read"))]
Prover = Annotated[Principal, Depends(_requires("prove"))]
Exporter = Annotated[Principal, Depends(_requires("export"))]
Admin = Annotated[Principal, Depends(_requires("admin"))]
