"""Linux auditd (``/var/log/audit/audit.log``): records assembled into events by serial.

The kernel writes one audit event as several records sharing ``msg=audit(TIME:SERIAL)``
(``SYSCALL``, ``EXECVE``, ``CWD``, ``PATH``..., then ``EOE``); user-space programs write
single records (``USER_LOGIN``, ``ADD_USER``, ``DAEMON_END``...) that never get an ``EOE``.
The assembler keys open events by ``(node, serial)`` and emits one:

* at its ``EOE`` record;
* at once, for a single-record type (:data:`SINGLE_RECORD`);
* when it goes stale: no record of it among the last ``max_idle`` records fed (audit.log
  files written without ``EOE``, or an ``EOE`` that was lost). Staleness is counted in
  records, not seconds, so a clock step or a file replayed out of time order never splits an
  event;
* when more than ``max_open`` events are open (the oldest goes first) — so memory stays
  bounded and nothing waits forever;
* when one event holds ``max_lines`` records or ``max_chars`` characters (a serial that
  never ends, an argv of megabytes), or all open events together hold more than
  ``max_held_chars``, the oldest first: the event is emitted as it is, with
  ``details.held_limit`` (``lines``, ``chars`` or ``stream``) saying why, and the records
  of it still to come start a new, partial event;
* at :meth:`flush`, as complete as it got.

Records arriving out of order or interleaved with other events are still grouped; a record
that arrives after its event was emitted starts a new (partial) event rather than being
dropped. Lines that are not audit records become ``unparsed`` events; blank lines are
skipped (the ingest loop counts them). Time is the record's own timestamp.
"""

from __future__ import annotations

from typing import Final

from keeptrail.event import Event, unparsed
from keeptrail.parsers.auditd_map import build
from keeptrail.parsers.auditd_records import Record, parse_record
from keeptrail.parsers.base import StreamContext
from keeptrail.parsers.holding import Held, HeldRecords

NAME: Final = "auditd"

_SINGLE_PREFIXES: Final = (
    "USER_",
    "CRED_",
    "DAEMON_",
    "SERVICE_",
    "SYSTEM_",
    "ACCT_",
    "GRP_",
    "ROLE_",
    "USYS_",
    "ANOM_LOGIN",
    "ANOM_ADD",
    "ANOM_DEL",
    "ANOM_MOD",
    "CRYPTO_",
    "VIRT_",
)
SINGLE_RECORD: Final = frozenset(
    {"ADD_USER", "DEL_USER", "ADD_GROUP", "DEL_GROUP", "CHUSER_ID", "CHGRP_ID", "TRUSTED_APP"}
)


def is_single_record(record_type: str) -> bool:
    """Whether a record type is a whole event by itself (user-space messages)."""
    return record_type in SINGLE_RECORD or record_type.startswith(_SINGLE_PREFIXES)


def sniff(line: str) -> bool:
    """Whether a first line is an audit.log record (raw or ENRICHED, with or without node=)."""
    return parse_record(line) is not None


class _Open(Held):
    """The records of one event seen so far, with their lines."""

    __slots__ = ("records", "seen_at")

    def __init__(self, record: Record, line: str, start: int, seen_at: int) -> None:
        super().__init__(line, start)
        self.records = [record]
        self.seen_at = seen_at


class AuditdAssembler:
    """Groups audit records into events (see the module docstring for when one is emitted)."""

    def __init__(
        self,
        ctx: StreamContext,
        *,
        max_open: int = 256,
        max_idle: int = 128,
        max_lines: int = 4096,
        max_chars: int = 8 << 20,
        max_held_chars: int = 64 << 20,
    ) -> None:
        self._ctx = ctx
        self._open: HeldRecords[tuple[str | None, int], _Open] = HeldRecords(
            max_lines=max_lines, max_chars=max_chars, max_held_chars=max_held_chars
        )
        self._max_open = max_open
        self._max_idle = max_idle
        self._fed = 0
        self._every = max(1, min(16, max_idle // 8))

    def feed(self, line: str, start: int) -> list[Event]:
        """Take one line; return the events it completed (often none, sometimes several)."""
        if not line or line.isspace():
            return []
        record = parse_record(line)
        if record is None:
            event = unparsed(line, self._ctx.reference_us, host=self._ctx.host)
            event.reason = "not_an_audit_record"
            event.collector_parser = "unparsed"
            event.collector_offset = start
            return [event]
        out: list[Event] = []
        key = (record.node, record.serial)
        self._fed += 1
        open_ = self._open
        if is_single_record(record.type):
            out.append(self._emit(_Open(record, line, start, self._fed)))
        else:
            group = open_.get(key)
            if group is None:
                group = _Open(record, line, start, self._fed)
                open_.put(key, group)
            else:
                group.records.append(record)
                group.seen_at = self._fed
                open_.add(group, line)
            if record.type == "EOE":
                out.append(self._emit(open_.take(key)))
            else:
                limit = open_.full(group)
                if limit is not None:
                    out.append(self._emit(open_.take(key), limit=limit))
        # Staleness is checked every few records (cheap), the bounds on every one.
        stale_check = len(open_) > 0 and self._fed % self._every == 0
        if stale_check or len(open_) > self._max_open or open_.over():
            self._evict(out)
        return out

    def _evict(self, out: list[Event]) -> None:
        """Emit the oldest open events beyond the bounds, and those gone stale."""
        open_ = self._open
        while len(open_) > self._max_open:
            out.append(self._emit(open_.take(open_.oldest()[0])))
        while open_.over():
            out.append(self._emit(open_.take(open_.oldest()[0]), limit="stream"))
        idle_before = self._fed - self._max_idle
        while len(open_):
            key, group = open_.oldest()
            if group.seen_at >= idle_before:
                break
            out.append(self._emit(open_.take(key)))

    def flush(self) -> list[Event]:
        """The input ended: emit every open event in the order it started."""
        return [self._emit(group) for group in self._open.clear()]

    def pending_since(self) -> int | None:
        """Start offset of the oldest line of an event still open."""
        return self._open.oldest_start()

    def _emit(self, group: _Open, *, limit: str | None = None) -> Event:
        raw = group.raw
        try:
            event = build(group.records, self._ctx.host)
        except (ValueError, KeyError, IndexError, OverflowError) as exc:  # never lose the lines
            event = unparsed(raw, group.records[0].time_us, host=self._ctx.host)
            event.reason = "auditd_mapping_error"
            event.details["error"] = type(exc).__name__
            event.collector_parser = "unparsed"
        else:
            event.collector_parser = NAME
        return group.stamp(event, limit)


def assembler(ctx: StreamContext) -> AuditdAssembler:
    """A fresh assembler for one auditd stream."""
    return AuditdAssembler(ctx)
