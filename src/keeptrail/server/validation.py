"""Event documents from the ingest API to :class:`~keeptrail.event.Event`, checked by hand.

The accepted form is exactly :func:`keeptrail.event.to_document`'s (docs/api.md lists it):
``v`` (1, optional), ``id`` (UUID, optional: assigned here when absent), ``time`` (RFC 3339 with
a zone), ``category``, ``action``, ``outcome``, ``reason``, ``severity``, the ``actor``,
``source``, ``target`` and ``collector`` objects, ``details`` (string keys; string, integer,
boolean, list-of-strings or null values: no floats, since the ledger hashes integers only) and
``raw``. Unknown keys are refused so a misspelt field is an error, not a silent loss.

This is the ingest hot path (tens of thousands of documents a second), so it is a table of
plain checks rather than a model class per event. When ``keeptrail.parsers.app_json`` (the
documented application schema) lands, :func:`document_to_event` is the one place to point at it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from keeptrail.event import (
    ACTOR_TYPES,
    CATEGORIES,
    OUTCOMES,
    SEVERITIES,
    DetailValue,
    Event,
    datetime_to_micros,
    uuid7,
)
from keeptrail.netaddr import canonical_ip

_MAX_INT: Final = 2**63 - 1
_MAX_TIME: Final = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_MAX_TEXT: Final = 1024  # for short fields (names, hosts, actions); raw/details are bounded by size


class InvalidEvent(ValueError):
    """Why one document cannot be stored."""


def _text(value: Any, where: str) -> str:
    if type(value) is not str:
        raise InvalidEvent(f"{where} must be a string")
    if len(value) > _MAX_TEXT:
        raise InvalidEvent(f"{where} is longer than {_MAX_TEXT} characters")
    return value


def _integer(value: Any, where: str, low: int = -_MAX_INT, high: int = _MAX_INT) -> int:
    if type(value) is not int:
        raise InvalidEvent(f"{where} must be an integer")
    if not low <= value <= high:
        raise InvalidEvent(f"{where} must be between {low} and {high}")
    return value


def _choice(allowed: frozenset[str] | tuple[str, ...]) -> Callable[[Any, str], str]:
    listed = ", ".join(sorted(allowed))

    def check(value: Any, where: str) -> str:
        if type(value) is not str or value not in allowed:  # type first: a list is unhashable
            raise InvalidEvent(f"{where} must be one of {listed}")
        return value

    return check


def _ip(value: Any, where: str) -> str:
    ip = canonical_ip(_text(value, where))
    if ip is None:
        raise InvalidEvent(f"{where} is not an IP address")
    return ip  # canonical text: what the store returns is what the ledger hashed


def _port(value: Any, where: str) -> int:
    return _integer(value, where, 0, 65_535)


def _offset(value: Any, where: str) -> int:
    return _integer(value, where, 0)


_Check = Callable[[Any, str], Any]
_GROUPS: Final[dict[str, dict[str, tuple[str, _Check]]]] = {
    "actor": {
        "name": ("actor_name", _text),
        "uid": ("actor_uid", _integer),
        "type": ("actor_type", _choice(ACTOR_TYPES)),
        "session": ("actor_session", _text),
        "auth_method": ("actor_auth_method", _text),
        "effective_user": ("actor_effective_user", _text),
    },
    "source": {
        "ip": ("source_ip", _ip),
        "port": ("source_port", _port),
        "host": ("source_host", _text),
    },
    "target": {
        "host": ("target_host", _text),
        "system": ("target_system", _text),
        "resource": ("target_resource", _text),
        "resource_type": ("target_resource_type", _text),
    },
    "collector": {
        "host": ("collector_host", _text),
        "source": ("collector_source", _text),
        "parser": ("collector_parser", _text),
        "file": ("collector_file", _text),
        "offset": ("collector_offset", _offset),
    },
}
_SCALARS: Final[dict[str, _Check]] = {
    # Alerts are raised by the server's own rules engine; a client (an ingest token, an agent)
    # cannot post look-alike ``alert.*`` events into the ledger.
    "category": _choice(CATEGORIES - {"alert"}),
    "action": _text,
    "outcome": _choice(OUTCOMES),
    "reason": _text,
    "severity": _choice(SEVERITIES),
}
_REQUIRED: Final = ("time", "category", "action")


def _time(value: Any, where: str) -> int:
    if type(value) is not str or len(value) > 64:
        raise InvalidEvent(f"{where} must be an RFC 3339 timestamp string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(f"{where} is not an RFC 3339 timestamp: {value[:40]!r}") from None
    if moment.tzinfo is None:
        raise InvalidEvent(f"{where} must carry a zone (Z or +hh:mm)")
    micros = datetime_to_micros(moment)
    if not 0 <= micros <= _MAX_TIME:
        raise InvalidEvent(f"{where} is out of range")
    return micros


def _id(value: Any) -> str:
    if type(value) is not str or not _UUID.fullmatch(value):
        raise InvalidEvent("id must be a UUID string (8-4-4-4-12 hex digits)")
    return value.lower()


def _details(value: Any) -> dict[str, DetailValue]:
    if type(value) is not dict:
        raise InvalidEvent("details must be an object")
    for key, item in value.items():
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            _integer(item, f"details.{key}")
        elif kind is list:
            if not all(type(x) is str for x in item):
                raise InvalidEvent(f"details.{key} must be a list of strings")
        else:
            raise InvalidEvent(
                f"details.{key} must be a string, integer, boolean, list of strings or null"
                " (no floats or objects)"
            )
    return value


def document_to_event(doc: Any, now: int) -> Event:
    """One checked document as an event stamped ``ingested_at = now``; ``InvalidEvent`` if not."""
    if type(doc) is not dict:
        raise InvalidEvent("an event must be a JSON object")
    for name in _REQUIRED:
        if doc.get(name) is None:
            raise InvalidEvent(f"{name} is required")
    values: dict[str, Any] = {"ingested_at": now}
    for key, value in doc.items():
        if value is None:
            continue
        check = _SCALARS.get(key)
        if check is not None:
            values[key] = check(value, key)
        elif key in _GROUPS:
            if type(value) is not dict:
                raise InvalidEvent(f"{key} must be an object")
            table = _GROUPS[key]
            for leaf, item in value.items():
                spec = table.get(leaf)
                if spec is None:
                    raise InvalidEvent(f"unknown field {key}.{leaf}")
                if type(item) is str and spec[1] is _text and len(item) <= _MAX_TEXT:
                    values[spec[0]] = item  # the common case, checked inline
                elif item is not None:
                    values[spec[0]] = spec[1](item, f"{key}.{leaf}")
        elif key == "time":
            values["time"] = _time(value, "time")
        elif key == "id":
            values["id"] = _id(value)
        elif key == "details":
            values["details"] = _details(value)
        elif key == "raw":
            if type(value) is not str:
                raise InvalidEvent("raw must be a string")
            values["raw"] = value
        elif key == "v":
            if value != 1 or type(value) is not int:
                raise InvalidEvent("v must be 1 (the only event document version)")
        elif key != "ingested_at":  # set by the server, whatever the client says
            raise InvalidEvent(f"unknown field {key}")
    if not values["action"]:
        raise InvalidEvent("action must not be empty")
    if "id" not in values:
        values["id"] = uuid7()
    return Event(**values)


def event_id_of(doc: Any) -> str | None:
    """The id a (possibly invalid) document claims, to name it in an error."""
    if type(doc) is dict:
        value = doc.get("id")
        if type(value) is str:
            return value[:64]
    return None
