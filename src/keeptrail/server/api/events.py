"""``/api/v1/events``: ingest batches, search, read one event.

Ingest is all-or-nothing: every document is checked before anything is stored, and one bad
document refuses the whole batch with a 400 that lists each bad one (index, id, reason) — the
client fixes or drops those and sends the batch again, and since the store skips ids it already
holds, a resent batch never duplicates. The answer comes only after the commit.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from keeptrail.event import Event, to_document
from keeptrail.server import audit
from keeptrail.server.api.common import parse_search
from keeptrail.server.body import decode_content, parse_documents, read_body
from keeptrail.server.deps import Ingester, Reader, StateDep
from keeptrail.server.errors import ApiError
from keeptrail.server.responses import Json
from keeptrail.server.settings import Settings
from keeptrail.server.validation import InvalidEvent, document_to_event, event_id_of

router = APIRouter(prefix="/api/v1", tags=["events"])
MAX_LISTED_ERRORS: Final = 100

_INGEST_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "description": "A JSON array of event documents, or JSON lines; gzip accepted.",
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


def decode_batch(
    body: bytes, encoding: str | None, content_type: str | None, settings: Settings
) -> list[Event]:
    """Every event of a body, or a 400 naming each bad document (nothing is stored)."""
    data = decode_content(body, encoding, settings.max_decompressed_bytes)
    docs = parse_documents(data, content_type, settings.max_batch_events)
    now = time.time_ns() // 1000
    events: list[Event] = []
    errors: list[dict[str, Any]] = []
    bad = 0
    for index, doc in enumerate(docs):
        try:
            events.append(document_to_event(doc, now))
        except InvalidEvent as exc:
            bad += 1
            if len(errors) < MAX_LISTED_ERRORS:
                errors.append({"index": index, "id": event_id_of(doc), "reason": str(exc)})
    if bad:
        raise ApiError(
            400,
            "invalid_events",
            f"{bad} of {len(docs)} events are invalid; nothing was stored (fix or drop them"
            " and send the batch again)",
            errors=errors,
            invalid=bad,
            total=len(docs),
        )
    return events


@router.post(
    "/events",
    summary="Ingest a batch of events (idempotent on event id)",
    openapi_extra=_INGEST_BODY,
)
async def ingest(request: Request, principal: Ingester, state: StateDep) -> Json:
    started = time.perf_counter()
    settings = state.settings
    body = await read_body(request, settings.max_body_bytes)
    headers = request.headers
    try:
        events = await run_in_threadpool(
            decode_batch,
            body,
            headers.get("content-encoding"),
            headers.get("content-type"),
            settings,
        )
    except ApiError as exc:
        if exc.code == "invalid_events":
            state.metrics.rejected.inc(exc.extra["total"])
        raise
    stored = await state.append(events) if events else 0
    state.metrics.count_batch(events, stored)
    state.metrics.ingest_latency.observe(time.perf_counter() - started)
    return Json({"accepted": len(events), "stored": stored, "duplicates": len(events) - stored})


@router.get("/events", summary="Search events, newest first (the CLI's query language)")
async def search(
    principal: Reader,
    state: StateDep,
    q: Annotated[str, Query(description="e.g. user:alice AND outcome:failure")] = "",
    since: Annotated[str | None, Query(description="24h, 7d, a date or a timestamp")] = None,
    until: Annotated[str | None, Query(description="same forms as since (exclusive)")] = None,
    limit: Annotated[int, Query(ge=1)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> Json:
    if limit > state.settings.max_page_size:
        raise ApiError(400, "invalid_request", f"limit is at most {state.settings.max_page_size}")
    tree, lo, hi = parse_search(q, since, until)
    try:
        page = await state.stores.read(
            lambda s: s.search(tree, since=lo, until=hi, limit=limit, cursor=cursor)
        )
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from None
    details = {
        "query": q,
        "since": since,
        "until": until,
        "limit": limit,
        "cursor": cursor,
        "results": len(page.events),
    }
    await state.append(
        [
            audit.by_principal(
                principal, audit.SEARCH, resource="events", resource_type="events", details=details
            )
        ]
    )
    return Json(
        {
            "events": [to_document(e) for e in page.events],
            "next_cursor": page.next_cursor,
            "count": len(page.events),
            "stopped_early": page.stopped_early,
            "scanned": page.scanned,
        }
    )


@router.get("/events/{event_id}", summary="One event by id")
async def get_event(event_id: str, principal: Reader, state: StateDep) -> Json:
    event = await state.stores.read(lambda s: s.get(event_id))
    record = audit.by_principal(
        principal,
        audit.EVENT_READ,
        resource=event_id[:64],
        resource_type="event",
        outcome="success" if event else "failure",
        reason=None if event else "not_found",
    )
    await state.append([record])
    if event is None:
        raise ApiError(404, "not_found", f"no event with id {event_id[:64]!r}")
    return Json(to_document(event))
