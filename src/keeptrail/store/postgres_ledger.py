"""The ledger half of :class:`~keeptrail.store.postgres.PostgresStore`: key, publication, reads.

The tree itself is grown by the integrator (:mod:`.integrator`) with the backend-neutral
statements of :mod:`keeptrail.ledger.tree`; this mixin owns the signing key (one per
deployment: its verifier is recorded in ``ledger_key`` and a server holding another key
refuses to start), handing signed checkpoints to the publisher, and the streaming reads that
``verify`` and ``prove`` use.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import orjson
import psycopg

from keeptrail.errors import UserError
from keeptrail.event import Event
from keeptrail.ledger.audit import ledger_event
from keeptrail.ledger.keys import create_signer, key_path, load_signer
from keeptrail.ledger.merkle import Frontier
from keeptrail.ledger.note import Signer, Verifier
from keeptrail.ledger.proof import consistency_proof
from keeptrail.ledger.publish import Publisher
from keeptrail.ledger.tree import LedgerSQL, StoredNodes, load_frontier
from keeptrail.store.contract import FilePosition, LeafRow, LedgerLeaf, StoredCheckpoint
from keeptrail.store.leafcheck import LeafChecker
from keeptrail.store.postgres_schema import CLEAR_NAMES
from keeptrail.store.sealed import PartitionKeys, PartitionMeta

_CHECKPOINT_SELECT: Final = "SELECT size, root, note, created_at FROM checkpoints"
_CLEAR: Final = ", ".join(f"e.{c}" for c in CLEAR_NAMES)
_ID_AT: Final = CLEAR_NAMES.index("id")
log = logging.getLogger(__name__)


class PgLedgerMixin:
    """Ledger operations for a store holding ``_db`` (a psycopg connection, autocommit)."""

    _db: psycopg.Connection
    _lock: threading.RLock
    _readonly: bool
    _data_dir: Path
    _keys: PartitionKeys
    _meta: dict[str, PartitionMeta]

    def append(self, events: Sequence[Event], positions: Sequence[FilePosition] = ()) -> int:
        """Provided by the store class this is mixed into."""
        raise NotImplementedError

    def _canonical(self, partition: str, id16: bytes, blob: bytes) -> bytes:
        """Provided by the store class this is mixed into."""
        raise NotImplementedError

    def _partition_meta(self, name: str) -> PartitionMeta:
        """Provided by the store class this is mixed into."""
        raise NotImplementedError

    def _refresh_meta(self) -> None:
        """Provided by the store class this is mixed into."""
        raise NotImplementedError

    # --- set-up ----------------------------------------------------------------------------------

    def _init_ledger(self, signer: Signer | None, publisher: Publisher | None) -> None:
        self._sql = LedgerSQL("%s")
        self._nodes = StoredNodes(self._db.cursor(), self._sql)
        self._publisher = publisher if publisher is not None else Publisher.from_env()
        self._publish_lock = threading.Lock()
        self._publishing = True
        self._failed_targets: set[str] = set()
        directory = self._data_dir
        self._signer = signer if signer is not None else load_signer(directory)
        registered = self._registered_verifier()
        if self._signer is None and not self._readonly:
            if registered is not None or self.latest_checkpoint() is not None:
                raise UserError(
                    f"this PostgreSQL ledger is signed by {registered or 'another key'} but"
                    f" there is no key at {key_path(directory)}: copy the key file of the"
                    " first server there (every server signs with the same key)"
                )
            try:
                self._signer = create_signer(directory)
            except FileExistsError:
                self._signer = load_signer(directory)
            created = True
        else:
            created = False
        if self._signer is None or self._readonly:
            return
        vkey = self._signer.verifier().key
        if registered is None:
            self._db.execute(
                "INSERT INTO ledger_key (id, verifier) VALUES (1, %s) ON CONFLICT DO NOTHING",
                (vkey,),
            )
            registered = self._registered_verifier()
        if registered != vkey:
            raise UserError(
                f"the key at {key_path(directory)} is not this ledger's signer ({registered}):"
                " every server must be given the same ledger key file"
            )
        if created:
            self._record(
                ledger_event(
                    "ledger.key_created",
                    "success",
                    f"ledger signing key created; verifier key {vkey}",
                    {"verifier_key": vkey, "key_file": str(key_path(directory))},
                )
            )

    def _registered_verifier(self) -> str | None:
        try:
            row = self._db.execute("SELECT verifier FROM ledger_key WHERE id = 1").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return str(row[0]) if row else None

    def _require_signer(self) -> Signer:
        if self._signer is None:
            raise UserError("no ledger signing key: open the store writable once")
        return self._signer

    @property
    def verifier(self) -> Verifier | None:
        if self._signer is not None:
            return self._signer.verifier()
        registered = self._registered_verifier()
        if registered is None:
            return None
        from keeptrail.ledger.note import parse_verifier_key  # noqa: PLC0415

        return parse_verifier_key(registered)

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
        with self._publish_lock:
            failures = self._publisher.publish(note, size, self._consistency)
        self._report(failures)

    def _flush_publication(self) -> None:
        if self._publishing and not self._readonly and self._publisher.enabled:
            with self._publish_lock:
                failures = self._publisher.flush(self._consistency)
            self._report(failures)

    def _log_publish_failure(self, target: str, error: str) -> None:
        log.warning("checkpoint publication to %s failed: %s", target, error[:500])

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
        with self._lock:
            return load_frontier(self._db.cursor(), self._sql)

    def ledger_node(self, level: int, index: int) -> bytes:
        with self._lock:
            return self._nodes(level, index)

    def ledger_leaf(self, event_id: str) -> LedgerLeaf | None:
        try:
            key = uuid.UUID(event_id)
        except ValueError:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT l.leaf_index, l.leaf_hash, l.partition, e.sealed FROM leaves l"
                " JOIN events e ON e.leaf_index = l.leaf_index WHERE l.id = %s",
                (key,),
            ).fetchone()
            if row is None:
                return None
            leaf, stored, partition, blob = row
            canonical = self._canonical(partition, key.bytes, bytes(blob))
        from keeptrail.event import from_document  # noqa: PLC0415

        event = from_document(orjson.loads(canonical))
        return LedgerLeaf(event, int(leaf), bytes(stored), canonical)

    def ledger_leaves(self, *, chunk: int = 8192) -> Iterator[list[LeafRow]]:
        """Every leaf in order with its partition row, checked by the shared LeafChecker.

        One ordered walk of ``leaves`` joined to ``events`` on the leaf index (each partition's
        ``leaf_index`` index); the checker opens the sealed bytes, hashes them and holds the
        clear columns against the opened event, as for SQLite.
        """
        with self._lock:
            self._refresh_meta()
            metas = dict(self._meta)
            recorded: dict[str, bool] = {}
            for m in metas.values():
                if m.state in ("purged", "partial"):
                    recorded[m.name] = self._purge_recorded(m.purge_event)
        check = LeafChecker(self._keys, recorded)
        with (
            self._lock,
            self._db.transaction(),
            self._db.cursor(name=f"kt_leaves_{uuid.uuid4().hex[:8]}") as cur,
        ):
            cur.itersize = chunk
            cur.execute(
                "SELECT l.leaf_index, l.id, l.partition, l.leaf_hash, e.leaf_index,"
                f" {_CLEAR}, e.sealed FROM leaves l"
                " LEFT JOIN events e ON e.leaf_index = l.leaf_index ORDER BY l.leaf_index"
            )
            out: list[LeafRow] = []
            for r in cur:
                index, id_, name, stored = r[:4]
                row: list[Any] | None = None
                if r[4] is not None:
                    row = list(r[4:])
                    row[1 + _ID_AT] = row[1 + _ID_AT].bytes
                out.append(check(index, id_.bytes, name, bytes(stored), metas.get(name), row))
                if len(out) >= chunk:
                    yield out
                    out = []
            if out:
                yield out

    def _purge_recorded(self, event_id: str | None) -> bool:
        """Whether a purge event is itself a leaf of the ledger."""
        if not event_id:
            return False
        try:
            key = uuid.UUID(event_id)
        except ValueError:
            return False
        row = self._db.execute("SELECT 1 FROM leaves WHERE id = %s", (key,)).fetchone()
        return row is not None

    def unindexed_events(self, limit: int = 100) -> list[tuple[int, str]]:
        with self._lock:
            found = self._db.execute(
                "SELECT e.leaf_index, e.id FROM events e LEFT JOIN leaves l"
                " ON l.leaf_index = e.leaf_index AND l.id = e.id WHERE l.leaf_index IS NULL"
                " ORDER BY e.leaf_index LIMIT %s",
                (limit,),
            ).fetchall()
        return [(int(leaf), str(id_)) for leaf, id_ in found]

    def leaf_index_of_hash(self, leaf_hash: bytes) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT leaf_index FROM leaves WHERE leaf_hash = %s LIMIT 1", (leaf_hash,)
            ).fetchone()
        return None if row is None else int(row[0])

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._lock:
            found = self._db.execute(f"{_CHECKPOINT_SELECT} ORDER BY size").fetchall()
        return [_checkpoint(r) for r in found]

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self._lock:
            row = self._db.execute(f"{_CHECKPOINT_SELECT} ORDER BY size DESC LIMIT 1").fetchone()
        return _checkpoint(row) if row else None

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        with self._lock:
            row = self._db.execute(f"{_CHECKPOINT_SELECT} WHERE size = %s", (size,)).fetchone()
        return _checkpoint(row) if row else None


def _checkpoint(row: tuple[Any, ...]) -> StoredCheckpoint:
    return StoredCheckpoint(int(row[0]), bytes(row[1]), str(row[2]), int(row[3]))
