"""Acknowledging and resolving alerts, with every step recorded in the ledger.

The lifecycle itself (allowed moves, history) belongs to
:class:`~keeptrail.detect.alerts.AlertStore`; this module adds what the CLI and the API must
both do: make the event that puts the step in the event store (``category: alert``, ``action:
alert.acknowledged | alert.resolved | alert.reopened``, ``actor.name`` = who,
``details.comment`` = why), so "who closed this alert, and what did they say" is answered by
the same tamper-evident trail as everything else.
"""

from __future__ import annotations

import socket
import time
from typing import Final

from keeptrail.detect.alerts import Alert
from keeptrail.errors import UserError
from keeptrail.event import Event, uuid7
from keeptrail.netaddr import canonical_ip

ACTIONS: Final = {
    "acknowledged": "alert.acknowledged",
    "resolved": "alert.resolved",
    "open": "alert.reopened",
}
MAX_COMMENT: Final = 2000


def check_comment(comment: str) -> str:
    """A non-empty comment of reasonable length (a lifecycle step must say why)."""
    text = comment.strip()
    if not text:
        raise UserError("a comment is required: say why (--comment TEXT)")
    if len(text) > MAX_COMMENT:
        raise UserError(f"the comment is longer than {MAX_COMMENT} characters")
    return text


def transition_event(
    alert: Alert, previous: str, *, by: str, comment: str, source_ip: str | None = None
) -> Event:
    """The event recording that ``by`` moved ``alert`` from ``previous`` to its status."""
    now = time.time_ns() // 1000
    action = ACTIONS[alert.status]
    if source_ip is not None:
        source_ip = canonical_ip(source_ip)  # None for a name such as a test client's
    return Event(
        time=now,
        ingested_at=now,
        category="alert",
        action=action,
        outcome="success",
        severity="info",
        actor_name=by,
        actor_type="user",
        source_ip=source_ip,
        target_host=socket.gethostname(),
        target_system="keeptrail-detect",
        target_resource=alert.id,
        target_resource_type="alert",
        details={
            "alert_id": alert.id,
            "rule_id": alert.rule_id,
            "status": alert.status,
            "previous_status": previous,
            "comment": comment,
            "raised_event_id": alert.event_id or None,
        },
        collector_source="detect",
        collector_parser="detect",
        raw=f"{by} {action.removeprefix('alert.')} alert {alert.id} ({alert.rule_id}): {comment}"[
            :2000
        ],
        id=uuid7(),
    )
