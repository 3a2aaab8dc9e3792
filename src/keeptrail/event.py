"""The one event type every layer passes around, and its canonical bytes.

The event is a flat, slotted dataclass rather than a tree of small objects: ingest builds
hundreds of thousands of them per second, and one allocation per event is what keeps that
affordable. The dotted names of MISSION.md (``actor.name``, ``source.ip``) are the public
vocabulary; :data:`FIELDS` maps each of them to an attribute.

:func:`canonical_bytes` is the single byte encoding of an event. The ledger hashes exactly
these bytes, so it is deterministic (sorted keys, no insignificant whitespace, UTC timestamps
with microseconds, integers only, absent values omitted) and versioned by its ``v`` key.
Changing it means a new version number, never a silent edit.
"""

from __future__ import annotations

import hashlib
import os
import time as _time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson

ENCODING_VERSION: Final = 1

CATEGORIES: Final = frozenset(
    {
        "authentication",
        "session",
        "privilege",
        "account",
        "permission",
        "api",
        "database",
        "file",
        "process",
        "kubernetes",
        "config",
        "audit",
        "alert",
        "unparsed",
    }
)
OUTCOMES: Final = frozenset({"success", "failure", "unknown"})
SEVERITIES: Final = ("info", "low", "medium", "high", "critical")
ACTOR_TYPES: Final = frozenset({"user", "service", "system", "anonymous"})

DetailValue = str | int | bool | list[str] | None


@dataclass(slots=True)
class Event:
    """One normalized fact: who did what, when, where, with what outcome.

    ``time`` and ``ingested_at`` are integer microseconds since the Unix epoch (UTC) so that
    no float ever reaches the canonical encoding or an index.
    """

    time: int
    category: str
    action: str
    outcome: str = "unknown"
    reason: str | None = None
    severity: str = "info"
    actor_name: str | None = None
    actor_uid: int | None = None
    actor_type: str | None = None
    actor_session: str | None = None
    actor_auth_method: str | None = None
    actor_effective_user: str | None = None
    source_ip: str | None = None
    source_port: int | None = None
    source_host: str | None = None
    target_host: str | None = None
    target_system: str | None = None
    target_resource: str | None = None
    target_resource_type: str | None = None
    details: dict[str, DetailValue] = field(default_factory=dict)
    collector_host: str | None = None
    collector_source: str | None = None
    collector_parser: str | None = None
    collector_file: str | None = None
    collector_offset: int | None = None
    raw: str = ""
    id: str = ""
    ingested_at: int | None = None


# Dotted public name -> attribute name. Order is the display order.
FIELDS: Final[dict[str, str]] = {
    "id": "id",
    "time": "time",
    "ingested_at": "ingested_at",
    "category": "category",
    "action": "action",
    "outcome": "outcome",
    "reason": "reason",
    "severity": "severity",
    "actor.name": "actor_name",
    "actor.uid": "actor_uid",
    "actor.type": "actor_type",
    "actor.session": "actor_session",
    "actor.auth_method": "actor_auth_method",
    "actor.effective_user": "actor_effective_user",
    "source.ip": "source_ip",
    "source.port": "source_port",
    "source.host": "source_host",
    "target.host": "target_host",
    "target.system": "target_system",
    "target.resource": "target_resource",
    "target.resource_type": "target_resource_type",
    "details": "details",
    "collector.host": "collector_host",
    "collector.source": "collector_source",
    "collector.parser": "collector_parser",
    "collector.file": "collector_file",
    "collector.offset": "collector_offset",
    "raw": "raw",
}

_GROUPS: Final = ("actor", "source", "target", "collector")
_TIME_FIELDS: Final = frozenset({"time", "ingested_at"})


def format_time(micros: int) -> str:
    """RFC 3339 UTC with exactly six fractional digits: ``2024-02-21T21:54:44.000000Z``."""
    seconds, frac = divmod(micros, 1_000_000)
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(seconds)) + f".{frac:06d}Z"


