"""Which events of a partition the legal holds protect: the part both backends share.

A purge keeps every event under an active hold. Which holds can apply to a partition is
:func:`keeptrail.protect.holds.holds_overlapping` on its time span; for each of those, the
hold's query is split (:func:`keeptrail.query.split.split_query`) into SQL over the partition's
clear columns plus the hold's ``[since, until)``, and a residual run on each opened candidate.
A backend supplies only the two small fetches that run that SQL on its partition table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from keeptrail.errors import UserError
from keeptrail.event import Event
from keeptrail.protect.holds import holds_overlapping
from keeptrail.query.compile_sql import Dialect, compile_filters
from keeptrail.query.errors import QueryError
from keeptrail.query.parse import parse
from keeptrail.query.predicate import Predicate, compile_predicate
from keeptrail.query.split import split_query
from keeptrail.store.contract import Hold
from keeptrail.store.sealed import PartitionMeta

__all__ = ["EventFetch", "HoldFilter", "LeafFetch", "held_leaves", "hold_filter"]

LeafFetch = Callable[[PartitionMeta, str, list[Any]], Iterable[int]]
"""``(meta, where, params)``: the leaf indexes of the partition's rows that ``where`` selects."""

EventFetch = Callable[[PartitionMeta, str, list[Any]], Iterable[tuple[int, Event]]]
"""``(meta, where, params)``: those rows as ``(leaf index, opened event)``."""


class HoldFilter(NamedTuple):
    """One hold in one partition: a ``WHERE`` on clear columns, then a residual (or none)."""

    where: str  # "" or " WHERE ..." with the dialect's placeholders
    params: list[Any]
    residual: Predicate | None  # None: the WHERE alone decides


def hold_filter(hold: Hold, clear: frozenset[str], dialect: Dialect) -> HoldFilter:
    """The SQL and residual that select the events ``hold`` protects among clear ``clear``."""
    try:
        tree = parse(hold.query) if hold.query else None
    except QueryError as exc:
        raise UserError(f"hold {hold.id} has an invalid query: {exc}") from None
    sql_part, residual = split_query(tree, clear)
    clauses, params = compile_filters(sql_part, hold.since, hold.until, dialect)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    residual_test = None if residual is None else compile_predicate(residual)
    return HoldFilter(where, list(params), residual_test)


def held_leaves(
    meta: PartitionMeta,
    holds: Sequence[Hold],
    dialect: Dialect,
    *,
    leaves: LeafFetch,
    events: EventFetch,
) -> set[int]:
    """Leaf indexes of the partition's events under any active hold among ``holds``."""
    held: set[int] = set()
    for hold in holds_overlapping(holds, meta.first_time, meta.last_time):
        found = hold_filter(hold, meta.clear, dialect)
        if found.residual is None:
            held.update(leaves(meta, found.where, found.params))
        else:
            matches = found.residual
            candidates = events(meta, found.where, found.params)
            held.update(leaf for leaf, event in candidates if matches(event))
    return held
