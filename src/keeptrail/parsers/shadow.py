"""shadow-utils account and group changes (useradd, usermod, userdel, group*, gpasswd, ...).

The wording is that of shadow's ``SYSLOG`` calls: names in ``'quotes'`` since 4.2, in
```quotes'`` before; some messages end in a line feed, which syslog daemons keep, drop or
write as ``#012``. Who made the change is only known when the line says it (``gpasswd``'s
``by root``, ``passwd``'s ``changed by 'root'``): it becomes ``actor.name``. The account or
group changed is ``target.resource``; what changed is in ``details`` (``field``, ``old``,
``new``, ``member``...). ``pam_unix(passwd:chauthtok)`` lines are the PAM parser's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from keeptrail.event import DetailValue, Event
from keeptrail.parsers.base import SyslogMessage
from keeptrail.parsers.numerals import UINT32_MAX, ascii_signed_int

PROGRAMS: Final = frozenset(
    {
        "useradd",
        "userdel",
        "usermod",
        "groupadd",
        "groupdel",
        "groupmod",
        "groupmems",
        "gpasswd",
        "passwd",
        "chage",
        "chpasswd",
        "chgpasswd",
        "newusers",
        "chfn",
        "chsh",
        "adduser",
        "deluser",
        "addgroup",
        "delgroup",
    }
)

_ID_MIN: Final = -2_147_483_648  # the regexes accept a signed id (an id_t printed with %d)
_Q = r"[`']"  # opening quote: ` before shadow 4.2, ' after; closing is always '

_NEW_USER = re.compile(
    r"new user: name=(?P<name>.*?), UID=(?P<uid>-?\d+), GID=(?P<gid>-?\d+), "
    r"home=(?P<home>.*?), shell=(?P<shell>.*?)(?:, from=(?P<from>.*))?",
    re.IGNORECASE,
)
_NEW_GROUP = re.compile(r"new group: name=(?P<name>.*?), GID=(?P<gid>-?\d+)", re.IGNORECASE)
_GROUP_ADDED = re.compile(
    r"group added to (?P<file>\S+): name=(?P<name>.*?)(?:, GID=(?P<gid>-?\d+))?", re.IGNORECASE
)
_MEMBER = re.compile(
    rf"(?P<verb>add|delete) {_Q}(?P<user>.*?)' (?:to|from) (?P<shadow>shadow )?group "
    rf"{_Q}(?P<group>.*?)'"
)
_RENAME_MEMBER = re.compile(
    rf"change (?P<admin>admin )?{_Q}(?P<old>.*?)' to {_Q}(?P<new>.*?)' in "
    rf"(?P<shadow>shadow )?group {_Q}(?P<group>.*?)'"
)
_DELETE_USER = re.compile(rf"delete user {_Q}(?P<name>.*?)'")
_REMOVED_OWNED = re.compile(
    rf"removed (?P<shadow>shadow )?group {_Q}(?P<group>.*?)' owned by {_Q}(?P<owner>.*?)'"
)
_GROUP_REMOVED = re.compile(rf"group {_Q}(?P<group>.*?)' removed(?: from (?P<file>\S+))?")
_REMOVE_GROUP = re.compile(rf"remove group {_Q}(?P<group>.*?)'")
_CHANGE_FIELD = re.compile(
    rf"change user {_Q}(?P<name>.*?)' (?P<field>UID|GID|home|shell|inactive|expiration) "
    rf"from {_Q}(?P<old>.*?)' to {_Q}(?P<new>.*?)'"
)
_CHANGE_NAME = re.compile(rf"change user name {_Q}(?P<old>.*?)' to {_Q}(?P<new>.*?)'")
_PASSWORD_OP = re.compile(rf"(?P<op>lock|unlock|change) user {_Q}(?P<name>.*?)' password")
_GROUP_CHANGED = re.compile(
    r"group changed in (?P<file>\S+) \(group (?P<group>[^/,\s]+)(?:/(?P<gid>\d+))?"
    r"(?:, (?P<change>.*))?\)"
)
_OLD_GROUPMOD = re.compile(
    rf"change (?:group {_Q}(?P<group>.*?)' to {_Q}(?P<new>.*?)'|GID for {_Q}(?P<g2>.*?)' to "
    rf"(?P<gid>\d+))"
)
_PASSWD_BY = re.compile(rf"password for {_Q}(?P<name>.*?)' changed by {_Q}(?P<by>.*?)'")
_GPASSWD_MEMBER = re.compile(
    r"user (?P<user>\S+) (?P<verb>added|removed) by (?P<by>\S+) (?:to|from) group "
    r"(?P<group>\S+?)(?: in (?P<file>\S+))?"
)
_GPASSWD_GROUP = re.compile(
    r"(?P<what>password of group|access to group|administrators of group|members of group) "
    r"(?P<group>\S+) (?P<verb>changed|removed|restricted|set) by (?P<by>\S+?)"
    r"(?: to (?P<list>\S*?))?(?: in (?P<file>\S+))?"
)
_CHSH = re.compile(rf"changed user {_Q}(?P<name>.*?)' shell to {_Q}(?P<new>.*?)'")
_CHFN = re.compile(rf"changed user {_Q}(?P<name>.*?)' information")
_FAILED_ADD = re.compile(rf"failed adding user {_Q}(?P<name>.*?)', (?P<why>.*)")

_FIELDS: Final = {"UID": "uid", "GID": "gid", "expiration": "expiry"}
_GPASSWD_FIELDS: Final = {
    "password of group": "password",
    "access to group": "access",
    "administrators of group": "admins",
    "members of group": "members",
}

_Handler = Callable[[SyslogMessage, str], Event | None]


def parse(msg: SyslogMessage) -> Event | None:
    """A ``user.*`` / ``group.*`` event for a known shadow-utils message, else ``None``."""
    text = msg.message.strip()
    if text.endswith("#012"):
        text = text[:-4].rstrip()
    word = text.partition(" ")[0]
    handler = _BY_WORD.get(word)
    if handler is None:
        return None
    return handler(msg, text)


def _event(
    msg: SyslogMessage,
    action: str,
    resource: str | None,
    details: dict[str, DetailValue] | None = None,
) -> Event:
    kind, _, _ = action.partition(".")
    return Event(
        time=msg.time,
        category="account",
        action=action,
        outcome="success",
        severity="medium",
        target_host=msg.host,
        target_resource=resource or None,
        target_resource_type=kind,
        details={"tool": msg.program, **(details or {})},
    )


def _ids(**numerals: str | None) -> dict[str, DetailValue]:
    """The uid/gid details that are readable numbers (signed, as the wording allows ``-1``)."""
    out: dict[str, DetailValue] = {}
    for key, text in numerals.items():
        value = ascii_signed_int(text, min_value=_ID_MIN, max_value=UINT32_MAX)
        if value is not None:
            out[key] = value
    return out


def _new(msg: SyslogMessage, text: str) -> Event | None:
    if text.startswith("new user: "):
        m = _NEW_USER.fullmatch(text)
        if m is None:
            return None
        details: dict[str, DetailValue] = _ids(uid=m["uid"], gid=m["gid"])
        details["home"] = m["home"]
        details["shell"] = m["shell"]
        if m["from"] and m["from"] != "none":
            details["tty"] = m["from"]
        return _event(msg, "user.create", m["name"], details)
    m = _NEW_GROUP.fullmatch(text)
    if m is None:
        return None
    return _event(msg, "group.create", m["name"], _ids(gid=m["gid"]))


def _group(msg: SyslogMessage, text: str) -> Event | None:
    if text.startswith("group added to "):
        m = _GROUP_ADDED.fullmatch(text)
        if m is None:
            return None
        details: dict[str, DetailValue] = {"file": m["file"], **_ids(gid=m["gid"])}
        return _event(msg, "group.create", m["name"], details)
    if text.startswith("group changed in "):
        m = _GROUP_CHANGED.fullmatch(text)
        if m is None:
            return None
        details = {"file": m["file"]}
        change = m["change"] or ""
        if change.startswith("new name: "):
            details.update(field="name", old=m["group"], new=change[10:])
        elif change.startswith("new gid: "):
            details.update(field="gid", old=m["gid"], new=change[9:])
        elif change:
            details["change"] = change
        return _event(msg, "group.modify", m["group"], details)
    m = _GROUP_REMOVED.fullmatch(text)
    if m is None:
        return None
    return _event(msg, "group.delete", m["group"], {"file": m["file"]} if m["file"] else None)


def _add_delete(msg: SyslogMessage, text: str) -> Event | None:
    m = _MEMBER.fullmatch(text)
    if m is not None:
        action = "group.member_add" if m["verb"] == "add" else "group.member_remove"
        details: dict[str, DetailValue] = {"member": m["user"]}
        if m["shadow"]:
            details["shadow"] = True
        return _event(msg, action, m["group"], details)
    m = _DELETE_USER.fullmatch(text)
    if m is not None:
        return _event(msg, "user.delete", m["name"])
    return None


def _removed(msg: SyslogMessage, text: str) -> Event | None:
    m = _REMOVED_OWNED.fullmatch(text)
    if m is None:
        return None
    details: dict[str, DetailValue] = {"owner": m["owner"]}
    if m["shadow"]:
        details["shadow"] = True
    return _event(msg, "group.delete", m["group"], details)


def _remove(msg: SyslogMessage, text: str) -> Event | None:
    m = _REMOVE_GROUP.fullmatch(text)
    return _event(msg, "group.delete", m["group"]) if m is not None else None


def _change(msg: SyslogMessage, text: str) -> Event | None:
    if text.startswith("change user name "):
        m = _CHANGE_NAME.fullmatch(text)
        if m is None:
            return None
        return _event(
            msg, "user.modify", m["old"], {"field": "name", "old": m["old"], "new": m["new"]}
        )
    if text.startswith("change user "):
        m = _CHANGE_FIELD.fullmatch(text)
        if m is not None:
            field = _FIELDS.get(m["field"], m["field"])
            details: dict[str, DetailValue] = {"field": field, "old": m["old"], "new": m["new"]}
            return _event(msg, "user.modify", m["name"], details)
        return _password_op(msg, text)
    m = _RENAME_MEMBER.fullmatch(text)
    if m is not None:
        field = "admin" if m["admin"] else "member"
        details = {"field": field, "old": m["old"], "new": m["new"]}
        if m["shadow"]:
            details["shadow"] = True
        return _event(msg, "group.modify", m["group"], details)
    m = _OLD_GROUPMOD.fullmatch(text)
    if m is None:
        return None
    if m["group"] is not None:
        details = {"field": "name", "old": m["group"], "new": m["new"]}
        return _event(msg, "group.modify", m["group"], details)
    return _event(msg, "group.modify", m["g2"], {"field": "gid", "new": m["gid"]})


def _password_op(msg: SyslogMessage, text: str) -> Event | None:
    m = _PASSWORD_OP.fullmatch(text)
    if m is None:
        return None
    if m["op"] == "change":
        return _event(msg, "user.password_change", m["name"])
    return _event(msg, "user.modify", m["name"], {"field": "password", "new": m["op"] + "ed"})


def _password(msg: SyslogMessage, text: str) -> Event | None:
    m = _PASSWD_BY.fullmatch(text)
    if m is not None:
        event = _event(msg, "user.password_change", m["name"])
        event.actor_name = m["by"]
        event.actor_type = "user"
        return event
    return _gpasswd_group(msg, text)


def _gpasswd_group(msg: SyslogMessage, text: str) -> Event | None:
    m = _GPASSWD_GROUP.fullmatch(text)
    if m is None:
        return None
    field = _GPASSWD_FIELDS[m["what"]]
    details: dict[str, DetailValue] = {"field": field}
    if m["verb"] in ("removed", "restricted"):
        details["new"] = m["verb"]
    elif m["list"] is not None:
        details["new"] = m["list"]
    if m["file"]:
        details["file"] = m["file"]
    event = _event(msg, "group.modify", m["group"], details)
    event.actor_name = m["by"]
    event.actor_type = "user"
    return event


def _user(msg: SyslogMessage, text: str) -> Event | None:
    m = _GPASSWD_MEMBER.fullmatch(text)
    if m is None:
        return None
    action = "group.member_add" if m["verb"] == "added" else "group.member_remove"
    details: dict[str, DetailValue] = {"member": m["user"]}
    if m["file"]:
        details["file"] = m["file"]
    event = _event(msg, action, m["group"], details)
    event.actor_name = m["by"]
    event.actor_type = "user"
    return event


def _changed(msg: SyslogMessage, text: str) -> Event | None:
    if text.startswith("changed password expiry for "):
        name = text[28:]
        return _event(msg, "user.modify", name, {"field": "password_expiry"}) if name else None
    m = _CHSH.fullmatch(text)
    if m is not None:
        return _event(msg, "user.modify", m["name"], {"field": "shell", "new": m["new"]})
    m = _CHFN.fullmatch(text)
    if m is not None:
        return _event(msg, "user.modify", m["name"], {"field": "gecos"})
    return None


def _lock(msg: SyslogMessage, text: str) -> Event | None:
    return _password_op(msg, text)


def _failed(msg: SyslogMessage, text: str) -> Event | None:
    m = _FAILED_ADD.fullmatch(text)
    if m is None:
        return None
    event = _event(msg, "user.create", m["name"], {"message": m["why"]})
    event.outcome = "failure"
    event.reason = "error"
    return event


_BY_WORD: Final[dict[str, _Handler]] = {
    "new": _new,
    "group": _group,
    "add": _add_delete,
    "delete": _add_delete,
    "removed": _removed,
    "remove": _remove,
    "change": _change,
    "lock": _lock,
    "unlock": _lock,
    "password": _password,
    "access": _gpasswd_group,
    "administrators": _gpasswd_group,
    "members": _gpasswd_group,
    "user": _user,
    "changed": _changed,
    "failed": _failed,
}
