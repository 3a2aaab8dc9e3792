"""PostgreSQL schema: named migrations applied in order, recorded in ``schema_migrations``.

Same rules as the SQLite backend (:mod:`.sqlite_schema`): a migration is a function of a
connection, its name is its identity, a shipped one is never edited. They run under a
transaction-level advisory lock, so several servers starting at once against an empty database
apply each migration exactly once.

The layout mirrors the v2 storage design (ARCHITECTURE.md, "Several servers, one ledger"):

* ``leaves`` — every event ever stored, forever: leaf index (the global sequence), id,
  partition, leaf hash. Purges drop event rows, never leaves.
* ``events`` — range-partitioned by ``time`` into one table per UTC day (``d<YYYYMMDD>``), each
  list-partitioned by retention class into ``p<YYYYMMDD>_<class>``: the partitions of the design.
  A time-bounded search touches only the days it overlaps (partition pruning) and retention
  drops a whole ``p…`` table. Rows hold the clear (search) columns and ``sealed``.
* ``ingest_queue`` — the durable queue appenders ``COPY`` into; the integrator moves rows from
  here into ``leaves`` and ``events`` in one order (:mod:`.integrator`).
* ledger tables as in SQLite (``ledger_nodes``, ``ledger_state``, ``checkpoints``), plus
  ``partitions``, ``holds`` and ``file_positions``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import psycopg
from psycopg import sql

from keeptrail.protect.projection import COLUMNS
from keeptrail.store import postgres_locks
from keeptrail.store.partitioning import check_name, day_bounds, partition_name

# The clear columns (keeptrail.protect.projection.COLUMNS, the same set and order as SQLite's
# partition tables). Text is COLLATE "C": the query compiler's prefix ranges use code-point
# order, and an index serves them only when the column's collation is the same.
_TYPES: Final[dict[str, str]] = {
    "id": "uuid NOT NULL",
    "time": "bigint NOT NULL",
    "ingested_at": "bigint",
    "actor_uid": "bigint",
    "source_ip": "bytea",
    "source_port": "bigint",
    "collector_offset": "bigint",
}
CLEAR_NAMES: Final = COLUMNS
CLEAR_COLUMNS: Final = tuple((c, _TYPES.get(c, 'text COLLATE "C"')) for c in COLUMNS)
_CLEAR_DDL: Final = ",\n".join(f"    {name} {kind}" for name, kind in CLEAR_COLUMNS)
_MIGRATION_LOCK: Final = postgres_locks.MIGRATIONS


def m001_events(db: psycopg.Connection) -> None:
    """Leaves, the partitioned events table and its search indexes, the ingest queue.

    The indexes are exactly the search paths (time; actor, source address, action and host over
    time), each ending in ``(time, leaf_index)`` so "newest first" is an ordered index walk that
    stops after a page, plus ``leaf_index`` for ``get`` and the ledger's walk. Indexes declared
    on the parent are created on every partition.
    """
    db.execute(
        """
        CREATE TABLE leaves (
            leaf_index bigint PRIMARY KEY,
            id uuid NOT NULL UNIQUE,
            partition text NOT NULL,
            leaf_hash bytea NOT NULL
        )
        """
    )
    db.execute(
        f"""
        CREATE TABLE events (
            leaf_index bigint NOT NULL,
            partition text COLLATE "C" NOT NULL,
{_CLEAR_DDL},
            sealed bytea NOT NULL
        ) PARTITION BY RANGE (time)
        """
    )
    db.execute("CREATE INDEX events_time ON events (time, leaf_index)")
    db.execute("CREATE INDEX events_actor_time ON events (actor_name, time, leaf_index)")
    db.execute("CREATE INDEX events_source_ip_time ON events (source_ip, time, leaf_index)")
    db.execute("CREATE INDEX events_action_time ON events (action, time, leaf_index)")
    db.execute("CREATE INDEX events_host_time ON events (target_host, time, leaf_index)")
    db.execute("CREATE INDEX events_leaf ON events (leaf_index)")
    db.execute("CREATE SEQUENCE ingest_batches")
    db.execute(
        f"""
        CREATE TABLE ingest_queue (
            qseq bigserial PRIMARY KEY,
            batch bigint NOT NULL,
            partition text NOT NULL,
            day integer NOT NULL,
            retention_class text NOT NULL,
            is_sealed boolean NOT NULL,
            clear text NOT NULL,
            leaf_hash bytea NOT NULL,
{_CLEAR_DDL},
            sealed bytea NOT NULL
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX ingest_queue_id ON ingest_queue (id)")
    db.execute("CREATE INDEX ingest_queue_batch ON ingest_queue (batch)")


def m002_file_positions(db: psycopg.Connection) -> None:
    """Where each file was read up to, committed with its events (queued, hence durable)."""
    db.execute(
        """
        CREATE TABLE file_positions (
            path text PRIMARY KEY,
            fingerprint text NOT NULL,
            fingerprint_len integer NOT NULL,
            "offset" bigint NOT NULL,
            updated_at bigint NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX file_positions_fingerprint ON file_positions (fingerprint)")


def m003_ledger(db: psycopg.Connection) -> None:
    """Tree nodes at every fourth level, the compact frontier, every signed checkpoint.

    ``ledger_key`` records the verifier key of the one signer: every server must sign with the
    same key (one tree, one signer), so a server holding a different key refuses to start.
    """
    db.execute(
        "CREATE TABLE ledger_key (id integer PRIMARY KEY CHECK (id = 1), verifier text NOT NULL)"
    )
    db.execute(
        "CREATE TABLE ledger_nodes (level integer NOT NULL, idx bigint NOT NULL,"
        " hash bytea NOT NULL, PRIMARY KEY (level, idx))"
    )
    db.execute(
        "CREATE TABLE ledger_state (id integer PRIMARY KEY CHECK (id = 1), frontier bytea NOT NULL)"
    )
    from keeptrail.ledger.merkle import Frontier  # noqa: PLC0415

    db.execute("INSERT INTO ledger_state (id, frontier) VALUES (1, %s)", (Frontier().to_bytes(),))
    db.execute(
        "CREATE TABLE checkpoints (size bigint PRIMARY KEY, root bytea NOT NULL,"
        " note text NOT NULL, created_at bigint NOT NULL)"
    )


def m004_partitions_holds(db: psycopg.Connection) -> None:
    """The partition catalogue (the retention unit) and legal holds, as in the SQLite store."""
    db.execute(
        """
        CREATE TABLE partitions (
            name text PRIMARY KEY,
            day integer NOT NULL,
            retention_class text NOT NULL,
            sealed boolean NOT NULL,
            events bigint NOT NULL DEFAULT 0,
            first_time bigint,
            last_time bigint,
            first_leaf bigint,
            last_leaf bigint,
            state text NOT NULL DEFAULT 'live',
            created_at bigint NOT NULL,
            purged_at bigint,
            purge_event text,
            clear_fields text
        )
        """
    )
    db.execute("CREATE INDEX partitions_day ON partitions (day)")
    db.execute(
        """
        CREATE TABLE holds (
            id text PRIMARY KEY,
            query text,
            since bigint,
            until bigint,
            reason text NOT NULL,
            created_by text,
            created_at bigint NOT NULL,
            released_at bigint,
            released_by text
        )
        """
    )


def m005_data_keys(db: psycopg.Connection) -> None:
    """Wrapped data keys shared by every server (:mod:`.postgres_keys`); master keys stay out."""
    db.execute(
        "CREATE TABLE master_keys (version integer PRIMARY KEY, provider text NOT NULL,"
        " created_at bigint NOT NULL)"
    )
    db.execute(
        """
        CREATE TABLE data_keys (
            partition text PRIMARY KEY,
            kek_version integer,
            provider text,
            wrapped bytea,
            created_at bigint NOT NULL,
            destroyed_at bigint,
            destroy_reason text
        )
        """
    )


def m006_master_key_rotation(db: psycopg.Connection) -> None:
    """Rotation on PostgreSQL: when a master key version was retired, and its check value."""
    db.execute("ALTER TABLE master_keys ADD COLUMN retired_at bigint, ADD COLUMN check_blob bytea")


def m007_server_state(db: psycopg.Connection) -> None:
    """What every server must share besides events (:mod:`keeptrail.state_db`): API tokens, the
    rules engine's state and high-water mark, alerts, and the notification outbox.

    The same tables as the SQLite files ``tokens.db``, ``detect.db`` and ``notify.db`` (same
    columns; ``notify_meta`` is SQLite's ``meta``), so one SQL text serves both.
    """
    db.execute(
        """
        CREATE TABLE tokens (
            id text PRIMARY KEY,
            name text NOT NULL,
            role text NOT NULL,
            digest bytea NOT NULL UNIQUE,
            created_at bigint NOT NULL,
            created_by text NOT NULL,
            revoked_at bigint,
            revoked_by text
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL")
    db.execute(
        "CREATE TABLE detect_state (rule_id text NOT NULL, key text NOT NULL, data bytea NOT NULL,"
        " PRIMARY KEY (rule_id, key))"
    )
    db.execute("CREATE TABLE detect_meta (name text PRIMARY KEY, value text NOT NULL)")
    db.execute(
        """
        CREATE TABLE alerts (
            id text PRIMARY KEY,
            rule_id text NOT NULL,
            dedup_key text NOT NULL,
            window_start bigint NOT NULL,
            title text NOT NULL,
            description text NOT NULL DEFAULT '',
            severity text NOT NULL,
            tags text NOT NULL,
            key text NOT NULL,
            first_time bigint NOT NULL,
            last_time bigint NOT NULL,
            count bigint NOT NULL,
            evidence text NOT NULL,
            reason text NOT NULL,
            status text NOT NULL,
            created_at bigint NOT NULL,
            updated_at bigint NOT NULL,
            history text NOT NULL,
            event_id text NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX alerts_dedup ON alerts (rule_id, dedup_key, window_start)")
    db.execute("CREATE INDEX alerts_last ON alerts (last_time)")
    db.execute("CREATE INDEX alerts_status ON alerts (status, last_time)")
    db.execute(
        """
        CREATE TABLE outbox (
            id text PRIMARY KEY,
            sink text NOT NULL,
            alert_id text NOT NULL,
            rule_id text NOT NULL,
            body bytea NOT NULL,
            created_at bigint NOT NULL,
            attempts bigint NOT NULL DEFAULT 0,
            next_at bigint NOT NULL,
            last_error text,
            state text NOT NULL DEFAULT 'pending',
            delivered_at bigint,
            reported bigint NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX outbox_due ON outbox (state, next_at)")
    db.execute("CREATE INDEX outbox_sink_due ON outbox (sink, state, next_at)")
    db.execute("CREATE INDEX outbox_alert ON outbox (alert_id)")
    db.execute("CREATE TABLE notify_meta (key text PRIMARY KEY, value text NOT NULL)")


MIGRATIONS: Final[tuple[Callable[[psycopg.Connection], None], ...]] = (
    m001_events,
    m002_file_positions,
    m003_ledger,
    m004_partitions_holds,
    m005_data_keys,
    m006_master_key_rotation,
    m007_server_state,
)


def migrate(db: psycopg.Connection) -> list[str]:
    """Apply the migrations not yet recorded (``db`` in autocommit mode); returns their names."""
    applied: list[str] = []
    for migration in MIGRATIONS:
        name = migration.__name__
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (name text PRIMARY KEY, applied_at bigint)"
            )
            done = db.execute("SELECT 1 FROM schema_migrations WHERE name = %s", (name,))
            if done.fetchone():
                continue
            migration(db)
            db.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (%s, %s)",
                (name, int(time.time())),
            )
        applied.append(name)
    return applied


# --- partitions ------------------------------------------------------------------------------


def ensure_partition(db: psycopg.Connection, name: str, day: int, retention_class: str) -> None:
    """Create the day table and its class table if missing (inside the caller's transaction)."""
    check_name(name)
    if not name.startswith(partition_name(day, retention_class)):
        raise ValueError(f"partition {name!r} does not match day {day} / {retention_class!r}")
    lo, hi = day_bounds(day)
    db.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF events FOR VALUES FROM ({}) TO ({})"
            " PARTITION BY LIST (partition)"
        ).format(sql.Identifier(f"d{day:08d}"), sql.Literal(lo), sql.Literal(hi))
    )
    db.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES IN ({})").format(
            sql.Identifier(name), sql.Identifier(f"d{day:08d}"), sql.Literal(name)
        )
    )
