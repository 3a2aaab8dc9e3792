"""Migration m004: a v1 store (one ``events`` table) moves into partitions, losing nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.factories import make_event

from keeptrail.event import Event
from keeptrail.ledger.keys import create_signer, load_verifier
from keeptrail.ledger.note import Signer
from keeptrail.ledger.tree import LedgerSQL, grow, load_frontier, persist
from keeptrail.ledger.verify import verify_ledger
from keeptrail.store import rows
from keeptrail.store.sqlite import SQLiteStore
from keeptrail.store.sqlite_schema import m001_events, m002_file_positions, m003_ledger

DAY = 86_400_000_000
T0 = 1_699_920_000_000_000


def build_v1(data: Path, batches: list[list[Event]], signer: Signer) -> list[tuple[int, bytes]]:
    """A database exactly as the v1 store left it (schema m001–m003, one checkpoint per batch).

    Returns the signed (size, root) pairs.
    """
    db = sqlite3.connect(data / "events.db", isolation_level=None)
    db.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER)")
    for migration in (m001_events, m002_file_positions, m003_ledger):
        migration(db)
        db.execute("INSERT INTO schema_migrations VALUES (?, 0)", (migration.__name__,))
    sql = LedgerSQL()
    encoder = rows.CanonicalEncoder()
    columns = (*rows.COLUMNS, "leaf_index", "leaf_hash")
    insert = f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    roots = []
    for batch in batches:
        encoded = [rows.encode(e) for e in batch]
        db.execute("BEGIN")
        grown = grow(load_frontier(db, sql), [encoder(r) for r in encoded])
        db.executemany(
            insert,
            [
                (*r, grown.first_index + i, h)
                for i, (r, h) in enumerate(zip(encoded, grown.leaf_hashes, strict=True))
            ],
        )
        persist(db, sql, grown, signer)
        db.execute("COMMIT")
        roots.append((grown.frontier.size, grown.frontier.root()))
    db.close()
    return roots


def _events() -> list[list[Event]]:
    return [
        [
            make_event(
                time=T0 + (b * 7 + i) % 3 * DAY + i,
                actor_name=f"user{b}-{i}",
                details={"command": f"/bin/x {i}"} if i % 2 else {},
            )
            for i in range(7)
        ]
        for b in range(4)
    ]


def test_migration_keeps_every_event_and_every_root(tmp_path: Path) -> None:
    """Every v1 event reads back, every signed root and the frontier are unchanged, verify ok."""
    signer = create_signer(tmp_path)
    batches = _events()
    roots = build_v1(tmp_path, batches, signer)
    store = SQLiteStore(tmp_path / "events.db")
    try:
        for batch in batches:
            for event in batch:
                assert store.get(event.id) == event
        assert [(c.size, c.root) for c in store.checkpoints()[: len(roots)]] == roots
        assert store.ledger_frontier().size == 28
        assert store.ledger_frontier().root() == roots[-1][1]
        per_day: dict[str, int] = {}
        for event in (e for batch in batches for e in batch):
            name = f"p2023111{4 + (event.time - T0) // DAY}_default"
            per_day[name] = per_day.get(name, 0) + 1
        assert len(per_day) == 3
        assert {p.name: (p.sealed, p.events) for p in store.partitions()} == {
            name: (False, n) for name, n in per_day.items()
        }
        assert store.count() == 28
        report = verify_ledger(store, load_verifier(tmp_path))
        assert report.ok, report.findings
        assert report.size == 28
        later = make_event(time=T0 + 5)
        store.append([later])  # the tree keeps growing from the migrated frontier
        assert verify_ledger(store, load_verifier(tmp_path)).ok
    finally:
        store.close()
    db = sqlite3.connect(tmp_path / "events.db")
    tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert "events" not in tables


def test_damage_made_before_the_migration_is_still_found(tmp_path: Path) -> None:
    """A v1 row edited before migrating fails its leaf; a v1 row without a leaf is 'inserted'."""
    signer = create_signer(tmp_path)
    batches = _events()
    build_v1(tmp_path, batches, signer)
    db = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    db.execute("UPDATE events SET actor_name = 'nobody' WHERE leaf_index = 5")
    db.execute(
        "INSERT INTO events (id, time, category, action, outcome, severity, raw) VALUES"
        " (x'0190000000007000800000000000abcd', 1, 'audit', 'x', 'success', 'info', 'forged')"
    )
    db.close()
    store = SQLiteStore(tmp_path / "events.db", readonly=False)
    try:
        report = verify_ledger(store, load_verifier(tmp_path))
    finally:
        store.close()
    kinds = {
        (f.kind, f.leaf_index if f.kind != "inserted" else f.event_id) for f in report.findings
    }
    assert ("modified", 5) in kinds
    assert ("inserted", "01900000-0000-7000-8000-00000000abcd") in kinds
