"""Generated queries: only QueryError ever escapes, and SQL and predicate always agree."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from query_eventdb import DETAIL_KEYS, HOSTS, IPS, NAMES, RAWS, EventDB

from keeptrail.query import QueryError, compile_predicate, compile_sql, parse

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SPECIAL = set(' \t()"\\*:<>')

words = sorted({w for raw in RAWS for w in raw.split()} | {"root", "passwd", "ssh2"})
text_values = st.one_of(
    st.sampled_from([n for n in NAMES + HOSTS if n is not None]),
    st.sampled_from(words),
    st.text(max_size=6),
    st.sampled_from(["/etc/passwd", "/usr/bin/passwd", "true", "22", "wheel", "[x]*?", "-5"]),
)


def escape(value: str) -> str:
    """The value written so that every character is literal (unquoted form)."""
    return "".join("\\" + ch if ch in SPECIAL or ch.isspace() else ch for ch in value)


def quote(value: str) -> str:
    """The value as a quoted literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def literal_or_pattern(draw: st.DrawFn, values: st.SearchStrategy[str] = text_values) -> str:
    """A value, quoted, escaped, or cut into pieces joined by wildcards."""
    value = draw(values)
    style = draw(st.sampled_from(["quote", "plain", "prefix", "suffix", "infix", "cut"]))
    if style == "quote":
        return quote(value)
    if style == "plain":
        return escape(value)
    if style == "prefix":
        return escape(value[: draw(st.integers(0, len(value)))]) + "*"
    if style == "suffix":
        return "*" + escape(value[draw(st.integers(0, len(value))) :])
    if style == "infix":
        return "*" + escape(value) + "*"
    cut = draw(st.integers(0, len(value)))
    return escape(value[:cut]) + "*" + escape(value[cut:])


text_fields = st.sampled_from(
    ["user", "actor.name", "host", "source.host", "resource", "euser", "session", "reason",
     "raw", "parser", "file", "method", "system"]
)  # fmt: skip
keyword_fields = st.sampled_from(["category", "action", "outcome", "actor.type"])
ops = st.sampled_from([":", ">", ">=", "<", "<="])
dates = st.sampled_from(
    ["2023-12-25", "2024-01-01", "2024-01-03", "2024-01-03T06:00:00Z", "2024-01-05T00:00:00+02:00",
     "2024-01-02T12:00:00.5", "2024-01-11"]
)  # fmt: skip
ip_values = st.one_of(
    st.sampled_from([ip for ip in IPS if ip is not None]),
    st.sampled_from(["10.0.0.0/8", "10.0.*", "10.*", "2001:db8::/32", "::/0", "0.0.0.0/0",
                     "::ffff:0:0/96", "192.168.1.*", "fe80::/10", "10.0.0.1/31"]),
    st.ip_addresses().map(str),
)  # fmt: skip

keyword_values = st.sampled_from(
    ["authentication", "session", "login", "Login", "failure", "success", "user", "su"]
)
field_terms = st.one_of(
    st.builds(lambda f, v: f"{f}:{v}", text_fields, literal_or_pattern()),
    st.builds(lambda f, v: f"{f}:{v}", keyword_fields, literal_or_pattern(keyword_values)),
    st.builds(lambda f: f"{f}:*", st.one_of(text_fields, keyword_fields, st.just("ip"))),
    st.builds(lambda o, v: f"severity{o}{v}", ops,
              st.sampled_from(["info", "low", "medium", "HIGH", "critical"])),
    st.builds(lambda f, o, v: f"{f}{o}{v}", st.sampled_from(["port", "uid", "offset"]), ops,
              st.sampled_from(["0", "22", "443", "-1", "1000", "65535", "1099511627776"])),
    st.builds(lambda f, o, v: f"{f}{o}{v}", st.sampled_from(["time", "ingested_at"]), ops, dates),
    st.builds(lambda v: f"ip:{v}", ip_values),
    st.builds(lambda k, v: f"details.{k}:{v}", st.sampled_from(DETAIL_KEYS), literal_or_pattern()),
    st.builds(lambda k: f"details.{k}:*", st.sampled_from([*DETAIL_KEYS, "nope"])),
)  # fmt: skip
free_text = st.one_of(
    st.sampled_from(words).map(escape),
    literal_or_pattern(st.sampled_from(words)),
    st.text(max_size=5).map(quote),
)
terms = st.one_of(field_terms, free_text)
keyword = st.sampled_from(["AND", "and", "OR", "Or", "NOT", "not"])


def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, b: f"{a} AND {b}", children, children),
        st.builds(lambda a, b: f"{a} or {b}", children, children),
        st.builds(lambda a, b: f"{a} {b}", children, children),
        st.builds(lambda a: f"NOT {a}", children),
        st.builds(lambda a: f"-{a}", children),
        st.builds(lambda a: f"({a})", children),
    )


queries = st.recursive(terms, combine, max_leaves=8)

garbage = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None, categories=None), max_size=30),
    st.lists(
        st.one_of(
            st.sampled_from([*'()"\\*:<>=- \t', "user", "ip", "port", "time", "10.0."]),
            keyword,
            st.text(max_size=3),
        ),
        max_size=15,
    ).map("".join),
    st.lists(st.one_of(terms, keyword, st.sampled_from(["(", ")", "-", '"'])), max_size=6).map(
        " ".join
    ),
)


def check(event_db: EventDB, query: str) -> None:
    """Parse; if valid, SQL and predicate must select the same events."""
    try:
        tree = parse(query)
    except QueryError as exc:
        assert exc.render()  # noqa: PT017 - rendering must never fail either
        return
    sql, params = compile_sql(tree, "sqlite")
    compile_sql(tree, "postgres")
    rows = event_db.conn.execute(f"SELECT seq FROM events WHERE {sql}", params).fetchall()
    predicate = compile_predicate(tree)
    expected = {i for i, e in enumerate(event_db.events) if predicate(e)}
    assert {seq - 1 for (seq,) in rows} == expected, (query, sql, params)


@FUZZ
@given(queries)
def test_grammar_queries_agree(event_db: EventDB, query: str) -> None:
    """Queries built from the grammar either fail with QueryError or agree across compilers."""
    check(event_db, query)


@FUZZ
@given(garbage)
def test_garbage_only_raises_query_error(event_db: EventDB, query: str) -> None:
    """Arbitrary strings (any unicode, controls, surrogates) give QueryError or a valid tree."""
    check(event_db, query)


@FUZZ
@given(field_terms)
def test_generated_field_terms_are_mostly_valid(event_db: EventDB, query: str) -> None:
    """Single generated field terms agree across compilers (and exercise every field kind)."""
    check(event_db, query)
