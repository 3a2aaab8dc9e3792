"""Data keys for a PostgreSQL store, shared by every server that writes to it.

With one embedded store the keyring is a file beside it (:mod:`keeptrail.protect.keyring`).
Several servers sealing into the same partitions must use the same data key for a partition,
so here the *wrapped* data keys live in the database (``data_keys``), next to the rows they
protect, and the master key (KEK) stays outside it, with each server: the same
``keys/master-v<N>.key`` file copied to every server's data directory, the same
``KEEPTRAIL_MASTER_KEY``, or the same ``kek_command`` (KMS/Vault). A copy of the database alone
opens nothing. Wrapping is H2's (:mod:`keeptrail.protect.kek`): AES-256-GCM bound to
``keeptrail-data-key:<partition>:v<N>``.

Crypto-shredding sets ``wrapped`` to NULL (a tombstone keeps when and why) and rewrites the
small table (``VACUUM FULL``) so no dead tuple keeps the old bytes. PostgreSQL's WAL archives
and base backups may still hold the wrapped key; it is useless without the master key, so a
deployment that archives WAL rotates the master key after purges (see docs/postgres.md).

Rotation (``keeptrail keys rotate --store postgresql://…``) is the SQLite keyring's, over these
tables: one transaction adds master key version N+1, re-wraps every live data key under it
(:func:`keeptrail.protect.wrapping.rewrap`, the code ``keyring.db`` uses) and retires the older
versions. It holds the advisory lock exclusively; a server making a new data key holds it shared,
so no key is wrapped under a version that a rotation is retiring. Servers keep the unwrapped keys
they cached (data keys do not change); a server that meets a version it does not have refuses to
make new keys with a clear message instead of wrapping under a key nobody else holds.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import psycopg

from keeptrail.errors import UserError
from keeptrail.protect.kek import FileProvider, KekConfig, Providers, master_key_path
from keeptrail.protect.keyring import (
    KeyringStatus,
    KeyUnavailable,
    MasterKeyInfo,
    RotationResult,
    protect_table,
)
from keeptrail.protect.wrapping import (
    WrappedKey,
    holds_version,
    make_check,
    rewrap,
    unwrap_key,
    wrap_key,
)
from keeptrail.store import postgres_locks

KEY_BYTES: Final = 32
_LOCK: Final = postgres_locks.MASTER_KEYS


class PgKeyring:
    """:class:`keeptrail.store.sealed.KeySource` over the ``data_keys`` table."""

    def __init__(
        self,
        url: str,
        data_dir: Path,
        config: Mapping[str, Any],
        *,
        create: bool = True,
        environ: Mapping[str, str] | None = None,
        version: int = 1,
        provider: str | None = None,
        label: str = "PostgreSQL",
    ) -> None:
        """``version``/``provider``: the master key to start with in a database without one
        (a migration starts with the SQLite keyring's current master key)."""
        self._providers = Providers(
            data_dir, KekConfig.from_protect(protect_table(config)), environ=environ
        )
        self._data_dir = data_dir
        self.label = label  # how status names the store (a URL without its password)
        self._lock = threading.RLock()
        self._cache: dict[str, bytes] = {}
        self._verified: set[int] = set()
        self._db = psycopg.connect(url, autocommit=True)
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            row = self._db.execute(
                "SELECT version, provider FROM master_keys ORDER BY version DESC LIMIT 1"
            ).fetchone()
            if row is None:
                if not create:
                    raise UserError("this PostgreSQL store has no master key yet")
                name = provider or self._providers.configured
                if not (name == "file" and master_key_path(data_dir, version).exists()):
                    self._providers.get(name).create(version, previous=None)
                self._db.execute(
                    "INSERT INTO master_keys (version, provider, created_at) VALUES (%s, %s, %s)",
                    (version, name, time.time_ns() // 1000),
                )
                self._record_check(version, name)
                row = (version, name)
        self._version, self._provider = int(row[0]), str(row[1])
        self._providers.note_current(self._version)
        self._check_master_key()

    def _check_master_key(self) -> None:
        """Fail at start, not at the first read, when this server has another master key."""
        row = self._db.execute(
            "SELECT partition, kek_version, provider, wrapped FROM data_keys"
            " WHERE wrapped IS NOT NULL LIMIT 1"
        ).fetchone()
        if row is not None:
            self._unwrap(str(row[0]), int(row[1]), str(row[2]), bytes(row[3]))

    def _record_check(self, version: int, name: str) -> None:
        """Store master key ``version``'s check value, if the database has the column yet."""
        has_column = self._db.execute(
            "SELECT 1 FROM information_schema.columns"
            " WHERE table_name = 'master_keys' AND column_name = 'check_blob'"
            " AND table_schema = current_schema()"
        ).fetchone()
        if has_column:
            self._db.execute(
                "UPDATE master_keys SET check_blob = %s WHERE version = %s",
                (make_check(self._providers, name, version), version),
            )
            self._verified.add(version)

    def _unwrap(self, partition: str, version: int, provider: str, wrapped: bytes) -> bytes:
        try:
            return unwrap_key(self._providers, partition, version, provider, wrapped)
        except KeyUnavailable as exc:
            raise KeyUnavailable(
                partition,
                f"{exc.reason}; every server sharing the PostgreSQL store needs the same master"
                " keys (copy keys/ from the server that created or last rotated them)",
            ) from None

    def _follow_current(self) -> None:
        """Switch to the database's newest master key version, checking this server has it.

        Called with the advisory lock held shared, before a new data key is wrapped: after a
        rotation by another server, a server still on the old version must neither wrap new
        keys under it (the operator is about to delete it) nor under a v<N> file that is not
        the one the database recorded.
        """
        row = self._db.execute(
            "SELECT version, provider, check_blob FROM master_keys ORDER BY version DESC LIMIT 1"
        ).fetchone()
        assert row is not None
        version, name = int(row[0]), str(row[1])
        if version in self._verified and version == self._version:
            return
        check = None if row[2] is None else bytes(row[2])
        where = {
            "file": f"copy {master_key_path(self._data_dir, version)} from the server that rotated",
            "env": "restart it with the new KEEPTRAIL_MASTER_KEY",
        }.get(name, "check its kek_command")
        self._providers.note_current(version)
        try:
            holds = holds_version(self._providers, name, version, check)
        except UserError as exc:
            self._providers.note_current(self._version)
            raise UserError(
                f"the PostgreSQL store's current master key is v{version} ({name}) and this "
                f"server cannot use it ({exc}); {where}. No data key was created"
            ) from None
        if not holds:
            self._providers.note_current(self._version)
            raise UserError(
                f"the PostgreSQL store's current master key is v{version} ({name}) but this "
                f"server's v{version} is another key; {where}. No data key was created"
            )
        self._version, self._provider = version, name
        self._verified.add(version)

    def data_key(self, partition: str) -> bytes:
        """The partition's key, created and wrapped under the current master key if new."""
        with self._lock:
            cached = self._cache.get(partition)
            if cached is not None:
                return cached
            if self._row(partition) is None:
                key = os.urandom(KEY_BYTES)
                with self._db.transaction():
                    self._db.execute("SELECT pg_advisory_xact_lock_shared(%s)", (_LOCK,))
                    self._follow_current()
                    wrapped = wrap_key(
                        self._providers, partition, self._version, self._provider, key
                    )
                    self._db.execute(
                        "INSERT INTO data_keys"
                        " (partition, kek_version, provider, wrapped, created_at)"
                        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (partition) DO NOTHING",
                        (partition, self._version, self._provider, wrapped, time.time_ns() // 1000),
                    )
            return self.existing_key(partition)  # another server may have been first

    def adopt(self, partition: str, key: bytes) -> None:
        """Store an existing data key (a migrated partition's), wrapped under the master key."""
        if len(key) != KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        with self._lock:
            wrapped = wrap_key(self._providers, partition, self._version, self._provider, key)
            self._db.execute(
                "INSERT INTO data_keys (partition, kek_version, provider, wrapped, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (partition, self._version, self._provider, wrapped, time.time_ns() // 1000),
            )
            self._cache[partition] = key

    def existing_key(self, partition: str) -> bytes:
        """The partition's key; :class:`KeyUnavailable` when missing or destroyed."""
        with self._lock:
            cached = self._cache.get(partition)
            if cached is not None:
                return cached
            row = self._row(partition)
            if row is None:
                raise KeyUnavailable(partition, "the database has no data key for it")
            version, provider, wrapped, destroyed_at, reason = row
            if destroyed_at is not None or wrapped is None:
                raise KeyUnavailable(
                    partition, f"its data key was destroyed ({reason or 'no reason recorded'})"
                )
            key = self._unwrap(partition, int(version), str(provider), bytes(wrapped))
            self._cache[partition] = key
            return key

    def destroy(self, partition: str, *, reason: str) -> None:
        """Crypto-shred: drop the wrapped key (a tombstone stays), then rewrite the table."""
        with self._lock:
            self._cache.pop(partition, None)
            now = time.time_ns() // 1000
            self._db.execute(
                "INSERT INTO data_keys (partition, created_at, destroyed_at, destroy_reason)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (partition) DO UPDATE SET wrapped = NULL,"
                " destroyed_at = coalesce(data_keys.destroyed_at, excluded.destroyed_at),"
                " destroy_reason = coalesce(data_keys.destroy_reason, excluded.destroy_reason)",
                (partition, now, now, reason),
            )
            self._db.execute("VACUUM FULL data_keys")

    def is_destroyed(self, partition: str) -> bool:
        with self._lock:
            row = self._row(partition)
            return row is not None and row[3] is not None

    def _row(self, partition: str) -> tuple[Any, ...] | None:
        row = self._db.execute(
            "SELECT kek_version, provider, wrapped, destroyed_at, destroy_reason FROM data_keys"
            " WHERE partition = %s",
            (partition,),
        ).fetchone()
        return None if row is None else tuple(row)

    def rotate(self) -> RotationResult:
        """Add master key version N+1, re-wrap every live data key under it, retire the others.

        One transaction under the exclusive advisory lock: every key moves or none does (a key
        the old master key cannot open aborts, naming its partition, and a key file created for
        the aborted rotation is removed). Events are not touched.
        """
        started = time.perf_counter()
        name = self._providers.configured
        with self._lock:
            version = previous = 0
            try:
                with self._db.transaction():
                    self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                    row = self._db.execute(
                        "SELECT version, provider FROM master_keys ORDER BY version DESC LIMIT 1"
                    ).fetchone()
                    if row is None:
                        raise UserError("this PostgreSQL store has no master key yet")
                    previous, version = int(row[0]), int(row[0]) + 1
                    self._providers.note_current(version)
                    self._providers.get(name).create(
                        version, previous=previous if str(row[1]) == name else None
                    )
                    now = time.time_ns() // 1000
                    self._db.execute(
                        "INSERT INTO master_keys (version, provider, created_at, check_blob)"
                        " VALUES (%s, %s, %s, %s)",
                        (version, name, now, make_check(self._providers, name, version)),
                    )
                    rows = self._db.execute(
                        "SELECT partition, kek_version, provider, wrapped FROM data_keys"
                        " WHERE destroyed_at IS NULL AND wrapped IS NOT NULL ORDER BY partition"
                        " FOR UPDATE"
                    ).fetchall()
                    moved = rewrap(
                        (WrappedKey(str(p), int(v), str(n), bytes(w)) for p, v, n, w in rows),
                        self._providers,
                        version=version,
                        name=name,
                        cache=self._cache,
                    )
                    with self._db.cursor() as cursor:
                        cursor.executemany(
                            "UPDATE data_keys SET kek_version = %s, provider = %s, wrapped = %s"
                            " WHERE partition = %s",
                            [(version, name, wrapped, p) for p, wrapped in moved],
                        )
                    self._db.execute(
                        "UPDATE master_keys SET retired_at = %s"
                        " WHERE version < %s AND retired_at IS NULL",
                        (now, version),
                    )
            except BaseException:
                self._abandon(name, version, previous)
                raise
            self._version, self._provider = version, name
            self._verified.add(version)
        return RotationResult(previous, version, name, len(moved), time.perf_counter() - started)

    def _abandon(self, name: str, version: int, previous: int) -> None:
        """Undo a failed rotation's side effect outside the database: its new key file."""
        provider = self._providers.get(name)
        if version and isinstance(provider, FileProvider):
            provider.discard(version)
        if previous:
            self._providers.note_current(previous)

    def status(self) -> KeyringStatus:
        """Every master key version with how many live and destroyed data keys it covers."""
        with self._lock:
            versions = self._db.execute(
                "SELECT m.version, m.provider, m.created_at, m.retired_at,"
                " count(d.partition) FILTER (WHERE d.destroyed_at IS NULL),"
                " count(d.partition) FILTER (WHERE d.destroyed_at IS NOT NULL)"
                " FROM master_keys m LEFT JOIN data_keys d ON d.kek_version = m.version"
                " GROUP BY m.version ORDER BY m.version"
            ).fetchall()
            counts = self._db.execute(
                "SELECT count(*) FILTER (WHERE destroyed_at IS NULL),"
                " count(*) FILTER (WHERE destroyed_at IS NOT NULL) FROM data_keys"
            ).fetchone()
        assert counts is not None
        infos = tuple(
            MasterKeyInfo(
                int(v), str(name), int(made), retired, int(live), int(gone), self._present(name, v)
            )
            for v, name, made, retired, live, gone in versions
        )
        return KeyringStatus(
            self.label,
            infos[-1].version,
            infos,
            int(counts[0]),
            int(counts[1]),
            self._providers.configured,
        )

    def _present(self, name: str, version: int) -> bool | None:
        try:
            return self._providers.get(name).present(version)
        except UserError:
            return None

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            self._db.close()


def open_pg_keyring(url: str, data_dir: Path, config: Mapping[str, Any]) -> PgKeyring:
    """The PostgreSQL store's keyring for ``keys rotate/status``: schema upgraded, never created."""
    from keeptrail.server.settings import redact_url  # noqa: PLC0415
    from keeptrail.store.postgres_schema import migrate  # noqa: PLC0415

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as db:
            migrate(db)
        return PgKeyring(url, data_dir, config, create=False, label=redact_url(url))
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot open the PostgreSQL keyring: {first}") from None
