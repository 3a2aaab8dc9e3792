"""API tokens: created once, shown once, stored only as a SHA-256 digest.

A token is ``kt_`` followed by 32 random bytes (URL-safe base64). Because it is random and
long, an unkeyed SHA-256 is enough to store it: nobody can brute-force 256 bits from the
digest, and no pepper has to be kept secret. Lookup is by digest (an index probe), then the
stored digest is compared in constant time.

Tokens live in ``tokens.db`` next to ``events.db`` in the data directory, not in the event
store: they are server credentials, not audit data, so a copy or export of the events never
carries them. With a PostgreSQL store they are a table of that database (``m007_server_state``),
outside the events and the ledger too, so that every server behind a load balancer accepts the
same tokens and a revocation takes effect on all of them at once (:mod:`keeptrail.state_db`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from keeptrail.state_db import TOKENS_DB, open_state_db

ROLES: Final = ("admin", "auditor", "viewer", "ingest")
PREFIX: Final = "kt_"
_MAX_NAME: Final = 64

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER,
    revoked_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
"""
_COLUMNS: Final = "id, name, role, created_at, created_by, revoked_at, revoked_by"


class TokenError(ValueError):
    """A token operation that cannot be done (bad name, unknown role, duplicate, unknown)."""


@dataclass(frozen=True, slots=True)
class Token:
    """A token's record: everything but the secret, which is never stored."""

    id: str
    name: str
    role: str
    created_at: int
    created_by: str
    revoked_at: int | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, str | int | bool | None]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
            "active": self.active,
        }


def digest(secret: str) -> bytes:
    """The stored form of a token."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def check_name(name: str) -> str:
    """A token name is a short printable label (it becomes the actor of audit events)."""
    if not name or len(name) > _MAX_NAME or not name.isprintable() or name != name.strip():
        raise TokenError(f"a token name is 1-{_MAX_NAME} printable characters, no outer spaces")
    return name


class TokenStore:
    """The ``tokens`` table of ``<data_dir>/tokens.db``, or of the PostgreSQL store ``store``;
    safe to share between threads."""

    def __init__(self, data_dir: Path, store: str | Path | None = None) -> None:
        self.path = data_dir / TOKENS_DB
        self._lock = threading.Lock()
        self._db = open_state_db(data_dir, store, TOKENS_DB)
        with self._lock:
            self._db.create(_SCHEMA)

    def create(self, *, name: str, role: str, created_by: str) -> tuple[Token, str]:
        """A new token and its secret; the secret is returned here and never again."""
        check_name(name)
        if role not in ROLES:
            raise TokenError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        secret = PREFIX + secrets.token_urlsafe(32)
        token = Token(uuid.uuid4().hex, name, role, int(time.time()), created_by)
        try:
            with self._lock:
                self._db.execute(
                    f"INSERT INTO tokens ({_COLUMNS}, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        token.id,
                        name,
                        role,
                        token.created_at,
                        created_by,
                        None,
                        None,
                        digest(secret),
                    ),
                )
        except self._db.unique_violation as exc:
            raise TokenError(f"an active token named {name!r} already exists") from exc
        return token, secret

    def list(self, *, include_revoked: bool = True) -> list[Token]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        with self._lock:
            found = self._db.execute(
                f"SELECT {_COLUMNS} FROM tokens{where} ORDER BY created_at, name"
            ).fetchall()
        return [Token(*row) for row in found]

    def revoke(self, name: str, *, revoked_by: str) -> Token:
        """Revoke the active token with this name (or this id); ``TokenError`` if none."""
        now = int(time.time())
        with self._lock:
            row = self._db.execute(
                f"UPDATE tokens SET revoked_at = ?, revoked_by = ? WHERE revoked_at IS NULL"
                f" AND (name = ? OR id = ?) RETURNING {_COLUMNS}",
                (now, revoked_by, name, name),
            ).fetchone()
        if row is None:
            raise TokenError(f"no active token named {name!r}")
        return Token(*row)

    def authenticate(self, secret: str) -> Token | None:
        """The active token this secret belongs to, or ``None``."""
        if not secret.startswith(PREFIX) or len(secret) > 256:
            return None
        wanted = digest(secret)
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS}, digest FROM tokens WHERE digest = ?", (wanted,)
            ).fetchone()
        if row is None or not hmac.compare_digest(bytes(row[-1]), wanted):
            return None
        token = Token(*row[:-1])
        return token if token.active else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
