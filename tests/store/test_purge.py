"""Partitions, purges and legal holds in the SQLite store, and the ledger surviving them."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from tests.factories import make_event

from keeptrail.event import Event, uuid7
from keeptrail.ledger.audit import ledger_event
from keeptrail.ledger.keys import load_verifier
from keeptrail.ledger.verify import Report, verify_ledger
from keeptrail.protect.keyring import KeyUnavailable, open_keyring
from keeptrail.query.parse import parse
from keeptrail.store.contract import Hold
from keeptrail.store.sqlite import SQLiteStore

DAY = 86_400_000_000
T0 = 1_699_920_000_000_000  # 2023-11-14T00:00:00Z
OLD, NEW = "p20231114_default", "p20231115_default"


def _open(data: Path, *, readonly: bool = False) -> SQLiteStore:
    keyring = open_keyring(data, {}, create=not readonly)
    return SQLiteStore(data / "events.db", readonly=readonly, keyring=keyring, close_keyring=True)


def _fill(store: SQLiteStore) -> list[Event]:
    """Two days of events, interleaved in ingest order, in three batches."""
    events = [make_event(time=T0 + (i % 2) * DAY + i, actor_name=f"user{i}") for i in range(30)]
    for lo in range(0, 30, 10):
        store.append(events[lo : lo + 10])
    return events


def _purge(store: SQLiteStore, name: str, holds: list[Hold] | None = None) -> str:
    """Purge as the retention command does: the purge, then its audited event."""
    purge_id = uuid7()
    result = store.purge_partition(name, holds=holds or [], purge_event_id=purge_id)
    event = ledger_event("audit.retention_purge", "success", f"purged {name}", {})
    event.id = purge_id
    store.append([event])
    assert result.partition == name
    return purge_id


def _verify(data: Path) -> Report:
    store = _open(data, readonly=True)
    try:
        return verify_ledger(store, load_verifier(data))
    finally:
        store.close()


def test_purge_destroys_the_key_first_and_drops_the_partition(tmp_path: Path) -> None:
    """After a purge the events are gone, the key is a tombstone, other days are untouched."""
    store = _open(tmp_path)
    events = _fill(store)
    before = store.count()
    result = store.purge_partition(OLD, holds=[], purge_event_id="e")
    assert (result.state, result.deleted, result.kept, result.key_destroyed) == (
        "purged",
        15,
        0,
        True,
    )
    assert store.count() == before - 15
    assert store.get(events[0].id) is None
    assert store.get(events[1].id) == events[1]
    assert {e.id for e in store.search(None, limit=100).events} >= {e.id for e in events[1::2]}
    assert all(e.time >= T0 + DAY for e in store.search(None, limit=100).events)
    info = {p.name: p for p in store.partitions()}
    assert (info[OLD].state, info[OLD].events, info[OLD].purge_event) == ("purged", 0, "e")
    assert info[NEW].state == "live"
    keyring = open_keyring(tmp_path, {})
    assert keyring is not None
    assert keyring.is_destroyed(OLD)
    keyring.close()
    store.close()
    db = sqlite3.connect(tmp_path / "events.db")
    tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert OLD not in tables
    assert NEW in tables


def test_a_copy_taken_before_the_purge_cannot_decrypt_the_purged_partition(
    tmp_path: Path,
) -> None:
    """Crypto-shredding reaches backups: the old copy's rows exist but no key opens them."""
    data = tmp_path / "data"
    store = _open(data)
    events = _fill(store)
    store.close()
    backup = tmp_path / "backup"
    backup.mkdir()
    shutil.copy(data / "events.db", backup / "events.db")
    store = _open(data)
    store.purge_partition(OLD, holds=[], purge_event_id="e")
    store.close()
    # The backup, opened with the live keyring (the only place keys live).
    shutil.copy(data / "keyring.db", backup / "keyring.db")
    shutil.copytree(data / "keys", backup / "keys")
    old = _open(backup, readonly=True)
    try:
        with pytest.raises(KeyUnavailable, match=f"partition {OLD}: its data key was destroyed"):
            old.get(events[0].id)
        with pytest.raises(KeyUnavailable, match=OLD):
            old.search(None, since=T0, until=T0 + DAY)
        assert old.get(events[1].id) == events[1]  # the other day still reads
    finally:
        old.close()


