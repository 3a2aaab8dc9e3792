"""Splitting a query into SQL over clear columns and a residual checked after decryption."""

from __future__ import annotations

import pytest
from tests.factories import make_event

from keeptrail.event import Event, canonical_bytes
from keeptrail.protect.projection import DEFAULT_CLEAR
from keeptrail.query.parse import parse
from keeptrail.query.predicate import compile_predicate
from keeptrail.query.split import Needle, required_needles, split_query
from keeptrail.query.tree import And


def test_clear_conjuncts_go_to_sql_and_sealed_ones_to_the_residual() -> None:
    """A top-level AND is split conjunct by conjunct."""
    split = split_query(parse('user:root AND details.command:*passwd* AND "fail"'), DEFAULT_CLEAR)
    assert split.sql == parse("user:root")
    assert split.residual == And((parse("details.command:*passwd*"), parse('"fail"')))


def test_or_mixing_a_sealed_field_goes_wholly_to_the_residual() -> None:
    """An OR (or NOT) touching a sealed field cannot be split without changing its meaning."""
    query = parse("user:root OR raw:*x*")
    assert split_query(query, DEFAULT_CLEAR) == (None, query)
    negated = parse("NOT (user:root AND resource:/etc/shadow)")
    assert split_query(negated, DEFAULT_CLEAR) == (None, negated)


def test_clear_only_queries_have_no_residual() -> None:
    """When every field is clear the whole tree is SQL, including OR and NOT."""
    query = parse("(user:root OR ip:10.0.0.0/8) AND NOT outcome:success")
    assert split_query(query, DEFAULT_CLEAR) == (query, None)
    assert split_query(None, DEFAULT_CLEAR) == (None, None)


def test_a_field_sealed_by_configuration_moves_to_the_residual() -> None:
    """The split follows the clear set: actor.name is residual when it is not clear."""
    clear = DEFAULT_CLEAR - {"actor_name"}
    split = split_query(parse("user:root AND action:ssh.login"), clear)
    assert split.sql == parse("action:ssh.login")
    assert split.residual == parse("user:root")


EVENTS = [
    make_event(actor_name=n, raw=r, details=d, target_resource=t, outcome=o)
    for n, r, d, t, o in [
        ("root", "Failed password", {"command": "passwd"}, "/etc/shadow", "failure"),
        ("root", "ok", {}, None, "success"),
        ("bob", "Failed again", {"command": "ls"}, "/tmp", "failure"),
        (None, "nothing", {"command": "passwd"}, "/etc/shadow", "unknown"),
    ]
]


@pytest.mark.parametrize(
    "query",
    [
        'user:root AND details.command:passwd AND "failed"',
        "user:root OR resource:/etc/shadow",
        "NOT (user:root AND resource:/etc/shadow)",
        "outcome:failure AND NOT details.command:ls",
        "(user:bob OR user:root) AND (raw:*Failed* OR outcome:success)",
    ],
)
def test_sql_part_and_residual_together_mean_the_query(query: str) -> None:
    """Matching both halves equals matching the whole, event by event."""
    tree = parse(query)
    split = split_query(tree, DEFAULT_CLEAR)
    whole = compile_predicate(tree)

    def halves(event: Event) -> bool:
        return all(compile_predicate(part)(event) for part in split if part is not None)

    assert [whole(e) for e in EVENTS] == [halves(e) for e in EVENTS]
    assert any(whole(e) for e in EVENTS)


def test_needles_are_what_every_match_must_contain() -> None:
    """Positive free text and text conjuncts give needles; escapable characters and NOT do not."""
    residual = split_query(
        parse('"Failed PASS" AND details.command:*shadow* AND NOT raw:*x* AND "a\\"b"'),
        DEFAULT_CLEAR,
    ).residual
    assert required_needles(residual) == (
        Needle(b"failed pass", fold_case=True),
        Needle(b"shadow", fold_case=False),
    )
    assert required_needles(None) == ()


def test_needles_never_exclude_a_matching_event() -> None:
    """For each query and event: a match always contains its needles in its canonical bytes."""
    events = [
        *EVENTS,
        make_event(raw='say "hi" to Ünïcode/PATH', details={"command": "/bin/ü x", "n": 3}),
    ]
    for query in ['"unïcode/path"', "details.command:/bin/ü*", "details.n:3", '"FAILED"']:
        tree = parse(query)
        matches = compile_predicate(tree)
        needles = required_needles(split_query(tree, DEFAULT_CLEAR).residual)
        assert needles
        for event in events:
            data = canonical_bytes(event)
            if matches(event):
                assert all(n.data in (data.lower() if n.fold_case else data) for n in needles), (
                    query
                )
