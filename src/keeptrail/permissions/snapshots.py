"""The snapshot store: every collected snapshot kept with its time (``<data-dir>/permissions.db``).

Snapshots are never edited: each collection adds one, so two snapshots of the same system can
always be compared (drift) and the history answers "since when does alice have this right?".
That answer is ``first_seen``, computed at save time from the previous snapshot of the same
system and source: an entitlement present there (same :func:`entitlement_key`) keeps its
``first_seen``; a new one starts at the snapshot's ``taken_at`` (or earlier, when the collector
knew the grant date). A right that disappears and comes back is a new grant and starts again.

The roster (who is still employed) lives here too, as whole imports: the latest import is the
roster, older ones stay as evidence of what was known when.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import orjson

from keeptrail.errors import UserError
from keeptrail.event import uuid7
from keeptrail.permissions.model import (
    Account,
    AttributeValue,
    Entitlement,
    RosterEntry,
    Snapshot,
    entitlement_key,
)
from keeptrail.sqlite_file import apply_migrations, open_private

__all__ = ["DB_NAME", "RosterImport", "SnapshotInfo", "SnapshotStore", "open_snapshots"]

DB_NAME: Final = "permissions.db"


@dataclass(slots=True, frozen=True)
class SnapshotInfo:
    """A snapshot's header and counts, for listings (without loading its rows)."""

    id: str
    system: str
    source: str
    taken_at: int
    accounts: int
    entitlements: int
    privileged: int


@dataclass(slots=True, frozen=True)
class RosterImport:
    """One roster import: where it came from, when, and its people."""

    id: str
    source: str
    imported_at: int
    entries: tuple[RosterEntry, ...]


_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS snapshots (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        system TEXT NOT NULL,
        source TEXT NOT NULL,
        taken_at INTEGER NOT NULL,
        accounts INTEGER NOT NULL,
        entitlements INTEGER NOT NULL,
        privileged INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS snapshots_system ON snapshots (system, source, taken_at)",
    "CREATE INDEX IF NOT EXISTS snapshots_source ON snapshots (source, taken_at)",
    """CREATE TABLE IF NOT EXISTS accounts (
        snapshot INTEGER NOT NULL REFERENCES snapshots (seq),
        pos INTEGER NOT NULL,
        system TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        uid INTEGER,
        locked INTEGER,
        expires INTEGER,
        password_changed INTEGER,
        last_login INTEGER,
        shell TEXT,
        attributes TEXT NOT NULL,
        PRIMARY KEY (snapshot, pos))""",
    "CREATE INDEX IF NOT EXISTS accounts_name ON accounts (name)",
    """CREATE TABLE IF NOT EXISTS entitlements (
        snapshot INTEGER NOT NULL REFERENCES snapshots (seq),
        pos INTEGER NOT NULL,
        key TEXT NOT NULL,
        system TEXT NOT NULL,
        principal TEXT NOT NULL,
        principal_kind TEXT NOT NULL,
        privilege TEXT NOT NULL,
        scope TEXT NOT NULL,
        granted_via TEXT NOT NULL,
        privileged INTEGER NOT NULL,
        attributes TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        PRIMARY KEY (snapshot, pos))""",
    "CREATE INDEX IF NOT EXISTS entitlements_key ON entitlements (key, snapshot)",
    "CREATE INDEX IF NOT EXISTS entitlements_principal ON entitlements (principal)",
    """CREATE TABLE IF NOT EXISTS roster_imports (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        imported_at INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS roster (
        import INTEGER NOT NULL REFERENCES roster_imports (seq),
        pos INTEGER NOT NULL,
        person TEXT NOT NULL,
        active INTEGER NOT NULL,
        email TEXT,
        display_name TEXT,
        usernames TEXT NOT NULL,
        left_at INTEGER,
        attributes TEXT NOT NULL,
        PRIMARY KEY (import, pos))""",
)


_PRAGMAS: Final = (("busy_timeout", 30000), ("journal_mode", "WAL"), ("foreign_keys", "ON"))


def m001_permissions(db: sqlite3.Connection) -> None:
    """Snapshots, their accounts and entitlements, and roster imports."""
    for statement in _SCHEMA:
        db.execute(statement)


