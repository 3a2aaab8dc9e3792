"""A query tree to a SQL ``WHERE`` fragment with bound parameters, for SQLite or PostgreSQL.

Nothing the user typed becomes SQL text: column names come from the field whitelist
(:mod:`keeptrail.query.fields`), JSON keys are bound (SQLite binds the whole ``$."key"``
path), and every value is a parameter. Each leaf is two-valued (a NULL column yields FALSE,
not NULL) so that ``NOT`` means the same here as in the in-memory predicate: a missing
field never matches a positive term, and its negation always does.

Index use: equality is ``col = ?``; ``abc*`` is the range ``col >= 'abc' AND col < 'abd'``
(plus a GLOB/LIKE when more wildcards follow); IP networks are ``BETWEEN`` over 16 bytes.
In PostgreSQL the ranges use ``COLLATE "C"`` to get code-point order, so text indexes there
must be built with ``COLLATE "C"`` to serve prefix queries.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from typing import Final, NamedTuple

from keeptrail.event import FIELDS
from keeptrail.query.patterns import (
    is_exact,
    is_prefix,
    prefix_upper_bound,
    to_glob,
    to_like,
    unanchored,
)
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

SqlParam = str | int | bytes | uuid.UUID


class Dialect(enum.StrEnum):
    """The two SQL backends; the value is what configuration files spell."""

    SQLITE = "sqlite"
    POSTGRES = "postgres"


class Compiled(NamedTuple):
    """A ``WHERE`` fragment and its parameters, in placeholder order."""

    sql: str
    params: list[SqlParam]


_COLUMNS: Final = frozenset(FIELDS.values())
_TRUE: Final = Compiled("1 = 1", [])
_FALSE: Final = Compiled("1 = 0", [])
_UPPER: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# PostgreSQL lower() folds by locale; the language is ASCII-case-insensitive like SQLite's.
_PG_RAW_ASCII_LOWER: Final = f"translate(raw, '{_UPPER}', '{_UPPER.lower()}')"
_SQLITE_DETAIL_TEXT: Final = (
    "CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END"
)


def compile_sql(tree: Node, dialect: Dialect | str) -> Compiled:
    """The ``WHERE`` fragment for ``tree``: SQLite placeholders ``?``, PostgreSQL ``%s``."""
    return _compile(tree, Dialect(dialect))


def compile_time_range(
    since_us: int | None,
    until_us: int | None,
    dialect: Dialect | str,
    *,
    column: str = "time",
) -> Compiled:
    """``[since, until)`` on a time column as a fragment; open sides are left out."""
    if column not in ("time", "ingested_at"):
        raise ValueError(f"not a time column: {column!r}")
    mark = _placeholder(Dialect(dialect))
    parts: list[str] = []
    params: list[SqlParam] = []
    if since_us is not None:
        parts.append(f"{column} >= {mark}")
        params.append(since_us)
    if until_us is not None:
        parts.append(f"{column} < {mark}")
        params.append(until_us)
    return Compiled(" AND ".join(parts), params) if parts else _TRUE


def compile_filters(
    tree: Node | None, since_us: int | None, until_us: int | None, dialect: Dialect | str
) -> tuple[list[str], list[SqlParam]]:
    """The conjuncts (and their parameters) of a query over ``[since, until)``: the query's
    fragment when there is one, then the time range when it has a side. Callers add their own
    conjuncts (a cursor) before joining them with ``AND``."""
    clauses: list[str] = []
    params: list[SqlParam] = []
    if tree is not None:
        frag, qparams = compile_sql(tree, dialect)
        clauses.append(f"({frag})")
        params.extend(qparams)
    if since_us is not None or until_us is not None:
        frag, tparams = compile_time_range(since_us, until_us, dialect)
        clauses.append(frag)
        params.extend(tparams)
    return clauses, params


def _placeholder(dialect: Dialect) -> str:
    return "?" if dialect is Dialect.SQLITE else "%s"


def _compile(node: Node, dialect: Dialect) -> Compiled:
    if isinstance(node, And | Or):
        parts = [_compile(child, dialect) for child in node.children]
        return _balanced(parts, " AND " if isinstance(node, And) else " OR ")
    if isinstance(node, Not):
        inner = _compile(node.child, dialect)
        return Compiled(f"NOT ({inner.sql})", inner.params)
    if isinstance(node, MatchAll):
        return _TRUE
    if isinstance(node, FreeText):
        return _free_text(node.chunks, dialect)
    if isinstance(node, Exists | TextMatch) and node.field.key is not None:
        return _detail(node, node.field.key, dialect)
    column = node.field.attr
    if column not in _COLUMNS:  # the whitelist is the only source of SQL identifiers
        raise ValueError(f"not a column: {column!r}")
    mark = _placeholder(dialect)
    leaf = _leaf(node, column, mark, dialect)
    if leaf is _FALSE or leaf.sql == f"{column} IS NOT NULL":
        return leaf
    return Compiled(f"({column} IS NOT NULL AND {leaf.sql})", leaf.params)


def _balanced(parts: Sequence[Compiled], joiner: str) -> Compiled:
    """Join as a balanced tree so a long AND/OR stays shallow for SQLite's depth limit."""
    if len(parts) == 1:
        return parts[0]
    mid = len(parts) // 2
    left = _balanced(parts[:mid], joiner)
    right = _balanced(parts[mid:], joiner)
    return Compiled(f"({left.sql}{joiner}{right.sql})", left.params + right.params)


