"""The keyring: one random data key per partition, wrapped by a versioned master key.

It lives in ``<data-dir>/keyring.db``, apart from the event store, so a copy of ``events.db``
alone (a backup, a replica, a stolen disk image of the database volume) decrypts nothing. The
file is created 0600; ``secure_delete`` is on and the journal is a plain rollback journal
(``journal_mode=DELETE``, never WAL), so when a data key is destroyed its wrapped bytes are
overwritten in place and no ``-wal`` file keeps an older copy. That is crypto-shredding: once the
row is a tombstone, every copy of the partition's events — in every backup — is noise.

A destroyed key keeps its row (``destroyed_at``, ``destroy_reason``) so that reading the
partition later says *when and why* it became unreadable, instead of "no key".

Unwrapped keys are cached per process (a ``kek_command`` is spawned once per partition, not once
per event), and every method holds one lock: the server calls in from several threads.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar, cast

from keeptrail.errors import UserError
from keeptrail.protect.kek import (
    KEY_BYTES,
    FileProvider,
    KekConfig,
    Providers,
    master_key_path,
)
from keeptrail.protect.wrapping import (
    KeyUnavailable,
    WrappedKey,
    holds_version,
    make_check,
    rewrap,
    unwrap_key,
    wrap_key,
)
from keeptrail.sqlite_file import open_private

__all__ = [  # KeyUnavailable is re-exported: the stores import it from here
    "KEYRING_FILE",
    "DataKeyInfo",
    "KeyUnavailable",
    "Keyring",
    "KeyringStatus",
    "MasterKeyInfo",
    "RotationResult",
    "encryption_enabled",
    "iso",
    "keyring_at",
    "open_keyring",
    "protect_table",
]

KEYRING_FILE: Final = "keyring.db"
SCHEMA_VERSION: Final = 1

_PRAGMAS: Final = (("secure_delete", "ON"), ("foreign_keys", "ON"), ("journal_mode", "DELETE"))
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS master_keys (
    version INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    check_blob BLOB
);
CREATE TABLE IF NOT EXISTS data_keys (
    partition TEXT PRIMARY KEY,
    kek_version INTEGER REFERENCES master_keys(version),
    wrapped BLOB,
    created_at INTEGER NOT NULL,
    destroyed_at INTEGER,
    destroy_reason TEXT
);
"""


@dataclass(frozen=True, slots=True)
class MasterKeyInfo:
    """One master key version and what it protects."""

    version: int
    provider: str
    created_at: int
    retired_at: int | None
    live_keys: int
    destroyed_keys: int
    present: bool | None = None  # key file / variable at hand; None: the provider cannot tell


@dataclass(frozen=True, slots=True)
class KeyringStatus:
    """What ``keeptrail keys status`` shows."""

    path: str
    current_version: int
    versions: tuple[MasterKeyInfo, ...]
    live_keys: int
    destroyed_keys: int
    configured_provider: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary (timestamps as µs since the epoch and as ISO text)."""
        return {
            "path": self.path,
            "current_version": self.current_version,
            "live_keys": self.live_keys,
            "destroyed_keys": self.destroyed_keys,
            "configured_provider": self.configured_provider,
            "versions": [
                {
                    "version": v.version,
                    "provider": v.provider,
                    "created_at": v.created_at,
                    "created": iso(v.created_at),
                    "retired_at": v.retired_at,
                    "retired": iso(v.retired_at) if v.retired_at is not None else None,
                    "live_keys": v.live_keys,
                    "destroyed_keys": v.destroyed_keys,
                    "present": v.present,
                }
                for v in self.versions
            ],
        }


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What a rotation did: the new version, the one it retired, how many keys it re-wrapped."""

    previous_version: int
    version: int
    provider: str
    rewrapped: int
    elapsed: float


@dataclass(frozen=True, slots=True)
class DataKeyInfo:
    """A partition's keyring row, without the key."""

    partition: str
    kek_version: int | None
    created_at: int
    destroyed_at: int | None
    destroy_reason: str | None


def iso(us: int) -> str:
    """A µs timestamp as ``2024-01-31T12:00:00Z`` for messages."""
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_us() -> int:
    return time.time_ns() // 1000


_PARTITION: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

_F = TypeVar("_F", bound=Callable[..., Any])


