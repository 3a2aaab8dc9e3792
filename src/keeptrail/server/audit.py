"""Self-audit: the audit trail records who looked at the audit trail.

Every search, event read, export, proof request, token change and configuration load becomes
an ordinary ``audit`` event in the same store (so it is a ledger leaf like any other): the
token's name is the actor, the client address the source, and the details say what was asked
(the query and time range, the event id). A read is answered only after its audit event is
committed: if the trail cannot record the read, the read fails. Token secrets never appear:
only token names, roles and ids.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from keeptrail.event import DetailValue, Event, uuid7
from keeptrail.netaddr import canonical_ip

if TYPE_CHECKING:
    from keeptrail.server.auth import Principal

SEARCH: Final = "keeptrail.search"
EVENT_READ: Final = "keeptrail.event_read"
EXPORT: Final = "keeptrail.export"
PROOF: Final = "keeptrail.proof"
STATS_READ: Final = "keeptrail.stats_read"
TOKEN_CREATE: Final = "keeptrail.token_create"  # noqa: S105 (an action name)
TOKEN_REVOKE: Final = "keeptrail.token_revoke"  # noqa: S105
TOKEN_LIST: Final = "keeptrail.token_list"  # noqa: S105
CONFIG_LOAD: Final = "keeptrail.config_load"

_HOST: Final = socket.gethostname()


def audit_event(
    action: str,
    *,
    actor: str,
    actor_type: str = "user",
    source_ip: str | None = None,
    source_host: str | None = None,
    resource: str | None = None,
    resource_type: str | None = None,
    outcome: str = "success",
    reason: str | None = None,
    details: Mapping[str, DetailValue] | None = None,
    collector_source: str = "server",
) -> Event:
    """An ``audit`` event by Keeptrail about an access to itself."""
    now = time.time_ns() // 1000
    if source_ip is not None and not _is_ip(source_ip):  # e.g. a test client's made-up name
        source_ip, source_host = None, source_host or source_ip
    clean: dict[str, DetailValue] = {k: v for k, v in (details or {}).items() if v is not None}
    return Event(
        time=now,
        ingested_at=now,
        category="audit",
        action=action,
        outcome=outcome,
        reason=reason,
        actor_name=actor,
        actor_type=actor_type,
        source_ip=source_ip,
        source_host=source_host,
        target_host=_HOST,
        target_system="keeptrail",
        target_resource=resource,
        target_resource_type=resource_type,
        details=clean,
        collector_host=_HOST,
        collector_source=collector_source,
        raw=_summary(action, actor, resource, clean),
        id=uuid7(),
    )


def by_principal(
    principal: Principal,
    action: str,
    *,
    resource: str | None = None,
    resource_type: str | None = None,
    outcome: str = "success",
    reason: str | None = None,
    details: Mapping[str, DetailValue] | None = None,
) -> Event:
    """An audit event whose actor is the calling token and whose source is its client."""
    return audit_event(
        action,
        actor=principal.name,
        actor_type="service" if principal.role == "ingest" else "user",
        source_ip=principal.client_ip,
        resource=resource,
        resource_type=resource_type,
        outcome=outcome,
        reason=reason,
        details={**(details or {}), "token_role": principal.role, "token_id": principal.token_id},
    )


def local_actor() -> str:
    """Who runs a local command (token management from the CLI)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _is_ip(text: str) -> bool:
    return canonical_ip(text) is not None


def _summary(action: str, actor: str, resource: str | None, details: dict[str, DetailValue]) -> str:
    parts = [f"{actor} {action.removeprefix('keeptrail.')}"]
    if resource:
        parts.append(resource)
    query = details.get("query")
    if query:
        parts.append(f"query={query!s}")
    return " ".join(parts)
