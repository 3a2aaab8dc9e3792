"""What every message parser receives and returns.

A syslog framing (:mod:`keeptrail.parsers.syslog`) splits a line into its header and the
program's own message; a format parser (``sshd``, ``sudo``, ...) turns that message into an
:class:`~keeptrail.event.Event`, or returns ``None`` when the message is not one it knows.
Parsers are pure: no files, no clock, no globals that change. The pipeline, not the parser,
fills in the event's id, raw text and collector fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Protocol

from keeptrail.event import Event, unparsed


@dataclass(slots=True)
class SyslogMessage:
    """One syslog line after its framing is removed.

    ``time`` is integer microseconds since the epoch, UTC. ``program`` is the syslog tag
    without its ``[pid]`` (``sshd``, ``sudo``, ``useradd``, ``su(pam_unix)``...). Parsers treat
    it as read-only; it is not ``frozen`` because one is built for every line and a frozen
    dataclass's ``__init__`` costs twice as much (measured: 1.4 µs against 0.7 µs).
    """

    time: int
    host: str | None
    program: str
    pid: int | None
    message: str


class MessageParser(Protocol):
    """A pure function from one framed message to an event, or ``None`` if not understood."""

    def __call__(self, msg: SyslogMessage, /) -> Event | None: ...


@dataclass(slots=True)
class StreamContext:
    """What a stream format needs from outside its lines.

    ``reference_us`` stands in for a timestamp a record lacks (the file's mtime, or when it was
    received) and anchors year inference; ``tz`` is the zone of timestamps written without one;
    ``host`` is the machine the stream came from when the format does not say.
    """

    reference_us: int
    tz: tzinfo = UTC
    host: str | None = None


class RecordAssembler(Protocol):
    """Turns the lines of one stream into events, for formats whose records span lines.

    Single-line formats are the trivial case (one ``feed`` → at most one event). Multi-line
    formats (auditd records grouped by serial, PostgreSQL statements with continuation lines,
    CSV records with quoted newlines) hold lines until their record is complete. The ingest
    loop persists, as the position to resume from, :meth:`pending_since` when something is
    pending, so a crash never loses half a record and never stores one twice.

    Implementations are pure (no files, no clock): everything they know came through ``feed``.
    Every line fed ends up in exactly one event's ``raw`` (an ``unparsed`` one if need be).
    Events come out with ``raw`` (the record's lines joined by ``\n``), ``collector_offset``
    (the start offset of the record's first line) and ``collector_parser`` set.
    """

    def feed(self, line: str, start: int) -> list[Event]:
        """Take one line (without its newline) that began at byte ``start``."""
        ...

    def flush(self) -> list[Event]:
        """The input ended: emit whatever is pending, as complete as it can be."""
        ...

    def pending_since(self) -> int | None:
        """Start offset of the oldest line held back, or ``None`` when nothing is pending."""
        ...


class LineAssembler:
    """The assembler of formats with one record per line: nothing is ever held.

    Subclasses implement :meth:`parse` (an ``unparsed`` event for a line they do not know);
    this class stamps the raw line and its offset and answers the rest of the protocol.
    """

    __slots__ = ("_ctx",)

    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx

    def parse(self, line: str) -> Event:
        """The event for one line; never ``None``, never raises on hostile text."""
        raise NotImplementedError

    def feed(self, line: str, start: int) -> list[Event]:
        event = self.parse(line)
        event.raw = line
        event.collector_offset = start
        return [event]

    def flush(self) -> list[Event]:
        return []

    def pending_since(self) -> int | None:
        return None

    def _unparsed(self, line: str, reason: str) -> Event:
        """An ``unparsed`` event for a line this format does not know, at the reference time."""
        return unparsed(line, self._ctx.reference_us, host=self._ctx.host, reason=reason)


class StreamFormat(Protocol):
    """A log format read as a whole stream (one module per format under ``parsers/``).

    ``NAME`` is what ``--format`` accepts; ``sniff`` says whether a stream's first non-blank
    line looks like this format (auto-detection is per file, not per line, for these formats).
    """

    NAME: str

    def sniff(self, line: str) -> bool: ...

    def assembler(self, ctx: StreamContext) -> RecordAssembler: ...
