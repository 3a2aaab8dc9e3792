"""Where review campaigns are kept: three tables of their own in ``<data-dir>/permissions.db``.

The snapshot store owns its tables in the same file; this module creates and migrates only
``review_campaigns``, ``review_items`` and ``review_decisions`` (recorded in the file's
``schema_migrations`` as ``reviews_m001``). A campaign's items are *copies* of the
entitlements it selected when it started, so later snapshots never change what was reviewed.
Decisions are appended, never updated: the latest one per item is the current decision, the
earlier ones stay as history (each also has its own event in the ledger).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from keeptrail.errors import UserError
from keeptrail.permissions.model import Entitlement
from keeptrail.sqlite_file import apply_migrations, open_private

DB_NAME: Final = "permissions.db"
_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS review_campaigns (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        scope TEXT NOT NULL,
        reviewers TEXT NOT NULL,
        due INTEGER,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        snapshots TEXT NOT NULL,
        items_digest TEXT NOT NULL,
        start_event TEXT,
        state TEXT NOT NULL DEFAULT 'open',
        closed_at INTEGER,
        closed_by TEXT,
        close_event TEXT)""",
    """CREATE TABLE IF NOT EXISTS review_items (
        campaign INTEGER NOT NULL REFERENCES review_campaigns (seq),
        number INTEGER NOT NULL,
        key TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        system TEXT NOT NULL,
        principal TEXT NOT NULL,
        principal_kind TEXT NOT NULL,
        privilege TEXT NOT NULL,
        scope TEXT NOT NULL,
        granted_via TEXT NOT NULL,
        privileged INTEGER NOT NULL,
        attributes TEXT NOT NULL,
        first_seen INTEGER,
        PRIMARY KEY (campaign, number),
        UNIQUE (campaign, key))""",
    """CREATE TABLE IF NOT EXISTS review_decisions (
        seq INTEGER PRIMARY KEY,
        campaign INTEGER NOT NULL REFERENCES review_campaigns (seq),
        number INTEGER NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('keep', 'revoke')),
        comment TEXT NOT NULL,
        decided_by TEXT NOT NULL,
        decided_at INTEGER NOT NULL,
        event_id TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS review_decisions_item ON review_decisions (campaign, number, seq)",
)


@dataclass(frozen=True, slots=True)
class Campaign:
    """A review campaign: what it covers (scope, snapshots, digest of items), who reviews, state."""

    id: str
    name: str
    scope: str
    reviewers: tuple[str, ...]
    due: int | None
    created_by: str
    created_at: int
    snapshots: tuple[str, ...]
    items_digest: str
    start_event: str | None = None
    state: str = "open"
    closed_at: int | None = None
    closed_by: str | None = None
    close_event: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope,
            "reviewers": list(self.reviewers),
            "due": self.due,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "snapshots": list(self.snapshots),
            "items_digest": self.items_digest,
            "start_event": self.start_event,
            "state": self.state,
            "closed_at": self.closed_at,
            "closed_by": self.closed_by,
            "close_event": self.close_event,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision on one item; the event id ties it to its ledger leaf."""

    number: int
    decision: str  # keep | revoke
    comment: str
    by: str
    at: int
    event_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "comment": self.comment,
            "by": self.by,
            "at": self.at,
            "event_id": self.event_id,
        }


@dataclass(frozen=True, slots=True)
class Item:
    """One entitlement under review, numbered within its campaign, with its current decision."""

    number: int
    key: str
    snapshot: str
    entitlement: Entitlement
    decision: Decision | None = None

    def to_json(self) -> dict[str, object]:
        """The item as the CLI's ``--json`` and the API show it (one shape for both)."""
        e = self.entitlement
        return {
            "item": self.number,
            "key": self.key,
            "snapshot": self.snapshot,
            "system": e.system,
            "principal": e.principal,
            "principal_kind": e.principal_kind,
            "privilege": e.privilege,
            "scope": e.scope,
            "granted_via": e.granted_via,
            "privileged": e.privileged,
            "decision": self.decision.to_json() if self.decision else None,
        }


_PRAGMAS: Final = (("busy_timeout", 30000), ("journal_mode", "WAL"))


def reviews_m001(db: sqlite3.Connection) -> None:
    """Review campaigns, their items and decisions."""
    for statement in _SCHEMA:
        db.execute(statement)


class ReviewStore:
    """Campaigns, items and decisions (one connection; WAL; short write transactions)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = open_private(path, pragmas=_PRAGMAS)
            apply_migrations(self._db, (reviews_m001,))
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"cannot open the review store {path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- writes --------------------------------------------------------------------------------

    def create(self, campaign: Campaign, items: list[Item]) -> None:
        """Store a new campaign and its items in one transaction."""
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO review_campaigns (id, name, scope, reviewers, due, created_by,"
                " created_at, snapshots, items_digest, start_event, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')",
                (
                    campaign.id,
                    campaign.name,
                    campaign.scope,
                    _dumps(list(campaign.reviewers)),
                    campaign.due,
                    campaign.created_by,
                    campaign.created_at,
                    _dumps(list(campaign.snapshots)),
                    campaign.items_digest,
                    campaign.start_event,
                ),
            )
            seq = cur.lastrowid
            self._db.executemany(
                "INSERT INTO review_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        seq,
                        i.number,
                        i.key,
                        i.snapshot,
                        i.entitlement.system,
                        i.entitlement.principal,
                        i.entitlement.principal_kind,
                        i.entitlement.privilege,
                        i.entitlement.scope,
                        i.entitlement.granted_via,
                        int(i.entitlement.privileged),
                        _dumps(dict(i.entitlement.attributes)),
                        i.entitlement.first_seen,
                    )
                    for i in items
                ],
            )

    def add_decision(self, campaign: Campaign, decision: Decision) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO review_decisions (campaign, number, decision, comment, decided_by,"
                " decided_at, event_id) VALUES ((SELECT seq FROM review_campaigns WHERE id = ?),"
                " ?, ?, ?, ?, ?, ?)",
                (
                    campaign.id,
                    decision.number,
                    decision.decision,
                    decision.comment,
                    decision.by,
                    decision.at,
                    decision.event_id,
                ),
            )

    def mark_closed(self, campaign_id: str, *, at: int, by: str, event_id: str) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE review_campaigns SET state = 'closed', closed_at = ?, closed_by = ?,"
                " close_event = ? WHERE id = ? AND state = 'open'",
                (at, by, event_id, campaign_id),
            )

    # --- reads ---------------------------------------------------------------------------------

    def get(self, ref: str) -> Campaign:
        """A campaign by id (or a unique prefix of it, as ``review list`` shows them)."""
        rows = self._db.execute(
            f"SELECT {_CAMPAIGN_COLUMNS} FROM review_campaigns WHERE id >= ? AND id < ?"
            " ORDER BY seq LIMIT 2",
            (ref, ref + "\uffff"),
        ).fetchall()
        if not ref or not rows:
            raise UserError(f"no review campaign {ref!r} (see keeptrail review list)")
        if len(rows) > 1 and rows[0][0] != ref:
            raise UserError(f"campaign id prefix {ref!r} is ambiguous: give more of it")
        return _campaign(rows[0])

    def campaigns(self) -> list[Campaign]:
        """Every campaign, newest first."""
        return [
            _campaign(r)
            for r in self._db.execute(
                f"SELECT {_CAMPAIGN_COLUMNS} FROM review_campaigns ORDER BY seq DESC"
            )
        ]

    def items(self, campaign: Campaign) -> list[Item]:
        """The campaign's items in order, each with its latest decision."""
        seq = self._seq(campaign)
        latest: dict[int, Decision] = {}
        for d in self.history(campaign):
            latest[d.number] = d
        return [
            Item(
                number=r[0],
                key=r[1],
                snapshot=r[2],
                entitlement=Entitlement(
                    system=r[3],
                    principal=r[4],
                    principal_kind=r[5],
                    privilege=r[6],
                    scope=r[7],
                    granted_via=r[8],
                    privileged=bool(r[9]),
                    attributes=orjson.loads(r[10]),
                    first_seen=r[11],
                ),
                decision=latest.get(r[0]),
            )
            for r in self._db.execute(
                "SELECT number, key, snapshot, system, principal, principal_kind, privilege,"
                " scope, granted_via, privileged, attributes, first_seen FROM review_items"
                " WHERE campaign = ? ORDER BY number",
                (seq,),
            )
        ]

    def history(self, campaign: Campaign) -> list[Decision]:
        """Every decision of the campaign, oldest first (re-decisions included)."""
        return [
            Decision(*r)
            for r in self._db.execute(
                "SELECT number, decision, comment, decided_by, decided_at, event_id"
                " FROM review_decisions WHERE campaign = ? ORDER BY seq",
                (self._seq(campaign),),
            )
        ]

    def _seq(self, campaign: Campaign) -> int:
        row = self._db.execute(
            "SELECT seq FROM review_campaigns WHERE id = ?", (campaign.id,)
        ).fetchone()
        if row is None:
            raise UserError(f"no review campaign {campaign.id!r}")
        return int(row[0])


_CAMPAIGN_COLUMNS: Final = (
    "id, name, scope, reviewers, due, created_by, created_at, snapshots, items_digest,"
    " start_event, state, closed_at, closed_by, close_event"
)


def _campaign(r: tuple[Any, ...]) -> Campaign:
    return Campaign(
        id=r[0],
        name=r[1],
        scope=r[2],
        reviewers=tuple(orjson.loads(r[3])),
        due=r[4],
        created_by=r[5],
        created_at=r[6],
        snapshots=tuple(orjson.loads(r[7])),
        items_digest=r[8],
        start_event=r[9],
        state=r[10],
        closed_at=r[11],
        closed_by=r[12],
        close_event=r[13],
    )


def _dumps(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def open_reviews(data_dir: Path) -> ReviewStore:
    """The review store of a data directory (tables created on first use)."""
    return ReviewStore(data_dir / DB_NAME)
