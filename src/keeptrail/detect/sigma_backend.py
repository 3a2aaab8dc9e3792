"""A pySigma backend whose output is Keeptrail's query language.

pySigma parses a Sigma rule, applies the field mapping of :mod:`keeptrail.detect.sigma_pipeline`
and walks the condition tree; this backend only says how each node is spelt in our language:
``field:value`` terms, ``*`` wildcards, ``AND``/``OR``/``NOT``, ``field:*`` for presence, CIDR
ranges on ``source.ip``, ``>``/``>=`` on numbers. Sigma keywords (values without a field) and
message-like fields become free text, which is a case-insensitive substring match of the raw
line — what a Sigma keyword means.

Anything our language cannot express raises :class:`UnsupportedSigma` (a pySigma
``SigmaFeatureNotSupportedByBackendError``) with a reason a person can act on (``regular
expressions (|re) are not supported``, ``unmapped field 'a0'``), which the converter reports
for that rule. A value is quoted (or, with wildcards, written with every character that means
something to our lexer escaped by a backslash), so no Sigma value can change the structure of
the query.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import Placeholder, SigmaCompareExpression, SigmaString, SpecialChars

from keeptrail.detect.sigma_pipeline import FREE_TEXT
from keeptrail.query.fields import DETAIL_PREFIX, FIELD_TABLE

# Characters our lexer gives a meaning to inside an unquoted value or a free-text word.
_SPECIAL: Final = frozenset('\\*"() \t\n\r\x0b\x0c:<>')
_KEYWORDS: Final = frozenset({"and", "or", "not"})


class UnsupportedSigma(SigmaFeatureNotSupportedByBackendError):
    """A Sigma construct with no equivalent in Keeptrail's query language."""


def is_keeptrail_field(name: str) -> bool:
    """Whether a (mapped) field name is one of ours: a canonical dotted name or ``details.x``."""
    if name.startswith(DETAIL_PREFIX):
        key = name[len(DETAIL_PREFIX) :]
        return bool(key) and all(c.isalnum() or c in "_.-" for c in key) and len(key) <= 128
    return name in FIELD_TABLE


def escape_text(text: str, *, first: bool) -> str:
    """A literal chunk with our lexer's special characters backslash-escaped."""
    out: list[str] = []
    for index, ch in enumerate(text):
        if ch in _SPECIAL or (first and index == 0 and ch == "-"):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def render_value(value: SigmaString) -> str:
    """A Sigma string as one unquoted value of our language (``*`` kept as the wildcard)."""
    parts: list[str] = []
    for part in value.s:
        if isinstance(part, str):
            parts.append(escape_text(part, first=not parts))
        elif part is SpecialChars.WILDCARD_MULTI:
            parts.append("*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            raise UnsupportedSigma("single-character wildcard '?' is not supported")
        elif isinstance(part, Placeholder):
            raise UnsupportedSigma(f"placeholder %{part.name}% (|expand) is not supported")
        else:  # pragma: no cover - SigmaString holds only these
            raise UnsupportedSigma(f"unsupported value part {part!r}")
    if all(isinstance(part, str) for part in value.s):
        literal = "".join(str(part) for part in value.s)
        if (
            not literal
            or literal.startswith("-")
            or literal.lower() in _KEYWORDS
            or any(ch in _SPECIAL for ch in literal)
        ):
            return '"' + literal.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "".join(parts)


class KeeptrailBackend(TextQueryBackend):
    """Sigma conditions to Keeptrail queries (see the module docstring)."""

    name: ClassVar[str] = "Keeptrail query language"
    formats: ClassVar[dict[str, str]] = {"default": "Keeptrail query"}
    requires_pipeline: ClassVar[bool] = True

    precedence: ClassVar[Any] = (ConditionNOT, ConditionAND, ConditionOR)
    group_expression: ClassVar[str | None] = "({expr})"
    token_separator: str = " "  # noqa: S105 (query syntax, not secrets)
    or_token: ClassVar[str] = "OR"  # noqa: S105
    and_token: ClassVar[str] = "AND"  # noqa: S105
    not_token: ClassVar[str] = "NOT"  # noqa: S105
    eq_token: ClassVar[str] = ":"  # noqa: S105

    str_quote: ClassVar[str] = ""
    escape_char: ClassVar[str | None] = "\\"
    wildcard_multi: ClassVar[str | None] = "*"
    wildcard_single: ClassVar[str | None] = None
    bool_values: ClassVar[dict[bool, str | None]] = {True: "true", False: "false"}

    case_sensitive_match_expression: ClassVar[str | None] = "{field}:{value}"
    cidr_expression: ClassVar[str | None] = "{field}:{value}"
    compare_op_expression: ClassVar[str | None] = "{field}{operator}{value}"
    compare_operators: ClassVar[dict[Any, str] | None] = {
        SigmaCompareExpression.CompareOperators.LT: "<",
        SigmaCompareExpression.CompareOperators.LTE: "<=",
        SigmaCompareExpression.CompareOperators.GT: ">",
        SigmaCompareExpression.CompareOperators.GTE: ">=",
    }
    field_null_expression: ClassVar[str | None] = "NOT {field}:*"
    field_exists_expression: ClassVar[str | None] = "{field}:*"
    field_not_exists_expression: ClassVar[str | None] = "NOT {field}:*"
    unbound_value_str_expression: ClassVar[str | None] = "{value}"
    unbound_value_num_expression: ClassVar[str | None] = "{value}"
    # re, field references and timestamp parts stay None: pySigma raises NotImplementedError,
    # which the converter reports.

    def escape_and_quote_field(self, field_name: str) -> str:
        if field_name == FREE_TEXT:
            raise UnsupportedSigma(
                "a message field only supports text matching (not |cidr, |exists, comparisons)"
            )
        if not is_keeptrail_field(field_name):
            raise UnsupportedSigma(f"unmapped field {field_name!r}")
        return field_name

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        return render_value(s)

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        if cond.field == FREE_TEXT:  # a message field: search the line for the text
            assert isinstance(cond.value, SigmaString)
            return render_value(cond.value)
        return super().convert_condition_field_eq_val_str(cond, state)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        if cond.field == FREE_TEXT:
            raise UnsupportedSigma("|cased on a message field: free text is case-insensitive")
        return super().convert_condition_field_eq_val_str_case_sensitive(cond, state)

    def convert_condition_field_eq_val_cidr(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        if cond.field != "source.ip":
            raise UnsupportedSigma(f"|cidr on {cond.field}: only source.ip holds addresses")
        return super().convert_condition_field_eq_val_cidr(cond, state)

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        raise UnsupportedSigma(f"regular expressions (|re on {cond.field}) are not supported")

    def convert_condition_val_re(self, cond: Any, state: ConversionState) -> Any:
        raise UnsupportedSigma("regular expressions (|re keyword) are not supported")

    def convert_condition_field_eq_field(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        raise UnsupportedSigma(f"field references (|fieldref on {cond.field}) are not supported")

    def convert_condition_field_eq_val_timestamp_part(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        raise UnsupportedSigma("time-part modifiers (|minute, |hour, ...) are not supported")

    def convert_condition_field_eq_val_num(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        if cond.field == FREE_TEXT:
            return str(cond.value)
        return f"{self.escape_and_quote_field(cond.field)}:{cond.value}"
