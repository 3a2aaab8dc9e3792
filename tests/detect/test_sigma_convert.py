"""Sigma → Keeptrail conversion: real SigmaHQ rules, every refusal with its reason, no injection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from keeptrail.cli.main import app
from keeptrail.detect.rules import load_rules_file, parse_rule
from keeptrail.detect.sigma import convert_path, dump_rules
from keeptrail.query.parse import parse
from keeptrail.query.tree import And, FreeText, TextMatch

SIGMA = Path(__file__).parent.parent / "data" / "sigma"


def _write(tmp_path: Path, *docs: dict[str, Any]) -> Path:
    path = tmp_path / "rule.yml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def _rule(**detection: Any) -> dict[str, Any]:
    return {
        "title": "t",
        "id": "11111111-2222-3333-4444-555555555555",
        "logsource": {"product": "linux", "service": "sshd"},
        "detection": detection,
        "level": "high",
    }


def test_sigmahq_rules_convert_or_are_refused_with_a_reason() -> None:
    report = convert_path(SIGMA)
    converted = {c.rule_id for c in report.converted}
    assert converted == {
        "sigma-f55634e2-baa3-489b-bbce-0c9818cf62ee",  # correlation event_count
        "sigma-fc947f8e-ea81-4b14-9a7b-13f888f94e18",  # Sigma 1.x count() by
        "sigma-e76b413a-83d0-4b94-8e4c-85db4a5b8bdc",
        "sigma-0ac15ec3-d24f-4246-aa2a-3077bb1cf90e",
        "sigma-7fcc54cb-f27d-4684-84b7-436af096f858",
        "sigma-977ef627-4539-4875-adf4-ed8f780c4922",
        "sigma-759d0d51-bc99-4b5e-9add-8f5b2c8e7512",
        "sigma-7745c2ea-24a5-4290-b680-04359cb84b35",
        "sigma-953d460b-f810-420a-97a2-cfca4c98e602",
        "sigma-a1b0ca4e-7835-413e-8471-3ff2b8a66be6",
        "sigma-eeb3e9e1-b685-44e4-9232-6bb701f925b5",
        "sigma-0f79c4d2-4e1f-4683-9c36-b5469a665e06",  # process_creation
    }
    reasons = {Path(f.origin.split(":")[0]).name: f.reason for f in report.failed}
    assert reasons == {
        "lnx_auditd_user_discovery.yml": "unmapped field 'a0'",
        "lnx_clamav_relevant_message.yml": "unsupported logsource product=linux service=clamav",
    }
    # the base rule of the correlation is used by it, not written alone (Sigma: generate false)
    assert [o.rsplit(": ", 1)[1] for o in report.skipped_referenced] == [
        "f698fb2a-f888-4b4f-b309-fcc56d7096b5"
    ]
    for item in report.converted:  # every written rule loads in the engine
        parse_rule(yaml.safe_load(dump_rules([item.document])), source="test")


def test_correlation_and_aggregation_become_stateful_clauses() -> None:
    docs = {c.rule_id: c.document for c in convert_path(SIGMA).converted}
    brute = docs["sigma-f55634e2-baa3-489b-bbce-0c9818cf62ee"]
    assert brute["threshold"] == 50
    assert brute["window"] == "15m"
    assert brute["group_by"] == ["source.ip", "target.host"]
    assert brute["severity"] == "medium"
    assert "attack.t1110.001" in brute["tags"]
    spray = docs["sigma-fc947f8e-ea81-4b14-9a7b-13f888f94e18"]
    # count(pam_user) by pam_rhost > 3 within 24h: 4 distinct users per source
    assert spray["distinct"] == {"field": "actor.name", "count": 4}
    assert spray["group_by"] == ["source.ip"]
    assert spray["window"] == "24h"


def test_field_mapping_per_log_source() -> None:
    docs = {c.rule_id: c.document["match"] for c in convert_path(SIGMA).converted}
    assert docs["sigma-977ef627-4539-4875-adf4-ed8f780c4922"] == (
        "collector.parser:auditd AND (details.record_types:PATH AND (target.resource:/etc/audit/* "
        "OR target.resource:/etc/libaudit.conf OR target.resource:/etc/audisp/*))"
    )
    assert docs["sigma-a1b0ca4e-7835-413e-8471-3ff2b8a66be6"] == (
        "category:kubernetes AND (details.verb:create AND details.resource:pods AND "
        "details.subresource:exec)"
    )
    assert docs["sigma-7fcc54cb-f27d-4684-84b7-436af096f858"] == (
        "(collector.parser:sudo OR target.system:sudo) AND "
        "(actor.effective_user:#-* OR actor.effective_user:#*4294967295)"
    )


@pytest.mark.parametrize(
    ("detection", "reason"),
    [
        ({"sel": {"pam_user|re": "^ro+t$"}, "condition": "sel"}, "regular expressions"),
        ({"sel": {"pam_user": "ro?t"}, "condition": "sel"}, "single-character wildcard"),
        ({"sel": {"a0": "whoami"}, "condition": "sel"}, "unmapped field 'a0'"),
        ({"sel": {"pam_user|fieldref": "pam_ruser"}, "condition": "sel"}, "field references"),
        ({"sel": {"pam_user|expand": "%admins%"}, "condition": "sel"}, "placeholder"),
        ({"sel": {"pam_message|cidr": "10.0.0.0/8"}, "condition": "sel"}, "cidr"),
        (
            {
                "sel": {"pam_user": "x"},
                "condition": "sel | count() by pam_rhost < 3",
                "timeframe": "1h",
            },
            "only > and >=",
        ),
        ({"sel": {"pam_user": "x"}, "condition": "sel | count() > 3"}, "without timeframe"),
    ],
)
def test_unsupported_constructs_are_reported(
    tmp_path: Path, detection: dict[str, Any], reason: str
) -> None:
    report = convert_path(_write(tmp_path, _rule(**detection)))
    assert not report.converted
    assert len(report.failed) == 1
    assert reason in report.failed[0].reason


def _leaves(node: object) -> list[object]:
    children = getattr(node, "children", None)
    if children is None:
        return [node]
    return [leaf for child in children for leaf in _leaves(child)]


def test_values_cannot_change_the_query_structure(tmp_path: Path) -> None:
    hostile = 'x" OR raw:y AND (y'
    report = convert_path(
        _write(
            tmp_path,
            _rule(
                keywords=[hostile, "AND", "-z"],
                sel={"pam_user|startswith": 'a b"c\\'},
                condition="keywords and sel",
            ),
        )
    )
    (item,) = report.converted
    tree = parse(item.document["match"])
    assert isinstance(tree, And)
    leaves = _leaves(tree)
    free = {leaf.chunks for leaf in leaves if isinstance(leaf, FreeText)}
    assert free == {(hostile.lower(),), ("and",), ("-z",)}
    users = [
        leaf for leaf in leaves if isinstance(leaf, TextMatch) and leaf.field.name == "actor.name"
    ]
    assert [u.chunks for u in users] == [('a b"c\\', "")]


def test_temporal_correlations(tmp_path: Path) -> None:
    a = {
        **_rule(sel={"pam_user": "a"}, condition="sel"),
        "id": "aaaaaaaa-0000-0000-0000-000000000001",
        "name": "a",
    }
    b = {
        **_rule(sel={"pam_user": "b"}, condition="sel"),
        "id": "aaaaaaaa-0000-0000-0000-000000000002",
        "name": "b",
    }
    temporal: dict[str, Any] = {
        "title": "a and b",
        "id": "aaaaaaaa-0000-0000-0000-000000000003",
        "level": "high",
        "correlation": {
            "type": "temporal",
            "rules": ["a", "b"],
            "group-by": ["pam_rhost"],
            "timespan": "5m",
        },
    }
    ordered = {
        **temporal,
        "id": "aaaaaaaa-0000-0000-0000-000000000004",
        "correlation": {**temporal["correlation"], "type": "temporal_ordered"},
    }
    value_count = {
        **temporal,
        "id": "aaaaaaaa-0000-0000-0000-000000000005",
        "correlation": {
            "type": "value_count",
            "rules": ["a"],
            "group-by": ["pam_rhost"],
            "timespan": "1h",
            "condition": {"gt": 9, "field": "pam_user"},
        },
    }
    report = convert_path(_write(tmp_path, a, b, temporal, ordered, value_count))
    assert not report.failed
    docs = {c.rule_id: c.document for c in report.converted}
    either = [
        d for k, d in docs.items() if k.startswith("sigma-aaaaaaaa-0000-0000-0000-000000000003")
    ]
    assert len(either) == 2  # unordered: A then B, and B then A
    firsts = {d["sequence"]["first"]["match"] for d in either}
    assert len(firsts) == 2
    seq = docs["sigma-aaaaaaaa-0000-0000-0000-000000000004"]["sequence"]
    assert seq["first"]["match"].endswith("(actor.name:a)")
    assert seq["then"]["match"].endswith("(actor.name:b)")
    distinct = docs["sigma-aaaaaaaa-0000-0000-0000-000000000005"]
    assert distinct["distinct"] == {"field": "actor.name", "count": 10}
    assert distinct["group_by"] == ["source.ip"]


def test_missing_reference_is_reported(tmp_path: Path) -> None:
    corr = {
        "title": "c",
        "id": "bbbbbbbb-0000-0000-0000-000000000001",
        "correlation": {
            "type": "event_count",
            "rules": ["nope"],
            "timespan": "5m",
            "condition": {"gte": 3},
        },
    }
    report = convert_path(_write(tmp_path, corr))
    assert not report.converted
    assert "not in the imported files" in report.failed[0].reason


def test_cli_writes_rules_and_exits_1_when_some_fail(tmp_path: Path) -> None:
    out = tmp_path / "rules"
    result = CliRunner().invoke(app, ["rules", "import-sigma", str(SIGMA), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output
    assert "unmapped field 'a0'" in result.output
    written = sorted(out.glob("*.yaml"))
    assert len(written) == 12
    assert all(load_rules_file(p) for p in written)
    ok = CliRunner().invoke(
        app, ["rules", "import-sigma", str(SIGMA / "web" / "web_source_code_enumeration.yml")]
    )
    assert ok.exit_code == 0
    assert "match: action:http.request AND (.git/)" in ok.output
    missing = CliRunner().invoke(app, ["rules", "import-sigma", str(tmp_path / "nope")])
    assert missing.exit_code != 0


def test_not_yaml_is_reported_per_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("title: [unclosed\n")
    (tmp_path / "list.yml").write_text("- just\n- a list\n")
    (tmp_path / "good.yml").write_text(
        yaml.safe_dump(_rule(keywords=["Corrupted MAC on input"], condition="keywords"))
    )
    report = convert_path(tmp_path)
    assert len(report.converted) == 1
    reasons = sorted(f.reason for f in report.failed)
    assert reasons[0].startswith("cannot read YAML")
    assert reasons[1] == "not a Sigma rule file (a YAML document is not a mapping)"


def test_modifiers_become_our_operators(tmp_path: Path) -> None:
    rule = _rule(
        a={"pam_user|exists": True},
        b={"pam_ruser": None},
        c={"pam_rhost|cidr": ["10.0.0.0/8", "2001:db8::/32"]},
        d={"COMMAND|contains|all": ["chmod", "+s"]},
        e={"pam_user|cased": "Admin"},
        f={"TTY|endswith": "pts/0"},
        condition="all of them",
    )
    rule["logsource"] = {"product": "linux", "service": "sudo"}
    (item,) = convert_path(_write(tmp_path, rule)).converted
    assert item.document["match"] == (
        "(collector.parser:sudo OR target.system:sudo) AND (actor.name:* AND NOT details.ruser:* "
        "AND (source.ip:10.0.0.0/8 OR source.ip:2001:db8::/32) AND details.command:*chmod* AND "
        "details.command:*+s* AND actor.name:Admin AND details.tty:*pts/0)"
    )
    numeric = {**_rule(sel={"sc-status|gte": 500, "cs-method": "POST"}, condition="sel")}
    numeric["logsource"] = {"category": "webserver"}
    report = convert_path(_write(tmp_path, numeric))
    # details fields compare as text: a >= on one cannot be expressed, and is reported
    assert not report.converted
    assert "does not parse" in report.failed[0].reason


def test_sigma_filters_apply_once_and_are_reported(tmp_path: Path) -> None:
    base = {**_rule(sel={"pam_user": "root"}, condition="sel"), "name": "base"}
    sigma_filter: dict[str, Any] = {
        "title": "not the bastion",
        "id": "11111111-2222-3333-4444-666666666666",
        "logsource": {"product": "linux", "service": "sshd"},
        "filter": {
            "rules": ["base"],
            "selection": {"pam_rhost": "10.0.0.1"},
            "condition": "not selection",
        },
    }
    report = convert_path(_write(tmp_path, base, sigma_filter))
    (item,) = report.converted
    assert item.document["match"] == (
        "(collector.parser:sshd OR target.system:sshd) AND (actor.name:root AND NOT "
        "source.ip:10.0.0.1)"
    )
    assert [o.rsplit(": ", 1)[1] for o in report.filters] == [
        "11111111-2222-3333-4444-666666666666"
    ]
    sigma_filter["filter"]["rules"] = ["elsewhere"]
    orphan = convert_path(_write(tmp_path, base, sigma_filter))
    assert [f.reason for f in orphan.failed] == [
        "filter names rule elsewhere, which is not in the imported files"
    ]
