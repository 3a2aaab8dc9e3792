"""Which parser a line belongs to, and the one function that turns a line into an event.

Detection is by the syslog tag: each format module declares the programs it speaks for
(``PROGRAMS``). PAM lines are written by whatever program loaded the PAM module (``sshd``,
``sudo``, ``login``, ``gdm-password``...), so when the program's own parser does not know a
message that carries a ``pam_`` marker, the PAM parser gets a turn. A line that no parser
understands is never dropped: it becomes an ``unparsed`` event with its raw text.
"""

from __future__ import annotations

from typing import Final

from keeptrail.event import Event, unparsed
from keeptrail.parsers import logind, pam, postgres, shadow, sshd, su, sudo, web_access
from keeptrail.parsers.base import MessageParser, SyslogMessage
from keeptrail.parsers.syslog import FrameContext, split_syslog

FORMATS: Final[dict[str, MessageParser]] = {
    "sshd": sshd.parse,
    "sudo": sudo.parse,
    "su": su.parse,
    "pam": pam.parse,
    "shadow": shadow.parse,
    "logind": logind.parse,
    "postgres": postgres.parse,
    "web_access": web_access.parse,
}

_BY_PROGRAM: Final[dict[str, str]] = {
    program: name
    for name, module in (
        ("sshd", sshd),
        ("sudo", sudo),
        ("su", su),
        ("pam", pam),
        ("shadow", shadow),
        ("logind", logind),
        ("postgres", postgres),
        ("web_access", web_access),
    )
    for program in module.PROGRAMS
}


def format_names() -> list[str]:
    """The values ``--format`` accepts."""
    return ["auto", *FORMATS]


def parse_line(line: str, ctx: FrameContext, fmt: str = "auto") -> Event:
    """Turn one decoded line (without its newline) into an event; never raises, never drops.

    The returned event carries ``raw`` and ``collector_parser``; id, ingest time and the rest
    of the collector fields are the pipeline's to fill.
    """
    msg = split_syslog(line, ctx)
    if msg is None:
        event = unparsed(line, ctx.reference_us, reason="no_syslog_framing")
        event.collector_parser = "unparsed"
        return event
    if fmt == "auto":
        event_or_none, parser_name = parse_message(msg)
    else:
        event_or_none, parser_name = FORMATS[fmt](msg), fmt
    if event_or_none is None:
        event = unparsed(line, msg.time, host=msg.host, reason="no_parser_matched")
        event.details["program"] = msg.program
        event.collector_parser = "unparsed"
        return event
    event_or_none.raw = line
    event_or_none.collector_parser = parser_name
    return event_or_none


def parse_message(msg: SyslogMessage) -> tuple[Event | None, str]:
    """Hand an already framed message (journald, a syslog listener) to its program's parser.

    This is the automatic choice, :func:`parse_line`'s too (by program, PAM lines to PAM, old
    ``su(pam_unix)`` tags); returns the event, or ``None`` when no parser understood the
    message, with the name of the parser that answered (``"unparsed"`` if none did). ``raw``
    and the collector fields are the caller's to fill.
    """
    program = msg.program
    if msg.message.startswith("pam_"):
        # sshd, sudo, su... relay their PAM modules' lines; those are PAM's own format,
        # so skip the program's parser, which would only decline them.
        name: str | None = "pam"
    else:
        name = _BY_PROGRAM.get(program)
        if name is None and "(" in program:  # "su(pam_unix)": old PAM tags
            name = _BY_PROGRAM.get(program.partition("(")[0])
    event: Event | None = None
    if name is not None:
        event = FORMATS[name](msg)
    if event is None and name != "pam" and ("pam_" in msg.message or "(pam_" in program):
        event, name = pam.parse(msg), "pam"
    if event is None:
        return None, "unparsed"
    return event, name or "unparsed"
