"""``/api/v1/stats`` and token management over the API (admin only).

Token changes made here are audited exactly like those made with ``keeptrail tokens``: the
admin token's name is the actor, the new or revoked token's name the resource. A created
token's secret is in the response body once and nowhere else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from keeptrail.event import format_time
from keeptrail.server import audit
from keeptrail.server.api.common import parse_search
from keeptrail.server.deps import Admin, Reader, StateDep
from keeptrail.server.errors import ApiError
from keeptrail.server.responses import Json
from keeptrail.server.tokens import ROLES, TokenError

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/stats", summary="Counts by category, action and outcome; top actors and sources")
async def stats(
    principal: Reader,
    state: StateDep,
    since: str | None = None,
    until: str | None = None,
    top: int = 10,
) -> Json:
    if not 1 <= top <= 1000:
        raise ApiError(400, "invalid_request", "top must be between 1 and 1000")
    _, lo, hi = parse_search("", since, until)
    s = await state.stores.read(lambda store: store.stats(since=lo, until=hi, top=top))
    await state.append(
        [
            audit.by_principal(
                principal,
                audit.STATS_READ,
                resource="events",
                resource_type="events",
                details={"since": since, "until": until},
            )
        ]
    )
    return Json(
        {
            "total": s.total,
            "first": format_time(s.first_time) if s.first_time is not None else None,
            "last": format_time(s.last_time) if s.last_time is not None else None,
            "by_category": dict(s.by_category),
            "by_action_outcome": [
                {"action": a, "outcome": o, "count": n} for a, o, n in s.by_action_outcome
            ],
            "top_actors": dict(s.top_actors),
            "top_sources": dict(s.top_sources),
            "top_hosts": dict(s.top_hosts),
        }
    )


class NewToken(BaseModel):
    """A token to create."""

    name: str = Field(min_length=1, max_length=64)
    role: str = Field(description=f"one of {', '.join(ROLES)}")


@router.get("/tokens", summary="List tokens (never their secrets)")
async def list_tokens(principal: Admin, state: StateDep) -> Json:
    found = state.tokens.list()
    await state.append([audit.by_principal(principal, audit.TOKEN_LIST, resource_type="token")])
    return Json({"tokens": [t.to_json() for t in found]})


@router.post("/tokens", status_code=201, summary="Create a token; its secret is shown once")
async def create_token(new: Annotated[NewToken, Body()], principal: Admin, state: StateDep) -> Json:
    try:
        token, secret = state.tokens.create(
            name=new.name, role=new.role, created_by=f"token:{principal.name}"
        )
    except TokenError as exc:
        raise ApiError(400, "invalid_token_request", str(exc)) from None
    await state.append(
        [
            audit.by_principal(
                principal,
                audit.TOKEN_CREATE,
                resource=token.name,
                resource_type="token",
                details={"new_token_role": token.role, "new_token_id": token.id},
            )
        ]
    )
    return Json({**token.to_json(), "token": secret}, status_code=201)


@router.delete("/tokens/{name}", summary="Revoke the active token with this name (or id)")
async def revoke_token(name: str, principal: Admin, state: StateDep) -> Json:
    try:
        token = state.tokens.revoke(name, revoked_by=f"token:{principal.name}")
    except TokenError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    await state.append(
        [
            audit.by_principal(
                principal,
                audit.TOKEN_REVOKE,
                resource=token.name,
                resource_type="token",
                details={"revoked_token_id": token.id, "revoked_token_role": token.role},
            )
        ]
    )
    return Json(token.to_json())
