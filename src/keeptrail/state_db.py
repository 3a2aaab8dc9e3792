"""Where server state lives: API tokens, the rules engine's state and the alerts.

These are not audit events — a token is revoked, an alert acknowledged, a rule's window slides —
so they stay out of the append-only event store. Yet every server sharing a store must share
them too: a token created for one server behind a load balancer must open the others, an alert
acknowledged on one is acknowledged on all, and the rules must see every server's events exactly
once. So they live *beside* the store: SQLite files in the data directory (``tokens.db``,
``detect.db``) for the embedded store, tables of the same database for a PostgreSQL store.

The modules that keep such state write their SQL once, in the subset both dialects share, with
``?`` placeholders. :class:`StateDB` is one connection plus the few places where the dialects
differ: placeholders, how to open a write transaction, how to lock a row for an update, which
exception a unique constraint raises, and how to elect one process for a job (a PostgreSQL
advisory lock; with SQLite the data directory belongs to one server).

On PostgreSQL the tables are created by the store's migrations (``m007_server_state`` in
:mod:`keeptrail.store.postgres_schema`); on SQLite each owner creates its own with
``CREATE TABLE IF NOT EXISTS`` (:meth:`StateDB.create`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Protocol

from keeptrail.errors import UserError
from keeptrail.store import postgres_locks

TOKENS_DB: Final = "tokens.db"
DETECT_DB: Final = "detect.db"
OUTBOX_DB: Final = "notify.db"
DETECT_LOCK: Final = postgres_locks.DETECT
NOTIFY_LOCK: Final = postgres_locks.NOTIFY
APP_NAME: Final = "keeptrail-state"  # + "-<pid>": pg_stat_activity shows who holds which lock


class Rows(Protocol):
    """What ``execute`` returns in both drivers."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


def is_postgres_url(location: str | Path | None) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


class StateDB:
    """One connection to where server state lives (see the module docstring).

    Not shared between threads that run transactions: each owner (the rules engine, the alert
    API, the token store) opens its own.
    """

    dialect: str = "sqlite"
    for_update: str = ""
    """Suffix of a ``SELECT`` that is about to be updated (row lock on PostgreSQL)."""
    unique_violation: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Rows:
        return self._db.execute(statement, params)

    def create(self, schema: str) -> None:
        """Create an owner's tables (SQLite; PostgreSQL migrations create them instead)."""
        self._db.executescript(schema)

    def begin(self) -> None:
        """Open a write transaction (SQLite: take the write lock now, not at the first write)."""
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement over many rows (PostgreSQL: pipelined, not one round trip per row)."""
        self._db.executemany(statement, rows)

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def lead(self, lock: int) -> bool:
        """Whether this process runs the job ``lock`` names (SQLite: one server, always)."""
        return True

    def close(self) -> None:
        self._db.close()


class PostgresStateDB(StateDB):
    """The same on a PostgreSQL database (psycopg 3, autocommit; transactions explicit)."""

    dialect = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        import psycopg  # noqa: PLC0415  # only PostgreSQL deployments need the driver

        try:
            self._pg = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=10,
                application_name=f"{APP_NAME}-{os.getpid()}",
            )
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot connect to PostgreSQL: {first}") from None
        from keeptrail.store.postgres_schema import migrate  # noqa: PLC0415

        migrate(self._pg)  # the tables (m007_server_state), even before any store is opened
        self._sql: dict[str, str] = {}
        self._leading: set[int] = set()
        self.unique_violation = (psycopg.errors.UniqueViolation,)
        self.errors = (psycopg.Error,)

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Rows:
        return self._pg.execute(self._translate(statement), params)

    def _translate(self, statement: str) -> str:
        translated = self._sql.get(statement)
        if translated is None:
            # "?" appears in our statements only as a placeholder; "%" only in LIKE patterns
            # passed as parameters, never in the text, so escaping it is enough.
            translated = statement.replace("%", "%%").replace("?", "%s")
            self._sql[statement] = translated
        return translated

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self._pg.cursor() as cur:
            cur.executemany(self._translate(statement), rows)

    def create(self, schema: str) -> None:
        """Nothing: ``m007_server_state`` created the tables with the store."""

    def begin(self) -> None:
        self._pg.execute("BEGIN")

    def commit(self) -> None:
        self._pg.execute("COMMIT")

    def rollback(self) -> None:
        from psycopg.pq import TransactionStatus  # noqa: PLC0415

        if self._pg.info.transaction_status != TransactionStatus.IDLE:
            self._pg.execute("ROLLBACK")

    def lead(self, lock: int) -> bool:
        """Hold the session advisory lock ``lock``: one process in the deployment has it, and
        it is released when that process's connection ends (even on ``kill -9``)."""
        if lock in self._leading:
            return True
        row = self._pg.execute("SELECT pg_try_advisory_lock(%s)", (lock,)).fetchone()
        if row and row[0]:
            self._leading.add(lock)
            return True
        return False

    def close(self) -> None:
        self._pg.close()


def open_state_db(data_dir: Path, store: str | Path | None, name: str) -> StateDB:
    """The state database for ``name`` (``tokens.db``, ``detect.db``): the PostgreSQL store's
    database when ``store`` is a PostgreSQL URL, else the SQLite file in ``data_dir``."""
    if is_postgres_url(store):
        assert isinstance(store, str)
        return PostgresStateDB(store)
    return StateDB(connect_sqlite(data_dir / name))


def connect_sqlite(path: Path) -> sqlite3.Connection:
    """A private SQLite state file (created 0600, WAL), usable from several threads."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        path.touch(mode=0o600)
    db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    return db
