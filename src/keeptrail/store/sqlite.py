"""The embedded store: one SQLite file in WAL mode, no server to run.

One process writes (ingest batches, each one transaction together with the file positions it
reached, so a crash can neither lose nor repeat a line); any number of processes read while it
writes. ``synchronous=NORMAL`` in WAL mode keeps the database consistent after a process crash
or ``kill -9`` — a committed batch survives — and can only lose the last batches on a power
failure; set ``KEEPTRAIL_SQLITE_SYNC=FULL`` where that matters more than throughput.

Storage shape v2 (docs/storage.md): ``leaves`` holds every event's place in the ledger; each
partition (UTC day × retention class) is a table of clear columns plus ``sealed``, the
canonical bytes encrypted with the partition's data key. Searches compile the clear part of a
query to SQL per partition and check the rest after decryption.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any, Final

import orjson

from keeptrail.errors import UserError
from keeptrail.event import Event
from keeptrail.ledger.note import Signer
from keeptrail.ledger.publish import Publisher
from keeptrail.ledger.tree import Grown, grow, load_frontier, persist
from keeptrail.protect.projection import DEFAULT_CLEAR, REQUIRED, Projection
from keeptrail.query.compile_sql import Dialect, compile_sql, compile_time_range
from keeptrail.query.predicate import compile_predicate
from keeptrail.query.split import has_needles, required_needles, split_query
from keeptrail.query.tree import Node
from keeptrail.store import rows
from keeptrail.store.compact import pack
from keeptrail.store.contract import FilePosition, SearchPage, Stats
from keeptrail.store.partitioning import DEFAULT_CLASS, DayCache, check_class, partition_name
from keeptrail.store.partitioning import quoted as q
from keeptrail.store.sealed import KeySource, PartitionKeys, PartitionMeta, event_from_canonical
from keeptrail.store.sqlite_ledger import LedgerMixin
from keeptrail.store.sqlite_partitions import (
    PARTITION_COLUMNS,
    UPDATE_STATS,
    create_partition,
    insert_sql,
)
from keeptrail.store.sqlite_retention import RetentionMixin
from keeptrail.store.sqlite_schema import MIGRATIONS, migrate

SQLITE_DIALECT: Final = Dialect.SQLITE
DEFAULT_SCAN_BUDGET: Final = 50_000
_INSERT_LEAF: Final = (
    "INSERT INTO leaves (leaf_index, id, partition, leaf_hash) VALUES (?, ?, ?, ?)"
)
_COMPOUND_MAX: Final = 400  # arms per UNION ALL (SQLite allows 500)
Classifier = Callable[[Event], str]


@dataclass(slots=True)
class _Route:
    """Where new events of one (day, class) go: table, sealing key, projection."""

    name: str
    suffix: bytes  # the partition name's bytes, the second half of the associated data
    key: bytes | None
    insert: str
    clear: Callable[[tuple[Any, ...]], tuple[Any, ...]]


class SQLiteStore(RetentionMixin, LedgerMixin):
    """:class:`~keeptrail.store.contract.Store` on a SQLite file.

    Every append also grows the ledger (docs/ledger.md) in the same transaction; the signing
    key lives next to the database in ``keys/`` and is created with the store. ``signer`` and
    ``publisher`` override the key file and the ``KEEPTRAIL_CHECKPOINT_LOG`` /
    ``KEEPTRAIL_WITNESS_URL`` environment (flag > environment > default). With a ``keyring``
    new partitions are sealed (AES-256-GCM, one data key per partition); ``classify`` names
    each event's retention class (``default`` without it); ``clear_fields`` are the columns
    kept in clear for new partitions (:mod:`keeptrail.protect.projection`).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        readonly: bool = False,
        signer: Signer | None = None,
        publisher: Publisher | None = None,
        keyring: KeySource | None = None,
        classify: Classifier | None = None,
        clear_fields: frozenset[str] = DEFAULT_CLEAR,
        scan_budget: int = DEFAULT_SCAN_BUDGET,
        close_keyring: bool = False,
    ) -> None:
        self.path = Path(path)
        self._keyring = keyring if close_keyring else None  # closed with the store
        self._readonly = readonly
        self._keys = PartitionKeys(keyring)
        self._classify = classify
        self._clear = frozenset(clear_fields) | REQUIRED
        Projection(self._clear)  # validates the names
        self._scan_budget = scan_budget
        self._days = DayCache()
        self._routes: dict[tuple[int, str], _Route] = {}
        self._schema_version = -1
        self._closed = False
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
        else:
            _require_current_schema(db, self.path)
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
            self._check_routes()
            inserted = 0
            if events:
                encoded = [rows.encode(e) for e in events]
                db.execute("SAVEPOINT batch")
                try:
                    grown = self._insert_leaves(encoded, events)
                except sqlite3.IntegrityError:  # an id is already stored: a retried delivery
                    db.execute("ROLLBACK TO batch")
                    self._routes.clear()  # partitions created under the savepoint are gone
                    grown = self._insert_leaves(*self._only_new(encoded, events))
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
            self._routes.clear()
            raise
        self._schema_version = db.execute("PRAGMA schema_version").fetchone()[0]
        if note is not None:
            self._published(note, size)
        return inserted

    def _check_routes(self) -> None:
        """Forget cached routes when another connection changed the schema (a purge)."""
        version = self._db.execute("PRAGMA schema_version").fetchone()[0]
        if version != self._schema_version:
            self._routes.clear()
            self._schema_version = version

    def _insert_leaves(self, encoded: list[tuple[Any, ...]], events: Sequence[Event]) -> Grown:
        """Insert leaves and partition rows; the caller commits or rolls back.

        The canonical bytes are computed once per event: hashed for the leaf, and compressed
        then sealed into the row.
        """
        encoder = self._encoder
        canonical = [encoder(r) for r in encoded]
        grown = grow(load_frontier(self._db, self._sql), canonical)
        first = grown.first_index
        hashes = grown.leaf_hashes
        days, routes, classify = self._days, self._routes, self._classify
        seal = self._keys.sealer.seal
        leaves: list[tuple[Any, ...]] = []
        groups: dict[str, tuple[_Route, list[tuple[Any, ...]]]] = {}
        for i, row in enumerate(encoded):
            index = first + i
            day = days(row[1])
            rclass = classify(events[i]) if classify is not None else DEFAULT_CLASS
            route = routes.get((day, rclass))
            if route is None:
                route = self._route(day, rclass)
            id16 = row[0]
            data = pack(canonical[i])
            blob = data if route.key is None else seal(route.key, data, id16 + route.suffix)
            leaves.append((index, id16, route.name, hashes[i]))
            group = groups.get(route.name)
            if group is None:
                group = groups[route.name] = (route, [])
            group[1].append((index, *route.clear(row), blob))
        db = self._db
        db.executemany(_INSERT_LEAF, leaves)
        for route, part_rows in groups.values():
            db.executemany(route.insert, part_rows)
            times = [r[2] for r in part_rows]
            lo, hi = min(times), max(times)
            db.execute(
                UPDATE_STATS,
                (len(part_rows), lo, lo, hi, hi, part_rows[0][0], part_rows[-1][0], route.name),
            )
        return grown

    def _route(self, day: int, rclass: str) -> _Route:
        """The live partition for new events of a day and class, created when there is none."""
        check_class(rclass)
        sealed = self._keys.enabled
        db = self._db
        found = db.execute(
            "SELECT name, clear_fields FROM partitions WHERE day = ? AND retention_class = ?"
            " AND sealed = ? AND state = 'live' ORDER BY created_at DESC, name DESC LIMIT 1",
            (day, rclass, int(sealed)),
        ).fetchone()
        if found is not None:
            name = found[0]
            meta_clear = PartitionMeta.from_row(self._meta_row(name)).clear
        else:
            taken = {
                n
                for (n,) in db.execute(
                    "SELECT name FROM partitions WHERE day = ? AND retention_class = ?",
                    (day, rclass),
                )
            }
            generation = 1
            while (name := partition_name(day, rclass, generation)) in taken:
                generation += 1
            meta_clear = self._clear
            create_partition(
                db,
                name,
                day=day,
                retention_class=rclass,
                sealed=sealed,
                clear=meta_clear,
                now=time.time_ns() // 1000,
            )
        key = self._keys.for_write(name) if sealed else None
        project = Projection(meta_clear)
        route = _Route(
            name, name.encode(), key, insert_sql(name, project.clear_columns), project.clear
        )
        self._routes[(day, rclass)] = route
        return route

    def _meta_row(self, name: str) -> tuple[Any, ...]:
        row = self._db.execute(
            f"SELECT {PARTITION_COLUMNS} FROM partitions WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise UserError(f"no partition named {name!r}")
        return tuple(row)

    def _only_new(
        self, encoded: list[tuple[Any, ...]], events: Sequence[Event]
    ) -> tuple[list[tuple[Any, ...]], list[Event]]:
        """The rows (and events) whose id is neither stored nor repeated earlier in the batch."""
        ids = list({r[0]: None for r in encoded})
        stored: set[bytes] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ", ".join("?" for _ in chunk)
            stored.update(
                bytes(row[0])
                for row in self._db.execute(f"SELECT id FROM leaves WHERE id IN ({marks})", chunk)
            )
        fresh: list[tuple[Any, ...]] = []
        fresh_events: list[Event] = []
        for r, e in zip(encoded, events, strict=True):
            if r[0] not in stored:
                stored.add(r[0])
                fresh.append(r)
                fresh_events.append(e)
        return fresh, fresh_events

    # --- partitions ----------------------------------------------------------------------------

    def _metas(
        self, since: int | None = None, until: int | None = None, *, include_purged: bool = False
    ) -> list[PartitionMeta]:
        """Partitions overlapping ``[since, until)``, newest day first."""
        where = ["events > 0"] if not include_purged else []
        params: list[Any] = []
        if not include_purged:
            where.append("state != 'purged'")
        if since is not None:
            where.append("last_time >= ?")
            params.append(since)
        if until is not None:
            where.append("first_time < ?")
            params.append(until)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        found = self._db.execute(
            f"SELECT {PARTITION_COLUMNS} FROM partitions{clause} ORDER BY day DESC, name",
            params,
        ).fetchall()
        return [PartitionMeta.from_row(r) for r in found]

    def _meta(self, name: str) -> PartitionMeta | None:
        row = self._db.execute(
            f"SELECT {PARTITION_COLUMNS} FROM partitions WHERE name = ?", (name,)
        ).fetchone()
        return PartitionMeta.from_row(row) if row else None

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
        after = decode_cursor(cursor) if cursor is not None else None
        upper = until
        if after is not None:
            upper = after[0] + 1 if upper is None else min(upper, after[0] + 1)
        found: list[tuple[int, int, Event]] = []
        scanned = 0
        stopped: tuple[int, int] | None = None
        db, keys = self._db, self._keys
        for _day, grouped in groupby(self._metas(since, upper), key=lambda m: m.day):
            group = list(grouped)
            sql, params, residual = _day_query(group, query, since, until, after)
            if residual is None:
                fetched = db.execute(f"{sql} LIMIT ?", [*params, limit + 1 - len(found)])
                for k, leaf, id16, t, blob in fetched.fetchall():
                    found.append((t, leaf, keys.event(group[k], id16, blob)))
            else:
                matches = compile_predicate(residual)
                needles = required_needles(residual)
                cur = db.execute(sql, params)
                while stopped is None and len(found) <= limit and (batch := cur.fetchmany(256)):
                    for k, leaf, id16, t, blob in batch:
                        scanned += 1
                        data = keys.canonical(group[k], id16, blob)
                        if not has_needles(data, needles):
                            event = None
                        else:
                            event = event_from_canonical(data)
                        if event is not None and matches(event):
                            found.append((t, leaf, event))
                            if len(found) > limit:
                                break
                        if scanned >= self._scan_budget:
                            stopped = (t, leaf)
                            break
                cur.close()
            if stopped is not None or len(found) > limit:
                break
        next_cursor = None
        if len(found) > limit:
            t, leaf, _ = found[limit - 1]
            next_cursor = encode_cursor(t, leaf)
        elif stopped is not None:
            next_cursor = encode_cursor(*stopped)
        return SearchPage(
            [e for _, _, e in found[:limit]],
            next_cursor,
            stopped_early=stopped is not None,
            scanned=scanned,
        )

    def explain(self, query: Node | None, *, since: int | None, until: int | None) -> list[str]:
        """SQLite's plan for the newest day a search visits, so one can see the index it uses."""
        metas = self._metas(since, until)
        if not metas:
            return ["no partition overlaps the time range"]
        group = [m for m in metas if m.day == metas[0].day]
        sql, params, residual = _day_query(group, query, since, until, None)
        plan = self._db.execute(f"EXPLAIN QUERY PLAN {sql} LIMIT 50", params).fetchall()
        lines = [str(row[3]) for row in plan]
        if residual is not None:
            lines.append("then, after decryption: filter on sealed fields (bounded scan)")
        return lines

    def get(self, event_id: str) -> Event | None:
        try:
            key = rows.uuid_bytes(event_id)
        except ValueError:
            return None
        found = self._db.execute(
            "SELECT leaf_index, partition FROM leaves WHERE id = ?", (key,)
        ).fetchone()
        if found is None:
            return None
        meta = self._meta(found[1])
        if meta is None or meta.state == "purged":
            return None
        row = self._db.execute(
            f"SELECT id, sealed FROM {q(meta.name)} WHERE leaf_index = ?", (found[0],)
        ).fetchone()
        return None if row is None else self._keys.event(meta, row[0], row[1])

    def events_after(self, leaf_index: int, limit: int) -> list[tuple[int, Event]]:
        out: list[tuple[int, Event]] = []
        metas: dict[str, PartitionMeta | None] = {}
        position = leaf_index
        while len(out) < limit:
            leaves = self._db.execute(
                "SELECT leaf_index, partition FROM leaves WHERE leaf_index > ?"
                " ORDER BY leaf_index LIMIT ?",
                (position, max(limit - len(out), 256)),
            ).fetchall()
            if not leaves:
                break
            position = leaves[-1][0]
            by_part: dict[str, list[int]] = {}
            for index, name in leaves:
                by_part.setdefault(name, []).append(index)
            opened: dict[int, Event] = {}
            for name, indexes in by_part.items():
                if name not in metas:
                    metas[name] = self._meta(name)
                meta = metas[name]
                if meta is None or meta.state == "purged":
                    continue
                for leaf, id16, blob in self._db.execute(
                    f"SELECT leaf_index, id, sealed FROM {q(name)}"
                    " WHERE leaf_index BETWEEN ? AND ?",
                    (indexes[0], indexes[-1]),
                ):
                    opened[leaf] = self._keys.event(meta, id16, blob)
            for index, _ in leaves:
                event = opened.get(index)
                if event is not None:
                    out.append((index, event))
                    if len(out) == limit:
                        break
        return out

    def stats(self, *, since: int | None = None, until: int | None = None, top: int = 10) -> Stats:
        stats = Stats()
        time_sql, time_params = compile_time_range(since, until, SQLITE_DIALECT)
        categories: Counter[Any] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        actors: Counter[Any] = Counter()
        sources: Counter[Any] = Counter()
        hosts: Counter[Any] = Counter()
        metas = self._metas(since, until)
        db = self._db
        for start in range(0, len(metas), _COMPOUND_MAX):
            chunk = metas[start : start + _COMPOUND_MAX]
            union = " UNION ALL ".join(
                f"SELECT time, category, action, outcome, actor_name, source_ip, target_host"
                f" FROM {q(m.name)} WHERE {time_sql}"
                for m in chunk
            )
            params = list(time_params) * len(chunk)
            src = f"({union})"
            total, first, last = db.execute(
                f"SELECT count(*), min(time), max(time) FROM {src}", params
            ).fetchone()
            stats.total += total
            if first is not None:
                stats.first_time = (
                    first if stats.first_time is None else min(stats.first_time, first)
                )
            if last is not None:
                stats.last_time = last if stats.last_time is None else max(stats.last_time, last)
            for sql, counter in (
                (f"SELECT category, count(*) FROM {src} GROUP BY 1", categories),
                (
                    f"SELECT actor_name, count(*) FROM {src} WHERE actor_name IS NOT NULL"
                    " GROUP BY 1",
                    actors,
                ),
                (
                    f"SELECT source_ip, count(*) FROM {src} WHERE source_ip IS NOT NULL GROUP BY 1",
                    sources,
                ),
                (
                    f"SELECT target_host, count(*) FROM {src} WHERE target_host IS NOT NULL"
                    " GROUP BY 1",
                    hosts,
                ),
            ):
                for value, n in db.execute(sql, params):
                    counter[value] += n
            for action, outcome, n in db.execute(
                f"SELECT action, outcome, count(*) FROM {src} GROUP BY 1, 2", params
            ):
                pairs[(action, outcome)] += n
        stats.by_category = categories.most_common()
        stats.by_action_outcome = [(a, o, n) for (a, o), n in pairs.most_common()]
        stats.top_actors = actors.most_common(top)
        stats.top_sources = [(rows.ip_text(ip), n) for ip, n in sources.most_common(top)]
        stats.top_hosts = hosts.most_common(top)
        return stats

    def count(self) -> int:
        (n,) = self._db.execute(
            "SELECT coalesce(sum(events), 0) FROM partitions WHERE state != 'purged'"
        ).fetchone()
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
        if self._closed:
            return
        self._closed = True
        self._flush_publication()
        if not self._readonly:
            # Refresh the planner's statistics where they are stale (cheap when they are not),
            # so it keeps choosing the right index as the data grows.
            self._db.execute("PRAGMA optimize")
        self._db.close()
        if self._keyring is not None:
            self._keyring.close()


def _require_current_schema(db: sqlite3.Connection, path: Path) -> None:
    """A read-only open cannot migrate: say so instead of failing on a missing table."""
    try:
        done = {name for (name,) in db.execute("SELECT name FROM schema_migrations")}
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path} is not a keeptrail event store ({exc})") from None
    missing = [m.__name__ for m in MIGRATIONS if m.__name__ not in done]
    if missing:
        raise UserError(
            f"{path} needs the schema migration(s) {', '.join(missing)}: open it once"
            " writable (for example keeptrail stats, or keeptrail ingest)"
        )