def _checked(partition: str) -> str:
    """A partition name safe to use in a context string and on a command line."""
    if not _PARTITION.fullmatch(partition):
        raise UserError(f"invalid partition name {partition[:80]!r}")
    return partition


def _database_errors(method: _F) -> _F:
    """SQLite failures (locked, disk full, damaged file) become one clear line, not a trace."""

    @functools.wraps(method)
    def wrapper(self: Keyring, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise UserError(f"keyring {self.path}: {exc}") from None

    return cast("_F", wrapper)


class Keyring:
    """Data keys per partition in ``keyring.db``; see the module docstring."""

    def __init__(
        self,
        path: Path,
        providers: Providers,
        *,
        create: bool = True,
        clock: Callable[[], int] = _now_us,
    ) -> None:
        self.path = path
        self.providers = providers
        self._clock = clock
        self._lock = threading.RLock()
        self._cache: dict[str, bytes] = {}
        self._verified: set[int] = set()
        if not create and not path.exists():
            raise UserError(f"no keyring at {path}: the store creates it on first use")
        try:
            # Created 0600; journal_mode is set only when it is not DELETE already (never WAL:
            # see the module docstring), so a reader without write permission can open it.
            self._db = open_private(path, pragmas=_PRAGMAS, timeout=30.0)
            if not self._initialised():  # write only when needed: readers may lack permission
                self._db.executescript(_SCHEMA)
                with self._lock, self._write():
                    self._db.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                    if self._current_version() is None:
                        self._add_version(1, previous=None)
            current = self._current_version()
        except sqlite3.DatabaseError as exc:
            raise UserError(f"cannot open keyring {path}: {exc}") from None
        assert current is not None
        self.providers.note_current(current)

    def _initialised(self) -> bool:
        found = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'master_keys'"
        ).fetchone()
        return found is not None and self._current_version() is not None

    # -- the API the stores use -----------------------------------------------------------

    def data_key(self, partition: str) -> bytes:
        """The partition's key, created (and wrapped under the current master key) if new."""
        cached = self._cache.get(partition)  # the hot path: no lock, a dict read is atomic
        return cached if cached is not None else self._data_key(partition)

    def existing_key(self, partition: str) -> bytes:
        """The partition's key; :class:`KeyUnavailable` when it is missing, destroyed or shut."""
        cached = self._cache.get(partition)
        return cached if cached is not None else self._existing_key(partition)

    @_database_errors
    def _data_key(self, partition: str) -> bytes:
        with self._lock:
            cached = self._cache.get(partition)
            if cached is not None:
                return cached
            if self._row(_checked(partition)) is None:
                key = os.urandom(KEY_BYTES)
                with self._write():
                    if self._row(partition) is None:  # another process may have been first
                        version = self._current_version()
                        assert version is not None
                        self.providers.note_current(version)
                        wrapped = self._wrap(partition, version, key)
                        self._db.execute(
                            "INSERT INTO data_keys (partition, kek_version, wrapped, created_at)"
                            " VALUES (?, ?, ?, ?)",
                            (partition, version, wrapped, self._clock()),
                        )
                        self._cache[partition] = key
                        return key
            return self._existing_key(partition)

    @_database_errors
    def _existing_key(self, partition: str) -> bytes:
        with self._lock:
            cached = self._cache.get(partition)
            if cached is not None:
                return cached
            row = self._row(partition)
            if row is None:
                raise KeyUnavailable(
                    partition, f"the keyring {self.path} has no data key for it (wrong keyring?)"
                )
            version, wrapped, destroyed_at, reason = row
            if destroyed_at is not None or wrapped is None:
                raise KeyUnavailable(partition, _destroyed(destroyed_at, reason))
            key = self._unwrap(partition, int(version), bytes(wrapped))
            self._cache[partition] = key
            return key

    @_database_errors
    def destroy(self, partition: str, *, reason: str) -> None:
        """Crypto-shred: overwrite the wrapped key, keep a tombstone saying when and why.

        Destroying an unknown partition leaves a tombstone too, so no key is made for it later.
        Destroying twice keeps the first date and reason.
        """
        with self._lock:
            self._cache.pop(_checked(partition), None)
            now = self._clock()
            with self._write():
                self._db.execute(
                    "INSERT INTO data_keys (partition, created_at, destroyed_at, destroy_reason)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (partition) DO UPDATE SET wrapped = NULL,"
                    " destroyed_at = coalesce(destroyed_at, excluded.destroyed_at),"
                    " destroy_reason = coalesce(destroy_reason, excluded.destroy_reason)",
                    (partition, now, now, reason),
                )
            # Rollback journal, not WAL: nothing else holds the old page. Say so explicitly in
            # case a future change turns WAL on: a checkpoint would then flush and truncate it.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @_database_errors
    def is_destroyed(self, partition: str) -> bool:
        """Whether the partition's key was destroyed (its events can never be read again)."""
        with self._lock:
            row = self._row(partition)
            return row is not None and row[2] is not None

    @_database_errors
    def describe(self, partition: str) -> DataKeyInfo | None:
        """The partition's keyring row (never the key), or ``None`` if it has none."""
        with self._lock:
            found = self._db.execute(
                "SELECT kek_version, created_at, destroyed_at, destroy_reason FROM data_keys"
                " WHERE partition = ?",
                (partition,),
            ).fetchone()
        if found is None:
            return None
        return DataKeyInfo(partition, found[0], found[1], found[2], found[3])

    # -- rotation and status --------------------------------------------------------------

    @_database_errors
    def rotate(self) -> RotationResult:
        """Add master key version N+1, re-wrap every live data key under it, retire the others.

        One transaction: either every key moves to the new version or none does (a key the
        old master key cannot open aborts the rotation, naming its partition). Events are not
        touched — their data keys do not change.
        """
        started = time.perf_counter()
        with self._lock, self._write():
            previous = self._current_version()
            assert previous is not None
            version = previous + 1
            try:
                self._add_version(version, previous=previous)
                rows = self._db.execute(
                    "SELECT partition, kek_version, wrapped FROM data_keys"
                    " WHERE destroyed_at IS NULL AND wrapped IS NOT NULL ORDER BY partition"
                ).fetchall()
                name = self._provider_name(version)
                moved = rewrap(
                    (
                        WrappedKey(p, int(old), self._provider_name(int(old)), bytes(w))
                        for p, old, w in rows
                    ),
                    self.providers,
                    version=version,
                    name=name,
                    cache=self._cache,
                )
                self._db.executemany(
                    "UPDATE data_keys SET kek_version = ?, wrapped = ? WHERE partition = ?",
                    [(version, wrapped, partition) for partition, wrapped in moved],
                )
                now = self._clock()
                self._db.execute(
                    "UPDATE master_keys SET retired_at = ?"
                    " WHERE version < ? AND retired_at IS NULL",
                    (now, version),
                )
            except BaseException:
                provider = self.providers.get(self.providers.configured)
                self._verified.discard(version)
                if isinstance(provider, FileProvider):
                    provider.discard(version)
                self.providers.note_current(previous)
                raise
        return RotationResult(
            previous, version, self.providers.configured, len(rows), time.perf_counter() - started
        )

    @_database_errors
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
            live, destroyed = self._db.execute(
                "SELECT count(*) FILTER (WHERE destroyed_at IS NULL),"
                " count(*) FILTER (WHERE destroyed_at IS NOT NULL) FROM data_keys"
            ).fetchone()
        infos = tuple(
            MasterKeyInfo(v, name, created, retired, n_live, n_gone, self._present(name, v))
            for v, name, created, retired, n_live, n_gone in versions
        )
        return KeyringStatus(
            str(self.path), infos[-1].version, infos, live, destroyed, self.providers.configured
        )

    def close(self) -> None:
        """Forget the cached keys and close the database."""
        with self._lock:
            self._cache.clear()
            self._db.close()

    # -- internals ------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction: serialises writers across processes too."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _current_version(self) -> int | None:
        found = self._db.execute("SELECT max(version) FROM master_keys").fetchone()
        return None if found[0] is None else int(found[0])

    def _add_version(self, version: int, *, previous: int | None) -> None:
        name = self.providers.configured
        provider = self.providers.get(name)
        if previous is not None and self._provider_name(previous) != name:
            previous = None  # nothing to compare the new key with: another provider made it
        self.providers.note_current(version)
        provider.create(version, previous=previous)
        check = make_check(self.providers, name, version)
        self._db.execute(
            "INSERT INTO master_keys (version, provider, created_at, check_blob)"
            " VALUES (?, ?, ?, ?)",
            (version, name, self._clock(), check),
        )
        self._verified.add(version)

    def _row(self, partition: str) -> tuple[Any, Any, Any, Any] | None:
        found: tuple[Any, Any, Any, Any] | None = self._db.execute(
            "SELECT kek_version, wrapped, destroyed_at, destroy_reason FROM data_keys"
            " WHERE partition = ?",
            (partition,),
        ).fetchone()
        return found

    def _present(self, name: str, version: int) -> bool | None:
        try:
            return self.providers.get(name).present(version)
        except UserError:  # e.g. a command provider with no kek_command configured any more
            return None

    def _provider_name(self, version: int) -> str:
        found = self._db.execute(
            "SELECT provider FROM master_keys WHERE version = ?", (version,)
        ).fetchone()
        if found is None:
            raise UserError(f"the keyring {self.path} has no master key v{version}")
        return str(found[0])

    def _wrap(self, partition: str, version: int, key: bytes) -> bytes:
        name = self._provider_name(version)
        if version not in self._verified:
            self._verify(version, name)
        return wrap_key(self.providers, partition, version, name, key)

    def _verify(self, version: int, name: str) -> None:
        """Check that what the provider calls version N is the keyring's version N.

        Done once per version and process before anything is wrapped: a process that still
        has a pre-rotation ``KEEPTRAIL_MASTER_KEY`` would otherwise wrap new data keys under
        the old key while labelling them v2, and nobody with the real v2 could open them.
        Unwrapping needs no such check: a wrong key fails there by itself.
        """
        found = self._db.execute(
            "SELECT check_blob FROM master_keys WHERE version = ?", (version,)
        ).fetchone()
        check = None if found is None or found[0] is None else bytes(found[0])
        if not holds_version(self.providers, name, version, check):
            hint = {
                "env": "a process started with the key from before a rotation? restart it",
                "file": f"was {master_key_path(self.path.parent, version)} replaced?",
            }.get(name, "does the kek_command use the right key?")
            raise UserError(
                f"master key v{version} ({name}) is not the key this keyring recorded as "
                f"v{version} ({hint}); nothing was encrypted with it"
            )
        self._verified.add(version)

    def _unwrap(self, partition: str, version: int, wrapped: bytes) -> bytes:
        try:
            name = self._provider_name(version)
        except UserError as exc:
            raise KeyUnavailable(partition, str(exc)) from None
        return unwrap_key(self.providers, partition, version, name, wrapped)


