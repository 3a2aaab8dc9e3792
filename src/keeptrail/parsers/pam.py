"""Lines written by PAM modules, whatever program loaded them.

A PAM line carries a marker naming the module, the service and the facility:
``pam_unix(sshd:auth): <text>``. It may follow a nested tag
(``pam: gdm-password[1600]: pam_unix(gdm-password:session): ...``), come without service
(``pam_unix: ...``), in parentheses (``(pam_unix) ...``), or live in the syslog tag itself
(``su(pam_unix)[2298]: authentication failure; ...``, Linux-PAM before 0.99.2).

Understood texts (any module writing the standard wording): ``authentication failure;
logname= uid= euid= tty= ruser= rhost= [user=]``, ``N more authentication failures; ...``,
``authentication success; ...`` (pam_sss), ``check pass; user unknown``, ``session
opened/closed for user ...``, ``password changed for X``, pam_unix's account expiry lines,
pam_tally/pam_tally2/pam_faillock lock-outs and pam_krb5's ``authentication succeeds/fails
for 'X'``. The ``key=value`` fields are in a fixed order and ``ruser``, ``rhost`` and
``user`` may hold anything, so the remote host is only trusted when it is one clean token.
"""

from __future__ import annotations

import re
from typing import Final

from keeptrail.event import DetailValue, Event
from keeptrail.netaddr import split_remote
from keeptrail.parsers.base import SyslogMessage
from keeptrail.parsers.numerals import UINT32_MAX, ascii_int, put_int

# Tags that only ever carry PAM lines, plus the old "service(pam_unix)" tags seen in the wild.
PROGRAMS: Final = frozenset(
    {
        "pam",
        "login",
        "runuser",
        "runuser-l",
        "gdm-password",
        "gdm-autologin",
        "gdm-launch-environment",
        "lightdm",
        "sddm-helper",
        "cron",
        "CRON",
        "crond",
        "systemd-user",
        "polkit-agent-helper-1",
        "unix_chkpwd",
        "chfn(pam_unix)",
        "login(pam_unix)",
        "sshd(pam_unix)",
        "su(pam_unix)",
        "sudo(pam_unix)",
        "vsftpd(pam_unix)",
        "passwd(pam_unix)",
        "pop(pam_unix)",
        "imap(pam_unix)",
        "proftpd(pam_unix)",
        "xscreensaver(pam_unix)",
        "gdm(pam_unix)",
        "kde(pam_unix)",
    }
)

_MARKER = re.compile(
    r"(?:[\w.@/-]{1,64}(?:\[\d{1,10}\])?: )?\(?pam_(?P<mod>[a-z0-9_]{1,32})"
    r"(?:\((?P<svc>[^:()\s]{0,64})(?::(?P<fac>[a-z_]{1,16}))?\))?\)?:? ?"
)
_USER_ONLY = re.compile(r"(?:.*\s)?user=(?P<user>\S+)\s*")
_MORE = re.compile(r"(\d{1,6}) more authentication failures?; ")
_UID = re.compile(r"(?P<name>.*?)\(uid=(?P<uid>\d{1,10})\)")
_KRB5 = re.compile(r"authentication (?P<verdict>succeeds|fails) for '(?P<user>[^']*)'(?P<rest>.*)")
_TALLY = re.compile(
    r"user (?P<user>.+?) \((?P<uid>\d{1,10})\) tally (?P<tally>\d+), deny (?P<deny>\d+)"
)
_FAILLOCK = re.compile(
    r"Consecutive login failures for user (?P<user>.+?) account temporarily locked"
)
_EXPIRED = re.compile(
    r"(?:account (?P<acct>.+?) has expired|expired password for user (?P<pw>.+?))"
    r" \((?P<why>[^)]*)\)"
)
_SU_LIKE: Final = frozenset({"su", "su-l", "sudo", "sudo-i", "runuser", "runuser-l"})


def parse(msg: SyslogMessage) -> Event | None:
    """A ``pam.*`` (or ``user.password_change``) event for a known PAM text, else ``None``."""
    text = msg.message
    program = msg.program
    at = text.find("pam_")
    if at >= 0 and at <= 80:
        m = _MARKER.match(text)
        if m is None:
            return None
        module = "pam_" + m["mod"]
        service = m["svc"] or _service_of(program)
        facility = m["fac"]
        body = text[m.end() :]
    else:
        paren = program.find("(pam_")
        if paren <= 0 or not program.endswith(")"):
            return None
        module = program[paren + 1 : -1]
        service = program[:paren]
        facility = None
        body = text
    return _parse_body(msg, body.rstrip(), module, service, facility)