def test_events_under_a_hold_survive_a_purge(tmp_path: Path) -> None:
    """Held events stay readable, the key is kept, the partition is 'partial'."""
    store = _open(tmp_path)
    events = _fill(store)
    hold = Hold("h1", "user:user4 OR user:user8", None, None, "litigation", "alice", T0)
    store.add_hold(hold)
    result = store.purge_partition(OLD, holds=store.holds(), purge_event_id="e")
    assert (result.state, result.deleted, result.kept, result.key_destroyed) == (
        "partial",
        13,
        2,
        False,
    )
    assert store.get(events[4].id) == events[4]
    assert store.get(events[8].id) == events[8]
    assert store.get(events[6].id) is None
    assert [p.state for p in store.partitions() if p.name == OLD] == ["partial"]
    store.close()


def test_a_hold_on_sealed_fields_and_a_time_range(tmp_path: Path) -> None:
    """A hold query on a sealed field (free text) and a hold window both protect events."""
    store = _open(tmp_path)
    events = [
        make_event(time=T0 + i, raw="case-42 evidence" if i == 3 else "noise") for i in range(8)
    ]
    store.append(events)
    holds = [
        Hold("text", '"case-42"', None, None, "case 42", None, T0),
        Hold("window", None, T0 + 6, T0 + 7, "window", None, T0),
        Hold("released", None, None, None, "old", None, T0, released_at=T0 + 1),
    ]
    result = store.purge_partition(OLD, holds=holds, purge_event_id="e")
    assert (result.deleted, result.kept) == (6, 2)
    kept = store.search(None, since=T0, until=T0 + DAY).events
    assert [e.id for e in kept] == [events[6].id, events[3].id]
    store.close()


def test_holds_are_listed_and_released(tmp_path: Path) -> None:
    """add_hold / holds / release_hold round trip; released holds leave the active list."""
    store = _open(tmp_path)
    store.add_hold(Hold("a", None, 1, 2, "r", "alice", 10))
    store.add_hold(Hold("b", "user:x", None, None, "r2", "bob", 11))
    assert [h.id for h in store.holds()] == ["a", "b"]
    released = store.release_hold("a", "carol", 20)
    assert (released.released_by, released.released_at, released.active) == ("carol", 20, False)
    assert [h.id for h in store.holds()] == ["b"]
    assert [h.id for h in store.holds(active_only=False)] == ["a", "b"]
    with pytest.raises(KeyError):
        store.release_hold("nope", "carol", 21)
    store.close()


def test_verify_passes_after_purges_and_reports_the_purged_ranges(tmp_path: Path) -> None:
    """Purged leaves are reported as purged, with the purge event, and are not damage."""
    store = _open(tmp_path)
    _fill(store)
    full = _purge(store, OLD)
    hold = Hold("h", "user:user5", None, None, "r", None, T0)
    partial = _purge(store, NEW, [hold])
    store.close()
    report = _verify(tmp_path)
    assert report.ok, report.findings
    by_name = {p.partition: p for p in report.purged}
    assert (by_name[OLD].purge_event, by_name[OLD].events) == (full, 15)
    assert (by_name[NEW].purge_event, by_name[NEW].events) == (partial, 14)
    # Interleaved days: each purged leaf of one day is its own run between the other day's.
    assert by_name[OLD].runs[:2] == [(1, 1), (3, 3)]  # leaf 0 is the ledger.key_created event


def test_verify_catches_a_tampered_event_next_to_a_purged_range(tmp_path: Path) -> None:
    """An event edited right beside purged leaves is still 'modified' at its leaf."""
    store = _open(tmp_path)
    events = _fill(store)
    _purge(store, OLD)
    store.close()
    db = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    (victim,) = db.execute(
        "SELECT leaf_index FROM leaves WHERE id = ?",
        (bytes.fromhex(events[1].id.replace("-", "")),),
    ).fetchone()
    (neighbour,) = db.execute(
        "SELECT partition FROM leaves WHERE leaf_index = ?", (victim - 1,)
    ).fetchone()
    assert neighbour == OLD  # the victim's previous leaf was purged
    db.execute(f'UPDATE "{NEW}" SET outcome = ? WHERE leaf_index = ?', ("success", victim))
    db.close()
    report = _verify(tmp_path)
    assert report.first is not None
    assert (report.first.kind, report.first.leaf_index) == ("modified", victim)


