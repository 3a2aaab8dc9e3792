"""The PostgreSQL store: the same contract as SQLite, for several servers sharing one database.

Layout and sequencing are described in :mod:`.postgres_schema` and :mod:`.integrator`. In
short: ``append`` computes everything that does not depend on the leaf index (canonical bytes,
leaf hash, clear columns, sealed blob, partition), ``COPY``-s the batch into a staging table
and moves it into the durable ``ingest_queue`` (skipping ids already stored or queued) in one
transaction with the file positions, then waits — bounded — until the integrator has given
the batch its leaves, so "answered after commit" still means searchable and provable. If no
process is integrating (a plain ``keeptrail ingest``), the appender takes the integrator lock
itself for as long as it needs it.

Reading is the v2 design's: the clear columns are an index, the event is its sealed canonical
bytes (AES-256-GCM under the partition's data key, associated data ``id || partition``, or the
canonical bytes themselves in an unsealed partition) — the same projection and the same
sealing as the SQLite store, through the shared :mod:`keeptrail.protect` modules.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from hashlib import sha256
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from keeptrail.config import default_data_dir
from keeptrail.errors import UserError
from keeptrail.event import Event
from keeptrail.ledger.note import Signer
from keeptrail.ledger.proof import consistency_proof
from keeptrail.ledger.publish import Publisher
from keeptrail.ledger.tree import StoredNodes
from keeptrail.protect.projection import DEFAULT_CLEAR, REQUIRED, Projection, encode_clear
from keeptrail.protect.retention import RetentionPolicies
from keeptrail.protect.seal import aad_for
from keeptrail.query.compile_sql import Dialect, compile_filters, compile_time_range
from keeptrail.query.predicate import compile_predicate
from keeptrail.query.split import has_needles, required_needles, split_query
from keeptrail.query.tree import Node
from keeptrail.store import rows
from keeptrail.store.compact import pack
from keeptrail.store.contract import (
    FilePosition,
    Hold,
    PartitionInfo,
    PurgeResult,
    ReclaimResult,
    SearchPage,
    Stats,
)
from keeptrail.store.hold_match import held_leaves
from keeptrail.store.integrator import (
    INTEGRATED_CHANNEL,
    QUEUE_CHANNEL,
    IntegratorLoop,
    integrate_once,
    try_lock,
    unlock,
)
from keeptrail.store.partitioning import DEFAULT_CLASS, DayCache, check_name, partition_name
from keeptrail.store.postgres_ledger import PgLedgerMixin
from keeptrail.store.postgres_schema import CLEAR_COLUMNS, CLEAR_NAMES, migrate
from keeptrail.store.sealed import KeySource, PartitionKeys, PartitionMeta, event_from_canonical
from keeptrail.store.sqlite import decode_cursor, encode_cursor

PG: Final = Dialect.POSTGRES
DEFAULT_SCAN_BUDGET: Final = 50_000  # rows opened per page before a residual search stops
PARTITION_COLUMNS: Final = (
    "name, day, retention_class, sealed, events, first_time, last_time, first_leaf, last_leaf,"
    " state, created_at, purged_at, purge_event, clear_fields"
)
_HOLD_COLUMNS: Final = (
    "id, query, since, until, reason, created_by, created_at, released_at, released_by"
)
_CHUNK: Final = 500
_ID_AT: Final = CLEAR_NAMES.index("id")
_IP_AT: Final = CLEAR_NAMES.index("source_ip")
_STAGING_COLUMNS: Final = (
    "ord",
    "partition",
    "day",
    "retention_class",
    "is_sealed",
    "clear",
    "leaf_hash",
    *CLEAR_NAMES,
    "sealed",
)
_STAGING_TYPES: Final = ", ".join(f"{c} {t.replace(' NOT NULL', '')}" for c, t in CLEAR_COLUMNS)
_STAGING_DDL: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS kt_staging (ord integer, partition text, day integer,"
    " retention_class text, is_sealed boolean, clear text, leaf_hash bytea,"
    f" {_STAGING_TYPES}, sealed bytea) ON COMMIT DELETE ROWS"
)
_QUEUE_COLUMNS: Final = ", ".join(_STAGING_COLUMNS[1:])
_ENQUEUE: Final = (
    f"INSERT INTO ingest_queue (batch, {_QUEUE_COLUMNS})"
    f" SELECT %s, {_QUEUE_COLUMNS} FROM kt_staging s"
    " WHERE NOT EXISTS (SELECT 1 FROM leaves l WHERE l.id = s.id)"
    " ORDER BY s.ord ON CONFLICT (id) DO NOTHING"
)
_READ: Final = "SELECT time, leaf_index, partition, id, sealed FROM events"


class PostgresStore(PgLedgerMixin):
    """:class:`~keeptrail.store.contract.Store` on a PostgreSQL database (psycopg 3).

    ``data_dir`` holds the ledger signing key (``keys/ledger.key``; every server sharing the
    database must be given the same key file) and, when encryption is on, the keyring.
    ``integrator`` starts the background integrator loop (:class:`IntegratorLoop`) — every
    writable store runs one; at most one in the deployment integrates at a time.
    """

    def __init__(
        self,
        url: str,
        *,
        readonly: bool = False,
        data_dir: Path | None = None,
        signer: Signer | None = None,
        publisher: Publisher | None = None,
        keyring: KeySource | None = None,
        clear_fields: frozenset[str] = DEFAULT_CLEAR,
        classify: Callable[[Event], str] | None = None,
        integrator: bool = True,
        wait_timeout: float = 60.0,
        scan_budget: int = DEFAULT_SCAN_BUDGET,
        close_keyring: bool = False,
    ) -> None:
        self.url = url
        self.path = None
        self._readonly = readonly
        self._data_dir = data_dir or default_data_dir()
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise UserError(f"cannot connect to PostgreSQL: {_first_line(exc)}") from None
        self._lock = threading.RLock()  # one connection: one caller at a time
        self._keys = PartitionKeys(keyring)
        self._close_keyring = close_keyring
        clear = frozenset(clear_fields) | REQUIRED
        self._projection = Projection(clear)
        self._clear_text = encode_clear(clear)
        self._classify = classify
        self._scan_budget = scan_budget
        self._day = DayCache()
        self._encoder = rows.CanonicalEncoder()
        self._wait_timeout = wait_timeout
        self._meta: dict[str, PartitionMeta] = {}
        self._loop: IntegratorLoop | None = None
        if not readonly:
            migrate(self._db)
            self._db.execute(_STAGING_DDL)
            self._db.execute(sql.SQL("LISTEN {}").format(sql.Identifier(INTEGRATED_CHANNEL)))
        self._init_ledger(signer, publisher)
        if not readonly and integrator and self._signer is not None:
            self._loop = IntegratorLoop(url, self._signer, on_commit=self._loop_published)
            self._loop.start()

    # --- writing -------------------------------------------------------------------------------

    def append(self, events: Sequence[Event], positions: Sequence[FilePosition] = ()) -> int:
        if self._readonly:
            raise UserError("this store was opened read-only")
        signer = self._require_signer()
        with self._lock:
            prepared = self._prepare(events) if events else []
            db = self._db
            inserted = 0
            with db.transaction():
                batch = 0
                if prepared:
                    (batch,) = db.execute("SELECT nextval('ingest_batches')").fetchone() or (0,)
                    with db.cursor().copy(
                        f"COPY kt_staging ({', '.join(_STAGING_COLUMNS)}) FROM STDIN"
                    ) as copy:
                        for row in prepared:
                            copy.write_row(row)
                    inserted = db.execute(_ENQUEUE, (batch,)).rowcount
                    if inserted:
                        db.execute("SELECT pg_notify(%s, '')", (QUEUE_CHANNEL,))
                if positions:
                    db.cursor().executemany(
                        "INSERT INTO file_positions (path, fingerprint, fingerprint_len,"
                        ' "offset", updated_at) VALUES (%s, %s, %s, %s, %s)'
                        " ON CONFLICT (path) DO UPDATE SET fingerprint = excluded.fingerprint,"
                        " fingerprint_len = excluded.fingerprint_len,"
                        ' "offset" = excluded."offset", updated_at = excluded.updated_at',
                        [
                            (p.path, p.fingerprint, p.fingerprint_len, p.offset, p.updated_at)
                            for p in positions
                        ],
                    )
            if inserted:
                self._await_integration(batch, signer)
        return inserted

    def _prepare(self, events: Sequence[Event]) -> list[tuple[Any, ...]]:
        """Staging rows: partition, leaf hash, clear columns and sealed bytes of each event."""
        encoder, project, day_of = self._encoder, self._projection, self._day
        classify = self._classify
        encoded = [rows.encode(e) for e in events]
        keys = [
            (day_of(e.time), classify(e) if classify is not None else DEFAULT_CLASS) for e in events
        ]
        names = self._partition_names(set(keys))
        keys_, sealer = self._keys, self._keys.sealer
        sealing = keys_.enabled
        out: list[tuple[Any, ...]] = []
        for i, (row, (day, klass)) in enumerate(zip(encoded, keys, strict=True)):
            canonical = encoder(row)
            name = names[day, klass]
            packed = pack(canonical)
            if sealing:
                blob = sealer.seal(keys_.for_write(name), packed, aad_for(row[0], name))
            else:
                blob = packed
            clear = list(project(row))
            clear[_ID_AT] = uuid.UUID(bytes=row[0])
            out.append(
                (
                    i,
                    name,
                    day,
                    klass,
                    sealing,
                    self._clear_text,
                    sha256(b"\x00" + canonical).digest(),
                    *clear,
                    blob,
                )
            )
        return out

    def _partition_names(self, keys: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
        """The partition each (day, class) goes to now: the newest generation, unless it was
        purged or its sealing/clear setting differs from this store's (then the next one)."""
        found = self._db.execute(
            "SELECT day, retention_class, name, state, sealed, clear_fields FROM partitions"
            " WHERE day = ANY(%s) ORDER BY created_at, name",
            ([d for d, _ in keys],),
        ).fetchall()
        latest: dict[tuple[int, str], tuple[str, str, bool, str | None]] = {}
        generations: dict[tuple[int, str], int] = {}
        for day, klass, name, state, sealed, clear in found:
            latest[day, klass] = (name, state, sealed, clear)
            generations[day, klass] = generations.get((day, klass), 0) + 1
        sealing = self._keys.enabled
        names: dict[tuple[int, str], str] = {}
        for day, klass in keys:
            current = latest.get((day, klass))
            if current is None:
                names[day, klass] = partition_name(day, klass)
                continue
            name, state, sealed, clear = current
            if state == "purged" or sealed != sealing or clear != self._clear_text:
                names[day, klass] = partition_name(day, klass, generations[day, klass] + 1)
            else:
                names[day, klass] = name
        return names

    def _await_integration(self, batch: int, signer: Signer) -> None:
        """Return once no row of ``batch`` is left in the queue (bounded by ``wait_timeout``)."""
        db = self._db
        deadline = time.monotonic() + self._wait_timeout
        while True:
            left = db.execute(
                "SELECT EXISTS (SELECT 1 FROM ingest_queue WHERE batch = %s)", (batch,)
            ).fetchone()
            if not (left and left[0]):
                return
            if try_lock(db):
                try:
                    while (done := integrate_once(db, signer)) is not None:
                        if done.note is not None:
                            self._published(done.note, done.size)
                finally:
                    unlock(db)
                continue
            if time.monotonic() > deadline:
                raise UserError(
                    f"batch {batch} is stored in the ingest queue but was not integrated within"
                    f" {self._wait_timeout:.0f} s: is the integrating server stuck?"
                )
            for _ in db.notifies(timeout=0.05, stop_after=1):
                pass

    def _loop_published(self, note: str, size: int, db: psycopg.Connection) -> None:
        """Publish a checkpoint the background integrator signed (on its thread/connection).

        Failures are logged, not recorded as events: recording would append from the
        integrator's own thread while an appender may be waiting for that very integrator.
        """
        if not self._publisher.enabled:
            return
        nodes = StoredNodes(db.cursor(), self._sql)
        with self._publish_lock:
            failures = self._publisher.publish(
                note, size, lambda old, new: consistency_proof(old, new, nodes)
            )
        for target, error in failures:
            self._log_publish_failure(target, error)

    # --- reading -------------------------------------------------------------------------------

    def _partition_meta(self, name: str) -> PartitionMeta:
        """A partition's metadata, cached (re-read when unknown)."""
        meta = self._meta.get(name)
        if meta is None:
            self._refresh_meta()
            meta = self._meta.get(name)
            if meta is None:
                raise UserError(f"unknown partition {name!r}")
        return meta

    def _refresh_meta(self) -> None:
        self._meta = {
            r[0]: PartitionMeta.from_row(r)
            for r in self._db.execute(f"SELECT {PARTITION_COLUMNS} FROM partitions").fetchall()
        }

    def _canonical(self, partition: str, id16: bytes, blob: bytes) -> bytes:
        """The canonical bytes of a stored event (opened when its partition is sealed)."""
        return self._keys.canonical(self._partition_meta(partition), id16, blob)

    def _event(self, partition: str, id_: uuid.UUID, blob: bytes) -> Event:
        return event_from_canonical(self._canonical(partition, id_.bytes, bytes(blob)))

    def _clear_set(self, since: int | None = None, until: int | None = None) -> frozenset[str]:
        """Fields clear in every live partition (what SQL may filter on without missing events)."""
        self._refresh_meta()
        result = self._projection.fields
        for meta in self._meta.values():
            if meta.state == "purged":
                continue
            if since is not None and meta.last_time is not None and meta.last_time < since:
                continue
            if until is not None and meta.first_time is not None and meta.first_time >= until:
                continue
            result &= meta.clear
        return result

    def search(
        self,
        query: Node | None,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchPage:
        with self._lock:
            sql_part, residual = split_query(query, self._clear_set(since, until))
            clauses, params = compile_filters(sql_part, since, until, PG)
            if cursor is not None:
                c_time, c_leaf = decode_cursor(cursor)
                clauses.append("(time, leaf_index) < (%s, %s)")
                params.extend((c_time, c_leaf))
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            order = " ORDER BY time DESC, leaf_index DESC"
            if residual is None:
                fetched = self._db.execute(
                    f"{_READ}{where}{order} LIMIT %s", [*params, limit + 1]
                ).fetchall()
                events = [self._event(r[2], r[3], r[4]) for r in fetched[:limit]]
                more = len(fetched) > limit
                last = fetched[limit - 1] if more else None
                return SearchPage(events, encode_cursor(last[0], last[1]) if last else None)
            return self._residual_search(where, order, params, residual, limit)

    def _residual_search(
        self, where: str, order: str, params: list[Any], residual: Node, limit: int
    ) -> SearchPage:
        """Candidates from SQL, newest first, tested once opened; at most ``scan_budget`` opened.

        When the budget runs out the page is returned as it is (``stopped_early``), with a
        cursor at the last candidate examined, so the caller continues where the scan stopped.
        """
        matches = compile_predicate(residual)
        needles = required_needles(residual)  # absent from the opened bytes: cannot match
        found: list[tuple[Event, int, int]] = []
        scanned = 0
        with (
            self._db.transaction(),
            self._db.cursor(name=f"kt_search_{uuid.uuid4().hex[:8]}") as cur,
        ):
            cur.itersize = _CHUNK
            cur.execute(f"{_READ}{where}{order}", params)
            for t, leaf, partition, id_, blob in cur:
                scanned += 1
                data = self._canonical(partition, id_.bytes, bytes(blob))
                event = event_from_canonical(data) if has_needles(data, needles) else None
                if event is not None and matches(event):
                    found.append((event, t, leaf))
                    if len(found) > limit:
                        last = found[limit - 1]
                        return SearchPage(
                            [e for e, _, _ in found[:limit]],
                            encode_cursor(last[1], last[2]),
                            scanned=scanned,
                        )
                if scanned >= self._scan_budget:
                    return SearchPage(
                        [e for e, _, _ in found], encode_cursor(t, leaf), True, scanned
                    )
        return SearchPage([e for e, _, _ in found], None, scanned=scanned)

    def explain(self, query: Node | None, *, since: int | None, until: int | None) -> list[str]:
        """PostgreSQL's plan for the SQL part of a search (which indexes and partitions)."""
        with self._lock:
            sql_part, _ = split_query(query, self._clear_set())
            clauses, params = compile_filters(sql_part, since, until, PG)
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            plan = self._db.execute(
                f"EXPLAIN {_READ}{where} ORDER BY time DESC, leaf_index DESC LIMIT 50", params
            ).fetchall()
            return [str(r[0]) for r in plan]

    def get(self, event_id: str) -> Event | None:
        try:
            key = uuid.UUID(event_id)
        except ValueError:
            return None
        with self._lock:
            row = self._locate(key)
            return None if row is None else self._event(row[1], key, row[2])

    def _locate(self, key: uuid.UUID) -> tuple[int, str, bytes] | None:
        """(leaf index, partition, sealed) of a stored event, straight from its partition."""
        found = self._db.execute(
            "SELECT l.leaf_index, l.partition, p.state FROM leaves l"
            " JOIN partitions p ON p.name = l.partition WHERE l.id = %s",
            (key,),
        ).fetchone()
        if found is None or found[2] == "purged":
            return None
        leaf, partition, _ = found
        row = self._db.execute(
            sql.SQL("SELECT sealed FROM {} WHERE leaf_index = %s").format(
                sql.Identifier(check_name(partition))
            ),
            (leaf,),
        ).fetchone()
        return None if row is None else (leaf, partition, bytes(row[0]))

    def events_after(self, leaf_index: int, limit: int) -> list[tuple[int, Event]]:
        with self._lock:
            fetched = self._db.execute(
                "SELECT leaf_index, partition, id, sealed FROM events WHERE leaf_index > %s"
                " ORDER BY leaf_index LIMIT %s",
                (leaf_index, limit),
            ).fetchall()
            return [(r[0], self._event(r[1], r[2], r[3])) for r in fetched]

    def stats(self, *, since: int | None = None, until: int | None = None, top: int = 10) -> Stats:
        where, params = "", []
        if since is not None or until is not None:
            frag, tparams = compile_time_range(since, until, PG)
            where, params = f" WHERE {frag}", list(tparams)
        and_or_where = " AND " if where else " WHERE "
        with self._lock:
            db = self._db
            total, first, last = db.execute(
                f"SELECT count(*), min(time), max(time) FROM events{where}", params
            ).fetchone() or (0, None, None)
            stats = Stats(total=int(total), first_time=first, last_time=last)
            stats.by_category = [
                (c, int(n))
                for c, n in db.execute(
                    f"SELECT category, count(*) AS n FROM events{where}"
                    " GROUP BY category ORDER BY n DESC, category",
                    params,
                ).fetchall()
            ]
            stats.by_action_outcome = [
                (a, o, int(n))
                for a, o, n in db.execute(
                    f"SELECT action, outcome, count(*) AS n FROM events{where}"
                    " GROUP BY action, outcome ORDER BY n DESC, action, outcome",
                    params,
                ).fetchall()
            ]

            def top_of(column: str) -> list[tuple[Any, int]]:
                return [
                    (v, int(n))
                    for v, n in db.execute(
                        f"SELECT {column}, count(*) AS n FROM events{where}{and_or_where}"
                        f"{column} IS NOT NULL GROUP BY {column} ORDER BY n DESC, {column}"
                        " LIMIT %s",
                        [*params, top],
                    ).fetchall()
                ]

            stats.top_actors = top_of("actor_name")
            stats.top_sources = [(rows.ip_text(bytes(ip)), n) for ip, n in top_of("source_ip")]
            stats.top_hosts = top_of("target_host")
            return stats

    def count(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM events").fetchone()
            return int(row[0]) if row else 0

    # --- file positions ------------------------------------------------------------------------

    def file_position(self, path: str) -> FilePosition | None:
        with self._lock:
            row = self._db.execute(
                'SELECT path, fingerprint, fingerprint_len, "offset", updated_at'
                " FROM file_positions WHERE path = %s",
                (path,),
            ).fetchone()
        return FilePosition(*row) if row else None

    def file_position_by_fingerprint(self, fingerprint: str) -> FilePosition | None:
        with self._lock:
            row = self._db.execute(
                'SELECT path, fingerprint, fingerprint_len, "offset", updated_at'
                ' FROM file_positions WHERE fingerprint = %s ORDER BY "offset" DESC LIMIT 1',
                (fingerprint,),
            ).fetchone()
        return FilePosition(*row) if row else None

    # --- partitions, retention, holds ----------------------------------------------------------

    def reclaim(self, budget_seconds: float | None = None) -> ReclaimResult:
        """Nothing waits here: PostgreSQL's ``DROP TABLE`` unlinks the table's files at commit
        (it does not walk pages), so :meth:`purge_partition` drops the table in place."""
        return ReclaimResult()

    def awaiting_reclaim(self) -> list[str]:
        """None: :meth:`purge_partition` drops the table, which frees its files at commit."""
        return []

    def partitions(self) -> list[PartitionInfo]:
        with self._lock:
            self._refresh_meta()
            metas = sorted(self._meta.values(), key=lambda m: (m.day, m.name))
        return [m.info() for m in metas]

    def purge_partition(
        self, name: str, *, holds: Sequence[Hold], purge_event_id: str
    ) -> PurgeResult:
        check_name(name)
        with self._lock:
            self._refresh_meta()
            meta = self._meta.get(name)
            if meta is None:
                raise UserError(f"no partition named {name!r}")
            if meta.state == "purged":
                return PurgeResult(name, "purged", 0, 0, False, [], meta.first_time, meta.last_time)
            held = held_leaves(meta, holds, PG, leaves=self._hold_leaves, events=self._hold_events)
            now = time.time_ns() // 1000
            table = sql.Identifier(name)
            db = self._db
            if not held:
                destroyed = self._keys.shred(meta, purge_event_id)  # before the DROP
                with db.transaction():
                    db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
                    db.execute(
                        "UPDATE partitions SET state = 'purged', events = 0, purged_at = %s,"
                        " purge_event = %s WHERE name = %s",
                        (now, purge_event_id, name),
                    )
                self._meta.pop(name, None)
                span = (
                    [(meta.first_leaf, meta.last_leaf)]
                    if meta.first_leaf is not None and meta.last_leaf is not None
                    else []
                )
                return PurgeResult(
                    name, "purged", meta.events, 0, destroyed, span,
                    meta.first_time, meta.last_time,
                )  # fmt: skip
            keep = sorted(held)
            with db.transaction():
                removed = [
                    r[0]
                    for r in db.execute(
                        sql.SQL(
                            "DELETE FROM {} WHERE NOT (leaf_index = ANY(%s)) RETURNING leaf_index"
                        ).format(table),
                        (keep,),
                    ).fetchall()
                ]
                removed.sort()
                row = db.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
                kept = int(row[0]) if row else 0
                state = "partial" if removed else meta.state
                if removed:
                    db.execute(
                        "UPDATE partitions SET state = 'partial', events = %s, purged_at = %s,"
                        " purge_event = %s WHERE name = %s",
                        (kept, now, purge_event_id, name),
                    )
            self._meta.pop(name, None)
            return PurgeResult(
                name, state, len(removed), kept, False, _leaf_runs(removed),
                meta.first_time, meta.last_time,
            )  # fmt: skip

    def _hold_leaves(self, meta: PartitionMeta, where: str, params: list[Any]) -> list[int]:
        table = sql.Identifier(meta.name).as_string(self._db)
        return [r[0] for r in self._db.execute(f"SELECT leaf_index FROM {table}{where}", params)]

    def _hold_events(
        self, meta: PartitionMeta, where: str, params: list[Any]
    ) -> Iterator[tuple[int, Event]]:
        table = sql.Identifier(meta.name).as_string(self._db)
        for leaf, id_, blob in self._db.execute(
            f"SELECT leaf_index, id, sealed FROM {table}{where}", params
        ).fetchall():
            yield leaf, self._keys.event(meta, id_.bytes, blob)

    def add_hold(self, hold: Hold) -> None:
        with self._lock:
            try:
                self._db.execute(
                    f"INSERT INTO holds ({_HOLD_COLUMNS})"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        hold.id, hold.query, hold.since, hold.until, hold.reason,
                        hold.created_by, hold.created_at, hold.released_at, hold.released_by,
                    ),
                )  # fmt: skip
            except psycopg.errors.UniqueViolation:
                raise UserError(f"a hold with id {hold.id} already exists") from None

    def holds(self, active_only: bool = True) -> list[Hold]:
        where = " WHERE released_at IS NULL" if active_only else ""
        with self._lock:
            found = self._db.execute(
                f"SELECT {_HOLD_COLUMNS} FROM holds{where} ORDER BY created_at, id"
            ).fetchall()
        return [Hold(*r) for r in found]

    def release_hold(self, hold_id: str, by: str | None, at: int) -> Hold:
        with self._lock:
            self._db.execute(
                "UPDATE holds SET released_at = %s, released_by = %s"
                " WHERE id = %s AND released_at IS NULL",
                (at, by, hold_id),
            )
            row = self._db.execute(
                f"SELECT {_HOLD_COLUMNS} FROM holds WHERE id = %s", (hold_id,)
            ).fetchone()
        if row is None:
            raise KeyError(hold_id)
        return Hold(*row)

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
        with self._lock:
            if not self._db.closed:
                self._flush_publication()
                self._db.close()
        keyring = self._keys.keyring
        if self._close_keyring and keyring is not None:
            close = getattr(keyring, "close", None)
            if close is not None:
                close()


def _leaf_runs(leaves: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted leaf indices as inclusive ``(first, last)`` runs."""
    runs: list[tuple[int, int]] = []
    for leaf in leaves:
        if runs and runs[-1][1] == leaf - 1:
            runs[-1] = (runs[-1][0], leaf)
        else:
            runs.append((leaf, leaf))
    return runs


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def open_postgres(
    url: str,
    *,
    readonly: bool = False,
    data_dir: Path | None = None,
    config_file: Path | None = None,
) -> PostgresStore:
    """The PostgreSQL store at ``url``, configured from the data directory.

    The data directory (``--data-dir`` / ``$KEEPTRAIL_DATA_DIR``) holds what must not live in
    the database: the ledger signing key, the keyring and its master key, and
    ``keeptrail.toml`` (``[protect]`` clear fields and encryption, ``[retention]`` classes).
    Data keys are shared through the database (:mod:`.postgres_keys`); a read-only open never
    creates a master key.
    """
    from keeptrail.config import load_config_file  # noqa: PLC0415
    from keeptrail.protect.keyring import encryption_enabled  # noqa: PLC0415
    from keeptrail.protect.projection import clear_fields_from_config  # noqa: PLC0415
    from keeptrail.store.postgres_keys import PgKeyring  # noqa: PLC0415

    directory = data_dir or default_data_dir()
    config = load_config_file(directory, config_file)  # config_file: --config, if any
    clear = clear_fields_from_config(config)
    classify = RetentionPolicies.from_config(config).classify
    keyring = None
    if encryption_enabled(config):
        if not readonly:
            _migrate_once(url)  # the key tables must exist before the keyring reads them
        try:
            keyring = PgKeyring(url, directory, config, create=not readonly)
        except UserError:
            if not readonly:
                raise
        except psycopg.Error as exc:
            raise UserError(f"cannot open the PostgreSQL keyring: {_first_line(exc)}") from None
    try:
        return PostgresStore(
            url,
            readonly=readonly,
            data_dir=directory,
            keyring=keyring,
            clear_fields=clear,
            classify=classify,
            close_keyring=True,
        )
    except BaseException:
        if keyring is not None:
            keyring.close()
        raise


def _migrate_once(url: str) -> None:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as db:
            migrate(db)
    except psycopg.Error as exc:
        raise UserError(f"cannot connect to PostgreSQL: {_first_line(exc)}") from None
