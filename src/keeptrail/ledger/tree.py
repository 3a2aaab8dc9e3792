"""The persisted Merkle tree: growing it inside a store transaction and serving its nodes.

The pure core (:mod:`.merkle`, :mod:`.proof`) knows nothing of storage; this module is the one
place that decides what a store keeps, and it keeps it in SQL any backend speaks (plain
``SELECT``/``INSERT``/``UPDATE`` with one placeholder style), so the PostgreSQL backend reuses it:

* ``leaves(leaf_index, id, partition, leaf_hash)`` holds every event's leaf, kept after a purge;
* ``ledger_nodes(level, idx, hash)`` holds the perfect subtrees of every :data:`NODE_STRIDE`-th
  level above the leaves (4, 8, 12, …), tile-style: about ``n / 15`` rows for ``n`` leaves, and
  any node costs one range read of at most ``2**(NODE_STRIDE - 1)`` hashes and as many hashings;
* ``ledger_state`` holds the compact frontier (:meth:`Frontier.to_bytes`), so appending needs
  neither the tree nor the leaves in memory;
* ``checkpoints(size, root, note, created_at)`` holds every signed tree head.

:func:`grow` is the whole per-batch computation: leaf hashes from canonical bytes, the frontier
appends, the node rows to insert and the signed checkpoint. The backend runs it between its own
``INSERT`` of the rows and ``COMMIT``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Final, Protocol

from keeptrail.ledger.checkpoint import format_checkpoint
from keeptrail.ledger.merkle import Frontier, root_from_leaf_hashes
from keeptrail.ledger.note import Signer, sign_note

NODE_STRIDE: Final = 4
_STRIDE_MASK: Final = NODE_STRIDE - 1


class Cursor(Protocol):
    """The DB-API subset the ledger uses (``sqlite3`` and ``psycopg`` both fit)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Any: ...


@dataclass(frozen=True, slots=True)
class LedgerSQL:
    """The ledger's statements in one placeholder style (``?`` for SQLite, ``%s`` for psycopg)."""

    p: str = "?"

    @property
    def load_frontier(self) -> str:
        return "SELECT frontier FROM ledger_state WHERE id = 1"

    @property
    def save_frontier(self) -> str:
        return f"UPDATE ledger_state SET frontier = {self.p} WHERE id = 1"

    @property
    def insert_state(self) -> str:
        return f"INSERT INTO ledger_state (id, frontier) VALUES (1, {self.p})"

    @property
    def insert_node(self) -> str:
        p = self.p
        return f"INSERT INTO ledger_nodes (level, idx, hash) VALUES ({p}, {p}, {p})"

    @property
    def insert_checkpoint(self) -> str:
        p = self.p
        return f"INSERT INTO checkpoints (size, root, note, created_at) VALUES ({p}, {p}, {p}, {p})"

    @property
    def node_range(self) -> str:
        p = self.p
        return (
            f"SELECT hash FROM ledger_nodes WHERE level = {p} AND idx >= {p} AND idx < {p}"
            " ORDER BY idx"
        )

    @property
    def leaf_range(self) -> str:
        p = self.p
        return (
            f"SELECT leaf_hash FROM leaves WHERE leaf_index >= {p} AND leaf_index < {p}"
            " ORDER BY leaf_index"
        )


@dataclass(frozen=True, slots=True)
class Grown:
    """What one batch adds to the ledger: leaf hashes, node rows, new frontier, checkpoint."""

    first_index: int
    leaf_hashes: list[bytes]
    nodes: list[tuple[int, int, bytes]]
    frontier: Frontier


def grow(frontier: Frontier, canonical: Iterable[bytes]) -> Grown:
    """Append the leaves for these canonical event encodings to ``frontier`` (in place).

    Returns the leaf hashes (index ``first_index + i``) and the completed perfect subtrees at
    the stored levels. This is the ledger's whole per-event cost at ingest: one SHA-256 of the
    leaf and, on average, one more for the nodes it completes.
    """
    first = frontier.size
    leaves = [sha256(b"\x00" + data).digest() for data in canonical]
    nodes: list[tuple[int, int, bytes]] = []
    append = frontier.append_with_nodes
    for leaf in leaves:
        completed = append(leaf)
        if len(completed) > NODE_STRIDE:  # only a leaf that closes a level-4+ subtree
            nodes.extend(n for n in completed[1:] if not n[0] & _STRIDE_MASK)
    return Grown(first, leaves, nodes, frontier)


