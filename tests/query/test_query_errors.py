"""Invalid queries: a QueryError at the right position, rendered with a caret."""

from __future__ import annotations

import pytest

from keeptrail.query import MAX_DEPTH, MAX_TERMS, QueryError, parse
from keeptrail.query.lexer import MAX_QUERY_LENGTH

ERRORS = [
    # (query, position, words in the message)
    ("foo:bar", 0, "unknown field 'foo'"),
    ("user:root usr:x", 10, "did you mean"),
    ("(a", 0, "unclosed '('"),
    ("a (b (c)", 2, "unclosed '('"),
    ("a)", 1, "unbalanced ')'"),
    ("()", 1, "empty parentheses"),
    ("a AND", 5, "expected a term at the end"),
    ("AND a", 0, "expected a term, found AND"),
    ("a OR OR b", 5, "expected a term, found OR"),
    ("NOT", 3, "expected a term at the end"),
    ("a (OR b)", 3, "found OR"),
    ('b "abc', 2, "unterminated quoted string"),
    ('user:"abc', 5, "unterminated quoted string"),
    ('user:"x"y', 8, "after the closing quote"),
    ("user:", 5, "missing value"),
    ("user: root", 5, "missing value"),
    ("user:)", 5, "missing value"),
    ("a\\", 1, "backslash"),
    ("a\x00b", 1, "control character U+0000"),
    ("ok \x1b[31m", 3, "control character U+001B"),
    ("a \ud800", 2, "control character U+D800"),
    ("port:abc", 5, "expected an integer"),
    ("port:٢٢", 5, "expected an integer"),
    ("port:1_000", 5, "expected an integer"),
    ("port:99999999999999999999", 5, "out of range"),
    ("port:2*", 5, "wildcards are not supported"),
    ("time:*2024", 5, "wildcards are not supported"),
    ("id:abc*", 3, "wildcards are not supported"),
    ("port:>5", 5, "expected an integer"),
    ("user>root", 4, "cannot be compared"),
    ("ip>=10.0.0.1", 2, "cannot be compared"),
    ("port>*", 4, "is not a comparison"),
    ("ip:10.0.0.256", 3, "not an IP address"),
    ("ip:10.0.0.0/33", 3, "not an IP address"),
    ("ip:host.example", 3, "not an IP address"),
    ("ip:10*", 3, "only IPv4 prefixes"),
    ("ip:*.1", 3, "only IPv4 prefixes"),
    ("ip:2001:db8:*", 3, "only IPv4 prefixes"),
    ("ip:300.*", 3, "only IPv4 prefixes"),
    ("time>=yesterday", 6, "invalid time"),
    ("time:2024-02-30", 5, "invalid date"),
    ("time:2024-01-01T25:00:00", 5, "invalid time"),
    ("severity:urgent", 9, "unknown severity"),
    ("severity>=x*", 10, "unknown severity"),
    ("id:not-a-uuid", 3, "not a UUID"),
    ("details.a$b:1", 8, "invalid details key"),
    ("details.:1", 8, "invalid details key"),
    ("port:" + "9" * 5000, 5, "out of range"),
    ("x" * (MAX_QUERY_LENGTH + 1), MAX_QUERY_LENGTH, "longer than"),
    ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), MAX_DEPTH, "nested more than"),
    ("NOT " * (MAX_DEPTH + 1) + "a", 4 * MAX_DEPTH, "nested more than"),
    ("-(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH, MAX_DEPTH, "nested more than"),
]


@pytest.mark.parametrize(("query", "position", "words"), ERRORS)
def test_error_message_and_position(query: str, position: int, words: str) -> None:
    """Each invalid query raises QueryError naming the problem at the expected position."""
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert words in caught.value.message
    assert caught.value.position == position
    assert caught.value.query == query


def test_too_many_terms() -> None:
    """More than MAX_TERMS terms is refused at the first term over the limit."""
    query = " ".join(["a"] * (MAX_TERMS + 1))
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert caught.value.position == 2 * MAX_TERMS
    parse(" ".join(["a"] * MAX_TERMS))


def test_unknown_field_lists_valid_names() -> None:
    """The unknown-field message lists the canonical names, details.<key> and aliases."""
    with pytest.raises(QueryError) as caught:
        parse("nope:1")
    for name in ("actor.name", "source.ip", "details.<key>", "user", "src_ip"):
        assert name in caught.value.message


def test_render_puts_caret_under_position() -> None:
    """render() shows the message, the query and a caret under the offending character."""
    with pytest.raises(QueryError) as caught:
        parse("user:root AND port:abc")
    lines = caught.value.render().splitlines()
    assert lines[0].startswith("expected an integer")
    assert lines[1] == "  user:root AND port:abc"
    assert lines[2] == "  " + " " * 19 + "^"
    assert str(caught.value) == caught.value.render()


def test_render_windows_long_queries_and_hides_controls() -> None:
    """A long query is shown around the error, and unprintables become one-column dots."""
    query = "a " * 200 + "\u0301 port:x " + "b " * 200
    with pytest.raises(QueryError) as caught:
        parse(query)
    _, shown, caret = caught.value.render().splitlines()
    assert shown.startswith("  ...")
    assert shown.endswith("...")
    assert shown[caret.index("^") : caret.index("^") + 1] == "x"
    assert "\u0301" not in shown


def test_query_error_is_a_value_error() -> None:
    """Callers that catch ValueError also catch query errors."""
    assert issubclass(QueryError, ValueError)