class SnapshotStore:
    """Snapshots and rosters in one SQLite file (WAL; one writer, many readers)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            # Who may do what is itself sensitive: the file is created 0600.
            self._db = open_private(self.path, pragmas=_PRAGMAS)
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"cannot open the permissions store {self.path}: {exc}") from exc
        apply_migrations(self._db, (m001_permissions,), clock=_now)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- snapshots -------------------------------------------------------------------------

    def save(self, snapshot: Snapshot) -> Snapshot:
        """Store a snapshot; return it with ``first_seen`` filled on every entitlement."""
        with self._tx():
            if self._db.execute("SELECT 1 FROM snapshots WHERE id = ?", (snapshot.id,)).fetchone():
                raise UserError(f"snapshot {snapshot.id} is already stored")
            before = self._previous_seq(snapshot.system, snapshot.source, snapshot.taken_at)
            known = self._first_seen_in(before) if before is not None else {}
            filled = tuple(
                _with_first_seen(e, known, snapshot.taken_at) for e in snapshot.entitlements
            )
            cur = self._db.execute(
                "INSERT INTO snapshots (id, system, source, taken_at, accounts, entitlements,"
                " privileged) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    snapshot.id,
                    snapshot.system,
                    snapshot.source,
                    snapshot.taken_at,
                    len(snapshot.accounts),
                    len(filled),
                    sum(1 for e in filled if e.privileged),
                ),
            )
            seq = cur.lastrowid
            self._db.executemany(
                "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(seq, i, *_account_row(a)) for i, a in enumerate(snapshot.accounts)],
            )
            self._db.executemany(
                "INSERT INTO entitlements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(seq, i, *_entitlement_row(e)) for i, e in enumerate(filled)],
            )
        return replace(snapshot, entitlements=filled)

    def get(self, snapshot_id: str) -> Snapshot:
        """The snapshot with this id (a unique prefix is enough); a clear error otherwise."""
        rows = self._db.execute(
            "SELECT seq FROM snapshots WHERE id >= ? AND id < ? ORDER BY seq LIMIT 2",
            (snapshot_id, snapshot_id + "\uffff"),
        ).fetchall()
        if not rows:
            raise UserError(f"no snapshot {snapshot_id!r} (see keeptrail permissions snapshots)")
        if len(rows) > 1:
            raise UserError(f"snapshot id prefix {snapshot_id!r} is ambiguous: give more of it")
        return self._load(rows[0][0])

    def latest(self, *, system: str | None = None, source: str | None = None) -> Snapshot | None:
        """The newest snapshot of a system and/or source (the newest of all without either)."""
        where, params = _filters(system, source)
        row = self._db.execute(
            f"SELECT seq FROM snapshots {where} ORDER BY taken_at DESC, seq DESC LIMIT 1", params
        ).fetchone()
        return self._load(row[0]) if row else None

    def latest_per_system(self) -> list[Snapshot]:
        """The newest snapshot of every (system, source): the current state of everything."""
        rows = self._db.execute(
            "SELECT s.seq FROM snapshots s WHERE s.seq = (SELECT t.seq FROM snapshots t"
            " WHERE t.system = s.system AND t.source = s.source"
            " ORDER BY t.taken_at DESC, t.seq DESC LIMIT 1) ORDER BY s.system, s.source"
        ).fetchall()
        return [self._load(r[0]) for r in rows]

    def previous(self, snapshot: Snapshot) -> Snapshot | None:
        """The snapshot of the same system and source taken just before this one (for drift)."""
        row = self._db.execute("SELECT seq FROM snapshots WHERE id = ?", (snapshot.id,)).fetchone()
        if row is None:  # not stored (yet): the newest stored one at or before its time
            seq = self._previous_seq(snapshot.system, snapshot.source, snapshot.taken_at)
            return self._load(seq) if seq is not None else None
        found = self._db.execute(
            "SELECT seq FROM snapshots WHERE system = ? AND source = ?"
            " AND (taken_at < ? OR (taken_at = ? AND seq < ?))"
            " ORDER BY taken_at DESC, seq DESC LIMIT 1",
            (snapshot.system, snapshot.source, snapshot.taken_at, snapshot.taken_at, row[0]),
        ).fetchone()
        return self._load(found[0]) if found else None

    def list(
        self, *, system: str | None = None, source: str | None = None, limit: int | None = None
    ) -> list[SnapshotInfo]:
        """Snapshot headers, newest first."""
        where, params = _filters(system, source)
        sql = (
            "SELECT id, system, source, taken_at, accounts, entitlements, privileged"
            f" FROM snapshots {where} ORDER BY taken_at DESC, seq DESC"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [SnapshotInfo(*row) for row in self._db.execute(sql, params)]

    def first_seen(self, key: str) -> int | None:
        """The earliest time an entitlement with this key was ever seen, in any snapshot."""
        row = self._db.execute(
            "SELECT min(first_seen) FROM entitlements WHERE key = ?", (key,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    # -- roster ----------------------------------------------------------------------------

    def import_roster(self, entries: Sequence[RosterEntry], *, source: str) -> RosterImport:
        """Store a roster import; it becomes the current roster."""
        imported = RosterImport(uuid7(), source, _now(), tuple(entries))
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO roster_imports (id, source, imported_at) VALUES (?, ?, ?)",
                (imported.id, source, imported.imported_at),
            )
            self._db.executemany(
                "INSERT INTO roster VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        cur.lastrowid,
                        i,
                        r.person,
                        int(r.active),
                        r.email,
                        r.display_name,
                        _dumps(list(r.usernames)),
                        r.left_at,
                        _dumps(dict(r.attributes)),
                    )
                    for i, r in enumerate(entries)
                ],
            )
        return imported

    def roster(self) -> RosterImport | None:
        """The latest roster import, or None when no roster was ever imported."""
        row = self._db.execute(
            "SELECT seq, id, source, imported_at FROM roster_imports ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        entries = tuple(
            RosterEntry(
                person=r[0],
                active=bool(r[1]),
                email=r[2],
                display_name=r[3],
                usernames=tuple(orjson.loads(r[4])),
                left_at=r[5],
                attributes=orjson.loads(r[6]),
            )
            for r in self._db.execute(
                "SELECT person, active, email, display_name, usernames, left_at, attributes"
                " FROM roster WHERE import = ? ORDER BY pos",
                (row[0],),
            )
        )
        return RosterImport(row[1], row[2], row[3], entries)

    # -- internals -------------------------------------------------------------------------

    def _previous_seq(self, system: str, source: str, taken_at: int) -> int | None:
        row = self._db.execute(
            "SELECT seq FROM snapshots WHERE system = ? AND source = ? AND taken_at <= ?"
            " ORDER BY taken_at DESC, seq DESC LIMIT 1",
            (system, source, taken_at),
        ).fetchone()
        return int(row[0]) if row else None

    def _first_seen_in(self, seq: int) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT key, min(first_seen) FROM entitlements WHERE snapshot = ? GROUP BY key", (seq,)
        )
        return {str(key): int(first) for key, first in rows}

    def _load(self, seq: int) -> Snapshot:
        head = self._db.execute(
            "SELECT id, system, source, taken_at FROM snapshots WHERE seq = ?", (seq,)
        ).fetchone()
        accounts = tuple(
            Account(
                system=r[0],
                name=r[1],
                kind=r[2],
                uid=r[3],
                locked=None if r[4] is None else bool(r[4]),
                expires=r[5],
                password_changed=r[6],
                last_login=r[7],
                shell=r[8],
                attributes=_attrs(r[9]),
            )
            for r in self._db.execute(
                "SELECT system, name, kind, uid, locked, expires, password_changed, last_login,"
                " shell, attributes FROM accounts WHERE snapshot = ? ORDER BY pos",
                (seq,),
            )
        )
        entitlements = tuple(
            Entitlement(
                system=r[0],
                principal=r[1],
                principal_kind=r[2],
                privilege=r[3],
                scope=r[4],
                granted_via=r[5],
                privileged=bool(r[6]),
                attributes=_attrs(r[7]),
                first_seen=r[8],
            )
            for r in self._db.execute(
                "SELECT system, principal, principal_kind, privilege, scope, granted_via,"
                " privileged, attributes, first_seen FROM entitlements WHERE snapshot = ?"
                " ORDER BY pos",
                (seq,),
            )
        )
        return Snapshot(head[0], head[1], head[2], head[3], accounts, entitlements)

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK`` on error): one writer at a time."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def open_snapshots(data_dir: Path) -> SnapshotStore:
    """The snapshot store of a data directory (created on first use)."""
    return SnapshotStore(data_dir / DB_NAME)


def _with_first_seen(e: Entitlement, known: dict[str, int], taken_at: int) -> Entitlement:
    first = known.get(entitlement_key(e), taken_at)
    if e.first_seen is not None:  # the collector knew the grant date (an import column)
        first = min(first, e.first_seen)
    return replace(e, first_seen=first)


def _filters(system: str | None, source: str | None) -> tuple[str, list[str]]:
    clauses, params = [], []
    if system is not None:
        clauses.append("system = ?")
        params.append(system)
    if source is not None:
        clauses.append("source = ?")
        params.append(source)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _account_row(a: Account) -> tuple[Any, ...]:
    locked = None if a.locked is None else int(a.locked)
    return (
        a.system,
        a.name,
        a.kind,
        a.uid,
        locked,
        a.expires,
        a.password_changed,
        a.last_login,
        a.shell,
        _dumps(dict(a.attributes)),
    )


def _entitlement_row(e: Entitlement) -> tuple[Any, ...]:
    return (
        entitlement_key(e),
        e.system,
        e.principal,
        e.principal_kind,
        e.privilege,
        e.scope,
        e.granted_via,
        int(e.privileged),
        _dumps(dict(e.attributes)),
        e.first_seen,
    )


def _dumps(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _attrs(text: str) -> dict[str, AttributeValue]:
    value: dict[str, AttributeValue] = orjson.loads(text)
    return value


def _now() -> int:
    return time.time_ns() // 1000
