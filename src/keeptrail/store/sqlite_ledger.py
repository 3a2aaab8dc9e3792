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
from keeptrail.ledger.merkle import Frontier, leaf_hash
from keeptrail.ledger.note import Signer, Verifier
from keeptrail.ledger.proof import consistency_proof
from keeptrail.ledger.publish import Publisher
from keeptrail.ledger.tree import LedgerSQL, StoredNodes, load_frontier
from keeptrail.store import rows
from keeptrail.store.contract import FilePosition, LeafRow, LedgerLeaf, StoredCheckpoint

_LEAF_SELECT: Final = f"SELECT leaf_index, seq, leaf_hash, {', '.join(rows.COLUMNS)} FROM events"
_CHECKPOINT_SELECT: Final = "SELECT size, root, note, created_at FROM checkpoints"


class LedgerMixin:
    """Ledger operations for a store holding ``_db`` (a SQLite connection) at ``path``."""

    path: Path
    _db: sqlite3.Connection
    _readonly: bool

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
        row = self._db.execute(f"{_LEAF_SELECT} WHERE id = ?", (key,)).fetchone()
        if row is None or row[0] is None or row[2] is None:
            return None
        event = rows.decode(row[1:2] + row[3:])
        return LedgerLeaf(event, row[0], bytes(row[2]), rows.CanonicalEncoder()(row, 3))

    def ledger_leaves(self, *, chunk: int = 8192) -> Iterator[list[LeafRow]]:
        cursor = self._db.execute(
            f"{_LEAF_SELECT} WHERE leaf_index IS NOT NULL ORDER BY leaf_index"
        )
        encode = rows.CanonicalEncoder()
        while fetched := cursor.fetchmany(chunk):
            yield [_leaf_row(r, encode) for r in fetched]

    def unindexed_events(self, limit: int = 100) -> list[tuple[int, str]]:
        found = self._db.execute(
            "SELECT seq, id FROM events WHERE leaf_index IS NULL OR leaf_hash IS NULL"
            " ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [(seq, rows.uuid_text(bytes(id_))) for seq, id_ in found]

    def leaf_index_of_hash(self, leaf_hash: bytes) -> int | None:
        row = self._db.execute(
            "SELECT leaf_index FROM events WHERE leaf_hash = ? LIMIT 1", (leaf_hash,)
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


def _leaf_row(r: tuple[Any, ...], encode: rows.CanonicalEncoder) -> LeafRow:
    stored = r[2]
    return LeafRow(
        r[0], r[1], bytes(r[3]), None if stored is None else bytes(stored), leaf_hash(encode(r, 3))
    )


def _checkpoint(row: tuple[Any, ...]) -> StoredCheckpoint:
    return StoredCheckpoint(int(row[0]), bytes(row[1]), str(row[2]), int(row[3]))
