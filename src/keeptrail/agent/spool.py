"""The agent's durable spool: an on-disk queue between the sources and the shipper.

It is a small SQLite database (WAL, ``synchronous=FULL``) that speaks the part of the store
contract the :class:`~keeptrail.ingest.Ingestor` uses — ``append(events, positions)`` and the
``file_position*`` look-ups — so the unchanged ingest pipeline writes into it. Events and the
read position (or journal cursor) they reached are committed in one transaction: a position is
never advanced before its events are durable, and a ``kill -9`` at any moment either keeps a
batch and its position or neither.

Events are kept as their JSON document (``to_document``, id included), exactly the bytes the
shipper sends, and leave the spool only when the server acknowledged them (:meth:`Spool.ack`).

The spool is bounded by events and by bytes. When it is full, :meth:`Spool.append` *waits*
(the source stops reading; the logs stay on disk) and says so loudly in the log; it never drops
an event. It raises :class:`SpoolClosed` when the agent stops while a source is waiting.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from keeptrail.event import Event, to_document
from keeptrail.store.contract import FilePosition

log = logging.getLogger("keeptrail.agent.spool")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS positions (path TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,
    fingerprint_len INTEGER NOT NULL, offset INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fingerprints (fingerprint TEXT PRIMARY KEY,
    fingerprint_len INTEGER NOT NULL, offset INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_FINGERPRINT_KEEP_US: Final = 30 * 86_400 * 1_000_000


class SpoolClosed(Exception):
    """The agent is stopping: a source waiting for room gives up (nothing was written)."""


@dataclass(slots=True, frozen=True)
class Entry:
    """One spooled event: its place in the queue, its id and its JSON document."""

    seq: int
    id: str
    doc: bytes


class Spool:
    """A bounded, durable FIFO of event documents plus the read positions that produced them."""

    def __init__(self, path: Path, *, max_events: int = 1_000_000, max_bytes: int = 1 << 30):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(_SCHEMA)
        self._cond = threading.Condition()
        self._closed = False
        self._db_closed = False
        self.full_since: float | None = None
        count, size = self._db.execute(
            "SELECT count(*), coalesce(sum(length(doc)), 0) FROM events"
        ).fetchone()
        self._count: int = count
        self._bytes: int = size
        cutoff = time.time_ns() // 1000 - _FINGERPRINT_KEEP_US
        self._db.execute("DELETE FROM fingerprints WHERE updated_at < ?", (cutoff,))

    # --- the store contract, as far as the Ingestor uses it ----------------------------------

    def append(
        self,
        events: Sequence[Event],
        positions: Sequence[FilePosition] = (),
        *,
        meta: Mapping[str, str] | None = None,
    ) -> int:
        """Spool events with the positions (and cursors, in ``meta``) they reached, atomically.

        Waits while the spool is full (never drops); returns how many events were new.
        """
        rows = [(e.id, orjson.dumps(to_document(e))) for e in events]
        with self._cond:
            if rows:
                self._wait_for_room()
            if self._closed:
                raise SpoolClosed("the spool is closed")
            db = self._db
            before = db.total_changes
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR IGNORE INTO events (id, doc) VALUES (?, ?)", rows)
                added = db.total_changes - before
                for p in positions:
                    db.execute(
                        "INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?, ?)",
                        (p.path, p.fingerprint, p.fingerprint_len, p.offset, p.updated_at),
                    )
                    if p.fingerprint_len == 0:
                        continue  # the fingerprint of nothing matches every file
                    db.execute(
                        "INSERT INTO fingerprints VALUES (?, ?, ?, ?) ON CONFLICT (fingerprint)"
                        " DO UPDATE SET offset = max(offset, excluded.offset),"
                        " updated_at = excluded.updated_at",
                        (p.fingerprint, p.fingerprint_len, p.offset, p.updated_at),
                    )
                for key, value in (meta or {}).items():
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if added == len(rows):
                self._count += added
                self._bytes += sum(len(doc) for _, doc in rows)
            elif added:  # some ids were already spooled: recount exactly
                self._recount()
            self._cond.notify_all()
            return added

    def file_position(self, path: str) -> FilePosition | None:
        """The last position stored for a path."""
        with self._cond:
            row = self._db.execute("SELECT * FROM positions WHERE path = ?", (path,)).fetchone()
        return FilePosition(*row) if row else None

    def file_position_by_fingerprint(self, fingerprint: str) -> FilePosition | None:
        """The furthest position reached by a file with these first bytes, under any name.

        Kept apart from ``positions`` so a path that now holds other content (copytruncate,
        a new file after a rename) does not make the old content forget how far it was read.
        """
        with self._cond:
            row = self._db.execute(
                "SELECT fingerprint, fingerprint_len, offset, updated_at FROM fingerprints"
                " WHERE fingerprint = ?",
                (fingerprint,),
            ).fetchone()
        return FilePosition("", *row) if row else None

    def short_fingerprint_lengths(self, limit: int = 64) -> list[int]:
        """Distinct fingerprint lengths under 1 KiB (small files), most recent first."""
        with self._cond:
            rows = self._db.execute(
                "SELECT fingerprint_len FROM fingerprints WHERE fingerprint_len BETWEEN 1 AND 1023"
                " GROUP BY fingerprint_len ORDER BY max(updated_at) DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [r[0] for r in rows]

    # --- the queue ----------------------------------------------------------------------------

    def peek(self, limit: int, max_bytes: int = 1 << 62) -> list[Entry]:
        """The oldest spooled events, at most ``limit`` of them and about ``max_bytes``."""
        with self._cond:
            rows = self._db.execute(
                "SELECT seq, id, doc FROM events ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        out: list[Entry] = []
        size = 0
        for seq, eid, doc in rows:
            size += len(doc)
            if out and size > max_bytes:
                break
            out.append(Entry(seq, eid, doc))
        return out

    def ack(self, entries: Sequence[Entry]) -> None:
        """Forget events the server acknowledged (or that were quarantined)."""
        if not entries:
            return
        with self._cond:
            deleted = self._db.execute(
                "DELETE FROM events WHERE seq BETWEEN ? AND ?", (entries[0].seq, entries[-1].seq)
            ).rowcount
            if deleted == len(entries):
                self._count -= deleted
                self._bytes -= sum(len(e.doc) for e in entries)
            else:
                self._recount()
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> int:
        """Wait until at least ``count`` events are spooled, or ``timeout``; return the depth."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._count < count and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._count

    @property
    def depth(self) -> tuple[int, int]:
        """(events, bytes) waiting to be shipped."""
        return self._count, self._bytes

    @property
    def full(self) -> bool:
        """True when a source would have to wait for the shipper."""
        return self._count >= self.max_events or self._bytes >= self.max_bytes

    def get_meta(self, key: str) -> str | None:
        """A small persisted value (journal cursor, per-source flags)."""
        with self._cond:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Persist a small value on its own (not tied to any events)."""
        self.append([], meta={key: value})

    def release(self) -> None:
        """Stop accepting events: sources waiting for room wake and raise :class:`SpoolClosed`."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def close(self) -> None:
        """Release waiters and close the database."""
        with self._cond:
            self.release()
            if not self._db_closed:
                self._db_closed = True
                self._db.close()

    # --- internals ----------------------------------------------------------------------------

    def _wait_for_room(self) -> None:
        while self.full and not self._closed:
            if self.full_since is None:
                self.full_since = time.time()
                log.error(
                    "SPOOL FULL (%d events, %d bytes; bound %d events / %d bytes): sources stop"
                    " reading until the server accepts events; nothing is dropped",
                    self._count,
                    self._bytes,
                    self.max_events,
                    self.max_bytes,
                )
            self._cond.wait(1.0)
        if self.full_since is not None and not self._closed:
            log.warning(
                "spool has room again after %.1fs; sources resume", time.time() - self.full_since
            )
            self.full_since = None

    def _recount(self) -> None:
        self._count, self._bytes = self._db.execute(
            "SELECT count(*), coalesce(sum(length(doc)), 0) FROM events"
        ).fetchone()
