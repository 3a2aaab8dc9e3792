"""The one error a query can raise, carrying where in the text it went wrong.

Search boxes and the CLI show the user their own query with a caret under the problem, so
the error keeps the query text and a 0-based character position rather than a traceback.
"""

from __future__ import annotations

import unicodedata
from typing import Final

_WINDOW: Final = 60  # characters of context shown on each side of the caret


class QueryError(ValueError):
    """An invalid query: ``message`` about the character at ``position`` of ``query``.

    ``str()`` is the rendered form (message, the query, a caret line) so that printing the
    exception is already the user-facing output.
    """

    def __init__(self, message: str, position: int, query: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.position = max(0, min(position, len(query))) if query else max(0, position)
        self.query = query

    def with_query(self, query: str) -> QueryError:
        """The same error attached to the full query text (inner code may not know it)."""
        return QueryError(self.message, self.position, query)

    def render(self) -> str:
        """Message, then the query (a window around long ones), then a caret under the spot."""
        head = f"{self.message} (at position {self.position})"
        if not self.query:
            return head
        start = max(0, self.position - _WINDOW)
        end = min(len(self.query), self.position + _WINDOW)
        shown = "".join(_printable(ch) for ch in self.query[start:end])
        prefix = "..." if start > 0 else ""
        suffix = "..." if end < len(self.query) else ""
        caret = " " * (len(prefix) + self.position - start) + "^"
        return f"{head}\n  {prefix}{shown}{suffix}\n  {caret}"

    def __str__(self) -> str:
        return self.render()


def _printable(ch: str) -> str:
    """One display column per character, so the caret stays under the right one."""
    if ch == " " or (
        ch.isprintable()
        and not unicodedata.combining(ch)
        and unicodedata.east_asian_width(ch) not in "WF"
    ):
        return ch
    return "\N{MIDDLE DOT}"
