"""The search query language: one parser, two compilers that agree.

``parse(text)`` gives an immutable tree; ``compile_sql(tree, dialect)`` turns it into a
``WHERE`` fragment with bound parameters for the store, and ``compile_predicate(tree)``
into a function over in-memory events for the rules engine. Example::

    tree = parse('user:adm* AND NOT source.ip:10.0.0.0/8 "session opened"')
    sql, params = compile_sql(tree, Dialect.SQLITE)
    matches = compile_predicate(tree)
"""

from keeptrail.query.compile_sql import Compiled, Dialect, compile_sql, compile_time_range
from keeptrail.query.errors import QueryError
from keeptrail.query.fields import ALIASES, FIELD_TABLE, Field, Kind, resolve_field
from keeptrail.query.parse import MAX_DEPTH, MAX_TERMS, parse
from keeptrail.query.predicate import Predicate, compile_predicate
from keeptrail.query.timerange import (
    TimeRange,
    parse_duration,
    parse_instant,
    parse_time_bound,
    parse_time_range,
)
from keeptrail.query.tree import Node

__all__ = [
    "ALIASES",
    "FIELD_TABLE",
    "MAX_DEPTH",
    "MAX_TERMS",
    "Compiled",
    "Dialect",
    "Field",
    "Kind",
    "Node",
    "Predicate",
    "QueryError",
    "TimeRange",
    "compile_predicate",
    "compile_sql",
    "compile_time_range",
    "parse",
    "parse_duration",
    "parse_instant",
    "parse_time_bound",
    "parse_time_range",
    "resolve_field",
]
