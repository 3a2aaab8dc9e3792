"""One JSON error shape for every failure: ``{"error": code, "message": text, ...}``.

Clients (the agent, the CLI, scripts) branch on ``error``, people read ``message``. Framework
errors (unknown route, a malformed query parameter) are turned into the same shape so nothing
answers in a different dialect. Messages never contain a token: the only place a secret
appears is the ``Authorization`` header, which no error echoes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from keeptrail.protect.keyring import KeyUnavailable
from keeptrail.protect.seal import SealError
from keeptrail.server.responses import Json


class ApiError(Exception):
    """An error answer: HTTP status, a stable code, a human message and optional extras."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Json:
    return Json({"error": code, "message": message, **extra}, status_code=status, headers=headers)


async def _api_error(_: Request, exc: Exception) -> Json:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.extra)


async def _validation_error(_: Request, exc: Exception) -> Json:
    assert isinstance(exc, RequestValidationError)
    problems = [
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
        for err in exc.errors()
    ]
    return error_response(400, "invalid_request", "; ".join(problems) or "invalid request")


_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


async def _http_error(_: Request, exc: Exception) -> Json:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, message, headers)


async def _key_unavailable(_: Request, exc: Exception) -> Json:
    # The store is fine but a partition's data key cannot be had (wrong or missing master key,
    # a KMS that is down, a key destroyed by a purge): the server cannot serve it right now.
    # The message names the partition and why; it never contains key material.
    assert isinstance(exc, KeyUnavailable)
    return error_response(503, "key_unavailable", str(exc), partition=exc.partition)


async def _seal_error(_: Request, exc: Exception) -> Json:
    # A ciphertext that does not authenticate is damage to the stored evidence, not a bad
    # request: say so plainly (and run `keeptrail verify`), instead of a bare 500.
    assert isinstance(exc, SealError)
    return error_response(500, "sealed_data_invalid", f"{exc} (run keeptrail verify)")


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the same shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(KeyUnavailable, _key_unavailable)
    app.add_exception_handler(SealError, _seal_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
