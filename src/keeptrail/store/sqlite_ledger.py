"""The ledger half of :class:`~keeptrail.store.sqlite.SQLiteStore`: key, publication, reads.

Kept apart from ``sqlite.py`` so that file stays about events. The per-batch tree growth is in
:mod:`keeptrail.ledger.tree` (backend-neutral SQL); this mixin owns what is SQLite-specific or
per-connection: finding the key next to the database file, recording the ledger's own events,
handing committed checkpoints to the publisher, and the streaming reads ``verify`` and
``prove`` use.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from keeptrail.errors import UserError
from keeptrail.event import Event
from keeptrail.ledger.audit import ledger_event
from keeptrail.ledger.keys import create_signer, key_path, load_signer
from keeptrail.ledger.merkle import Frontier
from keeptrail.ledger.note import Signer, Verifier
from keeptrail.ledger.proof import consistency_proof
from keeptrail.ledger.publish import Publisher
from keeptrail.ledger.tree import LedgerSQL, StoredNodes, load_frontier
from keeptrail.store import rows
from keeptrail.store.contract import FilePosition, LeafRow, LedgerLeaf, StoredCheckpoint
from keeptrail.store.leafcheck import LeafChecker
from keeptrail.store.partitioning import NAME_PATTERN
from keeptrail.store.partitioning import quoted as q
from keeptrail.store.sealed import PartitionKeys, PartitionMeta, event_from_canonical
from keeptrail.store.sqlite_partitions import ROW_COLUMNS

_CHECKPOINT_SELECT: Final = "SELECT size, root, note, created_at FROM checkpoints"


class LedgerMixin:
    """Ledger operations for a store holding ``_db`` (a SQLite connection) at ``path``."""

    path: Path
    _db: sqlite3.Connection
    _readonly: bool
    _keys: PartitionKeys

    def _metas(
        self, since: int | None = None, until: int | None = None, *, include_purged: bool = False
    ) -> list[PartitionMeta]:
        raise NotImplementedError

    def _meta(self, name: str) -> PartitionMeta | None:
        raise NotImplementedError

    def append(self, events: Sequence[Event], positions: Sequence[FilePosition] = ()) -> int:
        """Provided by the store class this is mixed into."""
        raise NotImplementedError

    # --- set-up ----------------------------------------------------------------------------------

    def _init_ledger(self, signer: Signer | None, publisher: Publisher | None) -> None:
        self._sql = LedgerSQL("?")
        self._encoder = rows.CanonicalEncoder()
        self._nodes = StoredNodes(self._db, self._sql)
        self._publisher = publisher if publisher is not None else Publisher.from_env()
        self._publishing = True
        self._failed_targets: set[str] = set()
        data_dir = self.path.parent
        self._signer = signer if signer is not None else load_signer(data_dir)
        if self._signer is not None or self._readonly:
            return
        if self.latest_checkpoint() is not None:
            raise UserError(
                f"the ledger signing key {key_path(data_dir)} is missing but this store has"
                " signed checkpoints: restore the key file (a new key would not match them)"
            )
        try:
            self._signer = created = create_signer(data_dir)
        except FileExistsError:  # another process created it first
            self._signer = load_signer(data_dir)
            return
        vkey = created.verifier().key
        self._record(
            ledger_event(
                "ledger.key_created",
                "success",
                f"ledger signing key created; verifier key {vkey}",
                {"verifier_key": vkey, "key_file": str(key_path(data_dir))},
            )
        )

    def _require_signer(self) -> Signer:
        if self._signer is None:
            raise UserError(f"no ledger signing key for {self.path}; open the store writable once")
        return self._signer

    @property
    def verifier(self) -> Verifier | None:
        return self._signer.verifier() if self._signer is not None else None

    # --- publication -----------------------------------------------------------------------------

    def _record(self, event: Event) -> None:
        """Append one of the ledger's own events without publishing its checkpoint."""
        publishing, self._publishing = self._publishing, False
        try:
            self.append([event])
        finally:
            self._publishing = publishing

    def _consistency(self, old: int, new: int) -> list[bytes]:
        return consistency_proof(old, new, self._nodes)

    def _published(self, note: str, size: int) -> None:
        if not self._publishing or not self._publisher.enabled:
            return
        self._report(self._publisher.publish(note, size, self._consistency))

    def _flush_publication(self) -> None:
        if self._publishing and not self._readonly:
            self._report(self._publisher.flush(self._consistency))

    def _report(self, failures: list[tuple[str, str]]) -> None:
        """Record each newly failing target once (until it works again), then carry on."""
        failing = {target for target, _ in failures}
        self._failed_targets &= failing
        for target, error in failures:
            if target in self._failed_targets:
                continue
            self._failed_targets.add(target)
            self._record(
                ledger_event(
                    "ledger.publish_failed",
                    "failure",
                    f"checkpoint publication to {target} failed: {error}",
                    {"target": target, "error": error[:500]},
                )
            )

    # --- reads -----------------------------------------------------------------------------------

    def ledger_frontier(self) -> Frontier:
        return load_frontier(self._db, self._sql)

    def ledger_node(self, level: int, index: int) -> bytes:
        return self._nodes(level, index)

    def ledger_leaf(self, event_id: str) -> LedgerLeaf | None:
        try:
            key = rows.uuid_bytes(event_id)
        except ValueError:
            return None
        found = self._db.execute(
            "SELECT leaf_index, partition, leaf_hash FROM leaves WHERE id = ?", (key,)
        ).fetchone()
        if found is None:
            return None
        meta = self._meta(found[1])
        if meta is None or meta.state == "purged":
            return None
        row = self._db.execute(
            f"SELECT id, sealed FROM {q(meta.name)} WHERE leaf_index = ?", (found[0],)
        ).fetchone()
        if row is None:
            return None
        canonical = self._keys.canonical(meta, row[0], row[1])
        return LedgerLeaf(event_from_canonical(canonical), found[0], bytes(found[2]), canonical)

    def ledger_leaves(self, *, chunk: int = 8192) -> Iterator[list[LeafRow]]:
        db = self._db
        metas = {m.name: m for m in self._metas(include_purged=True)}
        recorded: dict[str, bool] = {}
        for m in metas.values():
            if m.state in ("purged", "partial"):
                recorded[m.name] = _purge_recorded(db, m.purge_event)
        check = LeafChecker(self._keys, recorded)
        cursor = db.execute(
            "SELECT leaf_index, id, partition, leaf_hash FROM leaves ORDER BY leaf_index"
        )
        select = ", ".join(ROW_COLUMNS)
        while fetched := cursor.fetchmany(chunk):
            spans: dict[str, tuple[int, int]] = {}
            for index, _, name, _ in fetched:
                lo_hi = spans.get(name)
                spans[name] = (index, index) if lo_hi is None else (lo_hi[0], index)
            found: dict[int, tuple[Any, ...]] = {}
            for name, (lo, hi) in spans.items():
                meta = metas.get(name)
                if meta is None or meta.state == "purged":
                    continue
                for r in db.execute(
                    f"SELECT {select} FROM {q(name)} WHERE leaf_index BETWEEN ? AND ?", (lo, hi)
                ):
                    found[r[0]] = r
            yield [
                check(index, bytes(id_), name, bytes(stored), metas.get(name), found.get(index))
                for index, id_, name, stored in fetched
            ]

    def unindexed_events(self, limit: int = 100) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        # Every table shaped like a partition, registered or not: rows nobody appended.
        names = sorted(
            n
            for (n,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if NAME_PATTERN.fullmatch(n)
        )
        for name in names:
            if len(out) >= limit:
                break
            found = self._db.execute(
                f"SELECT p.leaf_index, p.id FROM {q(name)} AS p WHERE NOT EXISTS"
                " (SELECT 1 FROM leaves AS l WHERE l.leaf_index = p.leaf_index"
                " AND l.partition = ? AND l.id = p.id) ORDER BY p.leaf_index LIMIT ?",
                (name, limit - len(out)),
            ).fetchall()
            out.extend((int(index), rows.uuid_text(bytes(id_))) for index, id_ in found)
        return out

    def leaf_index_of_hash(self, leaf_hash: bytes) -> int | None:
        row = self._db.execute(
            "SELECT leaf_index FROM leaves WHERE leaf_hash = ? LIMIT 1", (leaf_hash,)
        ).fetchone()
        return None if row is None else int(row[0])

    def checkpoints(self) -> list[StoredCheckpoint]:
        found = self._db.execute(f"{_CHECKPOINT_SELECT} ORDER BY size").fetchall()
        return [_checkpoint(r) for r in found]

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        row = self._db.execute(f"{_CHECKPOINT_SELECT} ORDER BY size DESC LIMIT 1").fetchone()
        return _checkpoint(row) if row else None

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        row = self._db.execute(f"{_CHECKPOINT_SELECT} WHERE size = ?", (size,)).fetchone()
        return _checkpoint(row) if row else None


def _purge_recorded(db: sqlite3.Connection, purge_event: str | None) -> bool:
    """Whether a purge event id names a stored leaf (a purge is itself an audited event)."""
    if not purge_event:
        return False
    try:
        key = rows.uuid_bytes(purge_event)
    except ValueError:
        return False
    return db.execute("SELECT 1 FROM leaves WHERE id = ?", (key,)).fetchone() is not None


def _checkpoint(row: tuple[Any, ...]) -> StoredCheckpoint:
    return StoredCheckpoint(int(row[0]), bytes(row[1]), str(row[2]), int(row[3]))
