"""``GET /api/v1/export``: every matching event as JSON lines or CSV, streamed page by page.

The export is audited before the first byte is sent (with the query and format). CSV cells go
through the same formula neutralisation as the CLI's CSV output; JSON lines are event
documents, the same form the ingest API accepts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Final

import orjson
from fastapi import APIRouter, Query
from starlette.responses import StreamingResponse

from keeptrail.cli.output import CSV_FIELDS, csv_cell, flat_row
from keeptrail.event import Event, to_document
from keeptrail.query import Node
from keeptrail.server import audit
from keeptrail.server.api.common import parse_search
from keeptrail.server.deps import Exporter, StateDep
from keeptrail.server.errors import ApiError
from keeptrail.server.state import ServerState
from keeptrail.store import SearchPage, Store

router = APIRouter(prefix="/api/v1", tags=["export"])
_PAGE: Final = 1000
_MEDIA: Final = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def _csv_row(e: Event) -> str:
    values = flat_row(e)
    out = io.StringIO()
    csv.writer(out).writerow([csv_cell(values[k]) for k in CSV_FIELDS])
    return out.getvalue()


def _search(
    q: Node | None, lo: int | None, hi: int | None, n: int, cursor: str | None, store: Store
) -> SearchPage:
    return store.search(q, since=lo, until=hi, limit=n, cursor=cursor)


async def _pages(
    state: ServerState, q: Node | None, lo: int | None, hi: int | None, fmt: str, limit: int | None
) -> AsyncIterator[bytes]:
    if fmt == "csv":
        header = io.StringIO()
        csv.writer(header).writerow(CSV_FIELDS)
        yield header.getvalue().encode()
    cursor: str | None = None
    sent = 0
    while True:
        size = _PAGE if limit is None else min(_PAGE, limit - sent)
        if size <= 0:
            return
        page = await state.stores.read(partial(_search, q, lo, hi, size, cursor))
        if fmt == "csv":
            yield "".join(_csv_row(e) for e in page.events).encode()
        else:
            yield b"".join(orjson.dumps(to_document(e)) + b"\n" for e in page.events)
        sent += len(page.events)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


@router.get("/export", summary="Export matching events as JSON lines or CSV (streamed)")
async def export(
    principal: Exporter,
    state: StateDep,
    q: str = "",
    since: str | None = None,
    until: str | None = None,
    fmt: Annotated[str, Query(alias="format", description="jsonl or csv")] = "jsonl",
    limit: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="at most this many events")
    ] = None,
) -> StreamingResponse:
    if fmt not in _MEDIA:
        raise ApiError(400, "invalid_request", "format must be jsonl or csv")
    tree, lo, hi = parse_search(q, since, until)
    details = {"query": q, "since": since, "until": until, "format": fmt, "limit": limit}
    await state.append(
        [
            audit.by_principal(
                principal, audit.EXPORT, resource="events", resource_type="events", details=details
            )
        ]
    )
    return StreamingResponse(
        _pages(state, tree, lo, hi, fmt, limit),
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="keeptrail-export.{fmt}"'},
    )
