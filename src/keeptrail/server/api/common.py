"""Pieces the routers share: query-string parsing into a query tree and a time range."""

from __future__ import annotations

import time

from keeptrail.query import Node, QueryError, parse, parse_time_bound
from keeptrail.server.errors import ApiError


def parse_search(
    q: str, since: str | None, until: str | None
) -> tuple[Node | None, int | None, int | None]:
    """The query tree and ``[since, until)`` in µs; 400 naming the problem (and its position)."""
    try:
        tree = parse(q) if q.strip() else None
    except QueryError as exc:
        raise ApiError(400, "invalid_query", exc.message, position=exc.position, query=q) from None
    now = time.time_ns() // 1000
    try:
        lo = parse_time_bound(since, now_us=now) if since else None
        hi = parse_time_bound(until, now_us=now) if until else None
    except ValueError as exc:
        raise ApiError(400, "invalid_time", str(exc)) from None
    if lo is not None and hi is not None and lo >= hi:
        raise ApiError(400, "invalid_time", "since must be before until")
    return tree, lo, hi
