"""A whole-partition purge in SQLite: key destroyed, table detached; pages freed by reclaim.

Purge time must not grow with the partition's size. That is not asserted with a clock (see
bench/bench_purge.py for figures) but by what the purge does: its transaction renames the
table and updates one registry row, and never issues a ``DROP`` or ``DELETE`` of the
partition's rows; ``reclaim`` does the ``DROP`` later, one table per transaction.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.factories import make_event

from keeptrail.errors import UserError
from keeptrail.event import Event, uuid7
from keeptrail.ledger.audit import ledger_event
from keeptrail.ledger.keys import load_verifier
from keeptrail.ledger.verify import Report, verify_ledger
from keeptrail.protect.keyring import KeyUnavailable, open_keyring
from keeptrail.protect.seal import aad_for, open_sealed
from keeptrail.query.parse import parse
from keeptrail.store.sqlite import SQLiteStore

DAY = 86_400_000_000
T0 = 1_699_920_000_000_000  # 2023-11-14T00:00:00Z
OLD, NEW = "p20231114_default", "p20231115_default"
QUEUED = f"reclaim_{OLD}"
SECRET = "payroll-secret-7731"


def _open(data: Path, *, keyring: bool = True) -> SQLiteStore:
    ring = open_keyring(data, {}, create=True) if keyring else None
    return SQLiteStore(data / "events.db", keyring=ring, close_keyring=keyring)


def _fill(store: SQLiteStore) -> list[Event]:
    """Two days of events, interleaved, with a secret in every event's raw text."""
    events = [
        make_event(time=T0 + (i % 2) * DAY + i, actor_name=f"user{i}", raw=f"{SECRET} {i}")
        for i in range(40)
    ]
    for lo in range(0, 40, 10):
        store.append(events[lo : lo + 10])
    return events


def _purge(store: SQLiteStore, name: str) -> list[str]:
    """Purge as ``retention apply`` does (purge, then its audit event); the SQL it ran."""
    purge_id = uuid7()
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    try:
        result = store.purge_partition(name, holds=[], purge_event_id=purge_id)
    finally:
        store._db.set_trace_callback(None)
    assert (result.state, result.key_destroyed) == ("purged", True)
    event = ledger_event("audit.retention_purge", "success", f"purged {name}", {})
    event.id = purge_id
    store.append([event])
    return statements


