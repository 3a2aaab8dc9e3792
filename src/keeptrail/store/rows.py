"""Event ⇄ row tuple, shared by the SQL backends.

The storage forms are chosen for index size and portability: the id as its 16 bytes, times as
integer microseconds, IP addresses as 16 bytes (IPv4 mapped into IPv6) so that equality and
CIDR ranges are plain byte comparisons in any SQL engine, ``details`` as a JSON object.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Final

import orjson

from keeptrail.event import ENCODING_VERSION, Event, format_time
from keeptrail.netaddr import bytes_to_ip, ip_to_bytes

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


def uuid_bytes(text: str) -> bytes:
    """The 16 bytes of a UUID string; ``ValueError`` if it is not one."""
    return uuid.UUID(text).bytes


def uuid_text(data: bytes) -> str:
    """The canonical (lowercase, hyphenated) text of a UUID's 16 bytes."""
    h = data.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


ip_bytes = ip_to_bytes  # one definition of the storage form, shared with the query compiler
ip_text = bytes_to_ip


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


# --- the ledger's view of a row ----------------------------------------------------------------

_ORJSON_SORT: Final = orjson.OPT_SORT_KEYS


class CanonicalEncoder:
    """``canonical_bytes(decode(row))`` straight from a row, without building an :class:`Event`.

    The ledger hashes the event *as the store returns it* (ids in lowercase canonical form, IP
    addresses as their canonical text), so ingest and ``verify`` both hash what this computes
    from the very row they write or read; a test keeps it equal to
    :func:`keeptrail.event.canonical_bytes` of the decoded row. It is a class only to cache the
    formatting of the last second seen for each time column: a batch shares ``ingested_at`` and
    neighbouring events mostly share a second.
    """

    __slots__ = ("_ing_key", "_ing_text", "_time_key", "_time_text")

    def __init__(self) -> None:
        self._time_key = self._ing_key = -1
        self._time_text = self._ing_text = ""

    def __call__(self, row: Sequence[Any], start: int = 0) -> bytes:
        """Canonical bytes of the event whose :data:`COLUMNS` begin at ``row[start]``."""
        (
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
        ) = row[start : start + 28]
        h = bytes(id_).hex()
        secs, frac = divmod(time, 1_000_000)
        if secs != self._time_key:
            self._time_key, self._time_text = secs, format_time(secs * 1_000_000)[:-8]
        doc: dict[str, Any] = {
            "v": ENCODING_VERSION,
            "id": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
            "time": f"{self._time_text}.{frac:06d}Z",
            "category": category,
            "action": action,
            "outcome": outcome,
            "severity": severity,
            "raw": raw,
        }
        if ingested_at is not None:
            secs, frac = divmod(ingested_at, 1_000_000)
            if secs != self._ing_key:
                self._ing_key, self._ing_text = secs, format_time(secs * 1_000_000)[:-8]
            doc["ingested_at"] = f"{self._ing_text}.{frac:06d}Z"
        if reason is not None:
            doc["reason"] = reason
        # Plain ifs, not comprehensions: this runs once per event in ingest and in verify.
        group: dict[str, Any] = {}
        if actor_name is not None:
            group["name"] = actor_name
        if actor_uid is not None:
            group["uid"] = actor_uid
        if actor_type is not None:
            group["type"] = actor_type
        if actor_session is not None:
            group["session"] = actor_session
        if actor_auth_method is not None:
            group["auth_method"] = actor_auth_method
        if actor_effective_user is not None:
            group["effective_user"] = actor_effective_user
        if group:
            doc["actor"] = group
            group = {}
        if source_ip is not None:
            group["ip"] = ip_text(bytes(source_ip))
        if source_port is not None:
            group["port"] = source_port
        if source_host is not None:
            group["host"] = source_host
        if group:
            doc["source"] = group
            group = {}
        if target_host is not None:
            group["host"] = target_host
        if target_system is not None:
            group["system"] = target_system
        if target_resource is not None:
            group["resource"] = target_resource
        if target_resource_type is not None:
            group["resource_type"] = target_resource_type
        if group:
            doc["target"] = group
            group = {}
        if details:
            parsed = orjson.loads(details)
            if parsed is not None and parsed != {}:
                doc["details"] = parsed
        if collector_host is not None:
            group["host"] = collector_host
        if collector_source is not None:
            group["source"] = collector_source
        if collector_parser is not None:
            group["parser"] = collector_parser
        if collector_file is not None:
            group["file"] = collector_file
        if collector_offset is not None:
            group["offset"] = collector_offset
        if group:
            doc["collector"] = group
        return orjson.dumps(doc, option=_ORJSON_SORT)
