"""Helpers for the tamper tests: a real data directory, raw SQL access, and verification."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from tests.factories import make_event

from keeptrail.event import Event
from keeptrail.ledger.keys import load_verifier
from keeptrail.ledger.publish import Publisher
from keeptrail.ledger.verify import Report, verify_ledger
from keeptrail.store.sqlite import SQLiteStore


def build(data: Path, batches: Iterable[int], *, log: Path | None = None) -> list[Event]:
    """Append batches of fresh events (sizes given) to the store in ``data``; returns them all."""
    store = SQLiteStore(data / "events.db", publisher=Publisher(log=log))
    events: list[Event] = []
    try:
        for n in batches:
            batch = [
                make_event(actor_name=f"user{len(events) + i}", time=1_700_000_000_000_000 + i)
                for i in range(n)
            ]
            store.append(batch)
            events.extend(batch)
    finally:
        store.close()
    return events


def raw(data: Path) -> sqlite3.Connection:
    """A plain stdlib connection to the event database, as an attacker would use."""
    return sqlite3.connect(data / "events.db", isolation_level=None)


def check(data: Path, external: Iterable[tuple[str, str]] = ()) -> Report:
    """Verify the store in ``data`` with its own verifier key, without recording a run."""
    store = SQLiteStore(data / "events.db", readonly=True)
    try:
        return verify_ledger(store, load_verifier(data), external=list(external))
    finally:
        store.close()


def leaf_of(data: Path, event_id: str) -> int:
    """The leaf index stored for an event."""
    db = raw(data)
    (index,) = db.execute(
        "SELECT leaf_index FROM events WHERE id = ?", (bytes.fromhex(event_id.replace("-", "")),)
    ).fetchone()
    db.close()
    return int(index)


def rewrite_tree(db: sqlite3.Connection) -> None:
    """Recompute every stored leaf hash, node and the frontier from the rows, as a thorough
    attacker with the source code would after editing events."""
    from keeptrail.ledger.merkle import Frontier  # noqa: PLC0415
    from keeptrail.ledger.tree import LedgerSQL, grow  # noqa: PLC0415
    from keeptrail.store import rows  # noqa: PLC0415

    fetched = db.execute(
        f"SELECT leaf_index, {', '.join(rows.COLUMNS)} FROM events ORDER BY leaf_index"
    ).fetchall()
    encoder = rows.CanonicalEncoder()
    grown = grow(Frontier(), (encoder(r, 1) for r in fetched))
    db.execute("BEGIN")
    db.executemany(
        "UPDATE events SET leaf_hash = ? WHERE leaf_index = ?",
        [(h, r[0]) for h, r in zip(grown.leaf_hashes, fetched, strict=True)],
    )
    db.execute("DELETE FROM ledger_nodes")
    db.executemany(LedgerSQL().insert_node, grown.nodes)
    db.execute(LedgerSQL().save_frontier, (grown.frontier.to_bytes(),))
    db.execute("COMMIT")
