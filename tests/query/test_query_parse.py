"""The parser: each construct of the language becomes the expected tree."""

from __future__ import annotations

import dataclasses

import pytest

from keeptrail.event import SEVERITIES
from keeptrail.netaddr import ip_to_bytes
from keeptrail.query import FIELD_TABLE, parse, resolve_field
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

NAME = FIELD_TABLE["actor.name"]
IP = FIELD_TABLE["source.ip"]
PORT = FIELD_TABLE["source.port"]
TIME = FIELD_TABLE["time"]
DAY = 86_400_000_000
JAN1 = 1_704_067_200_000_000


def text(value: str) -> TextMatch:
    return TextMatch(NAME, (value,))


def test_field_value_is_exact_match() -> None:
    """`field:value` is an exact text match on the resolved field."""
    assert parse("actor.name:root") == text("root")


def test_quoted_value_is_literal() -> None:
    """A quoted value keeps spaces, parentheses and stars literally."""
    assert parse('user:"a (b) * c"') == text("a (b) * c")


def test_quoted_value_escapes() -> None:
    """Inside quotes, \\" and \\\\ are escapes and other backslashes are kept."""
    assert parse(r'user:"say \"hi\" C:\logs\\x"') == text('say "hi" C:\\logs\\x')


def test_wildcards_split_value_into_chunks() -> None:
    """Unescaped stars separate literal chunks; repeated stars collapse; \\* is literal."""
    assert parse("user:adm*") == TextMatch(NAME, ("adm", ""))
    assert parse("user:*pass**wd*") == TextMatch(NAME, ("", "pass", "wd", ""))
    assert parse(r"user:a\*b") == text("a*b")


def test_star_alone_is_presence() -> None:
    """`field:*` tests that the field has a value; a quoted star is a literal."""
    assert parse("user:*") == Exists(NAME)
    assert parse("user:**") == Exists(NAME)
    assert parse('user:"*"') == text("*")


def test_aliases_resolve_to_canonical_fields() -> None:
    """Short aliases and attribute spellings name the canonical dotted fields."""
    cases = {
        "user": "actor.name",
        "ip": "source.ip",
        "src_ip": "source.ip",
        "srcip": "source.ip",
        "port": "source.port",
        "src_port": "source.port",
        "host": "target.host",
        "system": "target.system",
        "resource": "target.resource",
        "method": "actor.auth_method",
        "auth": "actor.auth_method",
        "euser": "actor.effective_user",
        "effective_user": "actor.effective_user",
        "sudo_user": "actor.effective_user",
        "session": "actor.session",
        "uid": "actor.uid",
        "parser": "collector.parser",
        "file": "collector.file",
        "actor_name": "actor.name",
        "USER": "actor.name",
    }
    for alias, canonical in cases.items():
        assert resolve_field(alias).name == canonical


def test_every_event_field_is_searchable() -> None:
    """Every dotted Event field except `details` itself resolves to itself."""
    for name in FIELD_TABLE:
        assert resolve_field(name).name == name
    assert "details" not in FIELD_TABLE


def test_details_key() -> None:
    """`details.<key>` targets one key of the details object, keeping the key's case."""
    node = parse("Details.Command:ls")
    assert isinstance(node, TextMatch)
    assert node.field.key == "Command"
    assert node.chunks == ("ls",)


def test_keyword_fields_lowercase_values() -> None:
    """category, action, outcome and severity compare against the lowercased value."""
    node = parse("category:AUTH* outcome:Failure")
    assert isinstance(node, And)
    assert [c.chunks for c in node.children if isinstance(c, TextMatch)] == [
        ("auth", ""),
        ("failure",),
    ]


def test_text_fields_keep_case() -> None:
    """Ordinary text fields are case-sensitive."""
    assert parse("user:Root") == text("Root")


def test_ip_exact_cidr_and_prefix() -> None:
    """Plain IPs are exact, CIDR and IPv4 prefix wildcards become byte ranges."""
    one = ip_to_bytes("10.0.0.1")
    assert parse("ip:10.0.0.1") == IpRange(IP, one, one)
    assert parse("ip:10.0.*") == parse("ip:10.0.0.0/16")
    cidr = parse("ip:10.0.0.0/16")
    assert isinstance(cidr, IpRange)
    assert (cidr.low, cidr.high) == (ip_to_bytes("10.0.0.0"), ip_to_bytes("10.0.255.255"))


def test_ipv6_value_keeps_its_colons() -> None:
    """Everything after the first colon is the value, so IPv6 needs no quoting."""
    node = parse("ip:2001:db8::/32")
    assert node == parse('ip:"2001:db8::/32"')
    assert isinstance(node, IpRange)
    assert node.low == ip_to_bytes("2001:db8::")
    assert node.high == ip_to_bytes("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")


def test_integer_comparisons() -> None:
    """Comparisons on integer fields become inclusive ranges."""
    assert parse("port:22") == IntRange(PORT, 22, 22)
    assert parse("port>22") == IntRange(PORT, 23, None)
    assert parse("port>=22") == IntRange(PORT, 22, None)
    assert parse("port<22") == IntRange(PORT, None, 21)
    assert parse("port<=22") == IntRange(PORT, None, 22)
    assert parse("uid:-1") == IntRange(FIELD_TABLE["actor.uid"], -1, -1)


