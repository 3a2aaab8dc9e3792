"""Who is calling and what they may do: bearer tokens, roles, per-token rate limits.

Every endpoint names one permission; :data:`PERMISSIONS` says which roles hold it, so the role
matrix is this one table (docs/api.md prints it). A missing, unknown or revoked token is a 401;
a valid token without the permission is a 403 that names the role needed. A token that calls
too often gets a 429 with ``Retry-After``. None of these messages contains the token.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Final

from keeptrail.server.errors import ApiError
from keeptrail.server.tokens import TokenStore

PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "ingest": frozenset({"ingest", "admin"}),
    "read": frozenset({"viewer", "auditor", "admin"}),
    "prove": frozenset({"auditor", "admin"}),
    "export": frozenset({"auditor", "admin"}),
    "admin": frozenset({"admin"}),
}
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="keeptrail"'}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the token's name and role, and where the request came from."""

    name: str
    role: str
    token_id: str
    client_ip: str | None


def bearer(header: str | None) -> str:
    """The token in an ``Authorization: Bearer ...`` header; 401 if there is none."""
    if not header:
        raise ApiError(
            401,
            "unauthorized",
            "missing token: send Authorization: Bearer <token>",
            headers=_CHALLENGE,
        )
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(
            401,
            "unauthorized",
            "the Authorization header must be 'Bearer <token>'",
            headers=_CHALLENGE,
        )
    return value.strip()


def authenticate(tokens: TokenStore, header: str | None, client_ip: str | None) -> Principal:
    """The principal for a request's Authorization header; 401 when it does not check out."""
    token = tokens.authenticate(bearer(header))
    if token is None:
        raise ApiError(401, "unauthorized", "invalid or revoked token", headers=_CHALLENGE)
    return Principal(token.name, token.role, token.id, client_ip)


def authorize(principal: Principal, permission: str) -> None:
    """403 unless the principal's role holds ``permission``."""
    allowed = PERMISSIONS[permission]
    if principal.role not in allowed:
        raise ApiError(
            403,
            "forbidden",
            f"token {principal.name!r} has role {principal.role!r}; this endpoint needs one of "
            f"{', '.join(sorted(allowed))}",
        )


class RateLimiter:
    """A token bucket per token: ``rate`` requests per second, bursts up to ``burst``.

    ``rate == 0`` turns limiting off. Buckets are kept in memory; a restart refills them.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0 if a request may go ahead now, else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            level, last = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - last) * self.rate)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.rate

    def check(self, principal: Principal) -> None:
        """429 with ``Retry-After`` (whole seconds, at least 1) when the bucket is empty."""
        wait = self.take(principal.token_id)
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                f"token {principal.name!r} is over its rate limit; retry in {wait:.1f}s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
                retry_after=wait,
            )
