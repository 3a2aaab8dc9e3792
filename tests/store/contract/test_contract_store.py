"""The store contract, on both backends: appending, searching, reading, counting, positions."""

from __future__ import annotations

import uuid

import pytest
from tests.factories import make_event
from tests.store.contract.conftest import Backend

from keeptrail.event import Event, canonical_bytes, uuid7
from keeptrail.query.parse import parse
from keeptrail.store.contract import FilePosition, Store

T0 = 1_700_000_000_000_000
HOUR = 3_600_000_000


def spread(n: int, **overrides: object) -> list[Event]:
    """``n`` events one hour apart, actors u0..u4, addresses in 10.0.0.0/24 and 192.0.2.0/24."""
    return [
        make_event(
            time=T0 + i * HOUR,
            actor_name=f"u{i % 5}",
            source_ip=f"10.0.0.{i % 200}" if i % 2 else f"192.0.2.{i % 200}",
            action="ssh.login" if i % 3 else "sudo.command",
            details={"command": f"/bin/cmd{i}"} if i % 3 == 0 else {},
            raw=f"line {i} Failed password for u{i % 5}" if i % 4 else f"line {i} Accepted key",
            **overrides,
        )
        for i in range(n)
    ]


def all_pages(store: Store, query: str | None, *, limit: int) -> list[Event]:
    tree = parse(query) if query else None
    out: list[Event] = []
    cursor = None
    while True:
        page = store.search(tree, limit=limit, cursor=cursor)
        out.extend(page.events)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def test_append_is_idempotent_on_event_id(backend_store: Store) -> None:
    """A retried batch stores nothing twice; new ids in it are stored; repeats count once."""
    batch = spread(10)
    assert backend_store.append(batch) == 10
    assert backend_store.append(batch) == 0
    fresh = make_event(id=uuid7())
    assert backend_store.append([*batch[:3], fresh, fresh]) == 1
    assert backend_store.count() == 11
    assert backend_store.ledger_frontier().size == 11


def test_stored_event_reads_back_exactly(backend_store: Store) -> None:
    """get() returns the same canonical event, including sealed-only fields and details."""
    event = make_event(
        details={"command": "/usr/bin/id", "args": ["-u", "-n"]},
        actor_session="42",
        target_resource="/etc/shadow",
        collector_file="/var/log/auth.log",
        collector_offset=1234,
    )
    backend_store.append([event])
    got = backend_store.get(event.id)
    assert got is not None
    assert canonical_bytes(got) == canonical_bytes(event)
    assert backend_store.get(str(uuid.uuid4())) is None
    assert backend_store.get("not-a-uuid") is None


def test_search_pages_cover_everything_once_newest_first(backend_store: Store) -> None:
    """Cursor pages (time, leaf index) neither skip nor repeat, also across equal times."""
    events = spread(60) + [make_event(time=T0 + 10 * HOUR, actor_name="tie") for _ in range(7)]
    backend_store.append(events)
    got = all_pages(backend_store, None, limit=9)
    assert sorted(e.id for e in got) == sorted(e.id for e in events)
    assert len(got) == len(events)
    times = [e.time for e in got]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor.name:u1", lambda e: e.actor_name == "u1"),
        ("source.ip:10.0.0.0/24", lambda e: e.source_ip.startswith("10.")),
        ("action:sudo*", lambda e: e.action.startswith("sudo")),
        ("accepted", lambda e: "Accepted" in e.raw),
        (
            "details.command:/bin/cmd1*",
            lambda e: str(e.details.get("command", "")).startswith("/bin/cmd1"),
        ),
        ("actor.name:u2 AND failed", lambda e: e.actor_name == "u2" and "Failed" in e.raw),
        ("NOT actor.name:u3 OR accepted", lambda e: e.actor_name != "u3" or "Accepted" in e.raw),
    ],
)
def test_search_answers_like_the_predicate(
    backend_store: Store, query: str, expected: object
) -> None:
    """Clear-column SQL, residual checks after opening, and their mix give the same answers."""
    events = spread(80)
    backend_store.append(events)
    want = sorted(e.id for e in events if expected(e))  # type: ignore[operator]
    assert want, "the query must match something"
    assert sorted(e.id for e in all_pages(backend_store, query, limit=7)) == want


def test_time_range_is_half_open(backend_store: Store) -> None:
    events = spread(30)
    backend_store.append(events)
    lo, hi = T0 + 5 * HOUR, T0 + 25 * HOUR
    page = backend_store.search(None, since=lo, until=hi, limit=100)
    assert sorted(e.time for e in page.events) == [T0 + i * HOUR for i in range(5, 25)]


def test_residual_scan_stops_at_its_budget_and_continues(backend: Backend) -> None:
    """A free-text search that exhausts the budget says so and resumes where it stopped."""
    store = backend.open(scan_budget=10)
    events = spread(50)
    store.append(events)
    page = store.search(parse("accepted"), limit=100)
    assert page.stopped_early
    assert page.scanned == 10
    assert page.next_cursor is not None
    found = list(page.events)
    cursor: str | None = page.next_cursor
    while cursor is not None:
        page = store.search(parse("accepted"), limit=100, cursor=cursor)
        found.extend(page.events)
        cursor = page.next_cursor
    assert sorted(e.id for e in found) == sorted(e.id for e in events if "Accepted" in e.raw)


def test_stats_count_by_category_action_and_tops(backend_store: Store) -> None:
    events = spread(20)
    backend_store.append(events)
    stats = backend_store.stats(top=3)
    assert stats.total == 20
    assert stats.first_time == T0
    assert stats.last_time == T0 + 19 * HOUR
    assert stats.by_category == [("authentication", 20)]
    assert {(a, o): n for a, o, n in stats.by_action_outcome} == {
        ("ssh.login", "failure"): 13,
        ("sudo.command", "failure"): 7,
    }
    assert stats.top_actors[0][1] == 4
    assert len(stats.top_actors) == 3
    bounded = backend_store.stats(since=T0 + 10 * HOUR)
    assert bounded.total == 10


def test_file_positions_commit_with_the_batch(backend_store: Store) -> None:
    """A position is stored in the batch's transaction; the furthest one wins by fingerprint."""
    first = FilePosition("/var/log/auth.log", "ab" * 32, 1024, 500, 1)
    backend_store.append(spread(2), [first])
    assert backend_store.file_position("/var/log/auth.log") == first
    moved = FilePosition("/var/log/auth.log.1", "ab" * 32, 1024, 900, 2)
    backend_store.append([], [moved])
    assert backend_store.file_position_by_fingerprint("ab" * 32) == moved
    assert backend_store.file_position("/nowhere") is None


def test_events_after_follows_leaf_order(backend_store: Store) -> None:
    """Followers page through events by leaf index, in commit order, without gaps."""
    events = spread(25)
    backend_store.append(events[:10])
    backend_store.append(events[10:])
    seen: list[int] = []
    last = -1
    while batch := backend_store.events_after(last, 7):
        seen.extend(i for i, _ in batch)
        last = batch[-1][0]
    assert seen == list(range(25))
    assert [e.id for _, e in backend_store.events_after(-1, 100)] == [e.id for e in events]
