"""What kind of SQL statement a database log line carries: its command tag, and DDL or not.

Shared by the PostgreSQL, MySQL and MariaDB parsers. The tag is the statement's leading
keywords, upper-cased (``SELECT``, ``CREATE TABLE``, ``DROP ROLE``): enough for rules such as
"destructive DDL" without parsing SQL. Leading comments, parentheses and whitespace are
skipped; anything else (a statement that starts with garbage) gets no tag.
"""

from __future__ import annotations

import re
from typing import Final

DDL_VERBS: Final = frozenset(
    {"CREATE", "ALTER", "DROP", "TRUNCATE", "GRANT", "REVOKE", "RENAME", "COMMENT", "REINDEX"}
)
# Words between a DDL verb and its object type that are not the object type.
_MODIFIERS: Final = frozenset(
    {
        "OR",
        "REPLACE",
        "UNIQUE",
        "TEMP",
        "TEMPORARY",
        "UNLOGGED",
        "GLOBAL",
        "LOCAL",
        "IF",
        "DEFINER",
        "ALGORITHM",
        "SQL",
        "SECURITY",
        "ONLINE",
        "OFFLINE",
        "IGNORE",
        "TRUSTED",
        "PROCEDURAL",
        "DEFAULT",
    }
)
# Whitespace, comments and parentheses; a MySQL ``/*!50001 ...*/`` comment is code, so only
# its opener is skipped.
_LEADING_NOISE: Final = re.compile(r"(?:\s+|/\*!\d*|/\*.*?\*/|--[^\n]*\n?|\()*", re.DOTALL)
_WORD: Final = re.compile(r"[A-Za-z_]+")


def command_tag(statement: str) -> str | None:
    """``CREATE TABLE`` for ``create table t (...)``; ``None`` when no keyword leads."""
    start = 0
    if statement[:1] in " \t\r\n/(-":
        noise = _LEADING_NOISE.match(statement)
        start = noise.end() if noise is not None else 0
    m = _WORD.match(statement, start)
    if m is None:
        return None
    verb = m[0].upper()
    if verb not in DDL_VERBS or verb in {"TRUNCATE", "GRANT", "REVOKE", "REINDEX"}:
        return verb
    pos = m.end()
    for _ in range(4):  # CREATE OR REPLACE TEMP VIEW: skip up to four modifiers
        while pos < len(statement) and statement[pos] in " \t\r\n":
            pos += 1
        w = _WORD.match(statement, pos)
        if w is None:
            return verb
        word = w[0].upper()
        pos = w.end()
        if word not in _MODIFIERS:
            if word in {"MATERIALIZED", "FOREIGN"}:
                nxt = _WORD.match(statement, pos + 1)
                if nxt is not None:
                    return f"{verb} {word} {nxt[0].upper()}"
            return f"{verb} {word}"
    return verb


def is_ddl(tag: str | None) -> bool:
    """Whether a command tag names a schema or privilege change."""
    return tag is not None and tag.partition(" ")[0] in DDL_VERBS
