"""Rule files: what validates, and the message each mistake gets (file, rule id, field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeptrail.detect.rules import (
    RuleError,
    load_rule_set,
    load_rules_file,
    load_rules_text,
    pack_dir,
    required_pins,
)
from keeptrail.query import parse

BASE = """
id: demo-rule
title: Demo
severity: high
match: action:ssh.login outcome:failure
"""


def one(text: str):
    (rule,) = load_rules_text(text, source="site.yaml")
    return rule


def error(text: str) -> str:
    with pytest.raises(RuleError) as info:
        load_rules_text(text, source="site.yaml")
    return str(info.value)


def test_minimal_rule_is_instant_and_compiles_its_query() -> None:
    """A rule with only a match fires on every matching event."""
    rule = one(BASE)
    assert rule.kind == "instant"
    assert rule.pins == frozenset({("action", "ssh.login")})
    assert rule.tags == ()


def test_every_clause_parses() -> None:
    """Each stateful clause is recognised, with durations in microseconds."""
    rule = one(BASE + "group_by: [source.ip]\nwindow: 10m\nthreshold: 5\nsuppress: 1h\n")
    assert (rule.kind, rule.window, rule.threshold, rule.suppress) == (
        "threshold",
        600_000_000,
        5,
        3_600_000_000,
    )
    rule = one(BASE + "group_by: ip\nwindow: 30m\ndistinct: {field: user, count: 4}\n")
    assert (rule.kind, rule.distinct_field, rule.group_by) == (
        "distinct",
        "actor.name",
        ("source.ip",),
    )
    rule = one(
        BASE + "window: 5m\nsequence:\n  first: {match: outcome:failure, threshold: 3}\n"
        "  then: {match: outcome:success}\n"
    )
    assert rule.kind == "sequence"
    assert rule.first is not None
    assert rule.first.threshold == 3
    assert (
        one(BASE + "first_seen: {field: source.ip, learning: 7d}\n").learning == 7 * 86_400_000_000
    )
    assert one(BASE + "dormant: {after: 30d}\n").kind == "dormant"
    assert one(BASE + "baseline: {bucket: 1h, factor: 4}\n").baseline_factor == 4.0
    assert one(BASE + "travel: {max_speed_kmh: 800}\n").travel_speed_kmh == 800.0
    assert one(BASE + "group_by: [host]\nsilence: {after: 5m}\n").kind == "silence"


def test_schedule_days_hours_and_zone() -> None:
    """Business hours in a zone: 09:30 Paris on a Monday is inside, 21:00 is outside."""
    rule = one(BASE + "schedule: {hours: '08:00-18:00', days: mon-fri, timezone: Europe/Paris}\n")
    assert rule.schedule is not None
    monday_0930_paris = 1_789_975_800_000_000  # 2026-09-21T07:30Z
    assert not rule.schedule.fires(monday_0930_paris)
    assert rule.schedule.fires(monday_0930_paris + 12 * 3_600_000_000)  # 21:30 Paris
    assert rule.schedule.fires(monday_0930_paris - 2 * 86_400_000_000)  # Saturday


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ("severity: urgent\n", "severity", "not one of"),
        ("colour: red\n", "colour", "unknown field"),
        ("window: 10m\nthreshold: 0\n", "threshold", "at least 1"),
        ("threshold: 5\n", "window", "required with threshold"),
        ("window: soon\nthreshold: 5\n", "window", "invalid duration"),
        ("group_by: [nosuch]\n", "group_by", "unknown field 'nosuch'"),
        ("distinct: {field: user}\nwindow: 1m\n", "distinct.count", "at least 1"),
        ("dormant: {after: 1d}\nthreshold: 3\nwindow: 1m\n", "dormant", "at most one of"),
        ("silence: {after: 5m}\n", "group_by", "required with silence"),
        ("schedule: {hours: '18:00-08:00'}\n", "schedule.hours", "start must be before"),
        (
            "schedule: {hours: '08:00-18:00', timezone: Mars/Olympus}\n",
            "schedule.timezone",
            "unknown time zone",
        ),
        ("schedule: {hours: '08:00-18:00', days: funday}\n", "schedule.days", "mon..sun"),
        ("allow: [{field: user}]\n", "allow[0].values", "non-empty list"),
        ("allow: [{query: 'user:('}]\n", "allow[0].query", "invalid query"),
        ("tags: [ATTACK T1110]\n", "tags", "dotted lowercase tag"),
        ("sequence: {first: {match: x:1}}\nwindow: 1m\n", "sequence.first.match", "invalid query"),
    ],
)
def test_mistakes_name_the_file_rule_and_field(extra: str, field: str, words: str) -> None:
    """Every invalid rule names where it is and what is wrong."""
    message = error(
        BASE.replace("severity: high\n", "")
        + ("" if "severity" in extra else "severity: high\n")
        + extra
    )
    assert message.startswith("site.yaml: rule 'demo-rule': ")
    assert f": {field}: " in message
    assert words in message


def test_bad_query_shows_the_caret() -> None:
    """An invalid match query is reported with the query language's own message."""
    message = error(BASE.replace("outcome:failure", "outcome:(failure"))
    assert "match: invalid query" in message
    assert "^" in message


def test_missing_required_fields_and_bad_ids() -> None:
    """id, title, severity, match are required; ids are lowercase slugs."""
    assert "title: is required" in error("id: x\nseverity: low\nmatch: a\n")
    assert "id: use lowercase" in error(BASE.replace("demo-rule", "Demo Rule"))
    assert "a rule must be a mapping" in error("- just a string\n")
    assert "not valid YAML" in error("id: [unclosed\n")
    assert "no rules in this file" in error("# nothing\n")
    assert "put it in quotes" in error(BASE.replace("demo-rule", "off"))


def test_duplicate_ids_across_files_are_refused(tmp_path: Path) -> None:
    """A site rule may not silently replace a shipped one."""
    (tmp_path / "site.yaml").write_text(BASE.replace("demo-rule", "root-login"))
    with pytest.raises(RuleError, match=r"already defined in .*authentication\.yaml"):
        load_rule_set([tmp_path])


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    """Python object tags in a rule file are an error, never executed."""
    path = tmp_path / "evil.yaml"
    path.write_text("!!python/object/apply:os.system ['touch /tmp/kt-pwned']\n")
    with pytest.raises(RuleError, match="not valid YAML"):
        load_rules_file(path)


def test_the_shipped_pack_is_valid_and_covers_the_catalogue() -> None:
    """The pack loads, and every rule carries an ATT&CK technique tag and a description."""
    rules = load_rule_set([])
    assert len(rules) >= 25
    assert all(r.source.startswith(str(pack_dir())) for r in rules)
    for rule in rules:
        assert rule.description, rule.id
        assert any(t.startswith("attack.t") for t in rule.tags), rule.id


def test_required_pins_index_only_what_a_query_forces() -> None:
    """Pins come from exact action/category terms; an unpinned OR branch unpins the rule."""
    assert required_pins(parse("action:a.b OR action:c.d")) == frozenset(
        {("action", "a.b"), ("action", "c.d")}
    )
    assert required_pins(parse("category:database user:x")) == frozenset({("category", "database")})
    assert required_pins(parse("action:a.b OR user:x")) is None
    assert required_pins(parse("action:ssh.*")) is None
