"""The store contract: what every backend (SQLite now, PostgreSQL later) must do.

Callers (pipeline, CLI, server) depend only on this module. A backend owns its SQL dialect,
its schema and its migrations; a query reaches it as a parsed tree and the backend compiles it
with its own dialect, so no caller ever builds SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from keeptrail.event import Event
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
