"""Query text to tokens: parentheses, keywords, free-text words and phrases, field terms.

The lexer decides what is a field term (``name:value``, ``name>=value``) because only it
sees quoting and escapes; everything after the first operator belongs to the value, which
is how ``ip:2001:db8::/32`` keeps its colons. Values arrive as chunk tuples (unescaped ``*``
splits them, see :mod:`keeptrail.query.tree`); quoted values are always literal.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from keeptrail.query.errors import QueryError

MAX_QUERY_LENGTH: Final = 8192
_ALLOWED_CONTROLS: Final = frozenset("\t\n\r\x0b\x0c")
_KEYWORDS: Final = frozenset({"and", "or", "not"})
# A details key with odd characters is still read as a field term, so that it is refused
# with a clear message rather than silently searched as free text.
_FIELD_OPERATOR: Final = re.compile(
    r"((?i:details)\.[^\s:<>()\"\\]+|[A-Za-z_][A-Za-z0-9_.\-]*)(:|>=|<=|>|<)"
)


class Kind(enum.Enum):
    """What a token is."""

    LPAREN = "("
    RPAREN = ")"
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    WORD = "word"  # free text, unquoted (may hold wildcards)
    PHRASE = "phrase"  # free text, quoted
    TERM = "term"  # field operator value
    END = "end of query"


@dataclass(frozen=True, slots=True)
class Value:
    """A value as typed: chunks split on unescaped ``*``, whether quoted, and where."""

    chunks: tuple[str, ...]
    quoted: bool
    position: int

    @property
    def text(self) -> str:
        """The value with its wildcards written back as ``*`` (for typed parsing)."""
        return "*".join(self.chunks)


@dataclass(frozen=True, slots=True)
class Token:
    """One token; ``value`` is set for WORD, PHRASE and TERM, ``field``/``op`` for TERM."""

    kind: Kind
    position: int
    value: Value | None = None
    field: str = ""
    op: str = ""
    op_position: int = 0


def tokenize(query: str) -> Iterator[Token]:
    """Yield the tokens of ``query``, ending with one END token; QueryError on bad input."""
    _check_characters(query)
    pos = 0
    n = len(query)
    while True:
        while pos < n and query[pos].isspace():
            pos += 1
        if pos >= n:
            yield Token(Kind.END, n)
            return
        ch = query[pos]
        if ch == "(":
            yield Token(Kind.LPAREN, pos)
            pos += 1
        elif ch == ")":
            yield Token(Kind.RPAREN, pos)
            pos += 1
        elif ch == "-" and pos + 1 < n and _starts_term(query[pos + 1]):
            yield Token(Kind.NOT, pos)
            pos += 1
        elif ch == '"':
            value, pos = _read_quoted(query, pos)
            yield Token(Kind.PHRASE, value.position, value)
        else:
            token, pos = _read_word(query, pos)
            yield token


def _check_characters(query: str) -> None:
    """Refuse what no log search needs and some backends choke on: controls, surrogates."""
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryError(f"query is longer than {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH)
    for index, ch in enumerate(query):
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in _ALLOWED_CONTROLS) or category == "Cs":
            raise QueryError(f"control character U+{ord(ch):04X} is not allowed", index)


def _starts_term(ch: str) -> bool:
    """Whether ``-`` before this character is a negation rather than a lone dash."""
    return not ch.isspace() and ch not in ")-"


def _read_quoted(query: str, start: int) -> tuple[Value, int]:
    """A ``"..."`` string at ``start``: ``\\"`` and ``\\\\`` are escapes, the rest literal."""
    out: list[str] = []
    pos = start + 1
    n = len(query)
    while pos < n:
        ch = query[pos]
        if ch == "\\" and pos + 1 < n and query[pos + 1] in '"\\':
            out.append(query[pos + 1])
            pos += 2
        elif ch == '"':
            pos += 1
            if pos < n and not query[pos].isspace() and query[pos] != ")":
                raise QueryError("expected a space or ')' after the closing quote", pos)
            return Value(("".join(out),), quoted=True, position=start), pos
        else:
            out.append(ch)
            pos += 1
    raise QueryError("unterminated quoted string", start)


def _read_unquoted(query: str, start: int) -> tuple[Value, int]:
    """An unquoted run up to whitespace, a parenthesis or a quote; ``\\`` escapes one char."""
    chunks: list[str] = []
    current: list[str] = []
    pos = start
    n = len(query)
    while pos < n:
        ch = query[pos]
        if ch.isspace() or ch in '()"':
            break
        if ch == "\\":
            if pos + 1 >= n:
                raise QueryError("a backslash must be followed by the character it escapes", pos)
            current.append(query[pos + 1])
            pos += 2
            continue
        if ch == "*":
            chunks.append("".join(current))
            current = []
        else:
            current.append(ch)
        pos += 1
    chunks.append("".join(current))
    return Value(_collapse_stars(tuple(chunks)), quoted=False, position=start), pos


def _collapse_stars(chunks: tuple[str, ...]) -> tuple[str, ...]:
    """Drop empty middle chunks: ``a**b`` is ``a*b``, ``**`` is ``*``."""
    if len(chunks) <= 2:
        return chunks
    middle = tuple(chunk for chunk in chunks[1:-1] if chunk)
    return (chunks[0], *middle, chunks[-1])


def _read_word(query: str, start: int) -> tuple[Token, int]:
    """A keyword, a field term, or a free-text word starting at ``start``."""
    match = _FIELD_OPERATOR.match(query, start)
    if match:
        op_position = match.start(2)
        value_start = match.end()
        if value_start >= len(query) or query[value_start].isspace() or query[value_start] in "()":
            raise QueryError(f"missing value after {match.group(0)!r}", value_start)
        if query[value_start] == '"':
            value, pos = _read_quoted(query, value_start)
        else:
            value, pos = _read_unquoted(query, value_start)
        token = Token(
            Kind.TERM,
            start,
            value,
            field=match.group(1),
            op=match.group(2),
            op_position=op_position,
        )
        return token, pos
    value, pos = _read_unquoted(query, start)
    plain = query[start:pos]
    if plain.lower() in _KEYWORDS:
        return Token(Kind[plain.upper()], start), pos
    return Token(Kind.WORD, start, value), pos
