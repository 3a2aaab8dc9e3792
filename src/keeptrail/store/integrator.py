"""The sequencer: one integrator at a time turns the ingest queue into leaves of one tree.

Transparency logs that accept writes from many frontends (Trillian's log signer, Tessera's
integrator) split appending in two: frontends *queue* entries durably and answer after commit;
a single *integrator* takes queued entries in order, gives them their leaf indices, grows the
tree and signs a checkpoint. Keeptrail on PostgreSQL does the same:

* appenders (every ``keeptrail serve`` and ``ingest``) ``COPY`` a batch into ``ingest_queue``
  in one transaction with their file positions; everything that does not depend on the leaf
  index — canonical bytes, leaf hash, clear columns, sealed blob, partition — is computed there,
  in parallel across servers;
* the integrator is whoever holds the PostgreSQL advisory lock :data:`INTEGRATOR_LOCK`. The
  lock belongs to a database session: when the holder's process dies (even ``kill -9``) its
  session ends, the lock is released and the next process that tries takes over. No lease, no
  clock: PostgreSQL already knows who is connected;
* :func:`integrate_once` is one transaction: read the oldest queued rows, drop ids already in
  ``leaves`` (a delivery retried to another server while the first was still integrating),
  append their hashes to the frontier, move the rows into ``events`` (routed to their
  partitions) and ``leaves`` with ``INSERT … SELECT`` inside the server, delete them from the
  queue, store nodes, frontier and a signed checkpoint, and ``NOTIFY`` the appenders. The
  frontier row is also locked ``FOR UPDATE`` so that even two processes wrongly believing they
  hold the lock would be serialised rather than fork the tree.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import sql

from keeptrail.ledger.merkle import Frontier
from keeptrail.ledger.note import Signer
from keeptrail.ledger.tree import NODE_STRIDE, Grown, LedgerSQL, persist
from keeptrail.store import postgres_locks
from keeptrail.store.postgres_schema import CLEAR_NAMES, ensure_partition

INTEGRATOR_LOCK: Final = postgres_locks.INTEGRATOR
APP_NAME: Final = "keeptrail-integrator"  # + "-<pid>": pg_stat_activity shows who integrates
QUEUE_CHANNEL: Final = "keeptrail_queue"
INTEGRATED_CHANNEL: Final = "keeptrail_integrated"
BATCH_LIMIT: Final = 20_000
_LEDGER_SQL: Final = LedgerSQL("%s")
_CLEAR: Final = ", ".join(CLEAR_NAMES)
_QCLEAR: Final = ", ".join(f"q.{name}" for name in CLEAR_NAMES)
_MOVE_EVENTS: Final = (
    f"INSERT INTO events (leaf_index, partition, {_CLEAR}, sealed)"
    f" SELECT m.leaf_index, q.partition, {_QCLEAR}, q.sealed"
    " FROM unnest(%s::bigint[], %s::bigint[]) AS m(qseq, leaf_index)"
    " JOIN ingest_queue q ON q.qseq = m.qseq"
)
_MOVE_LEAVES: Final = (
    "INSERT INTO leaves (leaf_index, id, partition, leaf_hash)"
    " SELECT m.leaf_index, q.id, q.partition, q.leaf_hash"
    " FROM unnest(%s::bigint[], %s::bigint[]) AS m(qseq, leaf_index)"
    " JOIN ingest_queue q ON q.qseq = m.qseq"
)
_STRIDE_MASK: Final = NODE_STRIDE - 1
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Integrated:
    """What one integration transaction committed."""

    count: int  # leaves added
    dropped: int  # queued duplicates discarded
    size: int  # tree size afterwards
    note: str | None  # the signed checkpoint (None when only duplicates were dropped)


def grow_hashes(frontier: Frontier, leaves: Sequence[bytes]) -> Grown:
    """:func:`keeptrail.ledger.tree.grow` for leaf hashes computed by the appenders."""
    first = frontier.size
    nodes: list[tuple[int, int, bytes]] = []
    append = frontier.append_with_nodes
    for leaf in leaves:
        completed = append(leaf)
        if len(completed) > NODE_STRIDE:
            nodes.extend(n for n in completed[1:] if not n[0] & _STRIDE_MASK)
    return Grown(first, list(leaves), nodes, frontier)


def try_lock(db: psycopg.Connection) -> bool:
    """Become the integrator if nobody is (session-level: held until unlocked or disconnected)."""
    row = db.execute("SELECT pg_try_advisory_lock(%s)", (INTEGRATOR_LOCK,)).fetchone()
    return bool(row and row[0])


def unlock(db: psycopg.Connection) -> None:
    """Give the integrator role back."""
    db.execute("SELECT pg_advisory_unlock(%s)", (INTEGRATOR_LOCK,))


def integrate_once(
    db: psycopg.Connection, signer: Signer, *, limit: int = BATCH_LIMIT
) -> Integrated | None:
    """Integrate up to ``limit`` queued rows in one transaction; ``None`` if the queue is empty.

    The caller holds :data:`INTEGRATOR_LOCK` on ``db`` (autocommit mode).
    """
    with db.transaction():
        row = db.execute("SELECT frontier FROM ledger_state WHERE id = 1 FOR UPDATE").fetchone()
        frontier = Frontier.from_bytes(bytes(row[0])) if row else Frontier()
        queued = db.execute(
            "SELECT q.qseq, q.partition, q.day, q.retention_class, q.is_sealed, q.clear,"
            " q.leaf_hash, q.time, l.leaf_index IS NOT NULL FROM ingest_queue q"
            " LEFT JOIN leaves l ON l.id = q.id ORDER BY q.qseq LIMIT %s",
            (limit,),
        ).fetchall()
        if not queued:
            return None
        fresh = [r for r in queued if not r[8]]
        grown = grow_hashes(frontier, [bytes(r[6]) for r in fresh])
        first = grown.first_index
        qseqs = [r[0] for r in fresh]
        indices = list(range(first, first + len(fresh)))
        note: str | None = None
        if fresh:
            _prepare_partitions(db, fresh, first)
            db.execute(_MOVE_EVENTS, (qseqs, indices))
            db.execute(_MOVE_LEAVES, (qseqs, indices))
        db.execute("DELETE FROM ingest_queue WHERE qseq = ANY(%s)", ([r[0] for r in queued],))
        if fresh:
            note = persist(db.cursor(), _LEDGER_SQL, grown, signer)
        db.execute("SELECT pg_notify(%s, %s)", (INTEGRATED_CHANNEL, str(grown.frontier.size)))
    return Integrated(len(fresh), len(queued) - len(fresh), grown.frontier.size, note)


def _prepare_partitions(db: psycopg.Connection, fresh: list[tuple[Any, ...]], first: int) -> None:
    """Create missing partitions and add this batch to each one's counts and spans."""
    spans: dict[str, list[Any]] = {}
    for i, (_qseq, name, day, klass, sealed, clear, _hash, t, _dup) in enumerate(fresh):
        span = spans.get(name)
        leaf = first + i
        if span is None:
            spans[name] = [day, klass, sealed, clear, 1, t, t, leaf, leaf]
        else:
            span[4] += 1
            span[5] = min(span[5], t)
            span[6] = max(span[6], t)
            span[8] = leaf
    now = time.time_ns() // 1000
    for name, (day, klass, sealed, clear, n, t0, t1, l0, l1) in spans.items():
        ensure_partition(db, name, day, klass)
        db.execute(
            "INSERT INTO partitions (name, day, retention_class, sealed, clear_fields, events,"
            " first_time, last_time, first_leaf, last_leaf, state, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'live', %s)"
            " ON CONFLICT (name) DO UPDATE SET events = partitions.events + excluded.events,"
            " first_time = least(partitions.first_time, excluded.first_time),"
            " last_time = greatest(partitions.last_time, excluded.last_time),"
            " first_leaf = least(partitions.first_leaf, excluded.first_leaf),"
            " last_leaf = greatest(partitions.last_leaf, excluded.last_leaf),"
            " state = CASE partitions.state WHEN 'purged' THEN 'partial'"
            " ELSE partitions.state END",
            (name, day, klass, sealed, clear, n, t0, t1, l0, l1, now),
        )


