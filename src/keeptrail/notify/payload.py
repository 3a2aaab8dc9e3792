"""The JSON document an alert is delivered as, and the error every sink raises.

One document for every sink (webhooks send it as is; chat, email and CEF are rendered from
it), versioned by ``"type"`` so receivers can tell it from anything else that reaches them.
Times are RFC 3339 strings as in event documents. The alert's text (title, reason, evidence
summaries) comes from log lines and is attacker controlled: receivers must treat it as data.
"""

from __future__ import annotations

from typing import Any, Final

from keeptrail.detect.alerts import Alert
from keeptrail.event import format_time

PAYLOAD_TYPE: Final = "keeptrail.alert/v1"


class DeliveryError(Exception):
    """A delivery did not arrive; ``retry`` is False when trying again cannot help."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def alert_payload(alert: Alert, *, is_new: bool) -> dict[str, Any]:
    """The delivered document: the alert, its key, evidence, why it fired, and its status."""
    return {
        "type": PAYLOAD_TYPE,
        "event": "alert.raised" if is_new else "alert.updated",
        "alert": {
            "id": alert.id,
            "rule_id": alert.rule_id,
            "title": alert.title,
            "description": alert.description,
            "severity": alert.severity,
            "tags": list(alert.tags),
            "key": dict(alert.key),
            "reason": alert.reason,
            "count": alert.count,
            "first_time": format_time(alert.first_time),
            "last_time": format_time(alert.last_time),
            "status": alert.status,
            "evidence": [
                {"event_id": e.event_id, "time": format_time(e.time), "summary": e.summary}
                for e in alert.evidence
            ],
            "ledger_event_id": alert.event_id or None,
        },
    }


def headline(doc: dict[str, Any]) -> str:
    """``[high] Brute force on one account: 12 failures ...`` — chat titles, email subjects."""
    a = doc["alert"]
    return f"[{a['severity']}] {a['title']}"


def body_text(doc: dict[str, Any]) -> str:
    """A plain-text rendering for chat and email."""
    a = doc["alert"]
    key = ", ".join(f"{k}={v}" for k, v in a["key"].items()) or "-"
    lines = [
        f"{a['title']} ({a['rule_id']}, {a['severity']})",
        f"why: {a['reason']}",
        f"key: {key}",
        f"events: {a['count']} from {a['first_time']} to {a['last_time']}",
        f"alert: {a['id']} ({a['status']})",
    ]
    for e in a["evidence"][:5]:
        lines.append(f"- {e['time']} {e['summary']}")
    return "\n".join(lines)
