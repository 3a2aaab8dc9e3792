"""SQLite schema, as named migrations applied in order and recorded in ``schema_migrations``.

A migration is a function of a connection; its name is its identity. Never edit one that has
shipped: add the next. Each runs in its own transaction with the record of having run.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Final

from keeptrail.store.sqlite_partitions import create_registry


def m001_events(db: sqlite3.Connection) -> None:
    """Events in ingest order (``seq``), with the indexes the search paths need, and no more.

    Every filtered search the CLI and API make is one of: a time range (``time``), an actor, a
    source address, an action or a host over a time range — each has an index whose last
    column is time, so SQLite walks it newest first and stops after a page.
    """
    db.execute(
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            id BLOB NOT NULL UNIQUE,
            time INTEGER NOT NULL,
            ingested_at INTEGER,
            category TEXT NOT NULL,
            action TEXT NOT NULL,
            outcome TEXT NOT NULL,
            reason TEXT,
            severity TEXT NOT NULL,
            actor_name TEXT,
            actor_uid INTEGER,
            actor_type TEXT,
            actor_session TEXT,
            actor_auth_method TEXT,
            actor_effective_user TEXT,
            source_ip BLOB,
            source_port INTEGER,
            source_host TEXT,
            target_host TEXT,
            target_system TEXT,
            target_resource TEXT,
            target_resource_type TEXT,
            details TEXT,
            collector_host TEXT,
            collector_source TEXT,
            collector_parser TEXT,
            collector_file TEXT,
            collector_offset INTEGER,
            raw TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX events_time ON events (time)")
    db.execute("CREATE INDEX events_actor_time ON events (actor_name, time)")
    db.execute("CREATE INDEX events_source_ip_time ON events (source_ip, time)")
    db.execute("CREATE INDEX events_action_time ON events (action, time)")
    db.execute("CREATE INDEX events_host_time ON events (target_host, time)")


def m002_file_positions(db: sqlite3.Connection) -> None:
    """Where each file was read up to, committed in the same transaction as its events."""
    db.execute(
        """
        CREATE TABLE file_positions (
            path TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            fingerprint_len INTEGER NOT NULL,
            offset INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX file_positions_fingerprint ON file_positions (fingerprint)")


def m003_ledger(db: sqlite3.Connection) -> None:
    """The tamper-evident ledger (docs/ledger.md): leaf columns, tree nodes, frontier, checkpoints.

    ``leaf_index`` is the event's position in the Merkle tree (ingest order, 0-based,
    contiguous) and ``leaf_hash`` its RFC 9162 leaf hash. ``ledger_nodes`` keeps the perfect
    subtree hashes of every fourth level (4, 8, 12, …) so proofs never rehash more than 15
    nodes per step; ``ledger_state`` the compact frontier; ``checkpoints`` every signed tree
    head. Events stored before this migration become the first leaves, in ``seq`` order.
    """
    db.execute("ALTER TABLE events ADD COLUMN leaf_index INTEGER")
    db.execute("ALTER TABLE events ADD COLUMN leaf_hash BLOB")
    db.execute("CREATE UNIQUE INDEX events_leaf_index ON events (leaf_index)")
    db.execute(
        "CREATE TABLE ledger_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL,"
        " hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE ledger_state (id INTEGER PRIMARY KEY CHECK (id = 1), frontier BLOB NOT NULL)"
    )
    db.execute(
        "CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, root BLOB NOT NULL,"
        " note TEXT NOT NULL, created_at INTEGER NOT NULL)"
    )
    from keeptrail.ledger.tree import backfill  # noqa: PLC0415  # only this migration needs it

    backfill(db)


def m004_partitions(db: sqlite3.Connection) -> None:
    """Storage shape v2 (docs/storage.md): ``leaves`` + one table per day and retention class.

    Every v1 event moves, in ``seq`` order, into a plaintext partition (``sealed = 0``, class
    ``default``) of its day, keeping its leaf index and leaf hash, so every root and
    checkpoint still verifies; then the ``events`` table is dropped. A v1 row without a leaf
    (evidence of insertion) keeps that status: it moves with the negative leaf index
    ``-seq`` and no ``leaves`` row, and ``verify`` reports it.
    """
    from keeptrail.store.sqlite_v1 import move_v1_events  # noqa: PLC0415  # only needed here

    create_registry(db)
    move_v1_events(db)
    db.execute("DROP TABLE events")


MIGRATIONS: Final[tuple[Callable[[sqlite3.Connection], None], ...]] = (
    m001_events,
    m002_file_positions,
    m003_ledger,
    m004_partitions,
)


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet recorded; returns the names applied."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER)"
    )
    done = {name for (name,) in db.execute("SELECT name FROM schema_migrations")}
    applied = []
    for migration in MIGRATIONS:
        name = migration.__name__
        if name in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied it while we waited for the write lock.
            if db.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone():
                db.execute("COMMIT")
                continue
            migration(db)
            db.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                (name, int(time.time())),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied
