"""Alerts: what a rule raised, for which key, on which evidence, and what people did about it.

An alert is the unit a person handles, so it is de-duplicated: the same rule firing again for
the same key (``{"source.ip": "203.0.113.9"}``) in the same window updates one alert (count,
last time, more evidence) instead of making a hundred. Once resolved, a new firing opens a new
alert. Every alert carries *why* it fired (``reason``) and the events that made it fire
(``evidence``), so it can be judged without re-running the rule.

The alerts live beside the engine's state (:mod:`keeptrail.detect.state`): in
``<data-dir>/detect.db`` for the embedded store, in the PostgreSQL store's database otherwise,
so that every server sees and handles the same alerts (:mod:`keeptrail.state_db`). Alerts are
mutable (status, history) and the event store is append-only, so they cannot live there; the
*fact* that an alert was raised is also appended to the event store as an ``alert.raised``
event, which puts it in the ledger.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import orjson

from keeptrail.errors import UserError
from keeptrail.event import uuid7
from keeptrail.state_db import DETECT_DB, StateDB, connect_sqlite, open_state_db

ALERT_SEVERITIES: Final = ("low", "medium", "high", "critical")
STATUSES: Final = ("open", "acknowledged", "resolved")
MAX_EVIDENCE: Final = 20
"""Evidence kept per alert: enough to judge it; the count says how many events there were."""

# from -> allowed targets. A resolved alert can be re-opened (it was resolved too early).
_TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "open": frozenset({"acknowledged", "resolved"}),
    "acknowledged": frozenset({"open", "resolved"}),
    "resolved": frozenset({"open"}),
}


@dataclass(slots=True)
class Evidence:
    """One event that made a rule fire: its id, time, and a one-line summary."""

    event_id: str
    time: int
    summary: str


@dataclass(slots=True)
class StatusChange:
    """A step of an alert's lifecycle: who moved it to which status, when, and why."""

    status: str
    by: str
    at: int
    comment: str


@dataclass(slots=True)
class Alert:
    """A rule's finding for one key in one window.

    ``key`` is the group-by values (``{"actor.name": "bob"}``; empty for ungrouped rules);
    ``window_start`` (µs) is the start of the de-duplication window the alert belongs to;
    ``event_id`` is the id of the ``alert.raised`` event appended to the event store.
    """

    id: str
    rule_id: str
    title: str
    severity: str
    tags: list[str]
    key: dict[str, str]
    first_time: int
    last_time: int
    count: int
    evidence: list[Evidence]
    reason: str
    status: str
    created_at: int
    updated_at: int
    history: list[StatusChange]
    window_start: int = 0
    event_id: str = ""
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (webhooks, the API, ``--json``)."""
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "title": self.title,
            "description": self.description,
            "severity": self.severity,
            "tags": list(self.tags),
            "key": dict(self.key),
            "first_time": self.first_time,
            "last_time": self.last_time,
            "count": self.count,
            "evidence": [
                {"event_id": e.event_id, "time": e.time, "summary": e.summary}
                for e in self.evidence
            ],
            "reason": self.reason,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "history": [
                {"status": h.status, "by": h.by, "at": h.at, "comment": h.comment}
                for h in self.history
            ],
            "window_start": self.window_start,
            "event_id": self.event_id,
        }


def new_alert_id() -> str:
    """A fresh alert id (UUIDv7: sorts by creation time)."""
    return uuid7()


def key_text(key: dict[str, str]) -> str:
    """The canonical text of a key, used for de-duplication (sorted JSON)."""
    return orjson.dumps(key, option=orjson.OPT_SORT_KEYS).decode()


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL,
    tags TEXT NOT NULL,
    key TEXT NOT NULL,
    first_time INTEGER NOT NULL,
    last_time INTEGER NOT NULL,
    count INTEGER NOT NULL,
    evidence TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    history TEXT NOT NULL,
    event_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS alerts_dedup ON alerts (rule_id, dedup_key, window_start);
CREATE INDEX IF NOT EXISTS alerts_last ON alerts (last_time);
CREATE INDEX IF NOT EXISTS alerts_status ON alerts (status, last_time);
"""

_COLUMNS: Final = (
    "id, rule_id, window_start, title, description, severity, tags, key, first_time, "
    "last_time, count, evidence, reason, status, created_at, updated_at, history, event_id"
)


def open_alerts(data_dir: Path, store: str | Path | None = None) -> AlertStore:
    """The alerts of a data directory (``detect.db``) or of the PostgreSQL store ``store``."""
    return AlertStore(data_dir / DETECT_DB, db=open_state_db(data_dir, store, DETECT_DB), owns=True)


class AlertStore:
    """Alerts in ``<data-dir>/detect.db`` or in ``db``; safe to share between threads (one lock).

    ``db`` is lent (the engine's) unless ``owns``: closing this store then leaves it open.
    """

    def __init__(self, path: Path, *, db: StateDB | None = None, owns: bool = False) -> None:
        self.path = path
        self._owns = db is None or owns
        self._db = db if db is not None else StateDB(connect_sqlite(path))
        self._lock = threading.RLock()
        self._db.create(_SCHEMA)

    def upsert(self, alert: Alert) -> tuple[Alert, bool]:
        """Store a firing: a new alert, or merged into the open one for (rule, key, window).

        Returns the stored alert and whether it is new. Merging widens the time span, adds the
        count and appends evidence not already there (up to :data:`MAX_EVIDENCE`); the reason
        stays the one of the first firing (why the alert was raised).
        """
        with self._lock:
            return self._upsert(alert, key_text(alert.key))

    def upsert_many(self, alerts: Sequence[Alert]) -> list[tuple[Alert, bool, int]]:
        """:meth:`upsert` for a batch's firings, one write per alert they make or update.

        Firings of one (rule, key, window) are merged in memory first, in order — the result
        is what upserting them one by one would store — so a brute force that fires on every
        event of a batch costs one read and one write, not two per event (a round trip each on
        PostgreSQL). Returns, per alert, the stored alert, whether it is new, and the index in
        ``alerts`` of its first firing.
        """
        groups: dict[tuple[str, str, int], list[int]] = {}
        for i, alert in enumerate(alerts):
            groups.setdefault((alert.rule_id, key_text(alert.key), alert.window_start), []).append(
                i
            )
        out: list[tuple[Alert, bool, int]] = []
        with self._lock:
            for (_rule, dedup, _window), members in groups.items():
                merged = alerts[members[0]]
                for i in members[1:]:
                    merged = _merge(merged, alerts[i])
                stored, is_new = self._upsert(merged, dedup)
                out.append((stored, is_new, members[0]))
        return out

    def _upsert(self, alert: Alert, dedup: str) -> tuple[Alert, bool]:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM alerts WHERE rule_id = ? AND dedup_key = ? "
            "AND window_start = ? AND status != 'resolved' ORDER BY created_at DESC LIMIT 1",
            (alert.rule_id, dedup, alert.window_start),
        ).fetchone()
        if row is None:
            stored = replace(alert, evidence=alert.evidence[:MAX_EVIDENCE])
            if not stored.id or self._exists(stored.id):  # the old one was resolved
                stored.id = new_alert_id()
            self._insert(stored, dedup)
            return stored, True
        merged = _merge(_decode(row), alert)
        self._db.execute(
            "UPDATE alerts SET first_time = ?, last_time = ?, count = ?, evidence = ?, "
            "updated_at = ? WHERE id = ?",
            (
                merged.first_time,
                merged.last_time,
                merged.count,
                _dump_evidence(merged.evidence),
                merged.updated_at,
                merged.id,
            ),
        )
        return merged, False

    def _exists(self, alert_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return row is not None

    def _insert(self, a: Alert, dedup: str) -> None:
        self._db.execute(
            "INSERT INTO alerts (id, rule_id, dedup_key, window_start, title, description, "
            "severity, tags, key, first_time, last_time, count, evidence, reason, status, "
            "created_at, updated_at, history, event_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                a.id,
                a.rule_id,
                dedup,
                a.window_start,
                a.title,
                a.description,
                a.severity,
                orjson.dumps(a.tags).decode(),
                orjson.dumps(a.key).decode(),
                a.first_time,
                a.last_time,
                a.count,
                _dump_evidence(a.evidence),
                a.reason,
                a.status,
                a.created_at,
                a.updated_at,
                _dump_history(a.history),
                a.event_id,
            ),
        )

    def set_event_id(self, alert_id: str, event_id: str) -> None:
        """Record the id of the ``alert.raised`` event that put this alert in the ledger."""
        with self._lock:
            self._db.execute("UPDATE alerts SET event_id = ? WHERE id = ?", (event_id, alert_id))

    def list(
        self,
        *,
        status: str | None = None,
        rule_id: str | None = None,
        since: int | None = None,
        limit: int = 50,
    ) -> builtins.list[Alert]:
        """Alerts, most recently seen first; ``since`` (µs) bounds their last event time."""
        if status is not None and status not in STATUSES:
            raise UserError(f"unknown alert status {status!r}; choose from {', '.join(STATUSES)}")
        if limit < 1:
            raise UserError("limit must be at least 1")
        clauses: list[str] = []
        params: list[Any] = []
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if rule_id is not None:
            clauses.append("rule_id = ?")
            params.append(rule_id)
        if since is not None:
            clauses.append("last_time >= ?")
            params.append(since)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        params.append(limit)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM alerts{where} ORDER BY last_time DESC, id DESC LIMIT ?",
                params,
            ).fetchall()
        return [_decode(r) for r in rows]

    def get(self, alert_id: str) -> Alert | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)
            ).fetchone()
        return _decode(row) if row else None

    def transition(self, alert_id: str, status: str, *, by: str, comment: str) -> Alert:
        """Move an alert to ``status``, recording who, when and why in its history."""
        if status not in STATUSES:
            raise UserError(f"unknown alert status {status!r}; choose from {', '.join(STATUSES)}")
        with self._lock, self._db.transaction():  # several servers may act on one alert
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM alerts WHERE id = ?{self._db.for_update}", (alert_id,)
            ).fetchone()
            if row is None:
                raise UserError(f"no alert with id {alert_id!r}")
            current = _decode(row)
            if status not in _TRANSITIONS[current.status]:
                raise UserError(
                    f"alert {alert_id} is {current.status}; it cannot become {status} "
                    f"(allowed: {', '.join(sorted(_TRANSITIONS[current.status]))})"
                )
            now = time.time_ns() // 1000
            history = [*current.history, StatusChange(status, by, now, comment)]
            self._db.execute(
                "UPDATE alerts SET status = ?, updated_at = ?, history = ? WHERE id = ?",
                (status, now, _dump_history(history), alert_id),
            )
            return replace(current, status=status, updated_at=now, history=history)

    def count(self, *, status: str | None = None) -> int:
        with self._lock:
            if status is None:
                row = self._db.execute("SELECT count(*) FROM alerts").fetchone()
            else:
                row = self._db.execute(
                    "SELECT count(*) FROM alerts WHERE status = ?", (status,)
                ).fetchone()
        return int(row[0])

    def close(self) -> None:
        if self._owns:
            with self._lock:
                self._db.close()


