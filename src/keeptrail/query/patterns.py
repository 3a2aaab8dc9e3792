"""``*`` patterns: their SQL spellings and the pure-Python matcher that agrees with them.

A pattern is a tuple of literal chunks separated by ``*`` (see :mod:`keeptrail.query.tree`).
Only ``*`` is a wildcard in the query language, so every other character a backend would
treat specially (GLOB's ``[ ] ?``, LIKE's ``% _ \\``) is escaped here, and the Python
matcher needs no regular expressions (and so has no catastrophic backtracking to fear).
"""

from __future__ import annotations

from typing import Final

_MAX_CODE_POINT: Final = 0x10FFFF
_SURROGATES: Final = range(0xD800, 0xE000)

_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """Lowercase A-Z only: exactly what SQLite's built-in ``lower()`` does.

    ``str.lower`` is the same thing on ASCII text and much faster than ``translate``.
    """
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def is_exact(chunks: tuple[str, ...]) -> bool:
    """True when the pattern has no wildcard at all."""
    return len(chunks) == 1


def is_prefix(chunks: tuple[str, ...]) -> bool:
    """True for ``abc*``: a single trailing wildcard, answerable by an index range."""
    return len(chunks) == 2 and chunks[1] == ""


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix``.

    Strings compare by code point in Python and by UTF-8 bytes in SQLite (BINARY) and
    PostgreSQL (``COLLATE "C"``); both orders agree, so ``prefix <= s < bound`` holds
    exactly when ``s`` starts with ``prefix``. Returns ``None`` when no bound exists
    (empty prefix, or only U+10FFFF characters), meaning the range is open above.
    """
    chars = list(prefix)
    while chars and ord(chars[-1]) == _MAX_CODE_POINT:
        chars.pop()
    if not chars:
        return None
    nxt = ord(chars[-1]) + 1
    if nxt in _SURROGATES:  # surrogates are not characters; skip to the next real one
        nxt = _SURROGATES.stop
    chars[-1] = chr(nxt)
    return "".join(chars)


def glob_escape(literal: str) -> str:
    """A literal for SQLite GLOB: the metacharacters become one-character classes."""
    out = []
    for ch in literal:
        out.append(f"[{ch}]" if ch in "*?[]" else ch)
    return "".join(out)


def to_glob(chunks: tuple[str, ...]) -> str:
    """The SQLite GLOB pattern for a chunk tuple (a full-string match)."""
    return "*".join(glob_escape(chunk) for chunk in chunks)


def like_escape(literal: str) -> str:
    """A literal for PostgreSQL ``LIKE ... ESCAPE '\\'``."""
    return literal.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def to_like(chunks: tuple[str, ...]) -> str:
    """The PostgreSQL LIKE pattern for a chunk tuple (a full-string match)."""
    return "%".join(like_escape(chunk) for chunk in chunks)


def unanchored(chunks: tuple[str, ...]) -> tuple[str, ...]:
    """The pattern made to match anywhere: ``a*b`` becomes ``*a*b*``."""
    return ("", *chunks, "")


def glob_match(chunks: tuple[str, ...], text: str) -> bool:
    """Whether ``text`` matches the whole pattern, as GLOB/LIKE would.

    First chunk anchors the start, last anchors the end, and each middle chunk is taken at
    its leftmost occurrence: for ``*``-only patterns, leftmost is always a safe choice.
    """
    if len(chunks) == 1:
        return text == chunks[0]
    first, *middle, last = chunks
    if len(text) < len(first) + len(last):
        return False
    if not text.startswith(first) or not text.endswith(last):
        return False
    pos = len(first)
    end = len(text) - len(last)
    for chunk in middle:
        found = text.find(chunk, pos, end)
        if found < 0:
            return False
        pos = found + len(chunk)
    return True