def test_time_dates_span_the_day() -> None:
    """A date in a time comparison covers its whole UTC day."""
    assert parse("time:2024-01-01") == IntRange(TIME, JAN1, JAN1 + DAY - 1)
    assert parse("time>=2024-01-01") == IntRange(TIME, JAN1, None)
    assert parse("time>2024-01-01") == IntRange(TIME, JAN1 + DAY, None)
    assert parse("time<2024-01-01") == IntRange(TIME, None, JAN1 - 1)
    assert parse("time<=2024-01-01") == IntRange(TIME, None, JAN1 + DAY - 1)


def test_time_timestamps_are_instants() -> None:
    """A timestamp is one microsecond; offsets are honoured and a missing one means UTC."""
    assert parse("time>=2024-01-01T00:00:00Z") == IntRange(TIME, JAN1, None)
    assert parse("time>=2024-01-01T02:00:00+02:00") == IntRange(TIME, JAN1, None)
    assert parse("time:2024-01-01T00:00:00.000001") == IntRange(TIME, JAN1 + 1, JAN1 + 1)


def test_severity_comparisons_are_ordinal() -> None:
    """Severity comparisons select the levels above or below in info..critical order."""
    sev = FIELD_TABLE["severity"]
    assert parse("severity>=high") == OneOf(sev, ("high", "critical"))
    assert parse("severity>low") == OneOf(sev, ("medium", "high", "critical"))
    assert parse("severity<medium") == OneOf(sev, ("info", "low"))
    assert parse("severity<=info") == OneOf(sev, ("info",))
    assert parse("severity<info") == OneOf(sev, ())
    assert parse("severity:Critical") == TextMatch(sev, ("critical",))
    assert set(SEVERITIES) == {"info", "low", "medium", "high", "critical"}


def test_id_is_canonicalised() -> None:
    """An id in any UUID spelling is held in canonical lowercase form."""
    canonical = "0190c6a4-1b2c-7d3e-8f40-123456789abc"
    assert parse(f"id:{canonical.upper()}") == IdEquals(FIELD_TABLE["id"], canonical)


def test_free_text_words_and_phrases() -> None:
    """Bare words and quoted phrases are free text, ASCII-lowercased."""
    assert parse("Failed") == FreeText(("failed",))
    assert parse('"Failed Password"') == FreeText(("failed password",))
    assert parse("ÉCHEC") == FreeText(("Échec",))
    assert parse("fail*ROOT") == FreeText(("fail", "root"))


def test_precedence_not_and_or() -> None:
    """NOT binds tighter than AND, which binds tighter than OR."""
    a, b, c = FreeText(("a",)), FreeText(("b",)), FreeText(("c",))
    assert parse("a OR b AND c") == Or((a, And((b, c))))
    assert parse("NOT a AND b") == And((Not(a), b))
    assert parse("a AND b OR c") == Or((And((a, b)), c))


def test_implicit_and_and_parentheses() -> None:
    """Adjacent terms are ANDed and parentheses group."""
    a, b, c = FreeText(("a",)), FreeText(("b",)), FreeText(("c",))
    assert parse("a b c") == And((a, b, c))
    assert parse("(a OR b) c") == And((Or((a, b)), c))
    assert parse("a (b)") == And((a, b))


def test_keywords_are_case_insensitive() -> None:
    """and/or/not work in any case; quoting makes them words again."""
    a, b = FreeText(("a",)), FreeText(("b",))
    assert parse("a or NoT b") == Or((a, Not(b)))
    assert parse('a "and" b') == And((a, FreeText(("and",)), b))


def test_minus_is_not() -> None:
    """A leading dash negates the following term or group; a lone dash is a word."""
    a, b = FreeText(("a",)), FreeText(("b",))
    assert parse("-a") == Not(a)
    assert parse("-(a b)") == Not(And((a, b)))
    assert parse("user:x -user:y") == And((text("x"), Not(text("y"))))
    assert parse("a - b") == And((a, FreeText(("-",)), b))
    assert parse("a-b") == FreeText(("a-b",))


def test_empty_query_matches_all() -> None:
    """An empty or blank query is the match-everything tree."""
    assert parse("") == MatchAll()
    assert parse("  \t\n") == MatchAll()


def test_words_that_are_not_fields_stay_free_text() -> None:
    """Colons after something that is not a field name do not make a field term."""
    assert parse("12:30:01") == FreeText(("12:30:01",))
    assert parse("uid=0") == FreeText(("uid=0",))
    assert parse(r"user\:root") == FreeText(("user:root",))


@pytest.mark.parametrize(
    "query",
    ["user:root", "ip:10.0.0.0/8 OR -port:22", "(a OR b) NOT c", "details.x:*y*"],
)
def test_tree_is_immutable_and_hashable(query: str) -> None:
    """Trees are frozen dataclasses: hashable, comparable, and safe to cache."""
    node: Node = parse(query)
    assert hash(node) == hash(parse(query))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(node, dataclasses.fields(node)[0].name, None)
