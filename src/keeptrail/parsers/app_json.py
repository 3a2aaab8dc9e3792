"""Keeptrail's own JSON event schema (``keeptrail.event/v1``), written by applications.

One JSON object per line, the event model of MISSION.md as nested JSON (``docs/app-events.md``
is the reference, ``keeptrail/schemas/app-event-v1.json`` the JSON Schema). Validation is by
hand, in one pass over the object: this is the ingest hot path, and a schema-validator object
per event would cost more than the rest of the parse. A test checks that the hand validation
and the JSON Schema agree on examples.

An invalid event is never fixed silently and never dropped: it becomes an ``unparsed`` event
with ``reason: invalid_app_event`` and ``details.problem`` naming the field and what is wrong
(``details.latency: floats are not allowed``). Floats are rejected everywhere — the canonical
encoding the ledger hashes has no floats — so an application sends ``"latency_ms": 12`` or
``"ratio": "0.25"``, and learns about it the first time it sends ``0.25``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

import orjson

from keeptrail.event import (
    ACTOR_TYPES,
    CATEGORIES,
    OUTCOMES,
    SEVERITIES,
    DetailValue,
    Event,
    datetime_to_micros,
)
from keeptrail.netaddr import canonical_ip
from keeptrail.parsers.base import LineAssembler, StreamContext

NAME: Final = "app_json"
SCHEMA: Final = "keeptrail.event/v1"

_TOP: Final = frozenset(
    {"schema", "id", "time", "category", "action", "outcome", "reason", "severity"}
    | {"actor", "source", "target", "details"}
)
_ACTOR: Final = {
    "name": "actor_name",
    "uid": "actor_uid",
    "type": "actor_type",
    "session": "actor_session",
    "auth_method": "actor_auth_method",
    "effective_user": "actor_effective_user",
}
_SOURCE: Final = {"ip": "source_ip", "port": "source_port", "host": "source_host"}
_TARGET: Final = {
    "host": "target_host",
    "system": "target_system",
    "resource": "target_resource",
    "resource_type": "target_resource_type",
}
_INT_FIELDS: Final = frozenset({"actor_uid", "source_port"})
_GROUPS: Final = (("actor", _ACTOR), ("source", _SOURCE), ("target", _TARGET))
_APP_CATEGORIES: Final = CATEGORIES - {"unparsed"}
_ACTION: Final = re.compile(r"[a-z0-9_]{1,64}(?:\.[a-z0-9_]{1,64}){1,4}")
_UUID7: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_TIME: Final = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?P<frac>\.\d{1,9})?(?:Z|z|[+-]\d\d:\d\d)"
)
_MAX_TEXT: Final = 65_536
_MAX_DETAILS: Final = 256
_INT64: Final = 2**63


class InvalidAppEvent(ValueError):
    """An application event that does not follow ``keeptrail.event/v1``; the message says why."""


def sniff(line: str) -> bool:
    """Whether a first line is a Keeptrail application event (it carries the schema marker)."""
    head = line.lstrip()
    return head.startswith("{") and (
        '"schema":"keeptrail.event/v1"' in head or '"schema": "keeptrail.event/v1"' in head
    )


def _text(path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidAppEvent(f"{path}: must be a string")
    if not value or len(value) > _MAX_TEXT:
        raise InvalidAppEvent(f"{path}: must be 1 to {_MAX_TEXT} characters")
    return value


def _int(path: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, float):
        raise InvalidAppEvent(f"{path}: floats are not allowed")
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidAppEvent(f"{path}: must be an integer from {low} to {high}")
    return value


def parse_time(value: Any) -> int:
    """RFC 3339 with a zone (``Z`` or ``±hh:mm``) to epoch µs; digits past µs are cut."""
    m = _TIME.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise InvalidAppEvent("time: must be RFC 3339 with a zone, e.g. 2024-03-01T10:00:00.5Z")
    value, frac = m[0], m["frac"]
    if frac is not None and len(frac) > 7:
        value = value.replace(frac, frac[:7], 1)
    try:
        return datetime_to_micros(datetime.fromisoformat(value.upper().replace("Z", "+00:00")))
    except ValueError as exc:
        raise InvalidAppEvent(f"time: {exc}") from None


def _detail(key: str, value: Any) -> DetailValue:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > _MAX_TEXT:
            raise InvalidAppEvent(f"details.{key}: longer than {_MAX_TEXT} characters")
        return value
    if isinstance(value, int):
        return _int(f"details.{key}", value, -_INT64, _INT64 - 1)
    if isinstance(value, float):
        raise InvalidAppEvent(
            f"details.{key}: floats are not allowed (send an integer or a string)"
        )
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise InvalidAppEvent(f"details.{key}: a list may only hold strings")
        return value
    raise InvalidAppEvent(f"details.{key}: nested objects are not allowed (flatten the keys)")


def build(doc: Any) -> Event:
    """Validate one decoded object and turn it into an event; :class:`InvalidAppEvent` if not."""
    if not isinstance(doc, dict):
        raise InvalidAppEvent("the line must be a JSON object")
    if doc.get("schema") != SCHEMA:
        raise InvalidAppEvent(f'schema: must be "{SCHEMA}"')
    for key in doc:
        if key not in _TOP:
            raise InvalidAppEvent(f"{key}: unknown field")
    for key in ("time", "category", "action"):
        if key not in doc:
            raise InvalidAppEvent(f"{key}: required")
    category = doc["category"]
    if not isinstance(category, str) or category not in _APP_CATEGORIES:
        raise InvalidAppEvent("category: must be one of " + ", ".join(sorted(_APP_CATEGORIES)))
    action = doc["action"]
    if not isinstance(action, str) or _ACTION.fullmatch(action) is None:
        raise InvalidAppEvent("action: must be dotted lowercase words, e.g. billing.export")
    event = Event(time=parse_time(doc["time"]), category=category, action=action)
    outcome = doc.get("outcome", "unknown")
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        raise InvalidAppEvent("outcome: must be success, failure or unknown")
    event.outcome = outcome
    severity = doc.get("severity", "info")
    if not isinstance(severity, str) or severity not in SEVERITIES:
        raise InvalidAppEvent("severity: must be one of " + ", ".join(SEVERITIES))
    event.severity = severity
    if "reason" in doc:
        event.reason = _text("reason", doc["reason"])
    if "id" in doc:
        ident = doc["id"]
        if not isinstance(ident, str) or _UUID7.fullmatch(ident) is None:
            raise InvalidAppEvent("id: must be a lowercase UUIDv7 (or left out)")
        event.id = ident
    for group, fields in _GROUPS:
        sub = doc.get(group)
        if sub is None:
            continue
        if type(sub) is not dict:
            raise InvalidAppEvent(f"{group}: must be an object")
        for key, value in sub.items():
            attr = fields.get(key)
            if attr is None:
                raise InvalidAppEvent(f"{group}.{key}: unknown field")
            if type(value) is str and 0 < len(value) <= _MAX_TEXT and attr not in _INT_FIELDS:
                setattr(event, attr, value)  # the common case, checked in one line
            elif value is None:
                continue
            elif attr in _INT_FIELDS:
                high = 65_535 if attr == "source_port" else 4_294_967_295
                setattr(event, attr, _int(f"{group}.{key}", value, 0, high))
            else:
                setattr(event, attr, _text(f"{group}.{key}", value))
    if event.actor_type is not None and event.actor_type not in ACTOR_TYPES:
        raise InvalidAppEvent("actor.type: must be one of " + ", ".join(sorted(ACTOR_TYPES)))
    if event.source_ip is not None:
        ip = canonical_ip(event.source_ip)
        if ip is None:
            raise InvalidAppEvent("source.ip: not an IP address (use source.host for names)")
        event.source_ip = ip
    details = doc.get("details")
    if details is not None:
        if not isinstance(details, dict):
            raise InvalidAppEvent("details: must be an object")
        if len(details) > _MAX_DETAILS:
            raise InvalidAppEvent(f"details: at most {_MAX_DETAILS} keys")
        for key, value in details.items():
            kind = type(value)
            if not (kind is bool or (kind is str and len(value) <= _MAX_TEXT)):
                _detail(key, value)  # raises on anything not allowed
        event.details = details
    return event


class AppJsonAssembler(LineAssembler):
    """One line, one event: the trivial assembler."""

    __slots__ = ()

    def parse(self, line: str) -> Event:
        """Parse and validate one line; an invalid one is an ``unparsed`` event."""
        try:
            event = build(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            event = self._invalid(line, f"not JSON: {exc.msg}")
        except InvalidAppEvent as exc:
            event = self._invalid(line, str(exc))
        else:
            event.collector_parser = NAME
        return event

    def _invalid(self, line: str, problem: str) -> Event:
        event = self._unparsed(line, "invalid_app_event")
        event.details["problem"] = problem[:512]
        event.collector_parser = "unparsed"
        return event


def assembler(ctx: StreamContext) -> AppJsonAssembler:
    """A fresh assembler for one stream of application events."""
    return AppJsonAssembler(ctx)
