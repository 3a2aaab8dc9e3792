"""A query tree to a fast in-memory test over :class:`keeptrail.event.Event`.

The rules engine calls the result on every ingested event, so all decisions (which
attribute, which comparison, pattern pieces, byte bounds) are made once, here, and the
returned closures only fetch an attribute and compare. Semantics mirror
:mod:`keeptrail.query.compile_sql` exactly; the agreement tests hold the two together.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from operator import attrgetter
from typing import Final

from keeptrail.event import DetailValue, Event
from keeptrail.netaddr import try_ip_to_bytes
from keeptrail.query.fields import Field, Kind
from keeptrail.query.patterns import ascii_lower, glob_match, is_exact, unanchored
from keeptrail.query.tree import (
    And,
    Exists,
    FreeText,
    IdEquals,
    IntRange,
    IpRange,
    MatchAll,
    Node,
    Not,
    OneOf,
    Or,
    TextMatch,
)

Predicate = Callable[[Event], bool]
_Getter = Callable[[Event], object]


def compile_predicate(tree: Node) -> Predicate:
    """A function answering "does this event match?" with the same answers as the SQL."""
    if isinstance(tree, And):
        return _all(tuple(compile_predicate(child) for child in tree.children))
    if isinstance(tree, Or):
        return _any(tuple(compile_predicate(child) for child in tree.children))
    if isinstance(tree, Not):
        inner = compile_predicate(tree.child)
        return lambda event: not inner(event)
    if isinstance(tree, MatchAll):
        return lambda event: True
    if isinstance(tree, FreeText):
        return _free_text(tree.chunks)
    if isinstance(tree, Exists | TextMatch) and tree.field.key is not None:
        return _detail(tree, tree.field.key)
    return _leaf(tree, tree.field)


def _all(preds: tuple[Predicate, ...]) -> Predicate:
    if len(preds) == 2:
        first, second = preds
        return lambda event: first(event) and second(event)

    def every(event: Event) -> bool:
        return all(pred(event) for pred in preds)

    return every


def _any(preds: tuple[Predicate, ...]) -> Predicate:
    if len(preds) == 2:
        first, second = preds
        return lambda event: first(event) or second(event)

    def some(event: Event) -> bool:
        return any(pred(event) for pred in preds)

    return some


def _leaf(node: Node, field: Field) -> Predicate:
    """A test on one attribute; ``None`` (absent) fails every positive test."""
    get: _Getter = attrgetter(field.attr)
    if isinstance(node, Exists):
        if field.kind is Kind.ID:  # an event without an id carries "" (stored as NULL)
            return lambda event: bool(get(event))
        return lambda event: get(event) is not None
    if isinstance(node, TextMatch):
        return _text(get, node.chunks)
    if isinstance(node, OneOf):
        allowed = frozenset(node.values)
        return lambda event: get(event) in allowed
    if isinstance(node, IntRange):
        return _int_range(get, node.low, node.high)
    if isinstance(node, IpRange):
        low, high = node.low, node.high

        def in_range(event: Event) -> bool:
            value = get(event)
            if not isinstance(value, str):
                return False
            packed = try_ip_to_bytes(value)
            return packed is not None and low <= packed <= high

        return in_range
    if isinstance(node, IdEquals):
        wanted = node.uuid
        return lambda event: _canonical_uuid(get(event)) == wanted
    raise TypeError(f"not a leaf: {node!r}")


def _text(get: _Getter, chunks: tuple[str, ...]) -> Predicate:
    if is_exact(chunks):
        wanted = chunks[0]
        return lambda event: get(event) == wanted

    def matches(event: Event) -> bool:
        value = get(event)
        return isinstance(value, str) and glob_match(chunks, value)

    return matches


def _int_range(get: _Getter, low: int | None, high: int | None) -> Predicate:
    lo = low if low is not None else -(2**63)
    hi = high if high is not None else 2**63 - 1

    def within(event: Event) -> bool:
        value = get(event)
        return isinstance(value, int) and lo <= value <= hi

    return within


def _canonical_uuid(value: object) -> str | None:
    """The id in canonical form (ids are canonical already; other spellings are rare)."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 36 and value == value.lower():
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _free_text(chunks: tuple[str, ...]) -> Predicate:
    """ASCII-case-insensitive substring or ``*`` pattern anywhere in ``raw``."""
    if is_exact(chunks):
        needle = chunks[0]
        return lambda event: needle in ascii_lower(event.raw)
    pattern = unanchored(chunks)
    return lambda event: glob_match(pattern, ascii_lower(event.raw))


_EMPTY: Final[tuple[str, ...]] = ()
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


def detail_texts(value: DetailValue | object) -> tuple[str, ...]:
    """The text forms a details value is compared by: each list item, or the scalar.

    Booleans read ``true``/``false`` and integers in decimal, as JSON spells them; nulls,
    floats and nested structures have no text form (SQLite and PostgreSQL agree on none).
    """
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            out.extend(_scalar_text(item))
        return tuple(out)
    return _scalar_text(value)


def _scalar_text(value: object) -> tuple[str, ...]:
    if isinstance(value, bool):
        return ("true",) if value else ("false",)
    if isinstance(value, int):
        return (str(value),) if _INT64_MIN <= value <= _INT64_MAX else _EMPTY
    if isinstance(value, str):
        return (value,)
    return _EMPTY


def _detail(node: Exists | TextMatch, key: str) -> Predicate:
    """A details key: present (not null), or any of its text forms matching."""
    if isinstance(node, Exists):
        return lambda event: event.details.get(key) is not None
    chunks = node.chunks
    if is_exact(chunks):
        wanted = chunks[0]
        return lambda event: wanted in detail_texts(event.details.get(key))
    return lambda event: any(glob_match(chunks, t) for t in detail_texts(event.details.get(key)))