def parse_time(text: str) -> int:
    """Inverse of :func:`format_time`; also accepts any ISO 8601 string with an offset."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return datetime_to_micros(dt)


def datetime_to_micros(dt: datetime) -> int:
    """Exact integer microseconds of an aware datetime (no float round trip)."""
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def to_document(event: Event) -> dict[str, Any]:
    """The nested, dotted-name view of an event (MISSION.md's model); absent values omitted."""
    doc: dict[str, Any] = {"v": ENCODING_VERSION}
    for dotted, attr in FIELDS.items():
        value = getattr(event, attr)
        if value is None or value == {}:
            continue
        if attr in _TIME_FIELDS:
            value = format_time(value)
        group, _, leaf = dotted.partition(".")
        if leaf:
            doc.setdefault(group, {})[leaf] = value
        else:
            doc[group] = value
    return doc


def canonical_bytes(event: Event) -> bytes:
    """The versioned, deterministic encoding the ledger hashes."""
    return orjson.dumps(to_document(event), option=orjson.OPT_SORT_KEYS)


def from_document(doc: dict[str, Any]) -> Event:
    """Rebuild an event from :func:`to_document` output (or its JSON)."""
    values: dict[str, Any] = {}
    for dotted, attr in FIELDS.items():
        group, _, leaf = dotted.partition(".")
        value = doc.get(group)
        if leaf:
            value = value.get(leaf) if isinstance(value, dict) else None
        if value is None:
            continue
        if attr in _TIME_FIELDS:
            value = parse_time(value)
        values[attr] = value
    return Event(**values)


# --- UUIDv7 ---------------------------------------------------------------------------------


class _Uuid7Source:
    """Monotonic UUIDv7 strings (RFC 9562): 48-bit Unix milliseconds, a counter, randomness.

    Within one millisecond the 12-bit ``rand_a`` field is a counter (RFC 9562 §6.2 method 1),
    so ids made by one process sort in creation order.
    """

    __slots__ = ("_counter", "_last_ms", "_pool", "_pos")

    _POOL_BYTES = 8 * 4096  # one getrandom() call per 4096 ids

    def __init__(self) -> None:
        self._last_ms = 0
        self._counter = 0
        self._pool = b""
        self._pos = 0

    def __call__(self) -> str:
        ms = _time.time_ns() // 1_000_000
        if ms <= self._last_ms:
            self._counter += 1
            if self._counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                self._last_ms += 1
                self._counter = 0
            ms = self._last_ms
        else:
            self._last_ms = ms
            self._counter = 0
        pos = self._pos
        if pos >= len(self._pool):
            self._pool = os.urandom(self._POOL_BYTES)
            pos = 0
        self._pos = pos + 8
        rand = self._pool[pos : pos + 8].hex()
        variant = "89ab"[int(rand[0], 16) & 3]  # the two top bits of rand_b are 0b10
        stamp = f"{ms:012x}"
        return f"{stamp[:8]}-{stamp[8:]}-7{self._counter:03x}-{variant}{rand[1:4]}-{rand[4:]}"


uuid7: Final = _Uuid7Source()


def uuid7_for(ms: int, key: bytes) -> str:
    """A deterministic UUIDv7: ``ms`` as its timestamp, the rest of its bits from ``key``.

    Used for events read from files: the same line of the same file (identified by content
    fingerprint and offset) always gets the same id, so reading it twice — after a crash, or
    when a multi-line record is re-assembled — stores it once.
    """
    digest = hashlib.sha256(key).digest()
    rand_a = int.from_bytes(digest[:2]) & 0xFFF
    rand_b = int.from_bytes(digest[2:10]) & 0x3FFF_FFFF_FFFF_FFFF
    value = ((ms & 0xFFFF_FFFF_FFFF) << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7_time(uuid_text: str) -> int:
    """Milliseconds since the epoch encoded in a UUIDv7."""
    return int(uuid_text[:8] + uuid_text[9:13], 16)


def unparsed(raw: str, time: int, *, host: str | None = None, reason: str | None = None) -> Event:
    """The event for a line no parser understood: kept whole, counted, searchable by text."""
    return Event(
        time=time,
        category="unparsed",
        action="unparsed",
        outcome="unknown",
        reason=reason,
        target_host=host,
        raw=raw,
    )
