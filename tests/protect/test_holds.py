"""Legal holds as values: validation, which events they match, and their audit events."""

from __future__ import annotations

import pytest
from tests.factories import make_event

from keeptrail.errors import UserError
from keeptrail.event import parse_time
from keeptrail.protect.holds import any_hold, hold_event, hold_predicate, new_hold, overlaps
from keeptrail.query.errors import QueryError

NOW = parse_time("2025-01-01T00:00:00Z")


def make(query: str | None = "user:alice", since: str | None = None, until: str | None = None):  # type: ignore[no-untyped-def]
    return new_hold(
        hold_id="0193f7e0-0000-7000-8000-000000000001",
        query=query,
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        reason="case 4711",
        by="legal",
        now=NOW,
    )


def test_a_hold_matches_by_query_and_half_open_time_range() -> None:
    """Query and [since, until) must both hold, exactly like a search."""
    h = make("user:alice AND outcome:failure", "2024-01-01", "2024-02-01")
    held = hold_predicate(h)
    inside = parse_time("2024-01-15T00:00:00Z")
    assert held(make_event(time=inside, actor_name="alice"))
    assert not held(make_event(time=inside, actor_name="bob"))
    assert not held(make_event(time=inside, actor_name="alice", outcome="success"))
    assert held(make_event(time=parse_time("2024-01-01T00:00:00Z"), actor_name="alice"))
    assert not held(make_event(time=parse_time("2024-02-01T00:00:00Z"), actor_name="alice"))


def test_free_text_and_details_holds_match_the_decrypted_event() -> None:
    """Free text and details.* are matched on the event itself (sealed fields included)."""
    held = hold_predicate(make('"DROP TABLE" details.database:payroll'))
    event = make_event(raw="LOG: statement: drop table salaries", details={"database": "payroll"})
    assert held(event)
    assert not held(make_event(raw="select 1", details={"database": "payroll"}))


def test_an_empty_query_holds_every_event_in_the_range() -> None:
    """--query left out: everything in the time range is held."""
    h = make(None, "2024-01-01", None)
    assert h.query is None
    assert hold_predicate(h)(make_event(time=parse_time("2030-01-01T00:00:00Z")))
    assert not hold_predicate(h)(make_event(time=parse_time("2023-12-31T23:59:59Z")))


def test_released_holds_protect_nothing() -> None:
    """any_hold ignores released holds and is None when none is active."""
    from dataclasses import replace  # noqa: PLC0415

    h = make(None)
    assert any_hold([replace(h, released_at=NOW)]) is None
    pred = any_hold([replace(h, released_at=NOW), make("user:bob")])
    assert pred is not None
    assert pred(make_event(actor_name="bob"))
    assert not pred(make_event(actor_name="alice"))


def test_time_overlap_with_a_partition() -> None:
    """A hold meets a partition when [since, until) intersects its [first, last] times."""
    h = make(None, "2024-01-02", "2024-01-03")
    day = parse_time("2024-01-01T00:00:00Z")
    assert not overlaps(h, day, day + 86_399_999_999)
    assert overlaps(h, day, day + 86_400_000_000)
    assert not overlaps(h, parse_time("2024-01-03T00:00:00Z"), parse_time("2024-01-03T01:00:00Z"))
    assert not overlaps(h, None, None)


def test_invalid_query_raises_the_search_error() -> None:
    """A bad query is the same QueryError (with a caret) that search shows."""
    with pytest.raises(QueryError) as info:
        make("user:alice AND (")
    assert "^" in info.value.render()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reason": "  "}, "--reason is required"),
        ({"since": 10, "until": 5}, "--since must be before --until"),
        ({"by": " "}, "--by"),
        ({"reason": "x" * 2001}, "longer than"),
    ],
)
def test_invalid_hold_values(kwargs: dict[str, object], message: str) -> None:
    """Reason is required, the range must not be empty, --by must be a name."""
    values: dict[str, object] = {
        "hold_id": "h",
        "query": "",
        "since": None,
        "until": None,
        "reason": "case",
        "by": "legal",
        "now": NOW,
    }
    values.update(kwargs)
    with pytest.raises(UserError, match=message):
        new_hold(**values)  # type: ignore[arg-type]


def test_hold_events_record_the_hold() -> None:
    """audit.hold_add carries the hold's id, query, range and reason; release its own note."""
    h = make("user:alice", "2024-01-01", None)
    added = hold_event("audit.hold_add", h, by="legal", now=NOW, event_id="e1", note=h.reason)
    assert (added.category, added.action, added.actor_name) == ("audit", "audit.hold_add", "legal")
    assert added.details["hold_id"] == h.id
    assert added.details["query"] == "user:alice"
    assert added.details["since"] == "2024-01-01T00:00:00.000000Z"
    assert "until" not in added.details
    assert added.target_resource == h.id
    released = hold_event(
        "audit.hold_release", h, by="counsel", now=NOW, event_id="e2", note="case closed"
    )
    assert released.details["release_reason"] == "case closed"
    assert "released by counsel" in released.raw
