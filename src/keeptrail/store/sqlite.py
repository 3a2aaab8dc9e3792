"""The embedded store: one SQLite file in WAL mode, no server to run.

One process writes (ingest batches, each one transaction together with the file positions it
reached, so a crash can neither lose nor repeat a line); any number of processes read while it
writes. ``synchronous=NORMAL`` in WAL mode keeps the database consistent after a process crash
or ``kill -9`` — a committed batch survives — and can only lose the last batches on a power
failure; set ``KEEPTRAIL_SQLITE_SYNC=FULL`` where that matters more than throughput.
"""

from __future__ import annotations

import base64
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import orjson

from keeptrail.event import Event
from keeptrail.ledger.note import Signer
from keeptrail.ledger.publish import Publisher
from keeptrail.ledger.tree import Grown, grow, load_frontier, persist
from keeptrail.query.compile_sql import Dialect, compile_sql, compile_time_range
from keeptrail.query.tree import Node
from keeptrail.store import rows
from keeptrail.store.contract import FilePosition, SearchPage, Stats
from keeptrail.store.sqlite_ledger import LedgerMixin
from keeptrail.store.sqlite_schema import migrate

_LEAF_COLUMNS: Final = (*rows.COLUMNS, "leaf_index", "leaf_hash")
_INSERT: Final = (
    f"INSERT INTO events ({', '.join(_LEAF_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _LEAF_COLUMNS)})"
)
SQLITE_DIALECT: Final = Dialect.SQLITE
_SELECT: Final = f"SELECT seq, {', '.join(rows.COLUMNS)} FROM events"


