"""Retention policies: configuration, validation, classification and compliance warnings."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from tests.factories import make_event

from keeptrail.errors import UserError
from keeptrail.protect.retention import (
    DEFAULT_CLASS,
    RetentionPolicies,
    load_policies,
    parse_retention_table,
)

CONFIG = """
[retention]
default_days = 500

[[retention.policy]]
name = "database"
days = 90
category = ["database"]

[[retention.policy]]
name = "pg_admin"
days = 730
source = "postgres"
action = ["db.grant", "db.alter*"]

[[retention.policy]]
name = "k8s_reads"
days = 30
action = ["k8s.get", "k8s.list", "k8s.watch"]
"""


def policies_from(text: str) -> RetentionPolicies:
    return RetentionPolicies.from_config(tomllib.loads(text))


def test_first_matching_policy_wins_and_the_rest_is_default() -> None:
    """Classes follow the order of the file; unmatched events are in 'default'."""
    p = policies_from(CONFIG)
    assert p.classify(make_event(category="database", action="db.grant")) == "database"
    pg = make_event(category="config", action="db.alter_role", collector_parser="postgres")
    assert p.classify(pg) == "pg_admin"
    assert p.classify(make_event(category="kubernetes", action="k8s.list")) == "k8s_reads"
    assert p.classify(make_event(category="kubernetes", action="k8s.create")) == DEFAULT_CLASS
    assert p.classify(make_event()) == DEFAULT_CLASS


def test_all_criteria_of_a_policy_must_match() -> None:
    """A policy with source and action needs both: the action alone is not enough."""
    p = policies_from(CONFIG)
    assert p.classify(make_event(category="config", action="db.grant")) == DEFAULT_CLASS
    by_source = make_event(category="config", action="db.grant", collector_source="postgres")
    assert p.classify(by_source) == "pg_admin"


def test_action_patterns_are_anchored_globs() -> None:
    """'db.alter*' matches db.alter_role, not xdb.alter nor db.altar."""
    p = policies_from(CONFIG)
    for action, expected in [
        ("db.alter_role", "pg_admin"),
        ("db.alter", "pg_admin"),
        ("xdb.alter", DEFAULT_CLASS),
        ("db.altar", DEFAULT_CLASS),
        ("db.grant.extra", DEFAULT_CLASS),
    ]:
        event = make_event(category="config", action=action, collector_parser="postgres")
        assert p.classify(event) == expected, action


def test_classification_is_cached_and_bounded() -> None:
    """Repeated tuples are answered from the cache; a flood of new actions cannot grow it."""
    p = policies_from(CONFIG)
    for i in range(10_000):
        p.classify(make_event(category="api", action=f"app.action_{i}"))
    assert len(p._cache) <= 4096
    assert p.classify(make_event(category="database", action="db.select")) == "database"


def test_days_for_uses_the_current_policy_and_falls_back_to_default() -> None:
    """A class removed from the configuration is kept default_days; 'default' too."""
    p = policies_from(CONFIG)
    assert p.days_for("database") == ("database", 90)
    assert p.days_for("authentication") == (DEFAULT_CLASS, 500)
    assert p.days_for(DEFAULT_CLASS) == (DEFAULT_CLASS, 500)


def test_shipped_defaults_without_a_retention_table() -> None:
    """No [retention]: authentication 400 days, database 90, unparsed 30, the rest 400."""
    p = RetentionPolicies.from_config({})
    assert p.shipped
    assert p.classify(make_event()) == "authentication"
    assert p.classify(make_event(category="session", action="ssh.disconnect")) == ("authentication")
    assert p.days_for("authentication") == ("authentication", 400)
    assert p.classify(make_event(category="database", action="db.select")) == "database"
    assert p.days_for("database") == ("database", 90)
    assert p.classify(make_event(category="unparsed", action="unparsed")) == "unparsed"
    assert p.days_for("unparsed") == ("unparsed", 30)
    assert p.classify(make_event(category="privilege", action="sudo.command")) == DEFAULT_CLASS
    assert p.default_days == 400


def test_a_retention_table_replaces_the_shipped_policies() -> None:
    """Writing [retention] at all means the file is the whole configuration."""
    p = policies_from("[retention]\ndefault_days = 730\n")
    assert not p.shipped
    assert p.policies == ()
    assert p.classify(make_event(category="unparsed", action="unparsed")) == DEFAULT_CLASS


def test_pci_warning_for_short_classes() -> None:
    """Classes under 365 days are flagged with PCI DSS 10.5.1; long ones are not."""
    p = policies_from(CONFIG)
    texts = [str(w) for w in p.warnings()]
    assert len(texts) == 2
    assert any("'database'" in t and "90 days" in t and "10.5.1" in t for t in texts)
    assert any("'k8s_reads'" in t for t in texts)
    assert not any("pg_admin" in t for t in texts)


def test_compliance_rules_are_chosen_in_the_configuration() -> None:
    """compliance = [] silences warnings; omb_m_21_31 flags anything under 30 months."""
    quiet = policies_from(
        CONFIG.replace("default_days = 500", "default_days = 500\ncompliance = []")
    )
    assert quiet.warnings() == []
    federal = policies_from(
        CONFIG.replace("default_days = 500", 'default_days = 500\ncompliance = ["omb_m_21_31"]')
    )
    flagged = {w.policy for w in federal.warnings()}
    assert flagged == {"database", "pg_admin", "k8s_reads", DEFAULT_CLASS}


def test_shipped_defaults_warn_about_database_and_unparsed() -> None:
    """The shipped 90- and 30-day classes are below PCI's 12 months, and say so."""
    flagged = {w.policy for w in RetentionPolicies.from_config({}).warnings()}
    assert flagged == {"database", "unparsed"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"default_days": 0}, "retention.default_days must be between 1 and 36500, got 0"),
        ({"default_days": "400"}, "must be a whole number of days"),
        ({"default_days": True}, "must be a whole number of days"),
        ({"keep": 3}, "[retention]: unknown key 'keep'"),
        ({"compliance": ["sox"]}, "unknown rule 'sox'"),
        ({"policy": {"name": "x"}}, "array of tables"),
        ({"policy": [{"name": "Database", "days": 9, "category": "database"}]}, "lowercase"),
        ({"policy": [{"name": "a" * 33, "days": 9, "category": "database"}]}, "1-32"),
        ({"policy": [{"name": "1db", "days": 9, "category": "database"}]}, "starting"),
        ({"policy": [{"name": "default", "days": 9, "category": "database"}]}, "reserved"),
        ({"policy": [{"name": "db", "days": -1, "category": "database"}]}, "between 1 and"),
        ({"policy": [{"name": "db", "category": "database"}]}, "days is required"),
        ({"policy": [{"name": "db", "days": 9}]}, "matches every event"),
        ({"policy": [{"name": "db", "days": 9, "category": "databse"}]}, "unknown category"),
        ({"policy": [{"name": "db", "days": 9, "action": "db select"}]}, "invalid action"),
        ({"policy": [{"name": "db", "days": 9, "source": 3}]}, "list of strings"),
        ({"policy": [{"name": "db", "days": 9, "category": "database", "day": 3}]}, "'day'"),
        (
            {
                "policy": [
                    {"name": "db", "days": 9, "category": "database"},
                    {"name": "db", "days": 19, "category": "file"},
                ]
            },
            "'db' is defined twice",
        ),
    ],
)
def test_invalid_configuration_is_a_clear_error(table: dict[str, object], message: str) -> None:
    """Every mistake names the key and the value, as a UserError (one line, no traceback)."""
    with pytest.raises(UserError) as info:
        parse_retention_table(table)
    assert message in str(info.value)


def test_load_policies_reads_the_data_directory_file(tmp_path: Path) -> None:
    """load_policies finds <data-dir>/keeptrail.toml and reports its syntax errors."""
    (tmp_path / "keeptrail.toml").write_text(CONFIG)
    assert load_policies(tmp_path).days_for("k8s_reads") == ("k8s_reads", 30)
    (tmp_path / "keeptrail.toml").write_text("[retention\n")
    with pytest.raises(UserError, match=r"keeptrail\.toml"):
        load_policies(tmp_path)


def test_class_names_are_the_store_partition_class_names() -> None:
    """The names a policy may use are exactly those the store accepts in partition names."""
    from keeptrail.protect import retention  # noqa: PLC0415
    from keeptrail.store import partitioning  # noqa: PLC0415

    assert retention.CLASS_NAME.pattern == partitioning.CLASS_PATTERN.pattern
    assert retention.DEFAULT_CLASS == partitioning.DEFAULT_CLASS
