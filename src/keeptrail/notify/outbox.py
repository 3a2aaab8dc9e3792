"""The durable outbox: every delivery waits in ``<data-dir>/notify.db`` (or, for a PostgreSQL
store, in its database: :mod:`keeptrail.state_db`) until it has arrived.

A delivery is written here before anything is sent, so a restart (or a crash) resumes the
pending ones, retries included, instead of losing them. A row is ``pending`` (with the time
of its next attempt), ``delivered``, or ``failed`` after its last attempt; a failed row is
``reported`` once its ``alert.delivery_failed`` event is committed, so a failure that could not
be recorded (store unavailable) is recorded on the next run rather than forgotten. Delivered
rows are pruned after a week; failed ones are kept for people to look at.

With several servers on one PostgreSQL store the outbox is shared, and one server at a time
delivers: the holder of :data:`keeptrail.state_db.NOTIFY_LOCK` (:meth:`Outbox.lead`). When it
dies, another takes over the pending rows, retries and failures included. A delivery cut off
mid-send by that death is sent again: receivers de-duplicate by ``X-Keeptrail-Delivery``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from keeptrail.event import uuid7
from keeptrail.state_db import (
    NOTIFY_LOCK,
    OUTBOX_DB,
    StateDB,
    connect_sqlite,
    is_postgres_url,
    open_state_db,
)

KEEP_DELIVERED_US: Final = 7 * 86_400 * 1_000_000
OUTBOX_FILE: Final = OUTBOX_DB

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    sink TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_error TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    delivered_at INTEGER,
    reported INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
CREATE INDEX IF NOT EXISTS outbox_sink_due ON outbox (sink, state, next_at);
CREATE INDEX IF NOT EXISTS outbox_alert ON outbox (alert_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert to one sink."""

    id: str
    sink: str
    alert_id: str
    rule_id: str
    body: bytes
    created_at: int
    attempts: int
    next_at: int
    last_error: str | None
    state: str


_COLS: Final = "id, sink, alert_id, rule_id, body, created_at, attempts, next_at, last_error, state"


class Outbox:
    """Pending, delivered and failed deliveries; safe to share between threads."""

    def __init__(self, path: Path, *, db: StateDB | None = None) -> None:
        self.path = path
        self._db = db if db is not None else StateDB(connect_sqlite(path))
        self._db.create(_SCHEMA)
        self._meta = "meta" if self._db.dialect == "sqlite" else "notify_meta"
        self.errors = self._db.errors  # what a failed read or write raises
        self._lock = threading.Lock()

    @classmethod
    def open(cls, data_dir: Path, store: str | Path | None = None) -> Outbox:
        """The outbox of a data directory, or of the PostgreSQL store ``store``."""
        return cls(data_dir / OUTBOX_FILE, db=open_state_db(data_dir, store, OUTBOX_FILE))

    def lead(self) -> bool:
        """Whether this process delivers (always with SQLite; see the module docstring)."""
        with self._lock:
            return self._db.lead(NOTIFY_LOCK)

    def enqueue(self, sink: str, alert_id: str, rule_id: str, body: bytes, now: int) -> str:
        """Add a delivery due now; returns its id (sent as ``X-Keeptrail-Delivery``)."""
        delivery_id = uuid7()
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox (id, sink, alert_id, rule_id, body, created_at, next_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (delivery_id, sink, alert_id, rule_id, body, now, now),
            )
        return delivery_id

    def due(self, now: int, limit: int = 100, *, sink: str | None = None) -> list[Delivery]:
        """Pending deliveries due at ``now`` (of one sink, or all), oldest due first."""
        where = "state = 'pending' AND next_at <= ?" + (" AND sink = ?" if sink else "")
        params: tuple[object, ...] = (now, sink, limit) if sink else (now, limit)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM outbox WHERE {where} ORDER BY next_at LIMIT ?", params
            ).fetchall()
        return [Delivery(*r) for r in rows]

    def next_due(self, sink: str | None = None) -> int | None:
        """When the earliest pending delivery (of one sink, or all) is due (µs), or None."""
        where = "state = 'pending'" + (" AND sink = ?" if sink else "")
        with self._lock:
            row = self._db.execute(
                f"SELECT min(next_at) FROM outbox WHERE {where}", (sink,) if sink else ()
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def delivered(self, delivery_id: str, now: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, "
                "delivered_at = ?, last_error = NULL WHERE id = ?",
                (now, delivery_id),
            )
            self._db.execute(
                "DELETE FROM outbox WHERE state = 'delivered' AND delivered_at < ?",
                (now - KEEP_DELIVERED_US,),
            )

    def retry(self, delivery_id: str, next_at: int, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? "
                "WHERE id = ?",
                (next_at, error[:1000], delivery_id),
            )

    def failed(self, delivery_id: str, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ? "
                "WHERE id = ?",
                (error[:1000], delivery_id),
            )

    def unreported(self) -> list[Delivery]:
        """Failed deliveries whose ``alert.delivery_failed`` event is not committed yet."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM outbox WHERE state = 'failed' AND reported = 0"
            ).fetchall()
        return [Delivery(*r) for r in rows]

    def mark_reported(self, ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("UPDATE outbox SET reported = 1 WHERE id = ?", [(i,) for i in ids])

    def counts(self) -> dict[str, int]:
        """Rows per state (``pending``, ``delivered``, ``failed``)."""
        with self._lock:
            rows = self._db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
        return {str(s): int(n) for s, n in rows}

    def seen_until(self) -> int | None:
        """The creation time (µs) of the newest alert handed to the notifier, if any."""
        with self._lock:
            row = self._db.execute(
                f"SELECT value FROM {self._meta} WHERE key = 'seen_until'"
            ).fetchone()
        return int(row[0]) if row else None

    def set_seen_until(self, micros: int) -> None:
        newest = (
            "max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))"
            if self._db.dialect == "sqlite"
            else "CAST(greatest(CAST(notify_meta.value AS bigint),"
            " CAST(excluded.value AS bigint)) AS text)"
        )
        with self._lock:
            self._db.execute(
                f"INSERT INTO {self._meta} (key, value) VALUES ('seen_until', ?)"
                f" ON CONFLICT (key) DO UPDATE SET value = {newest}",
                (str(micros),),
            )

    def for_alert(self, alert_id: str) -> list[Delivery]:
        """Every delivery of one alert (pending, delivered, failed), oldest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM outbox WHERE alert_id = ? ORDER BY created_at, sink",
                (alert_id,),
            ).fetchall()
        return [Delivery(*r) for r in rows]

    def get(self, delivery_id: str) -> Delivery | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLS} FROM outbox WHERE id = ?", (delivery_id,)
            ).fetchone()
        return Delivery(*row) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def deliveries_of(
    data_dir: Path, alert_id: str, store: str | Path | None = None
) -> list[dict[str, object]]:
    """What happened to an alert's notifications, for ``alerts show`` and the API.

    Reads ``<data-dir>/notify.db`` when it exists (no notifications configured: an empty list),
    or the PostgreSQL store's outbox.
    """
    if not (data_dir / OUTBOX_FILE).exists() and not is_postgres_url(store):
        return []
    outbox = Outbox.open(data_dir, store)
    try:
        return [
            {
                "sink": d.sink,
                "state": d.state,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "delivery_id": d.id,
            }
            for d in outbox.for_alert(alert_id)
        ]
    finally:
        outbox.close()
