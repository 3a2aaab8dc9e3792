"""Every input format ``keeptrail ingest`` knows, and how one is chosen for a stream.

Two kinds of format exist. The syslog family (sshd, sudo, su, PAM, shadow-utils, logind...) is
recognised line by line from the syslog tag, because one auth.log mixes all of them. Every other
format (auditd, web access logs, database logs, Kubernetes audit, JSON exports) is a whole
stream with its own record structure, recognised once per file from its first line — or named
with ``--format`` where sniffing cannot tell. Anything else is read as syslog, where a line that
no parser knows still becomes an ``unparsed`` event.
"""

from __future__ import annotations

from typing import Final

from keeptrail.errors import UserError
from keeptrail.event import Event
from keeptrail.parsers import (
    app_json,
    auditd,
    journald,
    k8s_audit,
    mariadb_audit,
    mysql,
    postgres,
    web_access,
)
from keeptrail.parsers.base import LineAssembler, RecordAssembler, StreamContext, StreamFormat
from keeptrail.parsers.detect import FORMATS as SYSLOG_PROGRAM_FORMATS
from keeptrail.parsers.detect import parse_line
from keeptrail.parsers.syslog import FrameContext


class _SyslogAssembler(LineAssembler):
    """Each line is its own record: frame it, dispatch it on its tag."""

    __slots__ = ("_fmt", "_frame")

    def __init__(self, ctx: StreamContext, fmt: str) -> None:
        super().__init__(ctx)
        self._frame = FrameContext(reference_us=ctx.reference_us, tz=ctx.tz)
        self._fmt = fmt

    def parse(self, line: str) -> Event:
        return parse_line(line, self._frame, self._fmt)


class SyslogFormat:
    """The syslog family as a stream format; ``program_format`` forces one message parser."""

    def __init__(self, program_format: str = "auto") -> None:
        self.NAME = "syslog" if program_format == "auto" else program_format
        self._program_format = program_format

    def sniff(self, line: str) -> bool:
        return True  # the fallback: any line is a syslog line or an unparsed one

    def assembler(self, ctx: StreamContext) -> RecordAssembler:
        return _SyslogAssembler(ctx, self._program_format)


SYSLOG: Final = SyslogFormat()

# Stream formats in sniffing order: the most distinctive first (MariaDB's audit CSV before
# MySQL's general log, which is looser). Each entry is a module implementing StreamFormat.
STREAM_FORMATS: Final[dict[str, StreamFormat]] = {
    m.NAME: m
    for m in (
        auditd,
        k8s_audit,
        journald,
        app_json,
        postgres,
        mariadb_audit,
        mysql,
        web_access,
    )
}
ALIASES: Final = {
    "nginx": "web_access",
    "apache": "web_access",
    "postgresql": "postgres",
    "kubernetes": "k8s_audit",
    "json": "app_json",
}


def format_names() -> list[str]:
    """The values ``--format`` accepts."""
    names = ["auto", "syslog", *SYSLOG_PROGRAM_FORMATS, *STREAM_FORMATS, *ALIASES]
    return list(dict.fromkeys(names))


def choose_format(name: str, first_line: str | None) -> StreamFormat:
    """The format for a stream: the one named, or the first whose ``sniff`` accepts its start."""
    name = ALIASES.get(name, name)
    if name == "auto":
        if first_line is not None:
            for fmt in STREAM_FORMATS.values():
                if fmt.sniff(first_line):
                    return fmt
        return SYSLOG
    if name == "syslog":
        return SYSLOG
    if name in STREAM_FORMATS:
        return STREAM_FORMATS[name]
    if name in SYSLOG_PROGRAM_FORMATS:
        return SyslogFormat(name)
    raise UserError(f"unknown format {name!r}; choose from {', '.join(format_names())}")