def test_a_partition_marked_purged_without_its_purge_event_is_damage(tmp_path: Path) -> None:
    """Dropping a table and marking it purged by hand does not pass as a retention purge."""
    store = _open(tmp_path)
    _fill(store)
    store.close()
    db = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    db.execute(f'DROP TABLE "{OLD}"')
    db.execute(
        "UPDATE partitions SET state = 'purged', purge_event = ? WHERE name = ?", (uuid7(), OLD)
    )
    db.close()
    report = _verify(tmp_path)
    assert report.first is not None
    assert report.first.kind == "missing"
    assert "is not in the ledger" in report.first.message


def test_a_tampered_purged_leaf_hash_is_caught_by_the_checkpoints(tmp_path: Path) -> None:
    """The stored hash of a purged leaf is still vouched for by the signed checkpoints."""
    store = _open(tmp_path)
    _fill(store)
    _purge(store, OLD)
    store.close()
    db = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    db.execute("UPDATE leaves SET leaf_hash = zeroblob(32) WHERE leaf_index = 3")
    db.close()
    report = _verify(tmp_path)
    assert report.first is not None
    assert report.first.kind == "modified"
    assert report.first.leaf_index is not None
    assert report.first.range_end is not None
    assert report.first.leaf_index <= 3 < report.first.range_end


def test_late_events_for_a_purged_day_go_to_a_new_generation(tmp_path: Path) -> None:
    """An event arriving for a purged day is stored (nothing is dropped), in a new partition."""
    store = _open(tmp_path)
    _fill(store)
    store.purge_partition(OLD, holds=[], purge_event_id="e")
    late = make_event(time=T0 + 5)
    store.append([late])
    assert store.get(late.id) == late
    names = [p.name for p in store.partitions()]
    assert f"{OLD}-2" in names
    assert [e.id for e in store.search(parse("user:root"), since=T0, until=T0 + DAY).events] == [
        late.id
    ]
    store.close()


def test_events_after_follows_leaf_order_and_skips_purged(tmp_path: Path) -> None:
    """events_after pages through leaves in order, skipping what a purge removed."""
    store = _open(tmp_path)
    events = _fill(store)
    first = store.events_after(-1, 5)
    assert [i for i, _ in first] == [0, 1, 2, 3, 4]  # leaf 0: ledger.key_created
    assert [e.id for _, e in first[1:]] == [e.id for e in events[:4]]
    store.purge_partition(OLD, holds=[], purge_event_id="e")
    rest: list[tuple[int, Event]] = []
    position = 0
    while page := store.events_after(position, 4):
        rest.extend(page)
        position = page[-1][0]
    assert [e.id for _, e in rest] == [e.id for e in events[1::2]]
    assert store.events_after(position, 10) == []
    store.close()


def test_a_shredded_but_not_dropped_partition_says_so_and_a_retry_finishes(
    tmp_path: Path,
) -> None:
    """A crash between key destruction and DROP: reads name the partition, purging again ends it."""
    store = _open(tmp_path)
    events = _fill(store)
    keyring = open_keyring(tmp_path, {})
    assert keyring is not None
    keyring.destroy(OLD, reason="retention purge, interrupted")
    keyring.close()
    fresh = _open(tmp_path)  # no cached key: as after a restart
    with pytest.raises(KeyUnavailable, match=f"{OLD}: its data key was destroyed"):
        fresh.search(None, since=T0, until=T0 + DAY)
    with pytest.raises(KeyUnavailable, match=OLD):
        fresh.get(events[0].id)
    result = fresh.purge_partition(OLD, holds=[], purge_event_id="retry")
    assert (result.state, result.deleted) == ("purged", 15)
    assert fresh.get(events[0].id) is None
    fresh.close()
    store.close()