def _destroyed(destroyed_at: int | None, reason: str | None) -> str:
    when = f" at {iso(destroyed_at)}" if destroyed_at is not None else ""
    return f"its data key was destroyed{when} ({reason or 'no reason recorded'})"


def protect_table(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``[protect]`` table of a parsed configuration (``{}`` when absent)."""
    table = config.get("protect", {})
    if not isinstance(table, Mapping):
        raise UserError("[protect] in the configuration must be a table")
    return table


def encryption_enabled(config: Mapping[str, Any]) -> bool:
    """``[protect] encrypt`` (default true)."""
    value = protect_table(config).get("encrypt", True)
    if not isinstance(value, bool):
        raise UserError("[protect] encrypt must be true or false")
    return value


def open_keyring(
    data_dir: Path,
    config: Mapping[str, Any],
    *,
    create: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Keyring | None:
    """The data directory's keyring, or ``None`` when ``[protect] encrypt = false``.

    With ``create`` (the store's first open) a missing keyring is made together with master key
    v1 from the configured provider.
    """
    if not encryption_enabled(config):
        return None
    return keyring_at(data_dir, config, create=create, environ=environ)


def keyring_at(
    data_dir: Path,
    config: Mapping[str, Any],
    *,
    create: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Keyring:
    """The keyring of a data directory whatever ``encrypt`` says (for ``keys status/rotate``)."""
    kek = KekConfig.from_protect(protect_table(config))
    path = data_dir / KEYRING_FILE
    if not create and not path.exists():
        raise UserError(
            f"no keyring in {data_dir}: it is created with the store "
            "(ingest something first, or pass --data-dir)"
        )
    return Keyring(path, Providers(data_dir, kek, environ=environ), create=create)
