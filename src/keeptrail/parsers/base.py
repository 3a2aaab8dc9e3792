"""What every message parser receives and returns.

A syslog framing (:mod:`keeptrail.parsers.syslog`) splits a line into its header and the
program's own message; a format parser (``sshd``, ``sudo``, ...) turns that message into an
:class:`~keeptrail.event.Event`, or returns ``None`` when the message is not one it knows.
Parsers are pure: no files, no clock, no globals that change. The pipeline, not the parser,
fills in the event's id, raw text and collector fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from keeptrail.event import Event


@dataclass(slots=True, frozen=True)
class SyslogMessage:
    """One syslog line after its framing is removed.

    ``time`` is integer microseconds since the epoch, UTC. ``program`` is the syslog tag
    without its ``[pid]`` (``sshd``, ``sudo``, ``useradd``, ``su(pam_unix)``...).
    """

    time: int
    host: str | None
    program: str
    pid: int | None
    message: str


class MessageParser(Protocol):
    """A pure function from one framed message to an event, or ``None`` if not understood."""

    def __call__(self, msg: SyslogMessage, /) -> Event | None: ...
