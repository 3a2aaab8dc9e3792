"""sudo's own log lines: commands run, and commands refused.

The classic line (sudo 1.7 to 1.9) is::

    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls -la
    alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/ls

The invoking user is everything before the first ``" : "``; an optional problem ("user NOT
in sudoers") comes next; then ``KEY=value`` fields joined by ``" ; "`` in sudo's fixed order
(TTY, CHROOT, PWD, CWD, USER, GROUP, TSID, ENV) and, always last, ``COMMAND=`` followed by the
command line exactly as typed. The command is attacker controlled, so it is taken greedily
from the first ``" ; COMMAND="`` to the end: a ``; USER=root ;`` inside it stays in the
command. sudo 1.9's ``log_format=json`` writes ``@cee:{"sudo":{"accept"|"reject":{...}}}``.
``pam_unix(sudo:...)`` lines are the PAM parser's.
"""

from __future__ import annotations

import re
from typing import Any, Final

from keeptrail.event import DetailValue, Event
from keeptrail.parsers.base import SyslogMessage
from keeptrail.parsers.json_line import json_object
from keeptrail.parsers.numerals import UINT32_MAX, put_int

PROGRAMS: Final = frozenset({"sudo"})

_KEYS: Final = frozenset({"TTY", "CHROOT", "PWD", "CWD", "USER", "GROUP", "TSID", "HOST"})
_ATTEMPTS = re.compile(r"(\d{1,6}) incorrect password attempts?")

# Problem text (as sudo writes it) -> reason. Anything else with a problem is reason "other".
_PROBLEMS: Final[dict[str, str]] = {
    "user NOT in sudoers": "not_in_sudoers",
    "user NOT authorized on host": "not_allowed_on_host",
    "command not allowed": "command_not_allowed",
    "a password is required": "password_required",
}


def parse(msg: SyslogMessage) -> Event | None:
    """A ``sudo.command`` event for a command or refusal line; ``None`` for anything else."""
    text = msg.message.lstrip(" ")
    if text.startswith("@cee:"):
        return _parse_json(msg, text[5:])
    sep = text.find(" : ")
    if sep <= 0 or text.startswith("pam_"):
        return None
    user = text[:sep]
    rest = text[sep + 3 :]
    # PWD and COMMAND are the user's own text and may contain " ; COMMAND="; sudo writes USER
    # before COMMAND, so the command starts at the first COMMAND after USER.
    user_at = rest.find(" ; USER=")
    cmd_at = rest.find(" ; COMMAND=", max(user_at, 0))
    if cmd_at >= 0:
        command: str | None = rest[cmd_at + 11 :]
        head = rest[:cmd_at]
    elif rest.startswith("COMMAND="):
        command, head = rest[8:], ""
    else:
        return None
    problem, fields = _split_fields(head)
    details: dict[str, DetailValue] = {"command": command}
    if rest.count(" ; COMMAND=") > 1 or rest.count(" ; USER=") > 1:
        details["ambiguous"] = True  # the user's own text imitates sudo's separators
    for key, detail in (("TTY", "tty"), ("PWD", "pwd"), ("GROUP", "group"), ("TSID", "tsid")):
        value = fields.get(key)
        if value:
            details[detail] = value
    for key in ("ENV", "CHROOT", "CWD"):
        value = fields.get(key)
        if value:
            details[key.lower()] = value
    event = Event(
        time=msg.time,
        category="privilege",
        action="sudo.command",
        outcome="success",
        actor_name=user,
        actor_type="user",
        actor_effective_user=fields.get("USER") or None,
        target_host=msg.host,
        target_system="sudo",
        details=details,
    )
    if problem is not None:
        _apply_problem(event, problem)
    return event


def _split_fields(head: str) -> tuple[str | None, dict[str, str]]:
    """(problem text or None, KEY -> value) from what precedes ``COMMAND=``.

    A segment that does not start with a known ``KEY=`` continues the previous value (a
    working directory may contain ``" ; "``); ``ENV=`` runs to the end, as it is sudo's last
    field before the command. For a repeated key the last one wins: sudo writes its own
    fields after the ones a hostile directory name could inject.
    """
    fields: dict[str, str] = {}
    problem: str | None = None
    if not head:
        return None, fields
    env_at = head.find("ENV=")
    if env_at == 0 or (env_at > 0 and head[env_at - 3 : env_at] == " ; "):
        fields["ENV"] = head[env_at + 4 :]
        head = head[: max(env_at - 3, 0)]
    last: str | None = None
    for segment in head.split(" ; ") if head else ():
        key, eq, value = segment.partition("=")
        if eq and key in _KEYS:
            fields[key] = value
            last = key
        elif last is not None:
            fields[last] = f"{fields[last]} ; {segment}"
        else:
            problem = segment if problem is None else f"{problem} ; {segment}"
    return problem, fields


def _apply_problem(event: Event, problem: str) -> None:
    event.outcome = "failure"
    event.severity = "medium"
    m = _ATTEMPTS.fullmatch(problem)
    if m is not None:
        event.reason = "bad_password"
        put_int(event.details, "attempts", m[1], max_value=UINT32_MAX)
        return
    event.reason = _PROBLEMS.get(problem, "other")
    if event.reason == "other":
        event.details["message"] = problem


def _parse_json(msg: SyslogMessage, payload: str) -> Event | None:
    doc = json_object(payload)
    if doc is None:
        return None
    body = doc.get("sudo", doc)
    if not isinstance(body, dict):
        return None
    for kind in ("accept", "reject", "alert"):
        record = body.get(kind)
        if isinstance(record, dict):
            return _json_event(msg, kind, record)
    return None


def _json_event(msg: SyslogMessage, kind: str, record: dict[str, Any]) -> Event | None:
    user = _str(record.get("submituser"))
    if user is None:
        return None
    argv = record.get("runargv")
    command = _str(record.get("command"))
    if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv):
        # runargv[0] is the name as typed; the resolved path is "command".
        command = " ".join([command or argv[0], *argv[1:]])
    details: dict[str, DetailValue] = {"command": command}
    tty = _str(record.get("ttyname"))
    if tty is not None:
        details["tty"] = tty.removeprefix("/dev/")
    pwd = _str(record.get("submitcwd")) or _str(record.get("runcwd"))
    if pwd is not None:
        details["pwd"] = pwd
    group = _str(record.get("rungroup"))
    if group is not None:
        details["group"] = group
    event = Event(
        time=msg.time,
        category="privilege",
        action="sudo.command",
        outcome="success" if kind == "accept" else "failure",
        actor_name=user,
        actor_type="user",
        actor_effective_user=_str(record.get("runuser")),
        target_host=msg.host,
        target_system="sudo",
        details=details,
    )
    if kind != "accept":
        problem = _str(record.get("reason")) or ""
        _apply_problem(event, problem)
    return event


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
