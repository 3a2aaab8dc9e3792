"""The SQL compiler: bound parameters only, both dialects, index-shaped fragments."""

from __future__ import annotations

import re
import sqlite3
import uuid

import pytest

from keeptrail.netaddr import ip_to_bytes
from keeptrail.query import Dialect, compile_sql, compile_time_range, parse

HOSTILE = "'; DROP TABLE events; --"
SQL_WORDS = """
    actor_name source_ip target_host details raw severity source_port time
    IS NOT NULL AND OR IN BETWEEN GLOB COALESCE json_type json_each EXISTS
    SELECT FROM AS WHERE CASE WHEN THEN ELSE END CAST TEXT instr lower j type
    value text integer true false null
"""


@pytest.mark.parametrize("dialect", list(Dialect))
@pytest.mark.parametrize(
    "query",
    [
        f'user:"{HOSTILE}"',
        f'"{HOSTILE}"',
        f'details.command:"{HOSTILE}"',
        f'user:"{HOSTILE}*"',
        r"user:*'*\"*",
        f'host:"{HOSTILE}" OR NOT resource:"{HOSTILE}"',
    ],
)
def test_values_never_reach_sql_text(query: str, dialect: Dialect) -> None:
    """A value with SQL in it ends up in the parameters, never in the fragment."""
    sql, params = compile_sql(parse(query), dialect)
    assert "DROP" not in sql
    assert '"' not in sql.replace('COLLATE "C"', "")
    assert any("DROP" in p or "'" in p for p in params if isinstance(p, str))


