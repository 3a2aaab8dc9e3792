"""Legal holds: which events a hold protects from retention, and the events that audit holds.

A hold is a search query (the same language as ``keeptrail search``) plus a time range.
While it is active, the events it matches are never purged and their partition keeps its
data key. Matching is :func:`keeptrail.query.compile_predicate` over the decrypted event, so
a hold on free text or ``details.*`` protects exactly what a search for it would return.

Everything here is pure: the hold id, the clock and the store are the caller's.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Sequence
from typing import Final

from keeptrail.errors import UserError
from keeptrail.event import DetailValue, Event, format_time
from keeptrail.query import Predicate, compile_predicate, parse
from keeptrail.store.contract import Hold

MAX_REASON: Final = 2000
MAX_QUERY: Final = 4000
MAX_BY: Final = 200


def new_hold(
    *,
    hold_id: str,
    query: str | None,
    since: int | None,
    until: int | None,
    reason: str,
    by: str | None,
    now: int,
) -> Hold:
    """A validated hold; a bad query raises :class:`keeptrail.query.QueryError` as search does."""
    text = (query or "").strip() or None
    if text is not None:
        if len(text) > MAX_QUERY:
            raise UserError(f"--query is longer than {MAX_QUERY} characters")
        parse(text)  # raises QueryError, rendered with a caret like a search
    cleaned = reason.strip()
    if not cleaned:
        raise UserError("--reason is required: say why these events must be kept")
    if len(cleaned) > MAX_REASON:
        raise UserError(f"--reason is longer than {MAX_REASON} characters")
    if by is not None and (not by.strip() or len(by) > MAX_BY):
        raise UserError(f"--by must be a name of 1 to {MAX_BY} characters")
    if since is not None and until is not None and since >= until:
        raise UserError("--since must be before --until")
    return Hold(
        id=hold_id,
        query=text,
        since=since,
        until=until,
        reason=cleaned,
        created_by=by.strip() if by else None,
        created_at=now,
    )


def hold_predicate(hold: Hold) -> Predicate:
    """Whether an event is under this hold: its query and ``[since, until)`` on ``time``."""
    matches = compile_predicate(parse(hold.query)) if hold.query else None
    since, until = hold.since, hold.until

    def held(event: Event) -> bool:
        if since is not None and event.time < since:
            return False
        if until is not None and event.time >= until:
            return False
        return matches is None or matches(event)

    return held


def any_hold(holds: Sequence[Hold]) -> Predicate | None:
    """One predicate for the active holds among ``holds`` (``None`` when none is active)."""
    preds = [hold_predicate(h) for h in holds if h.active]
    if not preds:
        return None
    return lambda event: any(pred(event) for pred in preds)


def overlaps(hold: Hold, first_time: int | None, last_time: int | None) -> bool:
    """Whether the hold's time range meets ``[first_time, last_time]`` (inclusive times).

    A partition whose times are unknown (empty) overlaps nothing.
    """
    if first_time is None or last_time is None:
        return False
    if hold.since is not None and last_time < hold.since:
        return False
    return hold.until is None or first_time < hold.until


def holds_overlapping(
    holds: Sequence[Hold], first_time: int | None, last_time: int | None
) -> list[Hold]:
    """The active holds that may protect events between the two times."""
    return [h for h in holds if h.active and overlaps(h, first_time, last_time)]


def default_actor() -> str:
    """Who runs the command, for ``--by`` left out: the login name, else ``keeptrail``."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (containers)
        return "keeptrail"


def hold_event(action: str, hold: Hold, *, by: str, now: int, event_id: str, note: str) -> Event:
    """The ``audit.hold_add`` / ``audit.hold_release`` event that records a hold change."""
    details: dict[str, DetailValue] = {
        "hold_id": hold.id,
        "query": hold.query,
        "since": format_time(hold.since) if hold.since is not None else None,
        "until": format_time(hold.until) if hold.until is not None else None,
        "reason": hold.reason,
        "created_by": hold.created_by,
    }
    if action == "audit.hold_release":
        details["release_reason"] = note or None
    verb = "added" if action == "audit.hold_add" else "released"
    return Event(
        time=now,
        ingested_at=now,
        category="audit",
        action=action,
        outcome="success",
        severity="medium",
        actor_name=by,
        actor_type="user",
        target_system="keeptrail",
        target_resource=hold.id,
        target_resource_type="legal_hold",
        details={k: v for k, v in details.items() if v is not None},
        collector_host=socket.gethostname(),
        collector_source="cli",
        raw=f"legal hold {hold.id} {verb} by {by}: {hold.query or '(all events)'}"
        + (f" — {note}" if note else ""),
        id=event_id,
    )
