"""The ledger's own events (key created, publication failed, verification run).

They are ordinary events (category ``audit``) stored through the same append path as every
other, so they are leaves of the tree they talk about and show up in search and reports.
"""

from __future__ import annotations

import socket
import time

from keeptrail.event import DetailValue, Event, uuid7


def ledger_event(
    action: str, outcome: str, message: str, details: dict[str, DetailValue] | None = None
) -> Event:
    """An ``audit`` event by Keeptrail itself, e.g. ``ledger.key_created``."""
    now = time.time_ns() // 1000
    return Event(
        time=now,
        ingested_at=now,
        category="audit",
        action=action,
        outcome=outcome,
        severity="info" if outcome == "success" else "high",
        actor_name="keeptrail",
        actor_type="system",
        target_system="keeptrail",
        target_resource="ledger",
        target_resource_type="ledger",
        details=dict(details or {}),
        collector_host=socket.gethostname(),
        collector_source="ledger",
        raw=message,
        id=uuid7(),
    )
