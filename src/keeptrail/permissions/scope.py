"""The scope of a review campaign: a small filter language over entitlement fields.

A campaign reviews the entitlements a filter selects from the latest snapshots, e.g.::

    system:linux:* AND privileged:true
    principal_kind:user AND (privilege:sudo OR privilege:group:*) AND NOT principal:svc-*
    system:postgres:* privilege:SELECT scope:public.*

It is the search language's syntax (the same lexer: ``AND``, ``OR``, ``NOT``/``-``,
parentheses, implicit AND, ``"quoted values"``, ``*`` wildcards) over a different set of
fields, because an entitlement is not an event: ``system``, ``principal``, ``principal_kind``
(alias ``kind``), ``privilege``, ``scope``, ``granted_via`` (alias ``via``), ``privileged``
(``true``/``false``) and ``attributes.<key>``. Values compare case-sensitively, as the
systems they come from do. Only ``:`` is an operator; free words are refused, so a typo
cannot silently select everything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from keeptrail.errors import UserError
from keeptrail.permissions.model import Entitlement
from keeptrail.query.errors import QueryError
from keeptrail.query.lexer import Kind, Token, tokenize
from keeptrail.query.patterns import glob_match

Filter = Callable[[Entitlement], bool]

FIELDS: Final = (
    "system",
    "principal",
    "principal_kind",
    "privilege",
    "scope",
    "granted_via",
    "privileged",
    "attributes.<key>",
)
_ALIASES: Final = {"kind": "principal_kind", "via": "granted_via", "user": "principal"}
_TEXT_FIELDS: Final = frozenset(
    {"system", "principal", "principal_kind", "privilege", "scope", "granted_via"}
)
MAX_TERMS: Final = 64
MAX_DEPTH: Final = 16


class ScopeError(UserError):
    """A scope that does not parse; the message names the position."""


def parse_scope(text: str) -> Filter:
    """A predicate over entitlements; an empty scope selects everything."""
    try:
        tokens = list(tokenize(text))
    except QueryError as exc:
        raise ScopeError(f"invalid scope: {exc.message} (at position {exc.position})") from None
    parser = _Parser(tokens)
    if parser.peek() is Kind.END:
        return lambda _e: True
    result = parser.or_(0)
    if parser.peek() is not Kind.END:
        tok = parser.tokens[parser.index]
        raise ScopeError(f"invalid scope: unexpected {tok.kind.value} at position {tok.position}")
    return result


class _Parser:
    """Recursive descent: NOT binds tighter than AND, AND tighter than OR."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.terms = 0

    def peek(self) -> Kind:
        return self.tokens[self.index].kind

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not Kind.END:
            self.index += 1
        return token

    def or_(self, depth: int) -> Filter:
        parts = [self.and_(depth)]
        while self.peek() is Kind.OR:
            self.advance()
            parts.append(self.and_(depth))
        if len(parts) == 1:
            return parts[0]
        return lambda e: any(p(e) for p in parts)

    def and_(self, depth: int) -> Filter:
        parts = [self.unary(depth)]
        while self.peek() in {Kind.AND, Kind.NOT, Kind.LPAREN, Kind.TERM, Kind.WORD, Kind.PHRASE}:
            if self.peek() is Kind.AND:
                self.advance()
            parts.append(self.unary(depth))
        if len(parts) == 1:
            return parts[0]
        return lambda e: all(p(e) for p in parts)

    def unary(self, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise ScopeError(f"invalid scope: nested more than {MAX_DEPTH} levels deep")
        if self.peek() is Kind.NOT:
            self.advance()
            inner = self.unary(depth + 1)
            return lambda e: not inner(e)
        token = self.advance()
        if token.kind is Kind.LPAREN:
            inner = self.or_(depth + 1)
            if self.advance().kind is not Kind.RPAREN:
                raise ScopeError(f"invalid scope: unclosed '(' at position {token.position}")
            return inner
        if token.kind is Kind.TERM:
            self.terms += 1
            if self.terms > MAX_TERMS:
                raise ScopeError(f"invalid scope: more than {MAX_TERMS} terms")
            return _term(token)
        if token.kind in {Kind.WORD, Kind.PHRASE}:
            raise ScopeError(
                f"invalid scope: bare word at position {token.position}; write field:value "
                f"(fields: {', '.join(FIELDS)})"
            )
        raise ScopeError(f"invalid scope: expected a term at position {token.position}")


def _term(token: Token) -> Filter:
    """``field:value`` as a predicate; only ``:`` is supported."""
    assert token.value is not None  # the lexer sets it for TERM
    if token.op != ":":
        raise ScopeError(f"invalid scope: only ':' compares (at position {token.op_position})")
    name = token.field.lower()
    name = _ALIASES.get(name, name)
    chunks = token.value.chunks
    if name == "privileged":
        wanted = token.value.text.lower()
        if wanted not in {"true", "false"}:
            raise ScopeError("invalid scope: privileged is true or false")
        flag = wanted == "true"
        return lambda e: e.privileged is flag
    if name.startswith("attributes."):
        key = token.field[len("attributes.") :]

        def attribute(e: Entitlement) -> bool:
            value = e.attributes.get(key)
            if value is None:
                return False
            text = str(value).lower() if isinstance(value, bool) else str(value)
            return glob_match(chunks, text)

        return attribute
    if name not in _TEXT_FIELDS:
        raise ScopeError(
            f"invalid scope: unknown field {token.field!r}; fields: {', '.join(FIELDS)}"
        )
    return lambda e: glob_match(chunks, str(getattr(e, name)))