def _leaf(node: Node, column: str, mark: str, dialect: Dialect) -> Compiled:
    """A comparison on one whitelisted column (NULL handling is added by the caller)."""
    if isinstance(node, Exists):
        return Compiled(f"{column} IS NOT NULL", [])
    if isinstance(node, TextMatch):
        return _text(column, node.chunks, mark, dialect)
    if isinstance(node, OneOf):
        if not node.values:
            return _FALSE
        marks = ", ".join(mark for _ in node.values)
        return Compiled(f"{column} IN ({marks})", list(node.values))
    if isinstance(node, IntRange | IpRange):
        return _range(column, node.low, node.high, mark)
    if isinstance(node, IdEquals):
        value = uuid.UUID(node.uuid)
        return Compiled(f"{column} = {mark}", [value.bytes if dialect is Dialect.SQLITE else value])
    raise TypeError(f"not a leaf: {node!r}")


def _range(column: str, low: SqlParam | None, high: SqlParam | None, mark: str) -> Compiled:
    """Inclusive bounds as ``=``, ``BETWEEN``, ``>=`` or ``<=``."""
    if low is not None and high is not None:
        if low == high:
            return Compiled(f"{column} = {mark}", [low])
        return Compiled(f"{column} BETWEEN {mark} AND {mark}", [low, high])
    if low is not None:
        return Compiled(f"{column} >= {mark}", [low])
    if high is not None:
        return Compiled(f"{column} <= {mark}", [high])
    return Compiled(f"{column} IS NOT NULL", [])


def _text(column: str, chunks: tuple[str, ...], mark: str, dialect: Dialect) -> Compiled:
    """Equality, an index range for a literal prefix, and a pattern for the rest."""
    if is_exact(chunks):
        return Compiled(f"{column} = {mark}", [chunks[0]])
    collate = ' COLLATE "C"' if dialect is Dialect.POSTGRES else ""
    parts: list[str] = []
    params: list[SqlParam] = []
    prefix = chunks[0]
    if prefix:
        parts.append(f"{column} >= {mark}{collate}")
        params.append(prefix)
        upper = prefix_upper_bound(prefix)
        if upper is not None:
            parts.append(f"{column} < {mark}{collate}")
            params.append(upper)
    if not is_prefix(chunks):
        if dialect is Dialect.SQLITE:
            parts.append(f"{column} GLOB {mark}")
            params.append(to_glob(chunks))
        else:
            parts.append(f"{column} LIKE {mark} ESCAPE '\\'")
            params.append(to_like(chunks))
    if not parts:
        return Compiled(f"{column} IS NOT NULL", [])
    return Compiled(" AND ".join(parts), params)


def _free_text(chunks: tuple[str, ...], dialect: Dialect) -> Compiled:
    """ASCII-case-insensitive match anywhere in ``raw`` (chunks are already lowercased)."""
    if dialect is Dialect.SQLITE:
        if is_exact(chunks):
            return Compiled("(raw IS NOT NULL AND instr(lower(raw), ?) > 0)", [chunks[0]])
        return Compiled("(raw IS NOT NULL AND lower(raw) GLOB ?)", [to_glob(unanchored(chunks))])
    if is_exact(chunks):
        return Compiled(f"(raw IS NOT NULL AND strpos({_PG_RAW_ASCII_LOWER}, %s) > 0)", [chunks[0]])
    return Compiled(
        f"(raw IS NOT NULL AND {_PG_RAW_ASCII_LOWER} LIKE %s ESCAPE '\\')",
        [to_like(unanchored(chunks))],
    )


def _detail(node: Exists | TextMatch, key: str, dialect: Dialect) -> Compiled:
    """A key of the JSON ``details`` object: present, or some scalar (or list item) matches.

    A scalar and a list are treated alike, a list matching when any item does; booleans
    read as ``true``/``false`` and integers in decimal, as the predicate reads them.
    """
    if dialect is Dialect.SQLITE:
        path = f'$."{key}"'  # key characters are whitelisted; the path is bound anyway
        if isinstance(node, Exists):
            return Compiled("COALESCE(json_type(details, ?), 'null') <> 'null'", [path])
        test = _pattern_test(_SQLITE_DETAIL_TEXT, node.chunks, "?", dialect)
        return Compiled(
            "EXISTS (SELECT 1 FROM json_each(details, ?) AS j WHERE j.type IN "
            f"('text', 'integer', 'true', 'false') AND {test.sql})",
            [path, *test.params],
        )
    if isinstance(node, Exists):
        return Compiled("COALESCE(jsonb_typeof(details -> %s), 'null') <> 'null'", [key])
    test = _pattern_test("(j.v #>> '{}')", node.chunks, "%s", dialect)
    return Compiled(
        "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof(details -> %s) "
        "WHEN 'array' THEN details -> %s ELSE jsonb_build_array(details -> %s) END) AS j(v) "
        f"WHERE jsonb_typeof(j.v) IN ('string', 'number', 'boolean') AND {test.sql})",
        [key, key, key, *test.params],
    )


def _pattern_test(expr: str, chunks: tuple[str, ...], mark: str, dialect: Dialect) -> Compiled:
    """``expr`` equal to a literal or matching a pattern (no index to aim for here)."""
    if is_exact(chunks):
        return Compiled(f"{expr} = {mark}", [chunks[0]])
    if dialect is Dialect.SQLITE:
        return Compiled(f"{expr} GLOB {mark}", [to_glob(chunks)])
    return Compiled(f"{expr} LIKE {mark} ESCAPE '\\'", [to_like(chunks)])