def test_hostile_value_is_harmless_in_sqlite() -> None:
    """Executing a hostile query against SQLite leaves the table in place."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, actor_name TEXT, raw TEXT)")
    sql, params = compile_sql(parse(f'user:"{HOSTILE}" OR "{HOSTILE}"'), "sqlite")
    assert conn.execute(f"SELECT count(*) FROM events WHERE {sql}", params).fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)


@pytest.mark.parametrize(("dialect", "mark"), [(Dialect.SQLITE, "?"), (Dialect.POSTGRES, "%s")])
def test_placeholder_count_matches_params(dialect: Dialect, mark: str) -> None:
    """Each dialect uses its own placeholder, one per parameter, and no other."""
    query = (
        "user:adm* ip:10.0.0.0/8 port>=22 severity>=high details.k:*v* "
        'NOT "x" id:0190c6a4-1b2c-7d3e-8f40-123456789abc fail*ed'
    )
    sql, params = compile_sql(parse(query), dialect)
    assert sql.count(mark) == len(params)
    other = "%s" if mark == "?" else "?"
    assert other not in sql
    if dialect is Dialect.POSTGRES:
        assert "%" not in sql.replace("%s", "")  # psycopg would read a bare % as a placeholder


def test_exact_and_prefix_shapes() -> None:
    """Exact values are `col = ?`; a trailing star is a bounded range; others a GLOB."""
    assert compile_sql(parse("user:root"), "sqlite") == (
        "(actor_name IS NOT NULL AND actor_name = ?)",
        ["root"],
    )
    assert compile_sql(parse("user:adm*"), "sqlite") == (
        "(actor_name IS NOT NULL AND actor_name >= ? AND actor_name < ?)",
        ["adm", "adn"],
    )
    sql, params = compile_sql(parse("user:*a[1]?"), "sqlite")
    assert sql == "(actor_name IS NOT NULL AND actor_name GLOB ?)"
    assert params == ["*a[[]1[]][?]"]


def test_postgres_like_is_escaped() -> None:
    """PostgreSQL patterns escape %, _ and backslash and declare the escape character."""
    sql, params = compile_sql(parse(r"user:*50%_off\\x*"), "postgres")
    assert "LIKE %s ESCAPE '\\'" in sql
    assert params == ["%50\\%\\_off\\\\x%"]


def test_postgres_prefix_uses_c_collation() -> None:
    """PostgreSQL prefix ranges compare in code-point order, matching Python and SQLite."""
    sql, _ = compile_sql(parse("user:adm*"), "postgres")
    assert sql.count('COLLATE "C"') == 2


def test_ip_params_are_16_bytes() -> None:
    """IP equality and ranges bind 16-byte storage forms."""
    _, params = compile_sql(parse("ip:10.0.0.1"), "sqlite")
    assert params == [ip_to_bytes("10.0.0.1")]
    sql, params = compile_sql(parse("ip:2001:db8::/32"), "postgres")
    assert "BETWEEN %s AND %s" in sql
    assert all(isinstance(p, bytes) and len(p) == 16 for p in params)


def test_id_binds_bytes_or_uuid() -> None:
    """`id:` binds the 16 raw bytes for SQLite and a uuid.UUID for PostgreSQL."""
    text = "0190c6a4-1b2c-7d3e-8f40-123456789abc"
    assert compile_sql(parse(f"id:{text}"), "sqlite").params == [uuid.UUID(text).bytes]
    assert compile_sql(parse(f"id:{text}"), "postgres").params == [uuid.UUID(text)]


def test_details_path_is_bound() -> None:
    """A details key reaches SQLite only inside a bound JSON path, PostgreSQL as a bound key."""
    sql, params = compile_sql(parse("details.a.b-c:1"), "sqlite")
    assert "a.b-c" not in sql
    assert params[0] == '$."a.b-c"'
    sql, params = compile_sql(parse("details.a.b-c:*"), "postgres")
    assert "a.b-c" not in sql
    assert params == ["a.b-c"]


def test_free_text_is_lowercased_substring() -> None:
    """Free text is an ASCII-lowercased needle searched in lower(raw)."""
    assert compile_sql(parse("FAILED"), "sqlite") == (
        "(raw IS NOT NULL AND instr(lower(raw), ?) > 0)",
        ["failed"],
    )
    sql, _ = compile_sql(parse("FAILED"), "postgres")
    assert sql.startswith("(raw IS NOT NULL AND strpos(translate(raw,")


def test_match_all_and_empty_severity_set() -> None:
    """The empty query is a true fragment; an impossible severity set is a false one."""
    assert compile_sql(parse(""), "sqlite") == ("1 = 1", [])
    assert compile_sql(parse("severity<info"), "sqlite") == ("1 = 0", [])


def test_long_and_is_balanced() -> None:
    """Long AND/OR lists nest logarithmically, not linearly."""
    sql, _ = compile_sql(parse(" ".join(f"w{i}" for i in range(256))), "sqlite")
    depth = max_depth = 0
    for ch in sql:
        depth += ch == "("
        depth -= ch == ")"
        max_depth = max(max_depth, depth)
    assert max_depth <= 12


def test_time_range_fragment() -> None:
    """A since/until pair becomes a half-open range on time with bound values."""
    assert compile_time_range(10, 20, "sqlite") == ("time >= ? AND time < ?", [10, 20])
    assert compile_time_range(None, 20, "postgres") == ("time < %s", [20])
    assert compile_time_range(10, None, "sqlite", column="ingested_at") == (
        "ingested_at >= ?",
        [10],
    )
    assert compile_time_range(None, None, "sqlite") == ("1 = 1", [])
    with pytest.raises(ValueError):
        compile_time_range(1, 2, "sqlite", column="raw; --")


def test_unknown_dialect_is_refused() -> None:
    """Only the two known dialects are accepted."""
    with pytest.raises(ValueError):
        compile_sql(parse("a"), "mysql")


def test_identifiers_come_from_whitelist() -> None:
    """Every identifier in compiled SQL is a known column, function or keyword."""
    allowed = set(SQL_WORDS.split())
    query = 'user:a*b ip:10.0.* host:x details.k:*v* NOT details.z:* "q" severity>=low port<9'
    sql, _ = compile_sql(parse(query), "sqlite")
    assert set(re.findall(r"[A-Za-z_]+", sql)) <= allowed