def queue_depth(db: psycopg.Connection) -> int:
    """How many rows wait for integration."""
    row = db.execute("SELECT count(*) FROM ingest_queue").fetchone()
    return int(row[0]) if row else 0


class IntegratorLoop:
    """A thread that keeps trying to be the integrator and, while it is, drains the queue.

    Every writable PostgreSQL store runs one (so every server does): at most one in the whole
    deployment holds the lock; the others retry every ``retry`` seconds and take over within
    that time when the holder dies. ``on_commit`` receives each signed note after its commit
    (publication to checkpoint logs and witnesses), with the loop's own connection to read
    consistency proofs from — never the store's, which an appender may hold while it waits.
    """

    def __init__(
        self,
        url: str,
        signer: Signer,
        *,
        retry: float = 0.5,
        on_commit: Callable[[str, int, psycopg.Connection], None] | None = None,
    ) -> None:
        self._url = url
        self._signer = signer
        self._retry = retry
        self._on_commit = on_commit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keeptrail-integrator", daemon=True)
        self.leader = False
        self.integrated = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._url, autocommit=True, application_name=f"{APP_NAME}-{os.getpid()}"
                ) as db:
                    db.execute(sql.SQL("LISTEN {}").format(sql.Identifier(QUEUE_CHANNEL)))
                    self._serve(db)
            except Exception as exc:  # never let the thread die: retry, another may take over
                self.leader = False
                log.warning("integrator stopped integrating (%s); retrying", exc)
                self._stop.wait(self._retry)

    def _serve(self, db: psycopg.Connection) -> None:
        while not self._stop.is_set():
            if not self.leader:
                self.leader = try_lock(db)
                if not self.leader:
                    self._stop.wait(self._retry)
                    continue
                log.info("this process is now the integrator")
            while not self._stop.is_set():
                done = integrate_once(db, self._signer)
                if done is None:
                    break
                self.integrated += done.count
                if done.note is not None and self._on_commit is not None:
                    self._on_commit(done.note, done.size, db)
            for _ in db.notifies(timeout=self._retry, stop_after=1):
                pass
        if self.leader:
            unlock(db)
            self.leader = False
