"""Which fields of a stored event stay in clear columns (the search projection), and computing it.

A stored event is its canonical bytes, sealed (AES-256-GCM), plus a *projection*: a few fields
copied into clear columns so that the search paths (time ranges, actor, source address,
action, host) stay index walks without decrypting anything. Everything not projected exists
only inside the sealed bytes. The default keeps in clear what filters and statistics use and
what identifies *who/where/what kind*, and seals what carries content: ``details`` (commands,
SQL statements, URLs, arguments), ``raw`` (the whole line), ``target.resource`` (file paths,
executables, tables), the session id and authentication method, and the collector's file
name and offset. docs/storage.md lists them with reasons.

``[protect] clear_fields = ["actor.name", ...]`` replaces the default list (dotted names).
``id``, ``time``, ``category``, ``action`` and ``outcome`` are always clear: partitions,
ordering, retention classes and statistics need them. ``details`` and ``raw`` never are.

Everything here is pure and backend-independent (the SQLite and PostgreSQL stores share it).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any, Final

from keeptrail.errors import UserError
from keeptrail.event import FIELDS, parse_time
from keeptrail.netaddr import ip_to_bytes

# The store's row layout (keeptrail.store.rows.COLUMNS, which follows FIELDS; a test keeps them
# equal). Not imported from there: the store imports this module.
ROW_COLUMNS: Final[tuple[str, ...]] = tuple(FIELDS.values())
# The clear columns of every partition table, in this order (attribute names = column names).
# A field outside a partition's clear set is NULL in its column.
COLUMNS: Final[tuple[str, ...]] = tuple(c for c in ROW_COLUMNS if c not in ("details", "raw"))
REQUIRED: Final = frozenset({"id", "time", "category", "action", "outcome"})
NEVER_CLEAR: Final = frozenset({"details", "raw"})
DEFAULT_CLEAR: Final = frozenset(
    {
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
        "actor_effective_user",
        "source_ip",
        "source_port",
        "source_host",
        "target_host",
        "target_system",
        "target_resource_type",
        "collector_host",
        "collector_source",
        "collector_parser",
    }
)
SEALED_ONLY_BY_DEFAULT: Final = frozenset(ROW_COLUMNS) - DEFAULT_CLEAR

_ATTR_OF: Final = dict(FIELDS)
_DOTTED_OF: Final = {attr: dotted for dotted, attr in FIELDS.items()}
_ROW_INDEX: Final = {c: i for i, c in enumerate(ROW_COLUMNS)}
_PAD: Final = len(ROW_COLUMNS)  # index of the None appended to a row for non-clear columns


def dotted(attr: str) -> str:
    """The public dotted name of a column (``actor_name`` → ``actor.name``)."""
    return _DOTTED_OF.get(attr, attr)


def encode_clear(fields: frozenset[str]) -> str:
    """The stored form of a clear set (sorted column names, comma-separated)."""
    return ",".join(sorted(fields))


def decode_clear(text: str | None) -> frozenset[str]:
    """Inverse of :func:`encode_clear`; ``None`` (a v1 partition) means every candidate column."""
    if text is None:
        return frozenset(COLUMNS)
    return frozenset(t for t in text.split(",") if t)


def clear_fields_from_config(config: Mapping[str, Any]) -> frozenset[str]:
    """``[protect] clear_fields`` as column names (the default when absent); UserError if bad."""
    table = config.get("protect", {})
    if not isinstance(table, Mapping) or "clear_fields" not in table:
        return DEFAULT_CLEAR
    value = table["clear_fields"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError('[protect] clear_fields must be a list of field names: ["actor.name"]')
    return parse_clear_fields(value)


def parse_clear_fields(names: Sequence[str]) -> frozenset[str]:
    """Dotted (or column) names to a clear set, plus the always-clear fields."""
    chosen: set[str] = set(REQUIRED)
    for name in names:
        attr = _ATTR_OF.get(name, name)
        if attr in NEVER_CLEAR:
            raise UserError(f"[protect] clear_fields: {name!r} is always sealed")
        if attr not in COLUMNS:
            valid = ", ".join(dotted(c) for c in COLUMNS)
            raise UserError(f"[protect] clear_fields: unknown field {name!r}; valid: {valid}")
        chosen.add(attr)
    return frozenset(chosen)


class Projection:
    """The clear columns of rows (``rows.encode`` tuples) for one clear set.

    One ``itemgetter`` call per row: columns outside the set read a ``None`` appended to the
    row, so the hot path builds no per-field conditionals.
    """

    __slots__ = ("_get", "_get_clear", "clear_columns", "fields")

    def __init__(self, fields: frozenset[str]) -> None:
        unknown = fields - set(COLUMNS)
        if unknown:
            raise ValueError(f"not projectable: {sorted(unknown)}")
        if not fields >= REQUIRED:
            raise ValueError(f"a clear set must include {sorted(REQUIRED)}")
        self.fields = fields
        self.clear_columns: tuple[str, ...] = tuple(c for c in COLUMNS if c in fields)
        self._get = itemgetter(*(_ROW_INDEX[c] if c in fields else _PAD for c in COLUMNS))
        self._get_clear = itemgetter(*(_ROW_INDEX[c] for c in self.clear_columns))

    def __call__(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """The clear column values of a row, in :data:`COLUMNS` order (``None`` if sealed)."""
        result: tuple[Any, ...] = self._get((*row, None))
        return result

    def clear(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """Only the clear values, in :attr:`clear_columns` order (the hot path at ingest)."""
        result: tuple[Any, ...] = self._get_clear(row)
        return result


class _TimeParser:
    """Canonical ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` to microseconds, caching the last second."""

    __slots__ = ("_key", "_secs")

    def __init__(self) -> None:
        self._key = ""
        self._secs = 0

    def __call__(self, text: str) -> int:
        if len(text) != 27 or text[19] != ".":
            return parse_time(text)  # an unusual year: the general parser
        head = text[:19]
        if head != self._key:
            try:
                self._secs = calendar.timegm(
                    (
                        int(text[0:4]),
                        int(text[5:7]),
                        int(text[8:10]),
                        int(text[11:13]),
                        int(text[14:16]),
                        int(text[17:19]),
                    )
                )
            except ValueError:
                return parse_time(text)
            self._key = head
        return self._secs * 1_000_000 + int(text[20:26])


_NO_GROUP: Final[Mapping[str, Any]] = {}


class DocumentProjection:
    """The clear columns an event's canonical document (parsed JSON) must have.

    ``verify`` holds the stored clear columns against this, so a clear column cannot be edited
    to hide or misdirect a search without the change being found.
    """

    __slots__ = ("_ingested", "_plan", "_time")

    def __init__(self, fields: frozenset[str]) -> None:
        self._time = _TimeParser()
        self._ingested = _TimeParser()  # its own cache: the two times alternate per event
        # (group, leaf or "", conversion) per column; None where the column is not clear.
        plan: list[tuple[str, str, str] | None] = []
        for column in COLUMNS:
            if column not in fields:
                plan.append(None)
                continue
            group, _, leaf = dotted(column).partition(".")
            kind = {"time": "time", "ingested_at": "ingested", "id": "id", "source_ip": "ip"}
            plan.append((group, leaf, kind.get(column, "")))
        self._plan = tuple(plan)

    def __call__(self, doc: Mapping[str, Any]) -> tuple[Any, ...]:
        """Values in :data:`COLUMNS` order; ``None`` outside the clear set."""
        groups: dict[str, Mapping[str, Any]] = {}
        out: list[Any] = []
        for step in self._plan:
            if step is None:
                out.append(None)
                continue
            group, leaf, kind = step
            if leaf:
                sub = groups.get(group)
                if sub is None:
                    found = doc.get(group)
                    sub = groups[group] = found if isinstance(found, dict) else _NO_GROUP
                value = sub.get(leaf)
            else:
                value = doc.get(group)
            if value is not None and kind:
                if kind == "time":
                    value = self._time(value)
                elif kind == "ingested":
                    value = self._ingested(value)
                elif kind == "id":
                    value = bytes.fromhex(value.replace("-", ""))
                else:
                    value = ip_to_bytes(value)
            out.append(value)
        return tuple(out)
