"""A private SQLite file of the data directory: created 0600, opened with the caller's pragmas.

The small side databases (``permissions.db``, ``keyring.db``) hold what must not be world
readable: who may do what, wrapped data keys. :func:`open_private` creates a missing file with
mode 0600 *before* SQLite opens it (so it is never readable by others, even for an instant),
then opens it in autocommit mode (callers write ``BEGIN IMMEDIATE`` themselves) and applies the
pragmas in the order given. An existing file keeps its mode.

:func:`apply_migrations` applies named migrations once each, in order, and records them in the
file's ``schema_migrations`` table. Several owners may share one file (each with its own
migration names). A file whose migrations are all recorded is only read: re-opening writes
nothing, so a reader without write permission can open it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

__all__ = ["FILE_MODE", "Migration", "apply_migrations", "open_private"]

FILE_MODE: Final = 0o600

Migration = Callable[[sqlite3.Connection], None]
"""A function of a connection; its ``__name__`` is its identity in ``schema_migrations``."""

_PRAGMA_NAME: Final = re.compile(r"[a-z_]+")
_PRAGMA_VALUE: Final = re.compile(r"[A-Za-z0-9_-]+")  # a number or a keyword, never quoted text
_MIGRATIONS_TABLE: Final = """CREATE TABLE IF NOT EXISTS schema_migrations (
        name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)"""


def open_private(
    path: Path,
    *,
    pragmas: Sequence[tuple[str, str | int]] = (),
    timeout: float = 5.0,
) -> sqlite3.Connection:
    """The SQLite file at ``path`` (created 0600 with its folders if missing), pragmas applied.

    ``journal_mode`` is read first and set only when it differs, so opening a file already in
    the wanted mode needs no write. ``OSError`` (creating) and ``sqlite3.Error`` propagate.
    """
    for name, value in pragmas:
        if not _PRAGMA_NAME.fullmatch(name) or not _PRAGMA_VALUE.fullmatch(str(value)):
            raise ValueError(f"not a pragma setting: {name!r} = {value!r}")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_private(path)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
    try:
        for name, value in pragmas:
            if name == "journal_mode":
                current = db.execute("PRAGMA journal_mode").fetchone()[0]
                if str(current).lower() == str(value).lower():
                    continue
            db.execute(f"PRAGMA {name} = {value}")
    except BaseException:
        db.close()
        raise
    return db


def apply_migrations(
    db: sqlite3.Connection,
    migrations: Sequence[Migration],
    *,
    clock: Callable[[], int] | None = None,
) -> list[str]:
    """Apply the migrations not recorded yet, each in its own transaction; the names applied.

    ``applied_at`` is ``clock()`` (µs since the epoch by default).
    """
    done = _recorded(db)
    pending = [m for m in migrations if m.__name__ not in done]
    if not pending:
        return []  # nothing to do: no write, not even the table
    now = clock or _now_us
    db.execute(_MIGRATIONS_TABLE)
    applied: list[str] = []
    for migration in pending:
        name = migration.__name__
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied it while we waited for the write lock.
            if db.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone():
                db.execute("COMMIT")
                continue
            migration(db)
            db.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (name, now())
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def _create_private(path: Path) -> None:
    """Create an empty file with mode 0600 (whatever the umask); an existing one is left."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return  # another process created it first: its creator set the mode
    try:
        os.fchmod(fd, FILE_MODE)  # the umask may have removed bits from 0600
    finally:
        os.close(fd)


def _recorded(db: sqlite3.Connection) -> set[str]:
    found = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if found is None:
        return set()
    return {name for (name,) in db.execute("SELECT name FROM schema_migrations")}


def _now_us() -> int:
    return time.time_ns() // 1000
