"""The hold matching both stores share: which holds a partition consults, and what they ask."""

from __future__ import annotations

from typing import Any

import pytest
from tests.factories import make_event

from keeptrail.errors import UserError
from keeptrail.event import Event
from keeptrail.protect.projection import DEFAULT_CLEAR
from keeptrail.query.compile_sql import Dialect
from keeptrail.store.contract import Hold
from keeptrail.store.hold_match import held_leaves, hold_filter
from keeptrail.store.sealed import PartitionMeta

DAY = 86_400_000_000
T0 = 1_700_000_000_000_000 // DAY * DAY


def meta(first: int | None = T0, last: int | None = T0 + DAY - 1) -> PartitionMeta:
    return PartitionMeta(
        "p_test", T0 // DAY, "default", True, 3, first, last, 0, 2, "live", T0, None, None,
        DEFAULT_CLEAR,
    )  # fmt: skip


def hold(hid: str, query: str | None = None, **kw: Any) -> Hold:
    return Hold(
        id=hid, query=query, since=kw.get("since"), until=kw.get("until"), reason="case",
        created_by="legal", created_at=T0, released_at=kw.get("released_at"),
    )  # fmt: skip


class Fetches:
    """Stand-in partition of three events; records the SQL each hold asks for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, list[Any]]] = []
        self.rows = [
            (0, make_event(time=T0 + 1, raw="sshd: Failed password for root")),
            (
                1,
                make_event(
                    time=T0 + 2, actor_name="alice", raw="sshd: Accepted publickey for alice"
                ),
            ),
            (2, make_event(time=T0 + 3, raw="sudo: root : COMMAND=/bin/ls")),
        ]

    def leaves(self, _meta: PartitionMeta, where: str, params: list[Any]) -> list[int]:
        self.asked.append(("leaves", where, params))
        return [0, 2]

    def events(
        self, _meta: PartitionMeta, where: str, params: list[Any]
    ) -> list[tuple[int, Event]]:
        self.asked.append(("events", where, params))
        return self.rows


def test_only_active_holds_overlapping_the_partition_are_consulted() -> None:
    """Released holds and holds whose range misses the partition's times are never queried."""
    f = Fetches()
    holds = [
        hold("before", until=T0),  # ends exactly where the partition starts: [since, until)
        hold("after", since=T0 + DAY),  # starts after its last event
        hold("released", released_at=T0 + 5),
        hold("inside", since=T0, until=T0 + DAY),
    ]
    held = held_leaves(meta(), holds, Dialect.SQLITE, leaves=f.leaves, events=f.events)
    assert held == {0, 2}
    assert f.asked == [("leaves", " WHERE time >= ? AND time < ?", [T0, T0 + DAY])]


def test_an_empty_partition_consults_no_hold() -> None:
    """A partition with unknown times (no events) asks nothing and holds nothing."""
    f = Fetches()
    held = held_leaves(
        meta(None, None), [hold("all")], Dialect.SQLITE, leaves=f.leaves, events=f.events
    )
    assert held == set()
    assert f.asked == []


def test_a_hold_on_sealed_text_filters_the_opened_events() -> None:
    """Free text is a residual: candidates are opened and only the matching leaves are held."""
    f = Fetches()
    held = held_leaves(
        meta(), [hold("h", "root")], Dialect.POSTGRES, leaves=f.leaves, events=f.events
    )
    assert held == {0, 2}
    assert f.asked == [("events", "", [])]


def test_hold_filter_puts_clear_fields_in_sql_with_the_dialects_placeholders() -> None:
    """A clear-column query and the hold's range become one WHERE; nothing is left to open."""
    h = hold("h", "actor.name:root", since=T0, until=T0 + 10)
    lite = hold_filter(h, DEFAULT_CLEAR, Dialect.SQLITE)
    pg = hold_filter(h, DEFAULT_CLEAR, Dialect.POSTGRES)
    assert lite.residual is None
    assert pg.residual is None
    assert "?" in lite.where
    assert "%s" not in lite.where
    assert "%s" in pg.where
    assert lite.params == pg.params
    assert lite.params[-2:] == [T0, T0 + 10]


def test_a_hold_with_an_invalid_query_is_a_user_error_naming_it() -> None:
    """A stored hold whose query no longer parses stops the purge with its id in the message."""
    with pytest.raises(UserError, match="hold bad-1 has an invalid query"):
        hold_filter(hold("bad-1", "actor.name:("), DEFAULT_CLEAR, Dialect.SQLITE)
