"""Split a query into what SQL can answer over clear columns and what needs the sealed event.

A stored event keeps a few fields in clear columns (:mod:`keeptrail.protect.projection`);
the rest exists only inside its sealed bytes. A search therefore runs in two stages: the
conjuncts that only touch clear fields become SQL (and pick an index), and the *residual* is
evaluated with :func:`keeptrail.query.predicate.compile_predicate` on each decrypted
candidate. Only a top-level ``AND`` is split: an ``OR`` or ``NOT`` that mentions any sealed
field (free text, ``details.*``, ``raw``, or a field kept sealed) goes wholly to the residual,
since splitting it would change its meaning.

Pure: a tree and a set of clear column names in, two trees (either may be ``None``) out.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from keeptrail.query.fields import Kind
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


class Split(NamedTuple):
    """``sql`` compiles to SQL over clear columns; ``residual`` runs after decryption."""

    sql: Node | None
    residual: Node | None


def split_query(tree: Node | None, clear: frozenset[str]) -> Split:
    """The clear-column part and the residual of ``tree`` (their AND is ``tree``)."""
    if tree is None or isinstance(tree, MatchAll):
        return Split(None, None)
    conjuncts = _flatten(tree) if isinstance(tree, And) else [tree]
    sql = [c for c in conjuncts if is_clear(c, clear)]
    rest = [c for c in conjuncts if not is_clear(c, clear)]
    return Split(_join(sql), _join(rest))


def is_clear(node: Node, clear: frozenset[str]) -> bool:
    """Whether every field ``node`` reads is a clear column (so SQL alone can decide it)."""
    if isinstance(node, And | Or):
        return all(is_clear(child, clear) for child in node.children)
    if isinstance(node, Not):
        return is_clear(node.child, clear)
    if isinstance(node, MatchAll):
        return True
    if isinstance(node, FreeText):
        return False
    if isinstance(node, Exists | TextMatch | OneOf | IntRange | IpRange | IdEquals):
        return node.field.key is None and node.field.attr in clear
    raise TypeError(f"not a query node: {node!r}")


def _flatten(node: And) -> list[Node]:
    out: list[Node] = []
    for child in node.children:
        if isinstance(child, And):
            out.extend(_flatten(child))
        elif not isinstance(child, MatchAll):
            out.append(child)
    return out


def _join(parts: list[Node]) -> Node | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return And(tuple(parts))


# Bytes a JSON encoder may escape: a needle holding one of them may be spelled differently in the
# stored JSON, so it cannot be used to rule an event out.
_ESCAPED: Final = frozenset(b'"\\') | frozenset(range(0x20)) | {0x7F}


class Needle(NamedTuple):
    """Bytes that must occur in an event's canonical JSON for the residual to match it."""

    data: bytes
    fold_case: bool  # compare against the ASCII-lowercased JSON (free text)


def required_needles(residual: Node | None) -> tuple[Needle, ...]:
    """Substrings every match must contain in its canonical bytes: a cheap pre-filter.

    Only positive top-level conjuncts count: free text (its chunks, ASCII-case-folded) and text
    or ``details.*`` matches (their chunks, exact case). A chunk with a character JSON could
    escape is skipped, so a needle's absence always proves the event does not match.
    """
    if residual is None:
        return ()
    conjuncts = _flatten(residual) if isinstance(residual, And) else [residual]
    out: list[Needle] = []
    for node in conjuncts:
        if isinstance(node, FreeText):
            out.extend(_needles(node.chunks, fold_case=True))
        elif isinstance(node, TextMatch) and node.field.kind in (Kind.TEXT, Kind.DETAIL):
            out.extend(_needles(node.chunks, fold_case=False))
    return tuple(out)


def _needles(chunks: tuple[str, ...], *, fold_case: bool) -> list[Needle]:
    found = []
    for chunk in chunks:
        data = chunk.encode()
        if data and not any(b in _ESCAPED for b in data):
            found.append(Needle(data, fold_case))
    return found


def has_needles(data: bytes, needles: tuple[Needle, ...]) -> bool:
    """Whether canonical bytes contain every needle (see ``required_needles``)."""
    folded: bytes | None = None
    for needle in needles:
        if needle.fold_case:
            if folded is None:
                folded = data.lower()
            if needle.data not in folded:
                return False
        elif needle.data not in data:
            return False
    return True