def _service_of(program: str) -> str:
    return program.partition("(")[0]


def _parse_body(
    msg: SyslogMessage, body: str, module: str, service: str, facility: str | None
) -> Event | None:
    base: dict[str, DetailValue] = {"module": module}
    if facility:
        base["facility"] = facility
    first = body[:1]
    if first == "a":
        if body.startswith("authentication failure; "):
            return _auth(msg, body[24:], service, base, ok=False)
        if body.startswith("authentication success; "):
            return _auth(msg, body[24:], service, base, ok=True)
        if body.startswith("authentication "):
            m = _KRB5.fullmatch(body)
            if m is not None:
                event = _event(msg, "authentication", "pam.auth", service, base)
                event.actor_name = m["user"] or None
                event.outcome = "success" if m["verdict"] == "succeeds" else "failure"
                if event.outcome == "failure":
                    event.reason = "bad_password"
                    event.severity = "low"
                    why = m["rest"].lstrip(" (").partition(": ")[2].rstrip(")")
                    if why:
                        event.details["message"] = why
                return event
        if body.startswith("account ") and " has expired " in body:
            return _expired(msg, body, service, base)
        if body.startswith("auth could not identify password for ["):
            event = _failure(msg, service, base, "pam_failure")
            event.actor_name = body[38:].removesuffix("]") or None
            return event
        return None
    if first == "s":
        if body.startswith("session opened for user "):
            return _session(msg, body[24:], service, base, opened=True)
        if body.startswith("session closed for user "):
            return _session(msg, body[24:], service, base, opened=False)
        return None
    if first == "c":
        if body.startswith("check pass; user unknown"):
            return _failure(msg, service, base, "invalid_user")
        return None
    if first.isdigit():
        m = _MORE.match(body)
        if m is None:
            return None
        event = _auth(msg, body[m.end() :], service, base, ok=False)
        more = ascii_int(m[1], max_value=UINT32_MAX - 1)
        if more is not None:
            event.details["attempts"] = more + 1
        return event
    if first == "p" and body.startswith("password changed for "):
        return _password_changed(msg, body[21:], service, base)
    if first == "e" and body.startswith("expired password for user "):
        return _expired(msg, body, service, base)
    if first == "u" and " tally " in body:
        m = _TALLY.fullmatch(body)
        if m is None:
            return None
        # Whether the account is locked is read from the numbers: unreadable ones, no event.
        tally = ascii_int(m["tally"], max_value=UINT32_MAX)
        deny = ascii_int(m["deny"], max_value=UINT32_MAX)
        if tally is None or deny is None or tally <= deny:
            return None
        event = _failure(msg, service, base, "account_locked", action="pam.account")
        event.actor_name = m["user"]
        event.actor_uid = ascii_int(m["uid"], max_value=UINT32_MAX)
        event.details["tally"] = tally
        event.details["deny"] = deny
        return event
    if first == "C":
        m = _FAILLOCK.fullmatch(body)
        if m is not None:
            event = _failure(msg, service, base, "account_locked", action="pam.account")
            event.actor_name = m["user"]
            return event
    return None


def _event(
    msg: SyslogMessage, category: str, action: str, service: str, details: dict[str, DetailValue]
) -> Event:
    return Event(
        time=msg.time,
        category=category,
        action=action,
        target_host=msg.host,
        target_system=service or None,
        details=details,
    )


def _failure(
    msg: SyslogMessage,
    service: str,
    details: dict[str, DetailValue],
    reason: str,
    action: str = "pam.auth",
) -> Event:
    event = _event(msg, "authentication", action, service, details)
    event.outcome = "failure"
    event.reason = reason
    event.severity = "low"
    return event


