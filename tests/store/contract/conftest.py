"""The store contract suite runs every test against both backends: SQLite and PostgreSQL.

``backend_store`` is a fresh, empty store of the parametrized backend; ``backend`` opens more
handles on the same storage (a keyring, a classifier, a second reader) and runs raw SQL on it
for tamper tests (``?`` placeholders, translated for PostgreSQL). PostgreSQL cases are marked
``postgres`` and use the shared ``postgres_url`` fixture (a fresh database on loopback).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from keeptrail.event import Event
from keeptrail.ledger.note import Signer, generate_signer
from keeptrail.protect.keyring import open_keyring
from keeptrail.store.contract import Store
from keeptrail.store.sealed import KeySource


class Backend:
    """One backend's storage location, and how to open stores and run SQL on it."""

    def __init__(self, kind: str, tmp_path: Path, url: str | None) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.url = url
        self.data_dir = tmp_path / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.signer: Signer = generate_signer("keeptrail/test/0")
        self._opened: list[Store] = []

    def keyring(self) -> KeySource:
        """A real keyring with a file master key in the test's data directory (for PostgreSQL
        the shared one: wrapped data keys in the database)."""
        if self.kind == "postgres":
            import psycopg  # noqa: PLC0415

            from keeptrail.store.postgres_keys import PgKeyring  # noqa: PLC0415
            from keeptrail.store.postgres_schema import migrate  # noqa: PLC0415

            assert self.url is not None
            with psycopg.connect(self.url, autocommit=True) as db:
                migrate(db)
            return PgKeyring(self.url, self.data_dir, {})
        keyring = open_keyring(self.data_dir, {})
        assert keyring is not None
        return keyring

    def open(
        self,
        *,
        keyring: KeySource | None = None,
        classify: Callable[[Event], str] | None = None,
        scan_budget: int | None = None,
    ) -> Store:
        extra: dict[str, Any] = {}
        if scan_budget is not None:
            extra["scan_budget"] = scan_budget
        store: Store
        if self.kind == "sqlite":
            from keeptrail.store.sqlite import SQLiteStore  # noqa: PLC0415

            store = SQLiteStore(
                self.data_dir / "events.db",
                signer=self.signer,
                keyring=keyring,
                classify=classify,
                **extra,
            )
        else:
            from keeptrail.store.postgres import PostgresStore  # noqa: PLC0415

            assert self.url is not None
            store = PostgresStore(
                self.url,
                data_dir=self.data_dir,
                signer=self.signer,
                keyring=keyring,
                classify=classify,
                **extra,
            )
        self._opened.append(store)
        return store

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run SQL directly on the storage (what an attacker with database access can do)."""
        if self.kind == "sqlite":
            import sqlite3  # noqa: PLC0415

            with sqlite3.connect(self.data_dir / "events.db", isolation_level=None) as db:
                return db.execute(sql, params).fetchall()
        import psycopg  # noqa: PLC0415

        assert self.url is not None
        with psycopg.connect(self.url, autocommit=True) as db:
            cur = db.execute(sql.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []

    def id_param(self, event_id: str) -> Any:
        """An event id as the backend's SQL compares it."""
        import uuid  # noqa: PLC0415

        value = uuid.UUID(event_id)
        return value.bytes if self.kind == "sqlite" else value

    def close(self) -> None:
        for store in self._opened:
            with contextlib.suppress(Exception):  # a test may have closed it already
                store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The storage of one backend (both, by parametrization)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    handle = Backend(request.param, tmp_path, url)
    yield handle
    handle.close()


@pytest.fixture
def backend_store(backend: Backend) -> Store:
    """A fresh, empty, writable store of the parametrized backend (no keyring)."""
    return backend.open()
