"""The evidence export of a review campaign: what was reviewed, decided, by whom, and the proof.

For each item: the entitlement (system, principal, privilege, scope, grant), the current
decision (keep/revoke, reviewer, time, comment), the supporting usage from the audit history
(last action, and the commands/statements/requests that exercised the right in the window,
with event ids), and where the decision sits in the ledger: its event id, leaf index and leaf
hash, and the first signed checkpoint that covers it. With that an auditor can run
``keeptrail prove EVENT_ID`` and ``keeptrail verify`` and need not trust the export itself.
The full decision history (re-decisions included) and the start/close events come with it.

JSON (``keeptrail-access-review/1``) is the complete form; CSV is one row per item for a
spreadsheet, with cells neutralised against formula injection.
"""

from __future__ import annotations

import base64
import bisect
import csv
import io
from collections.abc import Sequence
from typing import Any, Final

from keeptrail.cli.output import csv_cell
from keeptrail.event import format_time
from keeptrail.permissions.findings_privileges import SQL_PRIVILEGES, uses
from keeptrail.permissions.reviews import progress
from keeptrail.permissions.reviews_store import Campaign, Decision, Item
from keeptrail.permissions.usage import Tallies, UsageReader
from keeptrail.store import Store
from keeptrail.store.contract import StoredCheckpoint

FORMAT: Final = "keeptrail-access-review/1"
MAX_USES: Final = 10
CSV_COLUMNS: Final = (
    "item",
    "system",
    "principal",
    "principal_kind",
    "privilege",
    "scope",
    "granted_via",
    "privileged",
    "decision",
    "decided_by",
    "decided_at",
    "comment",
    "decision_event",
    "leaf_index",
    "checkpoint_size",
    "last_action",
    "last_action_event",
    "used",
)


class Ledger:
    """Looks up where an event sits in the ledger, and the first checkpoint that covers it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.checkpoints: list[StoredCheckpoint] = sorted(store.checkpoints(), key=lambda c: c.size)
        self._sizes = [c.size for c in self.checkpoints]

    def locate(self, event_id: str | None) -> dict[str, Any] | None:
        if not event_id:
            return None
        leaf = self.store.ledger_leaf(event_id)
        if leaf is None:
            return {"event_id": event_id, "leaf_index": None, "note": "not in this store"}
        out: dict[str, Any] = {
            "event_id": event_id,
            "leaf_index": leaf.leaf_index,
            "leaf_hash": leaf.leaf_hash.hex(),
            "checkpoint": None,
        }
        at = bisect.bisect_right(self._sizes, leaf.leaf_index)
        if at < len(self.checkpoints):
            c = self.checkpoints[at]
            out["checkpoint"] = {
                "size": c.size,
                "root": base64.b64encode(c.root).decode(),
                "created_at": format_time(c.created_at),
            }
        return out


def item_usage(usage: UsageReader | None, item: Item) -> dict[str, Any] | None:
    """The principal's last action and what exercised this right in the window."""
    if usage is None:
        return None
    e = item.entitlement
    if e.principal_kind == "group":
        return {"note": "a group: see its members' items"}
    activity = usage.activity(e.system, e.principal)
    out: dict[str, Any] = {
        "window_since": format_time(usage.since),
        "last_action": format_time(activity.last_action.time) if activity.last_action else None,
        "last_action_event": activity.last_action.event_id if activity.last_action else None,
        "last_auth": format_time(activity.last_auth.time) if activity.last_auth else None,
        "last_auth_event": activity.last_auth.event_id if activity.last_auth else None,
    }
    tallies: Tallies | None = None
    if e.privilege == "sudo":
        tallies = usage.sudo_commands(e.system, e.principal)
    elif e.privilege.upper() in SQL_PRIVILEGES:
        tallies = usage.sql_statements(e.system, e.principal)
    elif e.system.startswith(("k8s:", "kubernetes:")) and len(e.privilege.split(" ")) == 2:
        tallies = usage.k8s_requests(e.system, e.principal)
    if tallies is not None:
        used = sorted(uses(e, tallies).items(), key=lambda kv: -kv[1].count)
        out["used"] = [
            {
                "what": k,
                "count": t.count,
                "last": format_time(t.last.time),
                "event": t.last.event_id,
            }
            for k, t in used[:MAX_USES]
        ]
        out["used_distinct"] = len(used)
        out["truncated"] = tallies.truncated
    return out


def _decision(d: Decision | None, ledger: Ledger) -> dict[str, Any] | None:
    if d is None:
        return None
    return {**d.to_json(), "at": format_time(d.at), "ledger": ledger.locate(d.event_id)}


def build_export(
    campaign: Campaign,
    items: Sequence[Item],
    history: Sequence[Decision],
    *,
    store: Store,
    usage: UsageReader | None,
    generated_at: int,
) -> dict[str, Any]:
    """The whole evidence document (JSON-ready)."""
    ledger = Ledger(store)
    latest = ledger.checkpoints[-1] if ledger.checkpoints else None
    return {
        "format": FORMAT,
        "generated_at": format_time(generated_at),
        "campaign": {
            **campaign.to_json(),
            "due": format_time(campaign.due) if campaign.due else None,
            "created_at": format_time(campaign.created_at),
            "closed_at": format_time(campaign.closed_at) if campaign.closed_at else None,
            "start_event_ledger": ledger.locate(campaign.start_event),
            "close_event_ledger": ledger.locate(campaign.close_event),
        },
        "progress": progress(items).to_json(),
        "latest_checkpoint": None
        if latest is None
        else {
            "size": latest.size,
            "root": base64.b64encode(latest.root).decode(),
            "created_at": format_time(latest.created_at),
            "note": latest.note,
        },
        "items": [
            {
                "item": i.number,
                "key": i.key,
                "snapshot": i.snapshot,
                "entitlement": {
                    "system": i.entitlement.system,
                    "principal": i.entitlement.principal,
                    "principal_kind": i.entitlement.principal_kind,
                    "privilege": i.entitlement.privilege,
                    "scope": i.entitlement.scope,
                    "granted_via": i.entitlement.granted_via,
                    "privileged": i.entitlement.privileged,
                    "attributes": dict(i.entitlement.attributes),
                    "first_seen": format_time(i.entitlement.first_seen)
                    if i.entitlement.first_seen
                    else None,
                },
                "decision": _decision(i.decision, ledger),
                "usage": item_usage(usage, i),
            }
            for i in items
        ],
        "history": [{"item": d.number, **(_decision(d, ledger) or {})} for d in history],
    }


def to_csv(document: dict[str, Any]) -> str:
    """One row per item of an export document."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in document["items"]:
        e = item["entitlement"]
        d = item["decision"] or {}
        ledger = d.get("ledger") or {}
        checkpoint = ledger.get("checkpoint") or {}
        u = item["usage"] or {}
        used = "; ".join(f"{x['what']} ({x['count']}x)" for x in u.get("used", []))
        row = (
            item["item"],
            e["system"],
            e["principal"],
            e["principal_kind"],
            e["privilege"],
            e["scope"],
            e["granted_via"],
            e["privileged"],
            d.get("decision", ""),
            d.get("by", ""),
            d.get("at", ""),
            d.get("comment", ""),
            d.get("event_id", ""),
            ledger.get("leaf_index", ""),
            checkpoint.get("size", ""),
            u.get("last_action", ""),
            u.get("last_action_event", ""),
            used,
        )
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()
