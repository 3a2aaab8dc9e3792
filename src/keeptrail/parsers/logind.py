"""systemd-logind: sessions opening and closing, and the machine powering down.

Sessions: ``New session 3 of user alice.`` (``c1`` for sessions without a seat, such as
cron or a display manager's greeter), since systemd 255 ``New session '3' of user 'alice'
with class 'user' and type 'tty'.``, then ``Session 3 logged out. Waiting for processes to
exit.`` and ``Removed session 3.``. The session id goes to ``actor.session`` and
``details.session`` so it can be joined with PAM's and sshd's lines. Power events
(``System is powering down.``, ``Power key pressed.``...) become ``logind.power``.
"""

from __future__ import annotations

import re
from typing import Final

from keeptrail.event import Event
from keeptrail.parsers.base import SyslogMessage

PROGRAMS: Final = frozenset({"systemd-logind"})

_NEW = re.compile(
    r"New session '?(?P<id>[^'\s]{1,64})'? of user '?(?P<user>.+?)'?"
    r"(?: with class '(?P<cls>[^']*)' and type '(?P<type>[^']*)')?\."
)
_SESSION_ID = re.compile(r"[^\s']{1,64}")

_POWER: Final[dict[str, str]] = {
    "System is powering down.": "power_off",
    "System is rebooting.": "reboot",
    "System is halting.": "halt",
    "System is rebooting with kexec.": "kexec",
    "The system will power off now!": "power_off",
    "The system will reboot now!": "reboot",
    "The system will halt now!": "halt",
    "The system will suspend now!": "suspend",
    "The system will hibernate now!": "hibernate",
    "Power key pressed.": "power_key",
    "Power key pressed short.": "power_key",
    "Power key pressed long.": "power_key_long",
    "Reboot key pressed.": "reboot_key",
    "Suspend key pressed.": "suspend_key",
    "Hibernate key pressed.": "hibernate_key",
    "Lid closed.": "lid_closed",
    "Lid opened.": "lid_opened",
}


def parse(msg: SyslogMessage) -> Event | None:
    """A ``logind.*`` event for a session or power message, else ``None``."""
    text = msg.message.rstrip()
    if text.startswith("New session "):
        m = _NEW.fullmatch(text)
        if m is None:
            return None
        event = _session(msg, "logind.session_open", m["id"])
        event.actor_name = m["user"]
        event.actor_type = "user"
        if m["cls"]:
            event.details["class"] = m["cls"]
        if m["type"]:
            event.details["type"] = m["type"]
        return event
    if text.startswith("Removed session ") and text.endswith("."):
        sid = text[16:-1].strip("'")
        if _SESSION_ID.fullmatch(sid) is None:
            return None
        return _session(msg, "logind.session_close", sid)
    if text.startswith("Session ") and text.endswith(" logged out. Waiting for processes to exit."):
        sid = text[8:-43].strip("'")
        if _SESSION_ID.fullmatch(sid) is None:
            return None
        return _session(msg, "logind.session_logout", sid)
    power = _POWER.get(text)
    if power is not None:
        return Event(
            time=msg.time,
            category="audit",
            action="logind.power",
            outcome="success",
            actor_type="system",
            target_host=msg.host,
            target_system="logind",
            details={"event": power},
        )
    return None


def _session(msg: SyslogMessage, action: str, sid: str) -> Event:
    return Event(
        time=msg.time,
        category="session",
        action=action,
        outcome="success",
        actor_session=sid,
        target_host=msg.host,
        target_system="logind",
        details={"session": sid},
    )