def _merge(current: Alert, alert: Alert) -> Alert:
    """``current`` after a further firing ``alert`` of the same rule, key and window."""
    seen = {e.event_id for e in current.evidence}
    evidence = list(current.evidence)
    for item in alert.evidence:
        if len(evidence) >= MAX_EVIDENCE:
            break
        if item.event_id not in seen:
            seen.add(item.event_id)
            evidence.append(item)
    return replace(
        current,
        first_time=min(current.first_time, alert.first_time),
        last_time=max(current.last_time, alert.last_time),
        count=current.count + alert.count,
        evidence=evidence,
        updated_at=alert.updated_at,
    )


def _dump_evidence(items: list[Evidence]) -> str:
    return orjson.dumps([[e.event_id, e.time, e.summary] for e in items]).decode()


def _dump_history(items: list[StatusChange]) -> str:
    return orjson.dumps([[h.status, h.by, h.at, h.comment] for h in items]).decode()


def _decode(row: tuple[Any, ...]) -> Alert:
    (
        alert_id,
        rule_id,
        window_start,
        title,
        description,
        severity,
        tags,
        key,
        first_time,
        last_time,
        count,
        evidence,
        reason,
        status,
        created_at,
        updated_at,
        history,
        event_id,
    ) = row
    return Alert(
        id=alert_id,
        rule_id=rule_id,
        title=title,
        severity=severity,
        tags=list(orjson.loads(tags)),
        key=dict(orjson.loads(key)),
        first_time=first_time,
        last_time=last_time,
        count=count,
        evidence=[Evidence(e[0], e[1], e[2]) for e in orjson.loads(evidence)],
        reason=reason,
        status=status,
        created_at=created_at,
        updated_at=updated_at,
        history=[StatusChange(h[0], h[1], h[2], h[3]) for h in orjson.loads(history)],
        window_start=window_start,
        event_id=event_id,
        description=description,
    )


__all__ = [
    "ALERT_SEVERITIES",
    "MAX_EVIDENCE",
    "STATUSES",
    "Alert",
    "AlertStore",
    "Evidence",
    "StatusChange",
    "key_text",
    "new_alert_id",
    "open_alerts",
]
