"""Event ⇄ row tuple, shared by the SQL backends.

The storage forms are chosen for index size and portability: the id as its 16 bytes, times as
integer microseconds, IP addresses as 16 bytes (IPv4 mapped into IPv6) so that equality and
CIDR ranges are plain byte comparisons in any SQL engine, ``details`` as a JSON object.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Sequence
from typing import Any, Final

import orjson

from keeptrail.event import Event

COLUMNS: Final = (
    "id",
    "time",
    "ingested_at",
    "category",
    "action",
    "outcome",
    "reason",
    "severity",
    "actor_name",
    "actor_uid",
    "actor_type",
    "actor_session",
    "actor_auth_method",
    "actor_effective_user",
    "source_ip",
    "source_port",
    "source_host",
    "target_host",
    "target_system",
    "target_resource",
    "target_resource_type",
    "details",
    "collector_host",
    "collector_source",
    "collector_parser",
    "collector_file",
    "collector_offset",
    "raw",
)
TIME_INDEX: Final = COLUMNS.index("time")
_V4_PREFIX: Final = b"\x00" * 10 + b"\xff\xff"


def uuid_bytes(text: str) -> bytes:
    """The 16 bytes of a UUID string; ``ValueError`` if it is not one."""
    return uuid.UUID(text).bytes


def ip_bytes(text: str) -> bytes:
    """16-byte storage form of an IP address (IPv4 as ``::ffff:a.b.c.d``)."""
    if ":" in text:
        return socket.inet_pton(socket.AF_INET6, text.partition("%")[0])
    return _V4_PREFIX + socket.inet_pton(socket.AF_INET, text)


def ip_text(data: bytes) -> str:
    """Inverse of :func:`ip_bytes`."""
    if data[:12] == _V4_PREFIX:
        return socket.inet_ntop(socket.AF_INET, data[12:])
    return socket.inet_ntop(socket.AF_INET6, data)


def encode(e: Event) -> tuple[Any, ...]:
    """The row for an event, in :data:`COLUMNS` order."""
    ip = e.source_ip
    return (
        bytes.fromhex(e.id.replace("-", "")),
        e.time,
        e.ingested_at,
        e.category,
        e.action,
        e.outcome,
        e.reason,
        e.severity,
        e.actor_name,
        e.actor_uid,
        e.actor_type,
        e.actor_session,
        e.actor_auth_method,
        e.actor_effective_user,
        ip_bytes(ip) if ip else None,
        e.source_port,
        e.source_host,
        e.target_host,
        e.target_system,
        e.target_resource,
        e.target_resource_type,
        orjson.dumps(e.details).decode() if e.details else None,
        e.collector_host,
        e.collector_source,
        e.collector_parser,
        e.collector_file,
        e.collector_offset,
        e.raw,
    )


def decode(row: Sequence[Any]) -> Event:
    """The event for a row of ``seq`` followed by :data:`COLUMNS`."""
    (
        _seq,
        id_,
        time,
        ingested_at,
        category,
        action,
        outcome,
        reason,
        severity,
        actor_name,
        actor_uid,
        actor_type,
        actor_session,
        actor_auth_method,
        actor_effective_user,
        source_ip,
        source_port,
        source_host,
        target_host,
        target_system,
        target_resource,
        target_resource_type,
        details,
        collector_host,
        collector_source,
        collector_parser,
        collector_file,
        collector_offset,
        raw,
    ) = row
    return Event(
        id=str(uuid.UUID(bytes=bytes(id_))),
        time=time,
        ingested_at=ingested_at,
        category=category,
        action=action,
        outcome=outcome,
        reason=reason,
        severity=severity,
        actor_name=actor_name,
        actor_uid=actor_uid,
        actor_type=actor_type,
        actor_session=actor_session,
        actor_auth_method=actor_auth_method,
        actor_effective_user=actor_effective_user,
        source_ip=ip_text(bytes(source_ip)) if source_ip is not None else None,
        source_port=source_port,
        source_host=source_host,
        target_host=target_host,
        target_system=target_system,
        target_resource=target_resource,
        target_resource_type=target_resource_type,
        details=orjson.loads(details) if details else {},
        collector_host=collector_host,
        collector_source=collector_source,
        collector_parser=collector_parser,
        collector_file=collector_file,
        collector_offset=collector_offset,
        raw=raw,
    )