def _auth(
    msg: SyslogMessage, fields: str, service: str, details: dict[str, DetailValue], *, ok: bool
) -> Event:
    event = _event(msg, "authentication", "pam.auth", service, details)
    event.outcome = "success" if ok else "failure"
    if not ok:
        event.severity = "low"
    kv = _split_kv(fields)
    if kv is None:
        # pam_ldap and friends: "authentication failure; user=bob" without the other keys.
        u = _USER_ONLY.fullmatch(fields)
        event.actor_name = u["user"] if u is not None else None
        event.actor_type = "user" if event.actor_name else None
        if not ok:
            event.reason = "bad_password" if event.actor_name else "pam_failure"
        return event
    head, ruser_text, rhost, user_text = kv
    user = user_text or None
    ruser = ruser_text or None
    uid = head.get("uid", "")
    if ruser is not None and service in _SU_LIKE:
        # su/sudo: the requesting user is ruser, the account asked for is user.
        event.actor_name = ruser
        event.actor_effective_user = user
        event.actor_uid = ascii_int(uid, max_value=UINT32_MAX)
    else:
        event.actor_name = user
        if ruser is not None:
            details["ruser"] = ruser
    if not ok:
        event.reason = "bad_password" if user is not None else "pam_failure"
    event.actor_type = "user" if event.actor_name else None
    for key in ("logname", "tty"):
        value = head.get(key)
        if value:
            details[key] = value
    for key in ("uid", "euid"):
        put_int(details, key, head.get(key), max_value=UINT32_MAX)
    if rhost:
        ip, host = split_remote(rhost)
        event.source_ip, event.source_host = ip, host
        if ip is None and host is None:
            details["rhost"] = rhost
    return event


def _split_kv(fields: str) -> tuple[dict[str, str], str, str, str] | None:
    """``logname= uid= euid= tty= ruser= rhost= [user=]`` -> (head keys, ruser, rhost, user).

    The keys come in this fixed order; ``ruser`` ends at the first `` rhost=`` and ``rhost`` at
    the first `` user=`` after it, so text injected into ``ruser`` lands in ``rhost`` and makes
    it unusable rather than trusted. Plain ``find`` keeps this fast on the hot path.
    """
    if not fields.startswith("logname="):
        return None
    r = fields.find(" ruser=")
    if r < 0:
        return None
    h = fields.find(" rhost=", r + 6)
    if h < 0:
        return None
    head: dict[str, str] = {}
    for part in fields[:r].split():
        key, _, value = part.partition("=")
        head[key] = value
    u = fields.find(" user=", h + 6)
    if u < 0:
        return head, fields[r + 7 : h].strip(), fields[h + 7 :].strip(), ""
    return head, fields[r + 7 : h].strip(), fields[h + 7 : u].strip(), fields[u + 6 :].strip()


def _session(
    msg: SyslogMessage, rest: str, service: str, details: dict[str, DetailValue], *, opened: bool
) -> Event:
    action = "pam.session_open" if opened else "pam.session_close"
    event = _event(msg, "session", action, service, details)
    event.outcome = "success"
    by: str | None = None
    if opened:
        # "X(uid=N) by Y(uid=M)" / "X by (uid=M)": the user part may contain " by ", so
        # split at the last one; the opener is written by PAM from getlogin().
        user_part, sep, by = rest.rpartition(" by ")
        if not sep:
            user_part, by = rest, None
    else:
        user_part = rest
    m = _UID.fullmatch(user_part)
    if m is not None:
        event.actor_name = m["name"] or None
        event.actor_uid = ascii_int(m["uid"], max_value=UINT32_MAX)
    else:
        event.actor_name = user_part or None
    event.actor_type = "user" if event.actor_name else None
    if by is not None:
        m = _UID.fullmatch(by)
        if m is not None:
            if m["name"]:
                details["by_user"] = m["name"]
            put_int(details, "by_uid", m["uid"], max_value=UINT32_MAX)
        elif by:
            details["by_user"] = by
    return event


def _password_changed(
    msg: SyslogMessage, user: str, service: str, details: dict[str, DetailValue]
) -> Event:
    event = _event(msg, "account", "user.password_change", service, details)
    event.outcome = "success"
    event.severity = "medium"
    event.target_resource = user
    event.target_resource_type = "user"
    return event


def _expired(
    msg: SyslogMessage, body: str, service: str, details: dict[str, DetailValue]
) -> Event | None:
    m = _EXPIRED.fullmatch(body)
    if m is None:
        return None
    event = _failure(msg, service, details, "denied", action="pam.account")
    event.actor_name = m["acct"] or m["pw"]
    event.actor_type = "user"
    event.details["message"] = "account expired" if m["acct"] else "password expired"
    if m["why"]:
        event.details["detail"] = m["why"]
    return event
