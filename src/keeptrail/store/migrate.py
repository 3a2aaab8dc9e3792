"""Moving an embedded (SQLite) store into PostgreSQL, and proving nothing changed on the way.

Everything moves as it is stored: leaves (index, id, partition, leaf hash), every partition's
rows byte for byte (clear columns and the sealed canonical bytes — no decryption, no
re-encryption), the partition catalogue, tree nodes, frontier, every signed checkpoint, file
positions and holds. Sealed partitions keep their data keys: each key is taken from the
SQLite keyring and wrapped again, under the same master key, into the database's
``data_keys`` (:mod:`.postgres_keys`); destroyed keys arrive as tombstones. The signer is the
data directory's ledger key, so new checkpoints extend the same signed history.

Then the PostgreSQL tree is recomputed from its own ``leaves`` and compared with the root of
every stored checkpoint (and with the SQLite store's), and the full ``verify`` runs on the new
store (every sealed row opened and hashed, clear columns checked). Only a target without
events is accepted, so a half-finished run is restarted on a fresh database.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg

from keeptrail.errors import UserError
from keeptrail.ledger.keys import load_signer
from keeptrail.ledger.merkle import Frontier
from keeptrail.ledger.verify import Report, verify_ledger
from keeptrail.protect.projection import COLUMNS
from keeptrail.store.partitioning import check_name
from keeptrail.store.postgres_schema import ensure_partition, migrate

_ID_AT: Final = COLUMNS.index("id")
_PARTITION_COLUMNS: Final = (
    "name, day, retention_class, sealed, events, first_time, last_time, first_leaf, last_leaf,"
    " state, created_at, purged_at, purge_event, clear_fields"
)
_HOLD_COLUMNS: Final = (
    "id, query, since, until, reason, created_by, created_at, released_at, released_by"
)


@dataclass(slots=True)
class MigrationReport:
    """What moved, and the roots compared afterwards."""

    events: int = 0
    leaves: int = 0
    partitions: int = 0
    sealed_keys: int = 0
    destroyed_keys: int = 0
    checkpoints: int = 0
    nodes: int = 0
    file_positions: int = 0
    holds: int = 0
    roots_matched: int = 0
    size: int = 0
    root: bytes = b""
    mismatches: list[int] = field(default_factory=list)
    verify: Report | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.mismatches and (self.verify is None or self.verify.ok)


def sqlite_path(location: str) -> Path:
    """The ``events.db`` of a ``sqlite:///path`` URL, a ``.db`` file or a data directory.

    The URL is read as :func:`keeptrail.store.open_store` reads it (``sqlite:////abs/path``
    for an absolute path, SQLAlchemy style).
    """
    text = location.removeprefix("sqlite:///")
    path = Path(text).resolve()
    if path.suffix != ".db":
        path = path / "events.db"
    if not path.is_file():
        raise UserError(f"no SQLite store at {path}")
    return path


def migrate_sqlite_to_postgres(
    source: Path,
    url: str,
    *,
    progress: Callable[[str], None] | None = None,
) -> MigrationReport:
    """Copy the store at ``source`` (an ``events.db``) into the empty database at ``url``."""
    began = time.perf_counter()
    say = progress or (lambda _text: None)
    data_dir = source.parent
    _upgrade(source)
    report = MigrationReport()
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        raise UserError(f"cannot connect to PostgreSQL: {str(exc).strip()[:300]}") from None
    try:
        migrate(dst)
        row = dst.execute("SELECT count(*) FROM leaves").fetchone()
        if row and row[0]:
            raise UserError("the PostgreSQL store is not empty: migrate into a new database")
        with dst.transaction():
            _copy_ledger_key(dst, data_dir)
            parts = src.execute(f"SELECT {_PARTITION_COLUMNS} FROM partitions").fetchall()
            _copy_keys(dst, url, data_dir, parts, report)
            for part in parts:
                _copy_partition(src, dst, part, report)
                say(f"partition {part[0]}: {part[4]} events")
            report.partitions = len(parts)
            report.leaves = _copy_rows(
                src, dst, "SELECT leaf_index, id, partition, leaf_hash FROM leaves"
                " ORDER BY leaf_index", "leaves (leaf_index, id, partition, leaf_hash)",
                lambda r: (r[0], uuid.UUID(bytes=bytes(r[1])), r[2], bytes(r[3])),
            )  # fmt: skip
            report.nodes = _copy_rows(
                src, dst, "SELECT level, idx, hash FROM ledger_nodes",
                "ledger_nodes (level, idx, hash)", lambda r: (r[0], r[1], bytes(r[2])),
            )  # fmt: skip
            frontier = src.execute("SELECT frontier FROM ledger_state WHERE id = 1").fetchone()
            if frontier:
                dst.execute(
                    "UPDATE ledger_state SET frontier = %s WHERE id = 1", (bytes(frontier[0]),)
                )
            report.checkpoints = _copy_rows(
                src, dst, "SELECT size, root, note, created_at FROM checkpoints",
                "checkpoints (size, root, note, created_at)",
                lambda r: (r[0], bytes(r[1]), r[2], r[3]),
            )  # fmt: skip
            report.file_positions = _copy_rows(
                src, dst, "SELECT path, fingerprint, fingerprint_len, offset, updated_at"
                " FROM file_positions",
                'file_positions (path, fingerprint, fingerprint_len, "offset", updated_at)',
                tuple,
            )  # fmt: skip
            report.holds = _copy_rows(
                src, dst, f"SELECT {_HOLD_COLUMNS} FROM holds", f"holds ({_HOLD_COLUMNS})", tuple
            )
        say("comparing roots")
        _compare_roots(src, dst, report)
    finally:
        src.close()
        dst.close()
    say("verifying the PostgreSQL store")
    report.verify = _verify(url, data_dir)
    report.elapsed = time.perf_counter() - began
    return report


def _upgrade(source: Path) -> None:
    """Bring the SQLite store to the current schema (opening it writable runs its migrations)."""
    from keeptrail.store import open_store  # noqa: PLC0415

    open_store(source).close()


def _copy_ledger_key(dst: psycopg.Connection, data_dir: Path) -> None:
    signer = load_signer(data_dir)
    if signer is None:
        raise UserError(f"no ledger key in {data_dir / 'keys'}: the store cannot be migrated")
    dst.execute(
        "INSERT INTO ledger_key (id, verifier) VALUES (1, %s) ON CONFLICT (id) DO UPDATE"
        " SET verifier = excluded.verifier",
        (signer.verifier().key,),
    )


def _copy_keys(
    dst: psycopg.Connection,
    url: str,
    data_dir: Path,
    parts: list[tuple[Any, ...]],
    report: MigrationReport,
) -> None:
    """Data keys of sealed partitions, re-wrapped into the database; destroyed ones as such."""
    sealed = [p[0] for p in parts if p[3]]
    if not sealed:
        return
    from keeptrail.config import load_config_file  # noqa: PLC0415
    from keeptrail.protect.keyring import KeyUnavailable, keyring_at  # noqa: PLC0415
    from keeptrail.store.postgres_keys import PgKeyring  # noqa: PLC0415

    config = load_config_file(data_dir)
    source = keyring_at(data_dir, config)
    status = source.status()
    target = PgKeyring(
        url, data_dir, config, version=status.current_version,
        provider=status.configured_provider,
    )  # fmt: skip
    try:
        for name in sealed:
            if source.is_destroyed(name):
                target.destroy(name, reason="destroyed before migration to PostgreSQL")
                report.destroyed_keys += 1
                continue
            try:
                target.adopt(name, source.existing_key(name))
            except KeyUnavailable as exc:
                raise UserError(f"cannot migrate partition {name}: {exc}") from None
            report.sealed_keys += 1
    finally:
        target.close()
        source.close()


def _copy_partition(
    src: sqlite3.Connection, dst: psycopg.Connection, part: tuple[Any, ...], report: MigrationReport
) -> None:
    name = check_name(part[0])
    dst.execute(
        f"INSERT INTO partitions ({_PARTITION_COLUMNS})"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (*part[:3], bool(part[3]), *part[4:]),
    )
    if part[9] == "purged":
        return
    ensure_partition(dst, name, int(part[1]), str(part[2]))
    columns = ", ".join(COLUMNS)

    def convert(r: tuple[Any, ...]) -> tuple[Any, ...]:
        clear = list(r[1:-1])
        clear[_ID_AT] = uuid.UUID(bytes=bytes(clear[_ID_AT]))
        return (r[0], name, *clear, bytes(r[-1]))

    report.events += _copy_rows(
        src,
        dst,
        f'SELECT leaf_index, {columns}, sealed FROM "{name}" ORDER BY leaf_index',
        f"events (leaf_index, partition, {columns}, sealed)",
        convert,
    )


def _copy_rows(
    src: sqlite3.Connection,
    dst: psycopg.Connection,
    select: str,
    target: str,
    convert: Callable[[tuple[Any, ...]], tuple[Any, ...]],
) -> int:
    n = 0
    cursor = src.execute(select)
    with dst.cursor().copy(f"COPY {target} FROM STDIN") as copy:
        while chunk := cursor.fetchmany(10_000):
            for r in chunk:
                copy.write_row(convert(r))
            n += len(chunk)
    return n


def _compare_roots(
    src: sqlite3.Connection, dst: psycopg.Connection, report: MigrationReport
) -> None:
    """Recompute the tree from PostgreSQL's leaves; compare it with every checkpoint's root."""
    wanted = {
        int(size): bytes(root)
        for size, root in src.execute("SELECT size, root FROM checkpoints").fetchall()
    }
    stored = {
        int(size): bytes(root)
        for size, root in dst.execute("SELECT size, root FROM checkpoints").fetchall()
    }
    if stored != wanted:
        report.mismatches.append(-1)
    frontier = Frontier()
    with (
        dst.transaction(),
        dst.cursor(name="kt_migrate_leaves") as cur,
    ):
        cur.itersize = 50_000
        cur.execute("SELECT leaf_hash FROM leaves ORDER BY leaf_index")
        for (leaf,) in cur:
            frontier.append(bytes(leaf))
            root = wanted.get(frontier.size)
            if root is not None:
                if frontier.root() == root:
                    report.roots_matched += 1
                else:
                    report.mismatches.append(frontier.size)
    missing = [size for size in wanted if size > frontier.size]
    report.mismatches.extend(missing)
    report.size = frontier.size
    report.root = frontier.root()


def _verify(url: str, data_dir: Path) -> Report:
    from keeptrail.store.postgres import open_postgres  # noqa: PLC0415

    store = open_postgres(url, data_dir=data_dir, readonly=True)
    try:
        verifier = store.verifier
        if verifier is None:
            raise UserError("the migrated store has no verifier key")
        return verify_ledger(store, verifier)
    finally:
        store.close()
