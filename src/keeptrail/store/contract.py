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
    """One page of results, newest first, and the cursor that continues after it.

    ``stopped_early`` is set when a search that filters on sealed fields (checked after
    decryption) used up its scan budget before filling the page: ``next_cursor`` then continues
    from the last event examined, and ``scanned`` says how many were.
    """

    events: list[Event]
    next_cursor: str | None
    stopped_early: bool = False
    scanned: int = 0


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
    row's content now; ``event_id`` is the UUID's 16 bytes (text only when reported). A row
    removed by a retention purge has ``purged_by`` set and ``computed_hash == stored_hash`` (the
    signed checkpoints still vouch for the stored hash); ``problem`` names damage the hash alone
    does not show (a missing row, an edited clear column, a ciphertext that does not open).
    """

    leaf_index: int
    seq: int
    event_id: bytes
    stored_hash: bytes | None
    computed_hash: bytes
    partition: str = ""
    problem: str | None = None  # what is wrong with the row, when it is more than its hash
    problem_kind: str = "modified"  # the finding kind for ``problem``
    purged_by: str | None = None  # the purge event id, when the row was removed by a purge


@dataclass(slots=True, frozen=True)
class LedgerLeaf:
    """One event with its place in the tree and the exact bytes its leaf hashes."""

    event: Event
    leaf_index: int
    leaf_hash: bytes
    canonical: bytes


@dataclass(slots=True, frozen=True)
class PartitionInfo:
    """One partition of the event store: a UTC day of event time and a retention class.

    ``state`` is ``live`` (all rows present), ``partial`` (a purge kept only held rows) or
    ``purged`` (table dropped, data key destroyed; only the leaves remain in the ledger).
    ``sealed`` says whether its rows are encrypted (False for a store opened without a
    keyring and for partitions migrated from the v1 layout). ``events`` counts the rows the
    partition holds now; ``first_leaf``/``last_leaf`` span every leaf it ever held.
    """

    name: str
    day: int  # YYYYMMDD (UTC day of the events' ``time``)
    retention_class: str
    sealed: bool
    events: int
    first_time: int | None
    last_time: int | None
    first_leaf: int | None
    last_leaf: int | None
    state: str  # "live" | "partial" | "purged"
    created_at: int
    purged_at: int | None = None
    purge_event: str | None = None


@dataclass(slots=True, frozen=True)
class Hold:
    """A legal hold: events matching ``query`` (all when ``None``) in ``[since, until)``.

    Times are integer microseconds (``None`` = unbounded). A hold is active until
    ``released_at`` is set; events under an active hold are never purged.
    """

    id: str
    query: str | None
    since: int | None
    until: int | None
    reason: str
    created_by: str | None
    created_at: int
    released_at: int | None = None
    released_by: str | None = None

    @property
    def active(self) -> bool:
        """Whether the hold still protects its events."""
        return self.released_at is None


@dataclass(slots=True, frozen=True)
class PurgeResult:
    """What one ``purge_partition`` did.

    ``state`` is the partition's state afterwards (``purged`` or ``partial``); ``deleted`` the
    rows removed, ``kept`` the held rows left in place; ``key_destroyed`` whether the data key
    was crypto-shredded (only when nothing was kept); ``leaf_ranges`` the inclusive
    ``(first, last)`` leaf index runs that were removed.
    """

    partition: str
    state: str
    deleted: int
    kept: int
    key_destroyed: bool
    leaf_ranges: list[tuple[int, int]] = field(default_factory=list)
    first_time: int | None = None
    last_time: int | None = None


@dataclass(slots=True, frozen=True)
class ReclaimResult:
    """What one ``reclaim`` did: the detached tables it freed and how many still wait.

    A whole-partition purge only destroys the key and detaches the table (constant time);
    freeing its pages is this separate, resumable step.
    """

    dropped: list[str] = field(default_factory=list)
    remaining: int = 0
    seconds: float = 0.0


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

    def events_after(self, leaf_index: int, limit: int) -> list[tuple[int, Event]]:
        """Up to ``limit`` events with a leaf index greater than ``leaf_index``, in leaf order.

        Purged events are skipped. Followers (the detection engine) keep the last leaf index
        they saw and call this again: leaf order is commit order, so nothing is missed.
        """
        ...

    # --- partitions, retention and holds (docs/storage.md) ----------------------------------------

    def partitions(self) -> list[PartitionInfo]:
        """Every partition ever created, oldest day first (purged ones included)."""
        ...

    def purge_partition(
        self, name: str, *, holds: Sequence[Hold], purge_event_id: str
    ) -> PurgeResult:
        """Remove a partition's events, except those under one of ``holds`` (active ones).

        With nothing held inside: the data key is destroyed first (crypto-shred: every copy
        and backup becomes unreadable at once), then the table is detached from the store
        (a backend may leave its pages for :meth:`reclaim`); the cost does not grow with the
        number of events. With held events inside: only the other rows are deleted and the
        key is kept (state ``partial``). Leaves stay in the ledger.
        """
        ...

    def awaiting_reclaim(self) -> list[str]:
        """Purged partitions whose storage :meth:`reclaim` has not freed yet, by name.

        Their keys are destroyed and their rows invisible; only the pages remain (none on a
        backend whose purge frees them at once).
        """
        ...

    def reclaim(self, budget_seconds: float | None = None) -> ReclaimResult:
        """Free the storage of purged partitions detached by :meth:`purge_partition`.

        Each detached table goes in its own transaction, so an interrupted reclaim leaves a
        consistent store and the next call finishes; no new table is started once
        ``budget_seconds`` have passed (``None``: no limit). Their keys are already gone.
        """
        ...

    def add_hold(self, hold: Hold) -> None:
        """Record a legal hold."""
        ...

    def holds(self, active_only: bool = True) -> list[Hold]:
        """Holds, oldest first; only unreleased ones unless ``active_only`` is false."""
        ...

    def release_hold(self, hold_id: str, by: str | None, at: int) -> Hold:
        """Release a hold (``KeyError`` if unknown); returns it as released."""
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
