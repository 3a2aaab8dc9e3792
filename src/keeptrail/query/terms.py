"""One field term (``field``, operator, value) to a typed leaf of the tree.

This is where a value gets its meaning: ``10.0.*`` becomes a CIDR range, ``2024-01-01``
becomes a span of microseconds, ``high`` becomes a set of severities. Errors point at the
part of the term that is wrong (the field name, the operator or the value).
"""

from __future__ import annotations

import re
import uuid
from typing import Final

from keeptrail.event import SEVERITIES
from keeptrail.netaddr import ip_to_bytes, network_bounds
from keeptrail.query.errors import QueryError
from keeptrail.query.fields import SEVERITY_RANK, Field, Kind
from keeptrail.query.lexer import Value
from keeptrail.query.patterns import is_exact
from keeptrail.query.timerange import parse_instant
from keeptrail.query.tree import Exists, IdEquals, IntRange, IpRange, Node, OneOf, TextMatch

# Bounds leave room for the +1/-1 that turns > and < into inclusive ranges within int64.
INT_MIN: Final = -(2**63) + 1
INT_MAX: Final = 2**63 - 2
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_IPV4_PREFIX: Final = re.compile(r"(?:[0-9]{1,3}\.){1,3}")
_COMPARABLE: Final = frozenset({Kind.INT, Kind.TIME, Kind.SEVERITY})


def build_term(field: Field, op: str, value: Value, op_position: int) -> Node:
    """The leaf for ``field op value``; QueryError when the value does not fit the field."""
    if value.chunks == ("", "") and not value.quoted:
        if op != ":":
            raise QueryError(
                f"'{op}*' is not a comparison; use {field.name}:* for presence", op_position
            )
        return Exists(field)
    if op != ":" and field.kind not in _COMPARABLE:
        raise QueryError(
            f"{field.name} cannot be compared with {op!r}; comparisons work on numbers, "
            "times and severity",
            op_position,
        )
    if field.kind in (Kind.TEXT, Kind.DETAIL):
        return TextMatch(field, value.chunks)
    if field.kind is Kind.KEYWORD:
        return TextMatch(field, tuple(chunk.lower() for chunk in value.chunks))
    if field.kind is Kind.SEVERITY:
        return _severity(field, op, value)
    if not is_exact(value.chunks):
        if field.kind is Kind.IP:
            return _ip_wildcard(field, value)
        raise QueryError(f"wildcards are not supported on {field.name}", value.position)
    if field.kind is Kind.INT:
        return _int_range(field, op, _integer(value))
    if field.kind is Kind.TIME:
        return _time_range(field, op, value)
    if field.kind is Kind.IP:
        return _ip(field, value)
    return _id(field, value)


def _severity(field: Field, op: str, value: Value) -> Node:
    """Severity compares by rank; an exact value must be one of the known levels."""
    chunks = tuple(chunk.lower() for chunk in value.chunks)
    if op == ":" and not is_exact(chunks):
        return TextMatch(field, chunks)
    rank = SEVERITY_RANK.get(chunks[0]) if is_exact(chunks) else None
    if rank is None:
        raise QueryError(
            f"unknown severity {value.text!r}; use one of {', '.join(SEVERITIES)}",
            value.position,
        )
    if op == ":":
        return TextMatch(field, chunks)
    ranks = {
        ">": range(rank + 1, len(SEVERITIES)),
        ">=": range(rank, len(SEVERITIES)),
        "<": range(rank),
        "<=": range(rank + 1),
    }[op]
    return OneOf(field, tuple(SEVERITIES[r] for r in ranks))


def _integer(value: Value) -> int:
    """A 64-bit integer written in ASCII digits (no unicode digits, no underscores)."""
    text = value.text.strip()
    if not _INTEGER.fullmatch(text):
        raise QueryError(f"expected an integer, got {value.text!r}", value.position)
    number = int(text) if len(text) <= 24 else INT_MAX + 1  # int() refuses huge digit runs
    if not INT_MIN <= number <= INT_MAX:
        raise QueryError(f"integer {text} is out of range", value.position)
    return number


def _int_range(field: Field, op: str, number: int) -> IntRange:
    """``op number`` as inclusive bounds."""
    if op == ":":
        return IntRange(field, number, number)
    if op == ">":
        return IntRange(field, number + 1, None)
    if op == ">=":
        return IntRange(field, number, None)
    if op == "<":
        return IntRange(field, None, number - 1)
    return IntRange(field, None, number)


def _time_range(field: Field, op: str, value: Value) -> IntRange:
    """A time as a span: ``time:2024-01-01`` is the day, ``time<=2024-01-01`` includes it."""
    try:
        start, end = parse_instant(value.text)
    except ValueError as exc:
        raise QueryError(str(exc), value.position) from None
    if op == ":":
        return IntRange(field, start, end - 1)
    if op == ">":
        return IntRange(field, end, None)
    if op == ">=":
        return IntRange(field, start, None)
    if op == "<":
        return IntRange(field, None, start - 1)
    return IntRange(field, None, end - 1)


def _ip(field: Field, value: Value) -> IpRange:
    """A single address, or a CIDR network (host bits ignored), as a byte range."""
    text = value.text.strip()
    try:
        if "/" in text:
            low, high = network_bounds(text)
        else:
            low = high = ip_to_bytes(text)
    except ValueError:
        raise QueryError(
            f"{text!r} is not an IP address or CIDR network (e.g. 10.0.0.1, 10.0.0.0/8, "
            "2001:db8::/32)",
            value.position,
        ) from None
    return IpRange(field, low, high)


def _ip_wildcard(field: Field, value: Value) -> IpRange:
    """``10.0.*`` as ``10.0.0.0/16``; any other wildcard on an address is an error."""
    chunks = value.chunks
    if len(chunks) == 2 and chunks[1] == "" and _IPV4_PREFIX.fullmatch(chunks[0]):
        octets = chunks[0].rstrip(".").split(".")
        if all(int(octet) <= 255 for octet in octets):
            cidr = ".".join([*octets, *["0"] * (4 - len(octets))]) + f"/{8 * len(octets)}"
            return IpRange(field, *network_bounds(cidr))
    raise QueryError(
        f"wildcards on {field.name} are only IPv4 prefixes like 10.0.*; "
        "use CIDR notation (10.0.0.0/16, 2001:db8::/32) for other ranges",
        value.position,
    )


def _id(field: Field, value: Value) -> IdEquals:
    """An event id: any UUID spelling, kept in canonical form."""
    try:
        parsed = uuid.UUID(value.text.strip())
    except ValueError:
        raise QueryError(f"{value.text!r} is not a UUID", value.position) from None
    return IdEquals(field, str(parsed))