def sign_checkpoint(signer: Signer, frontier: Frontier) -> tuple[bytes, str]:
    """The root and the signed C2SP checkpoint note for the tree ``frontier`` describes."""
    root = frontier.root()
    return root, sign_note(format_checkpoint(signer.name, frontier.size, root), signer)


def persist(cur: Cursor, sql: LedgerSQL, grown: Grown, signer: Signer) -> str:
    """Write a batch's nodes, the new frontier and a freshly signed checkpoint; returns the note.

    The caller has already inserted the event rows with their leaf columns, in the same
    transaction.
    """
    if grown.nodes:
        cur.executemany(sql.insert_node, grown.nodes)
    cur.execute(sql.save_frontier, (grown.frontier.to_bytes(),))
    root, note = sign_checkpoint(signer, grown.frontier)
    cur.execute(sql.insert_checkpoint, (grown.frontier.size, root, note, time.time_ns() // 1000))
    return note


def load_frontier(cur: Cursor, sql: LedgerSQL) -> Frontier:
    """The stored frontier (the empty tree if none was stored yet)."""
    row = cur.execute(sql.load_frontier).fetchone()
    return Frontier.from_bytes(bytes(row[0])) if row else Frontier()


class StoredNodes:
    """:data:`~keeptrail.ledger.proof.NodeHashFn` over a store's leaf and node tables.

    A node at level ``L`` is folded from the ``2**(L - base)`` stored hashes one range read away
    at ``base = L - L % NODE_STRIDE`` (the leaves themselves when ``base`` is 0). A missing row
    raises ``LookupError``: a proof is never built from a guess.
    """

    __slots__ = ("_cur", "_sql")

    def __init__(self, cur: Cursor, sql: LedgerSQL) -> None:
        self._cur = cur
        self._sql = sql

    def __call__(self, level: int, index: int) -> bytes:
        base = level - (level & _STRIDE_MASK)
        width = 1 << (level - base)
        lo = index * width
        if base == 0:
            rows = self._cur.execute(self._sql.leaf_range, (lo, lo + width)).fetchall()
        else:
            rows = self._cur.execute(self._sql.node_range, (base, lo, lo + width)).fetchall()
        if len(rows) != width or any(r[0] is None for r in rows):
            raise LookupError(f"ledger node ({level}, {index}) is not stored")
        return root_from_leaf_hashes([bytes(r[0]) for r in rows])


def backfill(
    cur: Cursor,
    encode_row: Callable[[Sequence[Any], int], bytes] | None = None,
    sql: LedgerSQL = LedgerSQL(),
) -> int:
    """Give events stored before the ledger existed their leaves, in ``seq`` order.

    Runs inside the migration that adds the ledger tables; returns how many leaves it added.
    The first signed checkpoint then covers them.
    """
    from keeptrail.store import rows  # noqa: PLC0415  # the SQL backends' shared row form

    encoder = encode_row or rows.CanonicalEncoder()
    frontier = Frontier()
    cur.execute(sql.insert_state, (frontier.to_bytes(),))
    columns = ", ".join(rows.COLUMNS)
    fetched = cur.execute(f"SELECT seq, {columns} FROM events ORDER BY seq").fetchall()
    if not fetched:
        return 0
    grown = grow(frontier, (encoder(r, 1) for r in fetched))
    cur.executemany(
        f"UPDATE events SET leaf_index = {sql.p}, leaf_hash = {sql.p} WHERE seq = {sql.p}",
        [
            (grown.first_index + i, h, r[0])
            for i, (h, r) in enumerate(zip(grown.leaf_hashes, fetched, strict=True))
        ],
    )
    if grown.nodes:
        cur.executemany(sql.insert_node, grown.nodes)
    cur.execute(sql.save_frontier, (frontier.to_bytes(),))
    return len(fetched)
