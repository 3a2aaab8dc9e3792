"""Helpers for the tamper tests: a real data directory, raw SQL access, and verification.

The store here has no keyring, so its partitions are plaintext (``sealed`` holds the canonical
bytes unencrypted, compressed by keeptrail.store.compact, which needs no key): the attacker can
rewrite events consistently, which is the hard case for ``verify``. Sealed partitions are
tampered with in tests/store/test_sealed_store.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from tests.factories import make_event

from keeptrail.event import Event
from keeptrail.ledger.keys import load_verifier
from keeptrail.ledger.publish import Publisher
from keeptrail.ledger.verify import Report, verify_ledger
from keeptrail.protect.projection import COLUMNS, DocumentProjection, decode_clear
from keeptrail.store.compact import pack, unpack
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
        "SELECT leaf_index FROM leaves WHERE id = ?", (bytes.fromhex(event_id.replace("-", "")),)
    ).fetchone()
    db.close()
    return int(index)


def table_of(db: sqlite3.Connection, leaf_index: int) -> str:
    """The quoted partition table holding a leaf's event."""
    (name,) = db.execute(
        "SELECT partition FROM leaves WHERE leaf_index = ?", (leaf_index,)
    ).fetchone()
    return f'"{name}"'


def edit_event(
    db: sqlite3.Connection, leaf_index: int, change: Callable[[dict[str, Any]], None]
) -> None:
    """Rewrite a plaintext event consistently: its canonical bytes and its clear columns."""
    table = table_of(db, leaf_index)
    (blob,) = db.execute(
        f"SELECT sealed FROM {table} WHERE leaf_index = ?", (leaf_index,)
    ).fetchone()
    (clear,) = db.execute(
        "SELECT clear_fields FROM partitions WHERE name = ?", (table.strip('"'),)
    ).fetchone()
    doc = orjson.loads(unpack(bytes(blob)))
    change(doc)
    values = DocumentProjection(decode_clear(clear))(doc)
    sets = ", ".join(f"{c} = ?" for c in COLUMNS)
    db.execute(
        f"UPDATE {table} SET {sets}, sealed = ? WHERE leaf_index = ?",
        (*values, pack(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)), leaf_index),
    )


def rewrite_tree(db: sqlite3.Connection) -> None:
    """Recompute every stored leaf hash, node and the frontier from the rows, as a thorough
    attacker with the source code would after editing events."""
    from keeptrail.ledger.merkle import Frontier  # noqa: PLC0415
    from keeptrail.ledger.tree import LedgerSQL, grow  # noqa: PLC0415

    leaves = db.execute("SELECT leaf_index, partition FROM leaves ORDER BY leaf_index").fetchall()
    blobs = []
    for index, name in leaves:
        (blob,) = db.execute(
            f'SELECT sealed FROM "{name}" WHERE leaf_index = ?', (index,)
        ).fetchone()
        blobs.append(unpack(bytes(blob)))
    grown = grow(Frontier(), blobs)
    db.execute("BEGIN")
    db.executemany(
        "UPDATE leaves SET leaf_hash = ? WHERE leaf_index = ?",
        [(h, r[0]) for h, r in zip(grown.leaf_hashes, leaves, strict=True)],
    )
    db.execute("DELETE FROM ledger_nodes")
    db.executemany(LedgerSQL().insert_node, grown.nodes)
    db.execute(LedgerSQL().save_frontier, (grown.frontier.to_bytes(),))
    db.execute("COMMIT")


def move_leaf(db: sqlite3.Connection, old: int, new: int) -> None:
    """Give a leaf (its ``leaves`` row and its partition row) another index."""
    table = table_of(db, old)
    db.execute("UPDATE leaves SET leaf_index = ? WHERE leaf_index = ?", (new, old))
    db.execute(f"UPDATE {table} SET leaf_index = ? WHERE leaf_index = ?", (new, old))
