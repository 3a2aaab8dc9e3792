"""Records held back until they are complete, with bounds on how much they may hold.

Assemblers whose records span lines keyed by an id (auditd by serial, Kubernetes audit by
``auditID``) hold lines until the record's last one comes — which a broken or hostile stream
may never send, or send after megabytes. :class:`HeldRecords` keeps the held records in arrival
order, counts their characters, and says when a bound is reached: a record holding
``max_lines`` lines or ``max_chars`` characters is *full* (its assembler emits it as it is and
holds the rest of it afresh), and while all records together hold more than
``max_held_chars``, the oldest must go. The assembler decides what an early record becomes;
this module only keeps count, so memory per stream is bounded whatever the input.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from keeptrail.event import Event


class Held:
    """The lines of one held record: the offset its first line started at, their size."""

    __slots__ = ("chars", "lines", "start")

    def __init__(self, line: str, start: int) -> None:
        self.lines = [line]
        self.start = start
        self.chars = len(line)

    @property
    def raw(self) -> str:
        """The record's lines as one event's ``raw``."""
        return self.lines[0] if len(self.lines) == 1 else "\n".join(self.lines)

    def stamp(self, event: Event, limit: str | None) -> Event:
        """Give ``event`` the record's lines and offset, and why it left early if it did."""
        event.raw = self.raw
        event.collector_offset = self.start
        if limit is not None:  # more of this record may follow, as a new one
            event.details["held_limit"] = limit
        return event


K = TypeVar("K", bound=Hashable)
H = TypeVar("H", bound=Held)


class HeldRecords(Generic[K, H]):
    """Held records by key, oldest first, with their total size (see the module docstring)."""

    __slots__ = ("_items", "chars", "max_chars", "max_held_chars", "max_lines")

    def __init__(self, *, max_lines: int, max_chars: int, max_held_chars: int) -> None:
        self._items: dict[K, H] = {}
        self.chars = 0  # characters of every held line
        self.max_lines = max_lines
        self.max_chars = max_chars
        self.max_held_chars = max_held_chars

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> H | None:
        return self._items.get(key)

    def put(self, key: K, held: H) -> None:
        """Hold a new record (its first line already in it)."""
        self._items[key] = held
        self.chars += held.chars

    def add(self, held: H, line: str) -> None:
        """Add one more line to a held record."""
        held.lines.append(line)
        held.chars += len(line)
        self.chars += len(line)

    def take(self, key: K) -> H:
        """Stop holding a record and return it."""
        held = self._items.pop(key)
        self.chars -= held.chars
        return held

    def oldest_start(self) -> int | None:
        """Start offset of the oldest held line (records are kept in arrival order)."""
        for held in self._items.values():
            return held.start
        return None

    def oldest(self) -> tuple[K, H]:
        """The record held longest, with its key (only call when something is held)."""
        return next(iter(self._items.items()))

    def full(self, held: H) -> str | None:
        """``lines`` or ``chars`` when one record reached its bound, else ``None``."""
        if len(held.lines) >= self.max_lines:
            return "lines"
        if held.chars >= self.max_chars:
            return "chars"
        return None

    def over(self) -> bool:
        """Whether all held records together exceed ``max_held_chars``."""
        return self.chars > self.max_held_chars

    def clear(self) -> list[H]:
        """Stop holding everything; the records in the order they started."""
        items = list(self._items.values())
        self._items.clear()
        self.chars = 0
        return items
