"""The query grammar: tokens to a tree, with NOT > AND > OR and implicit AND.

::

    query   := or? END
    or      := and ("OR" and)*
    and     := unary ("AND"? unary)*        adjacent terms are ANDed
    unary   := ("NOT" | "-") unary | primary
    primary := "(" or ")" | TERM | WORD | PHRASE

Nesting (parentheses and stacked NOTs) and the number of terms are capped so that a
hostile query cannot exhaust the Python stack or SQLite's expression-depth limit; every
failure is a :class:`QueryError` with a position.
"""

from __future__ import annotations

from typing import Final

from keeptrail.query.errors import QueryError
from keeptrail.query.fields import resolve_field
from keeptrail.query.lexer import Kind, Token, tokenize
from keeptrail.query.patterns import ascii_lower
from keeptrail.query.terms import build_term
from keeptrail.query.tree import And, FreeText, MatchAll, Node, Not, Or

MAX_DEPTH: Final = 32
MAX_TERMS: Final = 256
_STARTS_UNARY: Final = frozenset({Kind.NOT, Kind.LPAREN, Kind.TERM, Kind.WORD, Kind.PHRASE})


def parse(query: str) -> Node:
    """The tree of ``query``; an empty (or all-space) query matches everything.

    Raises :class:`QueryError` carrying the query text, ready to be printed.
    """
    try:
        return _Parser(query).parse()
    except QueryError as exc:
        raise exc.with_query(query) from None
    except RecursionError:  # unreachable with MAX_DEPTH, but never let it escape
        raise QueryError("query is nested too deeply", 0, query) from None


class _Parser:
    """Recursive descent over a token list, one method per grammar rule."""

    def __init__(self, query: str) -> None:
        self._tokens: list[Token] = list(tokenize(query))
        self._index = 0
        self._terms = 0

    @property
    def _current(self) -> Token:
        return self._tokens[self._index]

    def _peek(self) -> Kind:
        """The kind of the next token (a call, so type checkers do not pin it)."""
        return self._tokens[self._index].kind

    def _advance(self) -> Token:
        token = self._tokens[self._index]
        if token.kind is not Kind.END:
            self._index += 1
        return token

    def parse(self) -> Node:
        if self._peek() is Kind.END:
            return MatchAll()
        node = self._or(0)
        token = self._current
        if token.kind is Kind.RPAREN:
            raise QueryError("unbalanced ')': no '(' to close", token.position)
        if token.kind is not Kind.END:  # pragma: no cover - every other token continues a term
            raise QueryError(f"unexpected {token.kind.value}", token.position)
        return node

    def _or(self, depth: int) -> Node:
        children = [self._and(depth)]
        while self._peek() is Kind.OR:
            self._advance()
            children.append(self._and(depth))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def _and(self, depth: int) -> Node:
        children = [self._unary(depth)]
        while True:
            if self._peek() is Kind.AND:
                self._advance()
            elif self._peek() not in _STARTS_UNARY:
                break
            children.append(self._unary(depth))
        return children[0] if len(children) == 1 else And(tuple(children))

    def _unary(self, depth: int) -> Node:
        token = self._current
        if token.kind is Kind.NOT:
            self._check_depth(depth, token)
            self._advance()
            return Not(self._unary(depth + 1))
        return self._primary(depth)

    def _primary(self, depth: int) -> Node:
        token = self._advance()
        if token.kind is Kind.LPAREN:
            self._check_depth(depth, token)
            if self._peek() is Kind.RPAREN:
                raise QueryError("empty parentheses", self._current.position)
            node = self._or(depth + 1)
            if self._peek() is not Kind.RPAREN:
                raise QueryError("unclosed '(': missing ')'", token.position)
            self._advance()
            return node
        if token.kind in (Kind.TERM, Kind.WORD, Kind.PHRASE):
            self._count_term(token)
            return _leaf(token)
        if token.kind is Kind.END:
            raise QueryError("expected a term at the end of the query", token.position)
        raise QueryError(f"expected a term, found {token.kind.value}", token.position)

    def _check_depth(self, depth: int, token: Token) -> None:
        if depth >= MAX_DEPTH:
            raise QueryError(f"query is nested more than {MAX_DEPTH} levels deep", token.position)

    def _count_term(self, token: Token) -> None:
        self._terms += 1
        if self._terms > MAX_TERMS:
            raise QueryError(f"query has more than {MAX_TERMS} terms", token.position)


def _leaf(token: Token) -> Node:
    """A field term or free text; field terms go through the field whitelist."""
    value = token.value
    if value is None:  # pragma: no cover - the lexer sets it for TERM, WORD and PHRASE
        raise QueryError("expected a term", token.position)
    if token.kind is Kind.TERM:
        field = resolve_field(token.field, token.position)
        return build_term(field, token.op, value, token.op_position)
    return FreeText(tuple(ascii_lower(chunk) for chunk in value.chunks))
