"""The parsed form of a query: a small immutable tree both compilers walk.

Leaves are already typed by the parser (an IP range holds bytes, a time comparison holds
microseconds, a keyword value is lowercased), so the SQL compiler and the in-memory
predicate make no decisions of their own about what a value means; they only translate.
That is what keeps search results and rule matches in agreement.

Text patterns are tuples of literal chunks that ``*`` separates: ``("abc",)`` is an exact
value, ``("abc", "")`` is the prefix ``abc*``, ``("", "passwd", "")`` is ``*passwd*``.
"""

from __future__ import annotations

from dataclasses import dataclass

from keeptrail.query.fields import Field


@dataclass(frozen=True, slots=True)
class MatchAll:
    """The empty query: every event."""


@dataclass(frozen=True, slots=True)
class And:
    """All children match (two or more)."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child matches (two or more)."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The child does not match; a missing field therefore makes ``Not`` true."""

    child: Node


@dataclass(frozen=True, slots=True)
class Exists:
    """``field:*``: the field has a value (is not null / not absent)."""

    field: Field


@dataclass(frozen=True, slots=True)
class TextMatch:
    """A text, keyword or detail field equal to a literal or matching a ``*`` pattern.

    Matching is case-sensitive; keyword fields had their pattern lowercased by the parser.
    """

    field: Field
    chunks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OneOf:
    """A keyword field equal to one of a few values (``severity>=high``)."""

    field: Field
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IntRange:
    """An integer or time field within inclusive bounds; ``None`` means unbounded."""

    field: Field
    low: int | None
    high: int | None


@dataclass(frozen=True, slots=True)
class IpRange:
    """An address field within an inclusive range of 16-byte storage forms."""

    field: Field
    low: bytes
    high: bytes


@dataclass(frozen=True, slots=True)
class IdEquals:
    """The event id equals a UUID, held in canonical lowercase hyphenated form."""

    field: Field
    uuid: str


@dataclass(frozen=True, slots=True)
class FreeText:
    """A bare word or phrase: ASCII-case-insensitive match anywhere in the raw line.

    ``chunks`` are ASCII-lowercased; one chunk is a substring, several are a ``*`` pattern
    that may start and end anywhere in the line.
    """

    chunks: tuple[str, ...]


Node = (
    MatchAll
    | And
    | Or
    | Not
    | Exists
    | TextMatch
    | OneOf
    | IntRange
    | IpRange
    | IdEquals
    | FreeText
)