class SQLiteStore(LedgerMixin):
    """:class:`~keeptrail.store.contract.Store` on a SQLite file.

    Every append also grows the ledger (docs/ledger.md) in the same transaction; the signing
    key lives next to the database in ``keys/`` and is created with the store. ``signer`` and
    ``publisher`` override the key file and the ``KEEPTRAIL_CHECKPOINT_LOG`` /
    ``KEEPTRAIL_WITNESS_URL`` environment (flag > environment > default).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        readonly: bool = False,
        signer: Signer | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self.path = Path(path)
        self._readonly = readonly
        if readonly:
            uri = f"file:{self.path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        db = self._db
        db.execute("PRAGMA busy_timeout = 30000")
        if not readonly:
            db.execute("PRAGMA journal_mode = WAL")
            sync = os.environ.get("KEEPTRAIL_SQLITE_SYNC", "NORMAL").upper()
            if sync not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
                raise ValueError(f"KEEPTRAIL_SQLITE_SYNC must be NORMAL or FULL, not {sync!r}")
            db.execute(f"PRAGMA synchronous = {sync}")
            migrate(db)
        db.execute("PRAGMA cache_size = -65536")  # 64 MiB page cache
        db.execute("PRAGMA temp_store = MEMORY")
        db.execute("PRAGMA mmap_size = 268435456")
        self._init_ledger(signer, publisher)

    # --- writing -------------------------------------------------------------------------------

    def append(self, events: Sequence[Event], positions: Sequence[FilePosition] = ()) -> int:
        db = self._db
        note: str | None = None
        size = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            inserted = 0
            if events:
                encoded = [rows.encode(e) for e in events]
                db.execute("SAVEPOINT batch")
                try:
                    grown = self._insert_leaves(encoded)
                except sqlite3.IntegrityError:  # an id is already stored: a retried delivery
                    db.execute("ROLLBACK TO batch")
                    grown = self._insert_leaves(self._only_new(encoded))
                db.execute("RELEASE batch")
                inserted = len(grown.leaf_hashes)
                if inserted:
                    note = persist(db, self._sql, grown, self._require_signer())
                    size = grown.frontier.size
            if positions:
                db.executemany(
                    "INSERT INTO file_positions (path, fingerprint, fingerprint_len, offset,"
                    " updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET"
                    " fingerprint = excluded.fingerprint,"
                    " fingerprint_len = excluded.fingerprint_len,"
                    " offset = excluded.offset, updated_at = excluded.updated_at",
                    [
                        (p.path, p.fingerprint, p.fingerprint_len, p.offset, p.updated_at)
                        for p in positions
                    ],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if note is not None:
            self._published(note, size)
        return inserted

    def _insert_leaves(self, encoded: list[tuple[Any, ...]]) -> Grown:
        """Insert rows with their leaf index and hash; the caller commits or rolls back."""
        encoder = self._encoder
        grown = grow(load_frontier(self._db, self._sql), (encoder(r) for r in encoded))
        first = grown.first_index
        self._db.executemany(
            _INSERT,
            [
                (*r, first + i, h)
                for i, (r, h) in enumerate(zip(encoded, grown.leaf_hashes, strict=True))
            ],
        )
        return grown

    def _only_new(self, encoded: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows whose id is neither stored nor repeated earlier in the batch, in order."""
        ids = list({r[0]: None for r in encoded})
        stored: set[bytes] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ", ".join("?" for _ in chunk)
            stored.update(
                bytes(row[0])
                for row in self._db.execute(f"SELECT id FROM events WHERE id IN ({marks})", chunk)
            )
        fresh: list[tuple[Any, ...]] = []
        for r in encoded:
            if r[0] not in stored:
                stored.add(r[0])
                fresh.append(r)
        return fresh

    # --- reading -------------------------------------------------------------------------------

    def search(
        self,
        query: Node | None,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchPage:
        clauses, params = _filters(query, since, until)
        if cursor is not None:
            c_time, c_seq = decode_cursor(cursor)
            clauses.append("(time < ? OR (time = ? AND seq < ?))")
            params.extend((c_time, c_time, c_seq))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_SELECT}{where} ORDER BY time DESC, seq DESC LIMIT ?"
        params.append(limit + 1)
        fetched = self._db.execute(sql, params).fetchall()
        decode = rows.decode
        events = [decode(r) for r in fetched[:limit]]
        next_cursor = None
        if len(fetched) > limit:
            last = fetched[limit - 1]
            next_cursor = encode_cursor(last[1 + rows.TIME_INDEX], last[0])
        return SearchPage(events, next_cursor)

    def explain(self, query: Node | None, *, since: int | None, until: int | None) -> list[str]:
        """SQLite's plan for a search, so a user (and a test) can see which index it uses."""
        clauses, params = _filters(query, since, until)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        plan = self._db.execute(
            f"EXPLAIN QUERY PLAN {_SELECT}{where} ORDER BY time DESC, seq DESC LIMIT 50", params
        ).fetchall()
        return [str(row[3]) for row in plan]

    def get(self, event_id: str) -> Event | None:
        try:
            key = rows.uuid_bytes(event_id)
        except ValueError:
            return None
        row = self._db.execute(f"{_SELECT} WHERE id = ?", (key,)).fetchone()
        return rows.decode(row) if row else None

    def stats(self, *, since: int | None = None, until: int | None = None, top: int = 10) -> Stats:
        where, params = "", []
        if since is not None or until is not None:
            sql, tparams = compile_time_range(since, until, SQLITE_DIALECT)
            where, params = f" WHERE {sql}", list(tparams)
        db = self._db
        total, first, last = db.execute(
            f"SELECT count(*), min(time), max(time) FROM events{where}", params
        ).fetchone()
        stats = Stats(total=total, first_time=first, last_time=last)
        stats.by_category = db.execute(
            f"SELECT category, count(*) AS n FROM events{where} GROUP BY category ORDER BY n DESC",
            params,
        ).fetchall()
        stats.by_action_outcome = db.execute(
            f"SELECT action, outcome, count(*) AS n FROM events{where}"
            " GROUP BY action, outcome ORDER BY n DESC",
            params,
        ).fetchall()
        and_or_where = " AND " if where else " WHERE "
        stats.top_actors = db.execute(
            f"SELECT actor_name, count(*) AS n FROM events{where}{and_or_where}"
            "actor_name IS NOT NULL GROUP BY actor_name ORDER BY n DESC LIMIT ?",
            [*params, top],
        ).fetchall()
        stats.top_sources = [
            (rows.ip_text(ip), n)
            for ip, n in db.execute(
                f"SELECT source_ip, count(*) AS n FROM events{where}{and_or_where}"
                "source_ip IS NOT NULL GROUP BY source_ip ORDER BY n DESC LIMIT ?",
                [*params, top],
            ).fetchall()
        ]
        stats.top_hosts = db.execute(
            f"SELECT target_host, count(*) AS n FROM events{where}{and_or_where}"
            "target_host IS NOT NULL GROUP BY target_host ORDER BY n DESC LIMIT ?",
            [*params, top],
        ).fetchall()
        return stats

    def count(self) -> int:
        (n,) = self._db.execute("SELECT count(*) FROM events").fetchone()
        return int(n)

    # --- file positions ------------------------------------------------------------------------

    def file_position(self, path: str) -> FilePosition | None:
        row = self._db.execute(
            "SELECT path, fingerprint, fingerprint_len, offset, updated_at"
            " FROM file_positions WHERE path = ?",
            (path,),
        ).fetchone()
        return FilePosition(*row) if row else None

    def file_position_by_fingerprint(self, fingerprint: str) -> FilePosition | None:
        row = self._db.execute(
            "SELECT path, fingerprint, fingerprint_len, offset, updated_at FROM file_positions"
            " WHERE fingerprint = ? ORDER BY offset DESC LIMIT 1",
            (fingerprint,),
        ).fetchone()
        return FilePosition(*row) if row else None

    def close(self) -> None:
        self._flush_publication()
        if not self._readonly:
            # Refresh the planner's statistics where they are stale (cheap when they are not),
            # so it keeps choosing the right index as the data grows.
            self._db.execute("PRAGMA optimize")
        self._db.close()


def _filters(
    query: Node | None, since: int | None, until: int | None
) -> tuple[list[str], list[Any]]:
    """WHERE clauses and their bound parameters for a query and a time range."""
    clauses: list[str] = []
    params: list[Any] = []
    if query is not None:
        sql, qparams = compile_sql(query, SQLITE_DIALECT)
        clauses.append(f"({sql})")
        params.extend(qparams)
    if since is not None or until is not None:
        sql, tparams = compile_time_range(since, until, SQLITE_DIALECT)
        clauses.append(sql)
        params.extend(tparams)
    return clauses, params


def encode_cursor(time_us: int, seq: int) -> str:
    """An opaque, URL-safe cursor: the (time, seq) of the last event on a page."""
    return base64.urlsafe_b64encode(orjson.dumps([time_us, seq])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """Inverse of :func:`encode_cursor`; a malformed cursor is a ``ValueError``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded))
        time_us, seq = value
        if not isinstance(time_us, int) or not isinstance(seq, int):
            raise TypeError
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc
    return time_us, seq
