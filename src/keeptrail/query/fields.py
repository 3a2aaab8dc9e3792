"""The searchable fields: public dotted names, short aliases, and how each one compares.

This is the whitelist the SQL compiler draws column names from, so nothing a user types
ever becomes SQL text: a name either resolves to one of these entries or the query fails
with a list of the names that would have worked.
"""

from __future__ import annotations

import difflib
import enum
import re
from dataclasses import dataclass
from typing import Final

from keeptrail.event import FIELDS, SEVERITIES
from keeptrail.query.errors import QueryError


class Kind(enum.Enum):
    """How values of a field are parsed and compared."""

    TEXT = "text"  # case-sensitive string
    KEYWORD = "keyword"  # string whose query values are lowercased (category, outcome, ...)
    SEVERITY = "severity"  # keyword with an order: info < low < medium < high < critical
    INT = "int"  # 64-bit integer
    TIME = "time"  # integer microseconds since the epoch, written as ISO dates in queries
    IP = "ip"  # address; 16 bytes in storage, a string on the event
    ID = "id"  # UUID; 16 bytes in SQLite storage, a string on the event
    DETAIL = "detail"  # one key of the JSON ``details`` object, compared as text


@dataclass(frozen=True, slots=True)
class Field:
    """A resolved field: its public name, Event attribute (= column), kind, and detail key."""

    name: str
    attr: str
    kind: Kind
    key: str | None = None  # only for Kind.DETAIL


_KINDS: Final[dict[str, Kind]] = {
    "id": Kind.ID,
    "time": Kind.TIME,
    "ingested_at": Kind.TIME,
    "category": Kind.KEYWORD,
    "action": Kind.KEYWORD,
    "outcome": Kind.KEYWORD,
    "severity": Kind.SEVERITY,
    "actor_type": Kind.KEYWORD,
    "actor_uid": Kind.INT,
    "source_port": Kind.INT,
    "collector_offset": Kind.INT,
    "source_ip": Kind.IP,
}

FIELD_TABLE: Final[dict[str, Field]] = {
    name: Field(name, attr, _KINDS.get(attr, Kind.TEXT))
    for name, attr in FIELDS.items()
    if name != "details"
}

ALIASES: Final[dict[str, str]] = {
    "user": "actor.name",
    "username": "actor.name",
    "actor": "actor.name",
    "ip": "source.ip",
    "src_ip": "source.ip",
    "srcip": "source.ip",
    "src": "source.ip",
    "src_port": "source.port",
    "port": "source.port",
    "src_host": "source.host",
    "host": "target.host",
    "system": "target.system",
    "resource": "target.resource",
    "resource_type": "target.resource_type",
    "method": "actor.auth_method",
    "auth": "actor.auth_method",
    "euser": "actor.effective_user",
    "effective_user": "actor.effective_user",
    "sudo_user": "actor.effective_user",
    "session": "actor.session",
    "uid": "actor.uid",
    "parser": "collector.parser",
    "file": "collector.file",
    "offset": "collector.offset",
    "sev": "severity",
    "level": "severity",
    "result": "outcome",
    "cat": "category",
    "timestamp": "time",
    "message": "raw",
    "msg": "raw",
    "line": "raw",
    # the attribute spellings (actor_name, source_ip, ...) are accepted too
    **{attr: name for name, attr in FIELDS.items() if name not in (attr, "details")},
}

SEVERITY_RANK: Final[dict[str, int]] = {name: rank for rank, name in enumerate(SEVERITIES)}

DETAIL_PREFIX: Final = "details."
_DETAIL_KEY: Final = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


def resolve_field(name: str, position: int = 0) -> Field:
    """The field a name (canonical, alias, or ``details.<key>``) refers to, or QueryError.

    Names are case-insensitive; a detail key keeps its case, since JSON keys are exact.
    Detail keys are limited to ``[A-Za-z0-9_.-]`` so a key can never escape a JSON path.
    """
    lowered = name.lower()
    if lowered.startswith(DETAIL_PREFIX):
        key = name[len(DETAIL_PREFIX) :]
        if not _DETAIL_KEY.fullmatch(key):
            raise QueryError(
                f"invalid details key {key!r}: use 1-128 of the characters A-Z a-z 0-9 _ . -",
                position + len(DETAIL_PREFIX),
            )
        return Field(f"{DETAIL_PREFIX}{key}", "details", Kind.DETAIL, key)
    canonical = ALIASES.get(lowered, lowered)
    found = FIELD_TABLE.get(canonical)
    if found is None:
        raise QueryError(_unknown_message(name), position)
    return found


def _unknown_message(name: str) -> str:
    """Name the field that was not found, a close match if any, and every valid name."""
    candidates = [*FIELD_TABLE, *ALIASES]
    close = difflib.get_close_matches(name.lower(), candidates, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    names = ", ".join([*FIELD_TABLE, "details.<key>"])
    aliases = ", ".join(sorted(a for a in ALIASES if a not in FIELDS.values()))
    return f"unknown field {name!r}{hint}; valid fields: {names}; aliases: {aliases}"
