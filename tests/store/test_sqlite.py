"""The SQLite store: batches, idempotency, search, pagination, stats and file positions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.factories import make_event

from keeptrail.query.parse import parse
from keeptrail.store import open_store
from keeptrail.store.contract import FilePosition
from keeptrail.store.sqlite import SQLiteStore, decode_cursor, encode_cursor
from keeptrail.store.sqlite_schema import migrate

T0 = 1_700_000_000_000_000
HOUR = 3_600_000_000


def test_append_stores_and_round_trips_every_field(store: SQLiteStore) -> None:
    """An event read back by id equals the event written, field for field."""
    e = make_event(
        details={"command": "/bin/ls -la", "tty": "pts/0", "attempts": 3, "preauth": True},
        actor_effective_user="root",
        source_ip="2001:db8::7",
        collector_file="/var/log/auth.log",
        collector_offset=1234,
        raw="line with \x1b[31m escape and ünïcode",
    )
    assert store.append([e]) == 1
    assert store.get(e.id) == e


def test_append_is_idempotent_on_event_id(store: SQLiteStore) -> None:
    """A retried batch stores nothing twice and reports only the new events."""
    batch = [make_event() for _ in range(10)]
    assert store.append(batch) == 10
    assert store.append([*batch, make_event()]) == 1
    assert store.count() == 11


def test_search_filters_and_orders_newest_first(store: SQLiteStore) -> None:
    """Field, CIDR and time filters combine, and results come newest first."""
    store.append(
        [
            make_event(time=T0 + i * HOUR, actor_name=f"u{i % 3}", source_ip=f"10.0.{i}.1")
            for i in range(30)
        ]
    )
    page = store.search(parse("user:u1 AND ip:10.0.0.0/16"), since=T0 + 5 * HOUR, limit=100)
    times = [e.time for e in page.events]
    assert times == sorted(times, reverse=True)
    assert {e.actor_name for e in page.events} == {"u1"}
    assert all(t >= T0 + 5 * HOUR for t in times)
    assert len(page.events) == len([i for i in range(5, 30) if i % 3 == 1])


def test_cursor_pagination_visits_every_match_once(store: SQLiteStore) -> None:
    """Following next_cursor yields every match exactly once, even with equal timestamps."""
    store.append([make_event(time=T0 + (i // 4) * HOUR) for i in range(103)])
    seen: list[str] = []
    cursor = None
    while True:
        page = store.search(None, limit=10, cursor=cursor)
        seen.extend(e.id for e in page.events)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == 103
    assert len(set(seen)) == 103


def test_bad_cursor_is_a_value_error() -> None:
    """A tampered cursor is refused with a ValueError, not a crash in SQL."""
    assert decode_cursor(encode_cursor(5, 7)) == (5, 7)
    with pytest.raises(ValueError, match="invalid cursor"):
        decode_cursor("not-a-cursor!!")


def test_stats_counts_categories_actions_and_tops(store: SQLiteStore) -> None:
    """Stats count by category and action/outcome and rank actors and sources."""
    store.append(
        [make_event(actor_name="root") for _ in range(5)]
        + [make_event(actor_name="alice", outcome="success", source_ip="10.0.0.1")]
        + [make_event(category="privilege", action="sudo.command", actor_name="alice")]
    )
    s = store.stats()
    assert s.total == 7
    assert dict(s.by_category) == {"authentication": 6, "privilege": 1}
    assert ("ssh.login", "failure", 5) in s.by_action_outcome
    assert s.top_actors[0] == ("root", 5)
    assert s.top_sources[0] == ("203.0.113.50", 6)


def test_file_position_commits_with_its_batch(store: SQLiteStore) -> None:
    """A position is stored with its batch and found again by path or by fingerprint."""
    pos = FilePosition("/var/log/auth.log", "ab" * 32, 1024, 4096, T0)
    store.append([make_event()], [pos])
    assert store.file_position("/var/log/auth.log") == pos
    assert store.file_position_by_fingerprint("ab" * 32) == pos
    assert store.file_position("/elsewhere") is None


def test_failed_batch_leaves_neither_events_nor_position(store: SQLiteStore) -> None:
    """If a batch fails mid-way, its events and its position are both rolled back."""
    good = make_event()
    bad = make_event(id="not-a-uuid")
    pos = FilePosition("/var/log/auth.log", "cd" * 32, 1024, 999, T0)
    with pytest.raises(ValueError, match="non-hexadecimal"):
        store.append([good, bad], [pos])
    assert store.count() == 0
    assert store.file_position("/var/log/auth.log") is None


def test_readers_see_committed_data_while_a_writer_holds_a_transaction(tmp_path: Path) -> None:
    """WAL mode: another connection reads the last committed state during a write."""
    path = tmp_path / "events.db"
    writer = SQLiteStore(path)
    writer.append([make_event()])
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN IMMEDIATE")
    raw.execute("DELETE FROM leaves")
    raw.execute("UPDATE partitions SET events = 0")
    reader = SQLiteStore(path, readonly=True)
    assert reader.count() == 2  # the event and the ledger's own ledger.key_created
    raw.execute("ROLLBACK")
    raw.close()
    reader.close()
    writer.close()


def test_migrations_apply_once(tmp_path: Path) -> None:
    """Opening a store twice applies each migration exactly once."""
    SQLiteStore(tmp_path / "e.db").close()
    db = sqlite3.connect(tmp_path / "e.db", isolation_level=None)
    assert migrate(db) == []
    names = [n for (n,) in db.execute("SELECT name FROM schema_migrations ORDER BY name")]
    assert names == ["m001_events", "m002_file_positions", "m003_ledger", "m004_partitions"]


def test_open_store_accepts_directory_file_and_url(tmp_path: Path) -> None:
    """open_store takes a data directory, a .db path or a sqlite:/// URL."""
    for location in (tmp_path / "dir", tmp_path / "x.db", f"sqlite:///{tmp_path / 'y.db'}"):
        open_store(location).close()
    assert (tmp_path / "dir" / "events.db").exists()
    assert (tmp_path / "x.db").exists()
    assert (tmp_path / "y.db").exists()


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("user:alice", "_actor_time"),
        ("ip:203.0.113.50", "_source_ip_time"),
        ("action:ssh.login AND outcome:failure", "_action_time"),
        ("host:web-1", "_host_time"),
    ],
)
def test_filtered_searches_use_their_index(store: SQLiteStore, query: str, index: str) -> None:
    """Each filtered search path walks an index of its day's partition, not the whole table."""
    store.append([make_event(time=T0 + 1)])
    plan = " ".join(store.explain(parse(query), since=T0, until=T0 + HOUR))
    assert index in plan
    assert "TEMP B-TREE" not in plan  # rows come out of the index already in time order


