"""SQLite tables of the v2 storage shape: leaves, partitions, holds, and per-partition tables.

See docs/storage.md. ``leaves`` is the ledger's view of every event ever stored (kept after a
purge); each partition table holds the events of one day and retention class: the clear
columns (:data:`keeptrail.protect.projection.COLUMNS`) and ``sealed`` (the canonical bytes,
encrypted when the partition is sealed). Its indexes are exactly the search paths, each
ending in ``time`` (and implicitly ``leaf_index``, the rowid), so "newest first" walks an index
and stops after a page.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Final

from keeptrail.protect.projection import COLUMNS, encode_clear
from keeptrail.store.partitioning import NAME_PATTERN, check_name, quoted

_TYPES: Final = {
    "id": "BLOB NOT NULL",
    "time": "INTEGER NOT NULL",
    "ingested_at": "INTEGER",
    "actor_uid": "INTEGER",
    "source_ip": "BLOB",
    "source_port": "INTEGER",
    "collector_offset": "INTEGER",
}
INDEXES: Final = (
    ("time", "time"),
    ("actor_time", "actor_name, time"),
    ("source_ip_time", "source_ip, time"),
    ("action_time", "action, time"),
    ("host_time", "target_host, time"),
)
ROW_COLUMNS: Final = ("leaf_index", *COLUMNS, "sealed")
PARTITION_COLUMNS: Final = (
    "name, day, retention_class, sealed, events, first_time, last_time, first_leaf, last_leaf,"
    " state, created_at, purged_at, purge_event, clear_fields"
)


RECLAIM_PREFIX: Final = "reclaim_"
RECLAIM_PATTERN: Final = re.compile(RECLAIM_PREFIX + "(" + NAME_PATTERN.pattern + ")")


def reclaim_table(name: str) -> str:
    """The quoted name a purged partition's table is renamed to while it waits for reclaim.

    It does not match :data:`~keeptrail.store.partitioning.NAME_PATTERN`, so nothing that
    walks partition tables (search, stats, ``verify``'s look for rows without a leaf) sees it.
    """
    return f'"{RECLAIM_PREFIX}{check_name(name)}"'


def create_registry(db: sqlite3.Connection) -> None:
    """The ``leaves``, ``partitions`` and ``holds`` tables (migration ``m004``)."""
    db.execute(
        "CREATE TABLE leaves (leaf_index INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
        " partition TEXT NOT NULL, leaf_hash BLOB NOT NULL)"
    )
    db.execute(
        """
        CREATE TABLE partitions (
            name TEXT PRIMARY KEY,
            day INTEGER NOT NULL,
            retention_class TEXT NOT NULL,
            sealed INTEGER NOT NULL,
            events INTEGER NOT NULL DEFAULT 0,
            first_time INTEGER,
            last_time INTEGER,
            first_leaf INTEGER,
            last_leaf INTEGER,
            state TEXT NOT NULL DEFAULT 'live',
            created_at INTEGER NOT NULL,
            purged_at INTEGER,
            purge_event TEXT,
            clear_fields TEXT
        )
        """
    )
    db.execute("CREATE INDEX partitions_day ON partitions (day)")
    db.execute(
        """
        CREATE TABLE holds (
            id TEXT PRIMARY KEY,
            query TEXT,
            since INTEGER,
            until INTEGER,
            reason TEXT NOT NULL,
            created_by TEXT,
            created_at INTEGER NOT NULL,
            released_at INTEGER,
            released_by TEXT
        )
        """
    )


def create_partition(
    db: sqlite3.Connection,
    name: str,
    *,
    day: int,
    retention_class: str,
    sealed: bool,
    clear: frozenset[str],
    now: int,
) -> None:
    """Create a partition's table, its indexes and its ``partitions`` row (caller's transaction)."""
    table = quoted(name)
    columns = ", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in COLUMNS)
    db.execute(
        f"CREATE TABLE {table} (leaf_index INTEGER PRIMARY KEY, {columns}, sealed BLOB NOT NULL)"
    )
    for suffix, cols in INDEXES:
        db.execute(f'CREATE INDEX "{check_name(name)}_{suffix}" ON {table} ({cols})')
    db.execute(
        "INSERT INTO partitions (name, day, retention_class, sealed, events, state, created_at,"
        " clear_fields) VALUES (?, ?, ?, ?, 0, 'live', ?, ?)",
        (name, day, retention_class, int(sealed), now, encode_clear(clear)),
    )


def insert_sql(name: str, clear_columns: tuple[str, ...] = COLUMNS) -> str:
    """``INSERT`` of ``(leaf_index, *clear_columns, sealed)`` into a partition table.

    Columns left out (the sealed-only ones) stay NULL.
    """
    columns = ("leaf_index", *clear_columns, "sealed")
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {quoted(name)} ({', '.join(columns)}) VALUES ({marks})"


UPDATE_STATS: Final = (
    "UPDATE partitions SET events = events + ?,"
    " first_time = min(coalesce(first_time, ?), ?), last_time = max(coalesce(last_time, ?), ?),"
    " first_leaf = coalesce(first_leaf, ?), last_leaf = ? WHERE name = ?"
)
