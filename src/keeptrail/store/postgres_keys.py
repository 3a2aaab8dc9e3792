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
from keeptrail.protect.kek import KekConfig, Providers, UnwrapFailed, context_for, master_key_path
from keeptrail.protect.keyring import KeyUnavailable, protect_table

KEY_BYTES: Final = 32
_LOCK: Final = 0x6B74_0003  # "kt" + 3: first master key creation


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
    ) -> None:
        """``version``/``provider``: the master key to start with in a database without one
        (a migration starts with the SQLite keyring's current master key)."""
        self._providers = Providers(
            data_dir, KekConfig.from_protect(protect_table(config)), environ=environ
        )
        self._data_dir = data_dir
        self._lock = threading.RLock()
        self._cache: dict[str, bytes] = {}
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

    def _unwrap(self, partition: str, version: int, provider: str, wrapped: bytes) -> bytes:
        try:
            return self._providers.get(provider).unwrap(
                version, wrapped, context_for(partition, version)
            )
        except UnwrapFailed:
            raise KeyUnavailable(
                partition,
                f"master key v{version} of this server does not open its data key: every server"
                " sharing the PostgreSQL store needs the same master key (copy keys/ from the"
                " first server)",
            ) from None

    def data_key(self, partition: str) -> bytes:
        """The partition's key, created and wrapped under the current master key if new."""
        with self._lock:
            cached = self._cache.get(partition)
            if cached is not None:
                return cached
            if self._row(partition) is None:
                key = os.urandom(KEY_BYTES)
                wrapped = self._providers.get(self._provider).wrap(
                    self._version, key, context_for(partition, self._version)
                )
                self._db.execute(
                    "INSERT INTO data_keys (partition, kek_version, provider, wrapped, created_at)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (partition) DO NOTHING",
                    (partition, self._version, self._provider, wrapped, time.time_ns() // 1000),
                )
            return self.existing_key(partition)  # another server may have been first

    def adopt(self, partition: str, key: bytes) -> None:
        """Store an existing data key (a migrated partition's), wrapped under the master key."""
        if len(key) != KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        with self._lock:
            wrapped = self._providers.get(self._provider).wrap(
                self._version, key, context_for(partition, self._version)
            )
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

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            self._db.close()