def _tables(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()


def _verify(data: Path) -> Report:
    store = SQLiteStore(data / "events.db", readonly=True, keyring=open_keyring(data, {}))
    try:
        return verify_ledger(store, load_verifier(data))
    finally:
        store.close()


def _backup(source: Path, target: Path) -> None:
    """A consistent copy of a live WAL database, as a backup tool takes it."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def test_the_purge_detaches_the_table_and_only_reclaim_drops_it(tmp_path: Path) -> None:
    """The purge renames and marks; it neither drops nor deletes rows. Reclaim drops."""
    store = _open(tmp_path)
    _fill(store)
    statements = _purge(store, OLD)
    removing = re.compile(r"\b(DROP\s+TABLE|DELETE\s+FROM)\b", re.IGNORECASE)
    assert not [s for s in statements if removing.search(s)], statements
    assert f'ALTER TABLE "{OLD}" RENAME TO "{QUEUED}"' in statements
    # The rows are still there, detached: nothing read or freed them.
    (rows,) = store._db.execute(f'SELECT count(*) FROM "{QUEUED}"').fetchone()
    assert rows == 20
    assert store.awaiting_reclaim() == [OLD]
    info = {p.name: p for p in store.partitions()}
    assert (info[OLD].state, info[OLD].events) == ("purged", 0)

    traced: list[str] = []
    store._db.set_trace_callback(traced.append)
    freed = store.reclaim()
    store._db.set_trace_callback(None)
    assert (freed.dropped, freed.remaining) == ([OLD], 0)
    assert f'DROP TABLE IF EXISTS "{QUEUED}"' in traced
    assert store.awaiting_reclaim() == []
    assert store.reclaim().dropped == []  # nothing left: a no-op
    store.close()
    assert {OLD, QUEUED}.isdisjoint(_tables(tmp_path / "events.db"))
    assert NEW in _tables(tmp_path / "events.db")
    assert _verify(tmp_path).ok


def test_a_queued_table_is_invisible_to_reads_and_to_verify(tmp_path: Path) -> None:
    """Before reclaim: search, get, stats, events_after, count and verify ignore it."""
    store = _open(tmp_path)
    events = _fill(store)
    _purge(store, OLD)
    kept = {e.id for e in events[1::2]}
    assert QUEUED in _tables(tmp_path / "events.db")
    found = store.search(None, limit=100).events
    assert {e.id for e in found} & {e.id for e in events} == kept
    assert store.search(parse("user:user0"), limit=10).events == []
    assert store.get(events[0].id) is None
    assert store.stats(since=T0, until=T0 + DAY).total == 0
    assert store.count() == len(found)
    after = [e.id for _, e in store.events_after(-1, 100)]
    assert not set(after) & {e.id for e in events[0::2]}
    assert store.unindexed_events() == []
    store.close()
    report = _verify(tmp_path)
    assert report.ok, report.findings
    assert [(p.partition, p.events) for p in report.purged] == [(OLD, 20)]


def test_reclaim_finishes_after_a_crash_in_the_middle(tmp_path: Path) -> None:
    """A process killed inside reclaim's DROP leaves the table queued; the next reclaim ends it."""
    store = _open(tmp_path)
    _fill(store)
    _purge(store, OLD)
    store.close()
    crash = textwrap.dedent(
        f"""
        import os, sqlite3
        db = sqlite3.connect({str(tmp_path / "events.db")!r}, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.execute('DROP TABLE "{QUEUED}"')
        os._exit(9)  # killed before COMMIT
        """
    )
    died = subprocess.run([sys.executable, "-c", crash], check=False, timeout=60)
    assert died.returncode == 9
    assert QUEUED in _tables(tmp_path / "events.db")  # rolled back: still queued
    assert _verify(tmp_path).ok
    store = _open(tmp_path)
    assert store.awaiting_reclaim() == [OLD]
    assert store.reclaim().dropped == [OLD]
    store.close()
    assert QUEUED not in _tables(tmp_path / "events.db")
    report = _verify(tmp_path)
    assert report.ok, report.findings
    assert [p.partition for p in report.purged] == [OLD]


def test_copies_taken_before_the_purge_or_before_reclaim_cannot_decrypt(tmp_path: Path) -> None:
    """The key is gone: a backup from before the purge, or of the queued table, opens nothing."""
    data = tmp_path / "data"
    data.mkdir()
    store = _open(data)
    events = _fill(store)
    before = tmp_path / "before.db"
    _backup(data / "events.db", before)
    _purge(store, OLD)
    during = tmp_path / "during.db"
    _backup(data / "events.db", during)
    store.close()
    keyring = open_keyring(data, {})
    assert keyring is not None
    try:
        old = SQLiteStore(before, readonly=True, keyring=keyring)
        with pytest.raises(KeyUnavailable, match=f"partition {OLD}: its data key was destroyed"):
            old.get(events[0].id)
        with pytest.raises(KeyUnavailable, match=OLD):
            old.search(None, since=T0, until=T0 + DAY)
        assert old.get(events[1].id) == events[1]
        old.close()
        with pytest.raises(KeyUnavailable, match=OLD):
            keyring.existing_key(OLD)
        db = sqlite3.connect(during)
        queued = db.execute(f'SELECT id, sealed FROM "{QUEUED}"').fetchall()
        raw = during.read_bytes()
        db.close()
        assert len(queued) == 20
        assert SECRET.encode() not in raw  # only ciphertext waits for reclaim
        # Not even the live keyring's other partition keys open it (AAD binds the partition).
        other = keyring.existing_key(NEW)
        for id16, blob in queued[:3]:
            with pytest.raises(UserError, match="does not authenticate"):
                open_sealed(other, bytes(blob), aad_for(bytes(id16), OLD))
    finally:
        keyring.close()


def test_reclaim_honours_its_budget_and_resumes(tmp_path: Path) -> None:
    """With a spent budget one table is freed per call; the rest waits, counted."""
    store = _open(tmp_path)
    _fill(store)
    _purge(store, OLD)
    _purge(store, NEW)
    first = store.reclaim(budget_seconds=0)
    assert (first.dropped, first.remaining) == ([OLD], 1)
    assert store.awaiting_reclaim() == [NEW]
    second = store.reclaim(budget_seconds=0)
    assert (second.dropped, second.remaining) == ([NEW], 0)
    assert store.awaiting_reclaim() == []
    store.close()
    assert _verify(tmp_path).ok


def test_an_unsealed_partition_is_dropped_in_the_purge(tmp_path: Path) -> None:
    """No key to destroy: its rows are the data, so they go at once (nothing is queued)."""
    store = _open(tmp_path, keyring=False)
    _fill(store)
    purge_id = uuid7()
    result = store.purge_partition(OLD, holds=[], purge_event_id=purge_id)
    assert (result.state, result.key_destroyed, result.deleted) == ("purged", False, 20)
    assert store.awaiting_reclaim() == []
    store.close()
    assert {OLD, QUEUED}.isdisjoint(_tables(tmp_path / "events.db"))


def test_a_live_table_renamed_by_hand_is_not_reclaimed(tmp_path: Path) -> None:
    """Reclaim only frees tables of partitions recorded as purged, never live data."""
    store = _open(tmp_path)
    _fill(store)
    store.close()
    db = sqlite3.connect(tmp_path / "events.db")
    db.execute(f'ALTER TABLE "{OLD}" RENAME TO "{QUEUED}"')
    db.commit()
    db.close()
    store = _open(tmp_path)
    assert store.awaiting_reclaim() == []
    assert store.reclaim().dropped == []
    store.close()
    assert QUEUED in _tables(tmp_path / "events.db")