def _day_query(
    group: list[PartitionMeta],
    query: Node | None,
    since: int | None,
    until: int | None,
    after: tuple[int, int] | None,
) -> tuple[str, list[Any], Node | None]:
    """One day's partitions as one ``UNION ALL`` newest first, and the residual query.

    Each arm selects ``(k, leaf_index, id, time, sealed)``, ``k`` being the partition's
    position in ``group``. Only conjuncts over columns clear in every partition of the day
    become SQL; the rest is the residual.
    """
    clear = frozenset.intersection(*(m.clear for m in group))
    split = split_query(query, clear)
    clauses: list[str] = []
    params: list[Any] = []
    if split.sql is not None:
        sql, qparams = compile_sql(split.sql, SQLITE_DIALECT)
        clauses.append(f"({sql})")
        params.extend(qparams)
    if since is not None or until is not None:
        sql, tparams = compile_time_range(since, until, SQLITE_DIALECT)
        clauses.append(sql)
        params.extend(tparams)
    if after is not None:
        clauses.append("(time < ? OR (time = ? AND leaf_index < ?))")
        params.extend((after[0], after[0], after[1]))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    arms = [
        f"SELECT {k} AS k, leaf_index, id, time, sealed FROM {q(m.name)}{where}"
        for k, m in enumerate(group)
    ]
    sql = " UNION ALL ".join(arms) + " ORDER BY time DESC, leaf_index DESC"
    return sql, params * len(group), split.residual


def encode_cursor(time_us: int, leaf_index: int) -> str:
    """An opaque, URL-safe cursor: the (time, leaf index) of the last event on a page."""
    return base64.urlsafe_b64encode(orjson.dumps([time_us, leaf_index])).decode().rstrip("=")


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
