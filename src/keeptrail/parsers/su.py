"""su's own log lines, in the forms the real implementations write.

* util-linux su: ``(to root) alice on pts/0`` and ``FAILED SU (to root) alice on pts/0``;
* shadow-utils su: ``Successful su for root by alice``, its sulog-style ``+ pts/0 alice:root``
  / ``- pts/0 alice:root`` (older releases: ``alice-root``), ``BAD SU alice to root on
  /dev/pts/0``, ``Authentication failed for root`` and ``pam_authenticate: <PAM error>``;
* BSD su: ``alice to root on /dev/ttyp1``; Solaris: ``'su root' succeeded for alice on
  /dev/pts/3`` / ``failed``; IRIX: ``failed: ttyq4 changing from alice to root``.

The user switching is ``actor.name``, the user switched to is ``actor.effective_user``.
``pam_unix(su:...)`` lines, and the old ``su(pam_unix)`` tag, go to the PAM parser.
"""

from __future__ import annotations

import re
from typing import Final

from keeptrail.event import Event
from keeptrail.parsers import pam
from keeptrail.parsers.base import SyslogMessage

PROGRAMS: Final = frozenset({"su", "su-l"})

_UTIL_LINUX = re.compile(r"(FAILED SU )?\(to (?P<to>[^)]+)\) (?P<user>.+) on (?P<tty>\S+)")
_BAD_SU = re.compile(r"BAD SU (?P<user>.+?) to (?P<to>\S+)(?: on (?P<tty>\S+))?")
_BSD = re.compile(r"(?P<user>\S+) to (?P<to>\S+) on (?P<tty>\S+)")
_SULOG = re.compile(r"(?P<sign>[+-]) (?P<tty>\S+) (?P<pair>\S+)")
_SUCCESSFUL = re.compile(r"Successful su for (?P<to>.+?) by (?P<user>.+)")
_SOLARIS = re.compile(
    r"'su (?P<to>\S+)' (?P<verdict>succeeded|failed) for (?P<user>\S+) on (?P<tty>\S+)"
)
_IRIX = re.compile(r"(?P<failed>failed: )?(?P<tty>\S+) changing from (?P<user>\S+) to (?P<to>\S+)")


def parse(msg: SyslogMessage) -> Event | None:
    """A ``su.switch`` event for a success or failure line; ``None`` for anything else."""
    if "(pam" in msg.program:  # "su(pam_unix)": an old-style PAM tag
        return pam.parse(msg)
    text = msg.message.strip()
    if not text:
        return None
    first = text[0]
    if first == "(" or text.startswith("FAILED SU"):
        m = _UTIL_LINUX.fullmatch(text)
        if m is not None:
            ok = m[1] is None
            return _event(msg, ok, m["user"], m["to"], m["tty"])
    elif first in "+-" and text[1:2] == " ":
        m = _SULOG.fullmatch(text)
        if m is not None:
            user, to = _split_pair(m["pair"])
            return _event(msg, m["sign"] == "+", user, to, m["tty"])
    elif text.startswith("Successful su for "):
        m = _SUCCESSFUL.fullmatch(text)
        if m is not None:
            return _event(msg, True, m["user"], m["to"], None)
    elif text.startswith("BAD SU "):
        m = _BAD_SU.fullmatch(text)
        if m is not None:
            return _event(msg, False, m["user"], m["to"], m["tty"])
    elif text.startswith("Authentication failed for "):
        to = text[26:]
        return _event(msg, False, None, to or None, None)
    elif text.startswith("pam_authenticate: "):
        error = text[18:]
        event = _event(msg, False, None, None, None)
        if error != "Authentication failure":
            event.reason = "pam_failure"
            event.details["message"] = error
        return event
    elif first == "'":
        m = _SOLARIS.fullmatch(text)
        if m is not None:
            ok = m["verdict"] == "succeeded"
            return _event(msg, ok, m["user"], m["to"], m["tty"])
    elif " changing from " in text:
        m = _IRIX.fullmatch(text)
        if m is not None:
            return _event(msg, m["failed"] is None, m["user"], m["to"], m["tty"])
    elif " to " in text and " on " in text:
        m = _BSD.fullmatch(text)
        if m is not None:
            return _event(msg, True, m["user"], m["to"], m["tty"])
    return None


def _split_pair(pair: str) -> tuple[str | None, str | None]:
    """``alice:root`` (shadow 4.x) or ``alice-root`` (older releases) -> (alice, root)."""
    user, sep, to = pair.partition(":")
    if not sep:
        user, sep, to = pair.rpartition("-")
    if not sep or not user or not to:
        return None, None
    return user, to


def _event(
    msg: SyslogMessage, ok: bool, user: str | None, to: str | None, tty: str | None
) -> Event:
    event = Event(
        time=msg.time,
        category="privilege",
        action="su.switch",
        outcome="success" if ok else "failure",
        actor_name=user,
        actor_type="user" if user else None,
        actor_effective_user=to,
        target_host=msg.host,
        target_system="su",
    )
    if tty:
        event.details["tty"] = tty.removeprefix("/dev/")
    if not ok:
        event.reason = "bad_password"
        event.severity = "medium"
    return event
