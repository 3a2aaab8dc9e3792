"""What the engine has learned, kept beside the alerts (``detect.db``, or the PostgreSQL store).

Per rule and key a JSON blob (windows, counters, baselines, first-seen sets), plus the engine's
high-water mark: the last leaf index it has processed. Both are written in the same SQLite
transaction as the alerts of the batch, so after a crash the engine resumes from a state and a
position that belong together — it neither forgets a window nor raises an alert twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import orjson

from keeptrail.state_db import StateDB

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS detect_state (
    rule_id TEXT NOT NULL,
    key TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (rule_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS detect_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
RULE_KEY: Final = ""
"""The key under which a rule keeps state about itself (when it started learning)."""
GROUP_PREFIX: Final = "g:"
"""Keys under this prefix hold alert grouping (which alert a key's firings update)."""


class StateStore:
    """Engine state in its :class:`StateDB`; the caller brackets writes in
    :meth:`begin`/:meth:`commit`."""

    def __init__(self, db: StateDB) -> None:
        self._db = db
        db.create(_SCHEMA)

    def load(self, rule_ids: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """Every stored state of these rules: rule id → key text → state."""
        out: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in rule_ids}
        for rule_id, key, data in self._db.execute("SELECT rule_id, key, data FROM detect_state"):
            if rule_id in out:
                out[rule_id][key] = orjson.loads(data)
        return out

    def save(self, rule_id: str, key: str, state: dict[str, Any] | None) -> None:
        """Write (or, for ``None`` or an empty state, delete) one key's state."""
        if not state:
            self._db.execute(
                "DELETE FROM detect_state WHERE rule_id = ? AND key = ?", (rule_id, key)
            )
            return
        self._db.execute(
            "INSERT INTO detect_state (rule_id, key, data) VALUES (?, ?, ?) "
            "ON CONFLICT (rule_id, key) DO UPDATE SET data = excluded.data",
            (rule_id, key, orjson.dumps(state)),
        )

    def save_many(self, items: Iterable[tuple[str, str, dict[str, Any] | None]]) -> None:
        """:meth:`save` for many keys at once: two statements, pipelined on PostgreSQL (a batch
        of events dirties thousands of keys; one round trip each would dominate)."""
        upserts: list[tuple[str, str, bytes]] = []
        deletes: list[tuple[str, str]] = []
        for rule_id, key, state in items:
            if state:
                upserts.append((rule_id, key, orjson.dumps(state)))
            else:
                deletes.append((rule_id, key))
        if deletes:
            self._db.executemany("DELETE FROM detect_state WHERE rule_id = ? AND key = ?", deletes)
        if upserts:
            self._db.executemany(
                "INSERT INTO detect_state (rule_id, key, data) VALUES (?, ?, ?) "
                "ON CONFLICT (rule_id, key) DO UPDATE SET data = excluded.data",
                upserts,
            )

    def meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM detect_meta WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO detect_meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def high_water(self) -> int:
        """The last leaf index processed (-1: none yet)."""
        value = self.meta("high_water")
        return int(value) if value is not None else -1

    def begin(self) -> None:
        self._db.begin()

    def commit(self) -> None:
        self._db.commit()

    def rollback(self) -> None:
        self._db.rollback()
