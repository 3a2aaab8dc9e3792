"""``/api/v1/permissions`` and ``/api/v1/reviews``: snapshots, findings and review campaigns.

The same library functions as ``keeptrail permissions findings`` and ``keeptrail review``,
with the same roles as the rest of the server: viewers, auditors and admins read (snapshots,
findings, campaigns); auditors and admins start campaigns, decide, close and export the
evidence. The reviewer of an API decision is the calling token's name, which must be one of
the campaign's reviewers.

Reads are self-audited like every other read of audit data (``keeptrail.permissions_read``,
``keeptrail.findings_read``, ``keeptrail.review_read``, ``keeptrail.review_export``);
campaign changes need no separate audit event because their own ``review.*`` event already
names the token, its role and the client address. Findings read the event store in a reader
thread; campaign changes append their event through the server's one writer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Annotated, Any, Final, TypeVar

import orjson
from anyio import from_thread
from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from keeptrail.config import load_config_file
from keeptrail.errors import UserError
from keeptrail.event import Event, format_time
from keeptrail.permissions.findings import findings_for
from keeptrail.permissions.findings_config import DAY_US, FindingsConfig, parse_window
from keeptrail.permissions.model import Snapshot
from keeptrail.permissions.reviews import Actor, ReviewService, progress
from keeptrail.permissions.reviews_export import build_export, to_csv
from keeptrail.permissions.reviews_store import open_reviews
from keeptrail.permissions.snapshots import open_snapshots
from keeptrail.permissions.usage import UsageReader
from keeptrail.server import audit
from keeptrail.server.auth import Principal
from keeptrail.server.deps import Exporter, Reader, StateDep
from keeptrail.server.errors import ApiError
from keeptrail.server.responses import Json
from keeptrail.server.state import ServerState
from keeptrail.store import Store

router = APIRouter(prefix="/api/v1", tags=["permissions"])
PERMISSIONS_READ: Final = "keeptrail.permissions_read"
FINDINGS_READ: Final = "keeptrail.findings_read"
REVIEW_READ: Final = "keeptrail.review_read"
REVIEW_EXPORT: Final = "keeptrail.review_export"
T = TypeVar("T")


def _user_error(exc: UserError) -> ApiError:
    message = str(exc)
    if message.startswith(("no review campaign", "no snapshot")):
        return ApiError(404, "not_found", message)
    return ApiError(400, "invalid_request", message)


async def _call(fn: Callable[[], T]) -> T:
    """Run blocking library code in the thread pool; its UserErrors become 4xx answers."""
    try:
        return await run_in_threadpool(fn)
    except UserError as exc:
        raise _user_error(exc) from None


async def _audit(
    state: ServerState,
    principal: Principal,
    action: str,
    resource: str,
    details: dict[str, Any] | None = None,
) -> None:
    await state.append(
        [
            audit.by_principal(
                principal,
                action,
                resource=resource[:1024],
                resource_type="permissions",
                details={k: v for k, v in (details or {}).items() if v is not None},
            )
        ]
    )


def _snapshot_json(s: Snapshot, *, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": s.id,
        "system": s.system,
        "source": s.source,
        "taken_at": format_time(s.taken_at),
        "accounts": len(s.accounts),
        "entitlements": len(s.entitlements),
        "privileged": sum(1 for e in s.entitlements if e.privileged),
    }
    if full:
        out["accounts"] = [
            {
                "name": a.name,
                "kind": a.kind,
                "uid": a.uid,
                "locked": a.locked,
                "expires": a.expires,
                "password_changed": a.password_changed,
                "last_login": a.last_login,
                "shell": a.shell,
                "attributes": dict(a.attributes),
            }
            for a in s.accounts
        ]
        out["entitlements"] = [
            {
                "principal": e.principal,
                "principal_kind": e.principal_kind,
                "privilege": e.privilege,
                "scope": e.scope,
                "granted_via": e.granted_via,
                "privileged": e.privileged,
                "attributes": dict(e.attributes),
                "first_seen": e.first_seen,
            }
            for e in s.entitlements
        ]
    return out


# --- snapshots and findings ----------------------------------------------------------------------


@router.get("/permissions/snapshots", summary="Snapshot headers, newest first")
async def list_snapshots(
    principal: Reader,
    state: StateDep,
    system: Annotated[str | None, Query(description="Only this system")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Json:
    def read() -> list[dict[str, Any]]:
        with open_snapshots(state.settings.directory) as snapshots:
            return [
                {
                    "id": i.id,
                    "system": i.system,
                    "source": i.source,
                    "taken_at": format_time(i.taken_at),
                    "accounts": i.accounts,
                    "entitlements": i.entitlements,
                    "privileged": i.privileged,
                }
                for i in snapshots.list(system=system, limit=limit)
            ]

    rows = await _call(read)
    await _audit(state, principal, PERMISSIONS_READ, "snapshots", {"system": system})
    return Json({"snapshots": rows, "count": len(rows)})


@router.get("/permissions/snapshots/{snapshot_id}", summary="One snapshot, every row")
async def get_snapshot(snapshot_id: str, principal: Reader, state: StateDep) -> Json:
    def read() -> Snapshot:
        with open_snapshots(state.settings.directory) as snapshots:
            return snapshots.get(snapshot_id[:64])

    try:
        snapshot = await _call(read)
    finally:
        await _audit(state, principal, PERMISSIONS_READ, f"snapshot {snapshot_id[:64]}")
    return Json(_snapshot_json(snapshot, full=True))


@router.get("/permissions/findings", summary="Findings with reasons and evidence")
async def get_findings(
    principal: Reader,
    state: StateDep,
    system: Annotated[list[str] | None, Query(description="systems (* wildcards)")] = None,
    kind: Annotated[list[str] | None, Query(description="finding kinds")] = None,
    window: Annotated[str | None, Query(description="usage window, e.g. 90d")] = None,
) -> Json:
    def settings() -> FindingsConfig:
        directory, config_file = state.settings.directory, state.settings.config_file
        config = FindingsConfig.from_config(load_config_file(directory, config_file))
        return replace(config, window_us=parse_window(window)) if window else config

    config = await _call(settings)
    now = time.time_ns() // 1000

    def compute(store: Store) -> list[dict[str, Any]]:
        with open_snapshots(state.settings.directory) as snapshots:
            found = findings_for(
                snapshots, store, config=config, now=now, systems=system or (), kinds=kind or ()
            )
        return [f.to_json() for f in found]

    try:
        rows = await state.stores.read(compute)
    except UserError as exc:
        raise _user_error(exc) from None
    details = {
        "systems": list(system or []),
        "kinds": list(kind or []),
        "window": window,
        "results": len(rows),
    }
    await _audit(state, principal, FINDINGS_READ, "findings", details)
    return Json({"findings": rows, "count": len(rows)})


# --- review campaigns ----------------------------------------------------------------------------


class NewCampaign(BaseModel):
    """A campaign to start."""

    scope: str = Field(max_length=4096, description="e.g. system:linux:* AND privileged:true")
    reviewers: list[str] | str = Field(description="names (token names decide over the API)")
    name: str | None = Field(default=None, max_length=200)
    due: str | None = Field(default=None, max_length=64, description="30d or 2026-12-31")


class NewDecision(BaseModel):
    """A decision on one item."""

    item: str | int = Field(description="item number (or entitlement key)")
    decision: str = Field(description="keep or revoke")
    comment: str = Field(min_length=1, max_length=2000)


def _service(state: ServerState, principal: Principal) -> tuple[ReviewService, Callable[[], None]]:
    reviews = open_reviews(state.settings.directory)

    def append(events: Sequence[Event]) -> None:
        from_thread.run(state.append, events)

    actor = Actor(
        principal.name,
        source_ip=principal.client_ip,
        collector_source="server",
        details={"token_role": principal.role, "token_id": principal.token_id},
    )
    return ReviewService(reviews, append, actor), reviews.close


@router.get("/reviews", summary="Review campaigns, newest first, with progress")
async def list_reviews(principal: Reader, state: StateDep) -> Json:
    def read() -> list[dict[str, Any]]:
        with open_reviews(state.settings.directory) as reviews:
            return [
                {**c.to_json(), "progress": progress(reviews.items(c)).to_json()}
                for c in reviews.campaigns()
            ]

    rows = await _call(read)
    await _audit(state, principal, REVIEW_READ, "reviews")
    return Json({"campaigns": rows, "count": len(rows)})


@router.get("/reviews/{campaign_id}", summary="One campaign: items, decisions, progress")
async def get_review(campaign_id: str, principal: Reader, state: StateDep) -> Json:
    def read() -> dict[str, Any]:
        with open_reviews(state.settings.directory) as reviews:
            c = reviews.get(campaign_id[:64])
            items = reviews.items(c)
            return {
                **c.to_json(),
                "progress": progress(items).to_json(),
                "items": [i.to_json() for i in items],
            }

    try:
        body = await _call(read)
    finally:
        await _audit(state, principal, REVIEW_READ, f"review {campaign_id[:64]}")
    return Json(body)


@router.post("/reviews", status_code=201, summary="Start a campaign (auditor, admin)")
async def start_review(
    new: Annotated[NewCampaign, Body()], principal: Exporter, state: StateDep
) -> Json:
    def start() -> dict[str, Any]:
        with open_snapshots(state.settings.directory) as snapshots:
            latest = snapshots.latest_per_system()
        service, close = _service(state, principal)
        try:
            campaign, items = service.start(
                latest, scope=new.scope, reviewers=new.reviewers, name=new.name, due=new.due
            )
        finally:
            close()
        return {**campaign.to_json(), "items": len(items)}

    return Json(await _call(start), status_code=201)


@router.post(
    "/reviews/{campaign_id}/decisions",
    status_code=201,
    summary="Decide one item keep or revoke (the token must be a reviewer)",
)
async def decide_review(
    campaign_id: str,
    body: Annotated[NewDecision, Body()],
    principal: Exporter,
    state: StateDep,
) -> Json:
    def decide() -> dict[str, Any]:
        service, close = _service(state, principal)
        try:
            c, item, record = service.decide(
                campaign_id[:64], str(body.item), body.decision, body.comment
            )
            p = progress(service.reviews.items(c))
        finally:
            close()
        return {
            "campaign": c.id,
            "state": c.state,
            "item": item.to_json(),
            "event_id": record.event_id,
            "progress": p.to_json(),
        }

    return Json(await _call(decide), status_code=201)


@router.post("/reviews/{campaign_id}/close", summary="Close a campaign (auditor, admin)")
async def close_review(campaign_id: str, principal: Exporter, state: StateDep) -> Json:
    def close_campaign() -> dict[str, Any]:
        service, close = _service(state, principal)
        try:
            return service.close(campaign_id[:64], "closed over the API").to_json()
        finally:
            close()

    return Json(await _call(close_campaign))


@router.get("/reviews/{campaign_id}/export", summary="Evidence export (auditor, admin)")
async def export_review(
    campaign_id: str,
    principal: Exporter,
    state: StateDep,
    fmt: Annotated[str, Query(alias="format", description="json or csv")] = "json",
    window: Annotated[str, Query(description="usage evidence window")] = "90d",
) -> Response:
    if fmt not in ("json", "csv"):
        raise ApiError(400, "invalid_request", "format must be json or csv")
    try:
        span = max(parse_window(window), DAY_US)
    except UserError as exc:
        raise _user_error(exc) from None
    now = time.time_ns() // 1000

    def build(store: Store) -> dict[str, Any]:
        with open_reviews(state.settings.directory) as reviews:
            c = reviews.get(campaign_id[:64])
            items, history = reviews.items(c), reviews.history(c)
        usage = UsageReader(store, since=now - span, until=now)
        return build_export(c, items, history, store=store, usage=usage, generated_at=now)

    try:
        document = await state.stores.read(build)
    except UserError as exc:
        await _audit(state, principal, REVIEW_EXPORT, f"review {campaign_id[:64]}")
        raise _user_error(exc) from None
    await _audit(state, principal, REVIEW_EXPORT, f"review {campaign_id[:64]}", {"format": fmt})
    if fmt == "csv":
        return Response(to_csv(document), media_type="text/csv; charset=utf-8")
    return Response(orjson.dumps(document), media_type="application/json")
