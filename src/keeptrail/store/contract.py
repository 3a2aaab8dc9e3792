"""The store contract: what every backend (SQLite now, PostgreSQL later) must do.

Callers (pipeline, CLI, server) depend only on this module. A backend owns its SQL dialect,
its schema and its migrations; a query reaches it as a parsed tree and the backend compiles it
with its own dialect, so no caller ever builds SQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from keeptrail.event import Event
from keeptrail.ledger.merkle import Frontier
from keeptrail.ledger.note import Verifier
from keeptrail.query.tree import Node


@dataclass(slots=True, frozen=True)
class FilePosition:
    """How far a file has been read, and how to recognise it again after a rename.

    ``fingerprint`` is the SHA-256 (hex) of the file's first ``fingerprint_len`` bytes; a file
    with the same first bytes is the same file, whatever it is now called (``auth.log`` →
    ``auth.log.1`` → ``auth.log.2.gz``, whose decompressed bytes are the same).
    """

    path: str
    fingerprint: str
    fingerprint_len: int
    offset: int
    updated_at: int


@dataclass(slots=True)
class SearchPage:
    """One page of results, newest first, and the cursor that continues after it."""

    events: list[Event]
    next_cursor: str | None


@dataclass(slots=True)
class Stats:
    """Counts for `keeptrail stats`."""

    total: int = 0
    first_time: int | None = None
    last_time: int | None = None
    by_category: list[tuple[str, int]] = field(default_factory=list)
    by_action_outcome: list[tuple[str, str, int]] = field(default_factory=list)
    top_actors: list[tuple[str, int]] = field(default_factory=list)
    top_sources: list[tuple[str, int]] = field(default_factory=list)
    top_hosts: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class StoredCheckpoint:
    """A signed tree head as the store kept it: size, root and the signed note."""

    size: int
    root: bytes
    note: str
    created_at: int


class LeafRow(NamedTuple):
    """One stored event as ``verify`` sees it: where it claims to be and what it hashes to.

    ``stored_hash`` is the leaf hash saved at ingest, ``computed_hash`` the leaf hash of the
    row's content now; ``event_id`` is the UUID's 16 bytes (text only when reported).
    """

    leaf_index: int
    seq: int
    event_id: bytes
    stored_hash: bytes | None
    computed_hash: bytes


@dataclass(slots=True, frozen=True)
class LedgerLeaf:
    """One event with its place in the tree and the exact bytes its leaf hashes."""

    event: Event
    leaf_index: int
    leaf_hash: bytes
    canonical: bytes


class Store(Protocol):
    """An append-only event store with file positions, search and statistics."""

    def append(self, events: Sequence[Event], positions: Sequence[FilePosition] = ()) -> int:
        """Store a batch and the file positions it reached, in one transaction.

        Events whose id is already stored are skipped (delivery is idempotent). Returns the
        number of events newly stored.
        """
        ...

    def search(
        self,
        query: Node | None,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchPage:
        """Events matching ``query`` in ``[since, until)``, newest first."""
        ...

    def get(self, event_id: str) -> Event | None:
        """One event by id."""
        ...

    def stats(self, *, since: int | None = None, until: int | None = None, top: int = 10) -> Stats:
        """Counts by category, action and outcome; top actors, sources and hosts."""
        ...

    def file_position(self, path: str) -> FilePosition | None:
        """The last position stored for a path."""
        ...

    def file_position_by_fingerprint(self, fingerprint: str) -> FilePosition | None:
        """The furthest position stored for a file with these first bytes, under any name."""
        ...

    def count(self) -> int:
        """How many events are stored."""
        ...

    def close(self) -> None:
        """Release the connection; the store stays consistent if this is never called."""
        ...

    # --- the ledger (docs/ledger.md) -------------------------------------------------------------

    @property
    def verifier(self) -> Verifier | None:
        """The public key this store's checkpoints are signed with (``None`` without a key)."""
        ...

    def ledger_frontier(self) -> Frontier:
        """The stored compact frontier: the tree's size and the roots that extend it."""
        ...

    def ledger_node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree ``(level, index)``; ``LookupError`` if not stored."""
        ...

    def ledger_leaf(self, event_id: str) -> LedgerLeaf | None:
        """An event with its leaf index, stored leaf hash and canonical bytes."""
        ...

    def ledger_leaves(self, *, chunk: int = 8192) -> Iterator[list[LeafRow]]:
        """Every event that has a leaf index, in leaf order, in lists of up to ``chunk``."""
        ...

    def unindexed_events(self, limit: int = 100) -> list[tuple[int, str]]:
        """``(seq, id)`` of events that carry no leaf index (none, in an intact store)."""
        ...

    def leaf_index_of_hash(self, leaf_hash: bytes) -> int | None:
        """The leaf index stored with this leaf hash, if any (a slow scan, for reports)."""
        ...

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every stored checkpoint, smallest tree first."""
        ...

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The checkpoint of the largest tree."""
        ...

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        """The checkpoint of the tree of exactly ``size`` leaves, if one was signed."""
        ...
