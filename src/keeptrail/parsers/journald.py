"""journald's JSON export (``journalctl -o json``): one entry per line, MESSAGE to its parser.

Each entry's ``MESSAGE`` (a string, or an array of byte values when it is not valid UTF-8)
goes, with its ``SYSLOG_IDENTIFIER`` as the program, to the same per-program parsers as the
syslog path (:func:`keeptrail.parsers.detect.parse_message`): ``sshd``, ``sudo``, ``su``,
PAM, shadow-utils, logind. Entries no parser understands (other programs, coredumps...)
become ``unparsed`` events with ``details.program``.

journald's *trusted* fields — set by journald itself, not by the logging process — win over
the message's claims: ``__REALTIME_TIMESTAMP`` (µs since the epoch) is the event time and
``_HOSTNAME`` the host; ``_PID``, ``_UID``, ``_COMM``, ``_SYSTEMD_UNIT``, ``_BOOT_ID`` and
``__CURSOR`` are kept in ``details`` as ``journal_pid``, ``journal_uid``... (the cursor lets
a reader resume exactly where it stopped).
"""

from __future__ import annotations

from typing import Any, Final

from keeptrail.event import Event, unparsed
from keeptrail.parsers.base import LineAssembler, StreamContext, SyslogMessage
from keeptrail.parsers.detect import parse_message
from keeptrail.parsers.json_line import json_object
from keeptrail.parsers.numerals import TIME_US_MAX, UINT32_MAX, ascii_int

NAME: Final = "journald"

_TRUSTED: Final = (
    ("_PID", "journal_pid"),
    ("_UID", "journal_uid"),
    ("_COMM", "journal_comm"),
    ("_SYSTEMD_UNIT", "journal_unit"),
    ("_BOOT_ID", "journal_boot_id"),
    ("__CURSOR", "journal_cursor"),
    ("_TRANSPORT", "journal_transport"),
)


def sniff(line: str) -> bool:
    """Whether a first line is a journald JSON export entry."""
    head = line.lstrip()
    return head.startswith("{") and '"__REALTIME_TIMESTAMP"' in head


def message_text(value: Any) -> str | None:
    """MESSAGE as text: a string as is, an array of byte values decoded (bad UTF-8 escaped)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value
    ):
        return bytes(value).decode("utf-8", "backslashreplace")
    return None


def _field(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # binary-safe form of any field
        return message_text(value)
    return None


def build(entry: dict[str, Any], ctx: StreamContext) -> Event:
    """The event for one decoded journal entry (unparsed when no parser knows its message)."""
    time = (
        ascii_int(_field(entry, "__REALTIME_TIMESTAMP"), max_value=TIME_US_MAX) or ctx.reference_us
    )
    host = _field(entry, "_HOSTNAME") or ctx.host
    program = _field(entry, "SYSLOG_IDENTIFIER") or _field(entry, "_COMM") or ""
    pid_text = _field(entry, "SYSLOG_PID") or _field(entry, "_PID")
    pid = ascii_int(pid_text, max_value=UINT32_MAX)
    message = message_text(entry.get("MESSAGE"))
    event: Event | None = None
    parser = "unparsed"
    if message is not None and program:
        event, parser = parse_message(SyslogMessage(time, host, program, pid, message))
    if event is None:
        reason = "no_message" if message is None else "no_parser_matched"
        event = unparsed("", time, host=host, reason=reason)
        if program:
            event.details["program"] = program
    event.time = time
    event.target_host = host
    for key, out in _TRUSTED:
        value = _field(entry, key)
        if value is not None:
            event.details[out] = value
    event.collector_parser = NAME if parser != "unparsed" else "unparsed"
    if parser != "unparsed":
        event.details["journal_parser"] = parser
    return event


class JournaldAssembler(LineAssembler):
    """One line, one event: journald entries never span lines in ``-o json``."""

    __slots__ = ()

    def parse(self, line: str) -> Event:
        """Parse one export line; anything that is not a journal entry is ``unparsed``."""
        entry = json_object(line)
        if entry is not None:
            event = build(entry, self._ctx)
        else:
            event = self._unparsed(line, "not_a_journal_entry")
            event.collector_parser = "unparsed"
        return event


def assembler(ctx: StreamContext) -> JournaldAssembler:
    """A fresh assembler for one journald export stream."""
    return JournaldAssembler(ctx)
