"""Partitions, purges and legal holds of :class:`~keeptrail.store.sqlite.SQLiteStore`.

A purge of a sealed partition with nothing held inside destroys its data key *first* (so every
copy of the database, every backup, becomes unreadable for it at that instant), then detaches
its table in one short transaction: ``ALTER TABLE ... RENAME TO reclaim_<name>`` (a schema
edit; no row or page is touched; its indexes stay attached) and the ``partitions`` row marked
``purged``. Neither step depends on the number of events. Freeing the pages — SQLite's
``DROP TABLE`` walks every page of the table and its indexes, about 9 µs per event — is
:meth:`RetentionMixin.reclaim`, run afterwards (``keeptrail retention apply`` calls it once the
purge event is recorded; ``keeptrail retention reclaim`` resumes it), one table per
transaction so a crash leaves a consistent store and the next reclaim finishes.

An unsealed partition has no key to destroy: its rows *are* the data, so its table is dropped
inside the purge with ``secure_delete`` on (time grows with its size). With held events inside
only the other rows are deleted and the key is kept (state ``partial``). Leaves stay: the
ledger and its proofs for other events still verify.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final

from keeptrail.errors import UserError
from keeptrail.event import Event
from keeptrail.query.compile_sql import Dialect
from keeptrail.store.contract import Hold, PartitionInfo, PurgeResult, ReclaimResult
from keeptrail.store.hold_match import held_leaves
from keeptrail.store.partitioning import quoted as q
from keeptrail.store.sealed import PartitionKeys, PartitionMeta
from keeptrail.store.sqlite_partitions import RECLAIM_PATTERN, reclaim_table

_HOLD_COLUMNS: Final = (
    "id, query, since, until, reason, created_by, created_at, released_at, released_by"
)


class RetentionMixin:
    """Partition listing, purging and holds for a store holding ``_db`` and ``_keys``."""

    _db: sqlite3.Connection
    _keys: PartitionKeys
    _routes: dict[Any, Any]
    _readonly: bool

    def _metas(
        self, since: int | None = None, until: int | None = None, *, include_purged: bool = False
    ) -> list[PartitionMeta]:
        raise NotImplementedError

    def _meta(self, name: str) -> PartitionMeta | None:
        raise NotImplementedError

    def partitions(self) -> list[PartitionInfo]:
        metas = self._metas(include_purged=True)
        return [m.info() for m in sorted(metas, key=lambda m: (m.day, m.name))]

    def purge_partition(
        self, name: str, *, holds: Sequence[Hold], purge_event_id: str
    ) -> PurgeResult:
        meta = self._meta(name)
        if meta is None:
            raise UserError(f"no partition named {name!r}")
        if meta.state == "purged":
            return PurgeResult(name, "purged", 0, 0, False, [], meta.first_time, meta.last_time)
        held = held_leaves(
            meta, holds, Dialect.SQLITE, leaves=self._hold_leaves, events=self._hold_events
        )
        now = time.time_ns() // 1000
        db = self._db
        if not held:
            destroyed = self._keys.shred(meta, purge_event_id)  # before the rows go
            if not destroyed:
                db.execute("PRAGMA secure_delete = ON")  # plaintext pages are zeroed when freed
            db.execute("BEGIN IMMEDIATE")
            try:
                exists = db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
                ).fetchone()
                if exists is not None and destroyed:
                    # O(1): a schema edit. The ciphertext stays until reclaim() frees its pages,
                    # but its key is already gone, in this file and in every copy of it.
                    db.execute(f"ALTER TABLE {q(name)} RENAME TO {reclaim_table(name)}")
                elif exists is not None:
                    db.execute(f"DROP TABLE {q(name)}")
                db.execute(
                    "UPDATE partitions SET state = 'purged', events = 0, purged_at = ?,"
                    " purge_event = ? WHERE name = ?",
                    (now, purge_event_id, name),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            finally:
                db.execute("PRAGMA secure_delete = OFF")
            self._routes.clear()
            span = (
                [(meta.first_leaf, meta.last_leaf)]
                if meta.first_leaf is not None and meta.last_leaf is not None
                else []
            )
            return PurgeResult(
                name, "purged", meta.events, 0, destroyed, span, meta.first_time, meta.last_time
            )
        if not meta.sealed:
            db.execute("PRAGMA secure_delete = ON")
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS purge_keep (leaf_index INTEGER PRIMARY KEY)"
            )
            db.execute("DELETE FROM temp.purge_keep")
            db.executemany("INSERT INTO temp.purge_keep VALUES (?)", [(i,) for i in held])
            removed = [
                r[0]
                for r in db.execute(
                    f"SELECT leaf_index FROM {q(name)} WHERE leaf_index NOT IN"
                    " (SELECT leaf_index FROM temp.purge_keep) ORDER BY leaf_index"
                )
            ]
            db.execute(
                f"DELETE FROM {q(name)} WHERE leaf_index NOT IN"
                " (SELECT leaf_index FROM temp.purge_keep)"
            )
            (kept,) = db.execute(f"SELECT count(*) FROM {q(name)}").fetchone()
            state = "partial" if removed else meta.state
            if removed:
                db.execute(
                    "UPDATE partitions SET state = 'partial', events = ?, purged_at = ?,"
                    " purge_event = ? WHERE name = ?",
                    (kept, now, purge_event_id, name),
                )
            db.execute("DELETE FROM temp.purge_keep")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.execute("PRAGMA secure_delete = OFF")
        self._routes.clear()
        return PurgeResult(
            name, state, len(removed), kept, False, _runs(removed), meta.first_time, meta.last_time
        )

    def awaiting_reclaim(self) -> list[str]:
        """Partitions purged (key destroyed, table detached) whose pages are not freed yet."""
        found = self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'reclaim%'"
            " ORDER BY name"
        ).fetchall()
        names = [m.group(1) for (n,) in found if (m := RECLAIM_PATTERN.fullmatch(n))]
        if not names:
            return []
        purged = {
            n
            for (n,) in self._db.execute(
                "SELECT name FROM partitions WHERE state = 'purged'"
            ).fetchall()
        }
        # Only a purged partition's detached table is ever dropped here: a table renamed by
        # hand (a live partition's) is not reclaim's to free.
        return [n for n in names if n in purged]

    def reclaim(self, budget_seconds: float | None = None) -> ReclaimResult:
        """Free the pages of detached tables, one per transaction, within ``budget_seconds``.

        At least one table is dropped per call when any waits (a single ``DROP TABLE`` cannot
        be split), then none is started once the budget is spent. A crash mid-way rolls that
        one ``DROP`` back: the table is still queued and the next call drops it.
        """
        if self._readonly:
            raise UserError("the store is open read-only: reclaim needs it writable")
        started = time.perf_counter()
        queue = self.awaiting_reclaim()
        dropped: list[str] = []
        db = self._db
        for name in queue:
            elapsed = time.perf_counter() - started
            if dropped and budget_seconds is not None and elapsed >= budget_seconds:
                break
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(f"DROP TABLE IF EXISTS {reclaim_table(name)}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            dropped.append(name)
        return ReclaimResult(dropped, len(queue) - len(dropped), time.perf_counter() - started)

    def _hold_leaves(self, meta: PartitionMeta, where: str, params: list[Any]) -> list[int]:
        found = self._db.execute(f"SELECT leaf_index FROM {q(meta.name)}{where}", params)
        return [r[0] for r in found]

    def _hold_events(
        self, meta: PartitionMeta, where: str, params: list[Any]
    ) -> Iterator[tuple[int, Event]]:
        for leaf, id16, blob in self._db.execute(
            f"SELECT leaf_index, id, sealed FROM {q(meta.name)}{where}", params
        ):
            yield leaf, self._keys.event(meta, id16, blob)

    # --- holds -----------------------------------------------------------------------------------

    def add_hold(self, hold: Hold) -> None:
        try:
            self._db.execute(
                f"INSERT INTO holds ({_HOLD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    hold.id,
                    hold.query,
                    hold.since,
                    hold.until,
                    hold.reason,
                    hold.created_by,
                    hold.created_at,
                    hold.released_at,
                    hold.released_by,
                ),
            )
        except sqlite3.IntegrityError:
            raise UserError(f"a hold with id {hold.id} already exists") from None

    def holds(self, active_only: bool = True) -> list[Hold]:
        where = " WHERE released_at IS NULL" if active_only else ""
        found = self._db.execute(
            f"SELECT {_HOLD_COLUMNS} FROM holds{where} ORDER BY created_at, id"
        ).fetchall()
        return [Hold(*r) for r in found]

    def release_hold(self, hold_id: str, by: str | None, at: int) -> Hold:
        self._db.execute(
            "UPDATE holds SET released_at = ?, released_by = ?"
            " WHERE id = ? AND released_at IS NULL",
            (at, by, hold_id),
        )
        row = self._db.execute(
            f"SELECT {_HOLD_COLUMNS} FROM holds WHERE id = ?", (hold_id,)
        ).fetchone()
        if row is None:
            raise KeyError(hold_id)
        return Hold(*row)


def _runs(indexes: list[int]) -> list[tuple[int, int]]:
    """Sorted integers as inclusive ``(first, last)`` runs of consecutive values."""
    runs: list[tuple[int, int]] = []
    for i in indexes:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs
