"""Access review campaigns: who reviews which entitlements, and every keep/revoke decision.

A campaign selects entitlements from the latest snapshots with a scope filter
(:mod:`~keeptrail.permissions.scope`), copies them as numbered items, and names its
reviewers. Each reviewer decides each item ``keep`` or ``revoke`` with a comment. Auditors ask
for exactly this (SOC 2 CC6.2/CC6.3, ISO 27001 A.5.18, PCI DSS 7 and 8) and for proof that the
record was not rewritten afterwards, so every step is an ``audit`` event appended to the event
store — and therefore a ledger leaf covered by signed checkpoints and ``keeptrail verify``:

- ``review.started``: campaign id, name, scope, reviewers, due date, the snapshots it read,
  the number of items and a SHA-256 digest of their keys (the ledger commits to the scope);
- ``review.decision``: campaign, item number, entitlement key, keep/revoke, comment, reviewer;
- ``review.closed``: when the last item is decided, or when closed by hand (with how many
  items were left undecided).

The event is appended first and the campaign tables are written after it, so nothing is
recorded as decided unless the ledger has it. Only a named reviewer may decide; deciding an
item again is allowed (the latest decision counts, the history stays).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from keeptrail.errors import UserError
from keeptrail.event import DetailValue, Event, format_time, uuid7
from keeptrail.permissions.model import Snapshot, entitlement_key
from keeptrail.permissions.reviews_store import Campaign, Decision, Item, ReviewStore
from keeptrail.permissions.scope import parse_scope
from keeptrail.query import parse_duration, parse_instant
from keeptrail.server import audit

STARTED: Final = "review.started"
DECISION: Final = "review.decision"
CLOSED: Final = "review.closed"
DECISIONS: Final = ("keep", "revoke")
MAX_COMMENT: Final = 2000
MAX_ITEMS: Final = 50_000
_NAME: Final = re.compile(r"[^\x00-\x1f\x7f]{1,200}")

Append = Callable[[Sequence[Event]], object]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs a review step and from where (the local user, or an API token)."""

    name: str
    source_ip: str | None = None
    collector_source: str = "cli"
    details: Mapping[str, DetailValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    decided: int
    kept: int
    revoked: int

    @property
    def done(self) -> bool:
        return self.total > 0 and self.decided == self.total

    def to_json(self) -> dict[str, int]:
        return {
            "total": self.total,
            "decided": self.decided,
            "kept": self.kept,
            "revoked": self.revoked,
            "undecided": self.total - self.decided,
        }


def progress(items: Sequence[Item]) -> Progress:
    decided = [i for i in items if i.decision is not None]
    kept = sum(1 for i in decided if i.decision is not None and i.decision.decision == "keep")
    return Progress(len(items), len(decided), kept, len(decided) - kept)


def select_items(snapshots: Sequence[Snapshot], scope: str) -> list[Item]:
    """The entitlements of the snapshots that the scope selects, numbered from 1."""
    selected = parse_scope(scope)
    out: list[Item] = []
    seen: set[str] = set()
    for snapshot in snapshots:
        for e in snapshot.entitlements:
            key = entitlement_key(e)
            if key in seen or not selected(e):
                continue
            seen.add(key)
            out.append(Item(len(out) + 1, key, snapshot.id, e))
            if len(out) > MAX_ITEMS:
                raise UserError(f"the scope selects more than {MAX_ITEMS} entitlements: narrow it")
    return out


def items_digest(items: Sequence[Item]) -> str:
    """SHA-256 (hex) of the items' numbers and keys: what the start event commits to."""
    h = hashlib.sha256()
    for item in items:
        h.update(f"{item.number}\t{item.key}\n".encode())
    return h.hexdigest()


def parse_due(text: str | None, now: int) -> int | None:
    """``30d`` (from now), ``2026-12-31`` or an ISO timestamp, as µs."""
    if not text:
        return None
    try:
        return now + parse_duration(text)
    except ValueError:
        pass
    try:
        return parse_instant(text)[0]
    except ValueError:
        raise UserError(f"invalid due date {text!r}: use 30d, 2026-12-31 or a timestamp") from None


def parse_reviewers(text: str | Sequence[str]) -> tuple[str, ...]:
    """Reviewer names from ``alice,bob`` (or a list); at least one, each printable."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if not names:
        raise UserError("a campaign needs at least one reviewer (--reviewer NAME)")
    for name in names:
        if not _NAME.fullmatch(name):
            raise UserError(f"invalid reviewer name {name[:40]!r}")
    return names


class ReviewService:
    """Campaign steps: each appends its event (through ``append``) and then records it."""

    def __init__(
        self,
        reviews: ReviewStore,
        append: Append,
        actor: Actor,
        clock: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.reviews = reviews
        self.append = append
        self.actor = actor
        self.clock = clock

    def _event(
        self,
        action: str,
        resource: str,
        resource_type: str,
        details: Mapping[str, DetailValue],
    ) -> Event:
        return audit.audit_event(
            action,
            actor=self.actor.name,
            source_ip=self.actor.source_ip,
            resource=resource,
            resource_type=resource_type,
            collector_source=self.actor.collector_source,
            details={**details, **self.actor.details},
        )

    def start(
        self,
        snapshots: Sequence[Snapshot],
        *,
        scope: str,
        reviewers: str | Sequence[str],
        name: str | None = None,
        due: str | None = None,
    ) -> tuple[Campaign, list[Item]]:
        """Create a campaign over what ``scope`` selects in ``snapshots``."""
        now = self.clock()
        names = parse_reviewers(reviewers)
        if not snapshots:
            raise UserError("no entitlement snapshot yet: run keeptrail permissions collect")
        items = select_items(snapshots, scope)
        if not items:
            raise UserError(f"the scope {scope!r} selects no entitlement of the latest snapshots")
        title = (name or f"access review {format_time(now)[:10]}").strip()
        if not _NAME.fullmatch(title):
            raise UserError("invalid campaign name: 1-200 printable characters")
        campaign = Campaign(
            id=uuid7(),
            name=title,
            scope=scope,
            reviewers=names,
            due=parse_due(due, now),
            created_by=self.actor.name,
            created_at=now,
            snapshots=tuple(dict.fromkeys(i.snapshot for i in items)),
            items_digest=items_digest(items),
        )
        event = self._event(
            STARTED,
            campaign.id,
            "review_campaign",
            {
                "campaign": campaign.id,
                "name": campaign.name,
                "scope": scope,
                "reviewers": list(names),
                "due": format_time(campaign.due) if campaign.due else None,
                "snapshots": list(campaign.snapshots),
                "items": len(items),
                "items_digest": campaign.items_digest,
            },
        )
        self.append([event])
        campaign = replace(campaign, start_event=event.id)
        self.reviews.create(campaign, items)
        return campaign, items

    def decide(
        self,
        ref: str,
        item_ref: str,
        decision: str,
        comment: str,
        by: str | None = None,
    ) -> tuple[Campaign, Item, Decision]:
        """Record ``keep``/``revoke`` on one item; closes the campaign when it was the last."""
        campaign = self.reviews.get(ref)
        if campaign.state != "open":
            raise UserError(f"campaign {campaign.id} is closed: start a new one")
        decision = decision.strip().lower()
        if decision not in DECISIONS:
            raise UserError("the decision is keep or revoke")
        comment = comment.strip()
        if not comment:
            raise UserError("a decision needs a comment (--comment): say why")
        if len(comment) > MAX_COMMENT:
            raise UserError(f"the comment is longer than {MAX_COMMENT} characters")
        reviewer = (by or self.actor.name).strip()
        if reviewer not in campaign.reviewers:
            raise UserError(
                f"{reviewer!r} is not a reviewer of campaign {campaign.id} "
                f"(reviewers: {', '.join(campaign.reviewers)})"
            )
        items = self.reviews.items(campaign)
        item = find_item(items, item_ref)
        e = item.entitlement
        event = self._event(
            DECISION,
            item.key[:1024],
            "entitlement",
            {
                "campaign": campaign.id,
                "item": item.number,
                "entitlement": item.key,
                "decision": decision,
                "comment": comment,
                "reviewer": reviewer,
                "system": e.system,
                "principal": e.principal,
                "privilege": e.privilege,
                "scope": e.scope,
                "granted_via": e.granted_via,
                "snapshot": item.snapshot,
            },
        )
        self.append([event])
        record = Decision(item.number, decision, comment, reviewer, event.time, event.id)
        self.reviews.add_decision(campaign, record)
        item = replace(item, decision=record)
        after = [item if i.number == item.number else i for i in items]
        if progress(after).done:
            campaign = self._close(campaign, after, "every item decided")
        return campaign, item, record

    def close(self, ref: str, comment: str = "") -> Campaign:
        """Close a campaign by hand (undecided items stay undecided, and the event says so)."""
        campaign = self.reviews.get(ref)
        if campaign.state != "open":
            raise UserError(f"campaign {campaign.id} is already closed")
        return self._close(campaign, self.reviews.items(campaign), comment.strip() or "closed")

    def _close(self, campaign: Campaign, items: Sequence[Item], why: str) -> Campaign:
        p = progress(items)
        event = self._event(
            CLOSED,
            campaign.id,
            "review_campaign",
            {"campaign": campaign.id, "comment": why, **p.to_json()},
        )
        self.append([event])
        self.reviews.mark_closed(campaign.id, at=event.time, by=self.actor.name, event_id=event.id)
        return self.reviews.get(campaign.id)


def find_item(items: Sequence[Item], ref: str) -> Item:
    """An item by its number (``3`` or ``#3``) or its entitlement key."""
    text = ref.strip().removeprefix("#")
    if text.isdigit():
        number = int(text)
        for item in items:
            if item.number == number:
                return item
        raise UserError(f"no item {number} in this campaign (it has {len(items)})")
    for item in items:
        if item.key == ref:
            return item
    raise UserError(
        "no such entitlement in this campaign: give its item number (keeptrail review show)"
    )
