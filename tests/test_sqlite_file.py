"""The private SQLite file helper: 0600 creation, pragmas, named migrations applied once."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keeptrail.sqlite_file import apply_migrations, open_private

calls: list[str] = []


def m001_things(db: sqlite3.Connection) -> None:
    calls.append("m001_things")
    db.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")


def m002_thing_colour(db: sqlite3.Connection) -> None:
    calls.append("m002_thing_colour")
    db.execute("ALTER TABLE things ADD COLUMN colour TEXT")


def m003_broken(db: sqlite3.Connection) -> None:
    calls.append("m003_broken")
    db.execute("CREATE TABLE half_done (x INTEGER)")
    db.execute("INSERT INTO no_such_table VALUES (1)")


def other_owner_m001(db: sqlite3.Connection) -> None:
    calls.append("other_owner_m001")
    db.execute("CREATE TABLE others (id INTEGER PRIMARY KEY)")


@pytest.fixture(autouse=True)
def _reset_calls() -> Iterator[None]:
    calls.clear()
    yield
    calls.clear()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _recorded(db: sqlite3.Connection) -> list[tuple[str, int]]:
    return db.execute("SELECT name, applied_at FROM schema_migrations ORDER BY name").fetchall()


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o377])
def test_new_file_is_created_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    """A missing file (and its folders) is created with mode exactly 0600 under any umask."""
    path = tmp_path / "deep" / "er" / "private.db"
    old = os.umask(umask)
    try:
        db = open_private(path)
    finally:
        os.umask(old)
    db.execute("CREATE TABLE t (x)")
    db.close()
    assert _mode(path) == 0o600


def test_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    """Opening a file that exists leaves its permissions as the administrator set them."""
    path = tmp_path / "shared.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    path.chmod(0o640)
    open_private(path).close()
    assert _mode(path) == 0o640


def test_pragmas_are_applied_in_order(tmp_path: Path) -> None:
    """Each requested pragma is in force on the returned autocommit connection."""
    db = open_private(
        tmp_path / "p.db",
        pragmas=(("busy_timeout", 30000), ("journal_mode", "WAL"), ("secure_delete", "ON")),
    )
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert db.isolation_level is None
    db.close()


def test_journal_mode_already_set_is_not_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file already in the wanted journal mode is opened without a ``journal_mode`` write."""
    path = tmp_path / "k.db"
    open_private(path, pragmas=(("journal_mode", "DELETE"),)).close()
    statements: list[str] = []
    original = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = original(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    open_private(path, pragmas=(("journal_mode", "DELETE"),)).close()
    assert statements == ["PRAGMA journal_mode"]


def test_a_bad_pragma_is_refused_before_the_file_is_created(tmp_path: Path) -> None:
    """A pragma name or value that is not a plain word never reaches SQL, and no file appears."""
    path = tmp_path / "x.db"
    with pytest.raises(ValueError, match="not a pragma setting"):
        open_private(path, pragmas=(("journal_mode", "WAL; DROP TABLE t"),))
    with pytest.raises(ValueError, match="not a pragma setting"):
        open_private(path, pragmas=(("user_version = 1; --", 1),))
    assert not path.exists()


def test_migrations_are_applied_in_order_and_recorded(tmp_path: Path) -> None:
    """Each migration runs once, in order, and is recorded by name with the clock's time."""
    db = open_private(tmp_path / "m.db")
    applied = apply_migrations(db, (m001_things, m002_thing_colour), clock=lambda: 42)
    assert applied == ["m001_things", "m002_thing_colour"]
    assert calls == ["m001_things", "m002_thing_colour"]
    assert _recorded(db) == [("m001_things", 42), ("m002_thing_colour", 42)]
    db.execute("INSERT INTO things (name, colour) VALUES ('a', 'red')")
    db.close()


def test_reopening_a_migrated_file_writes_nothing(tmp_path: Path) -> None:
    """Re-opening with every migration recorded runs none and issues no write at all."""
    path = tmp_path / "m.db"
    db = open_private(path)
    apply_migrations(db, (m001_things,), clock=lambda: 1)
    db.execute("INSERT INTO things (name) VALUES ('kept')")
    db.close()
    calls.clear()

    again = open_private(path)
    statements: list[str] = []
    again.set_trace_callback(statements.append)
    assert apply_migrations(again, (m001_things,), clock=lambda: 2) == []
    again.set_trace_callback(None)
    assert calls == []
    assert statements
    assert all(s.lstrip().upper().startswith("SELECT") for s in statements)
    assert _recorded(again) == [("m001_things", 1)]
    assert again.execute("SELECT name FROM things").fetchall() == [("kept",)]
    again.close()


def test_a_new_migration_is_applied_alone_on_reopen(tmp_path: Path) -> None:
    """A later release's migration runs on the next open; the recorded ones do not run again."""
    path = tmp_path / "m.db"
    db = open_private(path)
    apply_migrations(db, (m001_things,), clock=lambda: 1)
    db.close()
    calls.clear()
    db = open_private(path)
    assert apply_migrations(db, (m001_things, m002_thing_colour), clock=lambda: 2) == [
        "m002_thing_colour"
    ]
    assert calls == ["m002_thing_colour"]
    assert _recorded(db) == [("m001_things", 1), ("m002_thing_colour", 2)]
    db.close()


def test_a_failing_migration_is_rolled_back_and_not_recorded(tmp_path: Path) -> None:
    """A migration that fails leaves none of its changes and no record; earlier ones stay."""
    db = open_private(tmp_path / "m.db")
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        apply_migrations(db, (m001_things, m003_broken, m002_thing_colour))
    assert calls == ["m001_things", "m003_broken"]
    assert [name for name, _ in _recorded(db)] == ["m001_things"]
    tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half_done" not in tables
    assert not db.in_transaction
    db.close()


def test_two_owners_share_one_file(tmp_path: Path) -> None:
    """Owners of different tables in one file each apply their own named migrations."""
    path = tmp_path / "shared.db"
    first = open_private(path)
    apply_migrations(first, (m001_things,))
    second = open_private(path)
    assert apply_migrations(second, (other_owner_m001,)) == ["other_owner_m001"]
    assert apply_migrations(first, (m001_things,)) == []
    assert [name for name, _ in _recorded(second)] == ["m001_things", "other_owner_m001"]
    first.close()
    second.close()
