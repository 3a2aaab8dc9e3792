"""Moving a v1 store (one ``events`` table) into the v2 shape; used once, by migration m004."""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Final

from keeptrail.protect.projection import DEFAULT_CLEAR, Projection
from keeptrail.store import rows
from keeptrail.store.partitioning import DEFAULT_CLASS, DayCache, partition_name
from keeptrail.store.sqlite_partitions import UPDATE_STATS, create_partition, insert_sql

_CHUNK: Final = 10_000


def move_v1_events(db: sqlite3.Connection) -> int:
    """Copy every ``events`` row into its plaintext day partition; returns how many moved.

    The ``sealed`` column of a moved row holds its canonical bytes computed from the v1 row
    exactly as v1 ``verify`` computed them, so a row altered before the migration still fails
    its leaf hash afterwards.
    """
    encoder = rows.CanonicalEncoder()
    project = Projection(DEFAULT_CLEAR)
    days = DayCache()
    now = time.time_ns() // 1000
    created: dict[str, list[Any]] = {}  # name -> [events, first_t, last_t, first_leaf, last_leaf]
    columns = ", ".join(rows.COLUMNS)
    last_seq, moved = -(2**63), 0
    while True:
        fetched = db.execute(
            f"SELECT seq, leaf_index, leaf_hash, {columns} FROM events WHERE seq > ?"
            " ORDER BY seq LIMIT ?",
            (last_seq, _CHUNK),
        ).fetchall()
        if not fetched:
            break
        last_seq = fetched[-1][0]
        leaves: list[tuple[Any, ...]] = []
        by_part: dict[str, list[tuple[Any, ...]]] = {}
        for seq, leaf_index, leaf_hash, *values in fetched:
            row = tuple(values)
            time_us = row[rows.TIME_INDEX]
            name = partition_name(days(time_us), DEFAULT_CLASS)
            stats = created.get(name)
            if stats is None:
                create_partition(
                    db,
                    name,
                    day=days(time_us),
                    retention_class=DEFAULT_CLASS,
                    sealed=False,
                    clear=DEFAULT_CLEAR,
                    now=now,
                )
                stats = created[name] = [0, None, None, None, None]
            index = -seq if leaf_index is None else leaf_index
            if leaf_index is not None:
                leaves.append((leaf_index, row[0], name, leaf_hash if leaf_hash else b""))
                stats[3] = leaf_index if stats[3] is None else min(stats[3], leaf_index)
                stats[4] = leaf_index if stats[4] is None else max(stats[4], leaf_index)
            stats[0] += 1
            stats[1] = time_us if stats[1] is None else min(stats[1], time_us)
            stats[2] = time_us if stats[2] is None else max(stats[2], time_us)
            by_part.setdefault(name, []).append((index, *project(row), encoder(row)))
        db.executemany(
            "INSERT INTO leaves (leaf_index, id, partition, leaf_hash) VALUES (?, ?, ?, ?)",
            leaves,
        )
        for name, part_rows in by_part.items():
            db.executemany(insert_sql(name), part_rows)
        moved += len(fetched)
    for name, (n, first_t, last_t, first_leaf, last_leaf) in created.items():
        db.execute(UPDATE_STATS, (n, first_t, first_t, last_t, last_t, first_leaf, last_leaf, name))
    return moved