def test_cidr_search_is_an_index_range(store: SQLiteStore) -> None:
    """A CIDR filter is a range over an index, never a full table scan."""
    store.append([make_event(time=T0 + 1)])
    plan = " ".join(store.explain(parse("ip:10.0.0.0/8"), since=None, until=None))
    assert "_source_ip_time" in plan
    assert "SCAN" not in plan.replace("SCAN p20231114_default USING", "")


def test_time_only_search_uses_the_time_index(store: SQLiteStore) -> None:
    """A free-text search over a time range is a bounded scan of the time index."""
    store.append([make_event(time=T0 + 1)])
    plan = " ".join(store.explain(parse("password"), since=T0, until=T0 + HOUR))
    assert "_time" in plan
    assert "after decryption" in plan  # free text is checked on the opened event


def test_a_day_with_several_classes_is_an_ordered_merge_of_index_walks(tmp_path: Path) -> None:
    """The class tables of one day are merged in time order: each walks its index, no sort."""
    store = SQLiteStore(
        tmp_path / "e.db", classify=lambda e: "a" if e.outcome == "failure" else "b"
    )
    store.append(
        [make_event(time=T0 + i, outcome="failure" if i % 2 else "success") for i in range(8)]
    )
    plan = " ".join(store.explain(parse("user:alice"), since=T0, until=T0 + HOUR))
    store.close()
    assert "MERGE (UNION ALL)" in plan
    assert "p20231114_a_actor_time" in plan
    assert "p20231114_b_actor_time" in plan
    assert "TEMP B-TREE" not in plan
