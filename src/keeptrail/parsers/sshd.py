"""OpenSSH ``sshd`` messages: logins, failures, refusals, disconnects and connection errors.

Dispatch is on the message's first word (after sshd's ``error:``/``fatal:`` level and a Solaris
``[ID n facility.level]`` tag), so most lines cost one dictionary look-up and one regex match.

Everything between ``for``/``user`` and sshd's fixed suffix is attacker controlled: a user
name may contain spaces and `` from 1.2.3.4 port 22``. The regexes therefore take the user
greedily and anchor the remote address on the *end* of the message, where sshd's own text is
(`` from IP port N ssh2``, `` IP port N``); client-controlled text that sshd writes after the
address (a disconnect description, a client's algorithm offer) is only ever read after an
address anchored at the *start*. ``source.ip`` only holds what :mod:`ipaddress` accepts.

Lines written by ``pam_unix(sshd:...)`` are the PAM parser's: :func:`parse` returns ``None``
for them and :mod:`~keeptrail.parsers.detect` hands them over (the pre-2005 tag
``sshd(pam_unix)`` belongs to the PAM parser's ``PROGRAMS``). sshd's *own* PAM reports
(``error: PAM: ...``, ``PAM 2 more authentication failures; ...``) are read here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Final

from keeptrail.event import DetailValue, Event
from keeptrail.netaddr import canonical_ip
from keeptrail.parsers.base import SyslogMessage
from keeptrail.parsers.numerals import PORT_MAX, UINT32_MAX, ascii_int, put_int

PROGRAMS: Final = frozenset(
    {
        "sshd",
        "sshd-session",  # OpenSSH >= 9.8: the per-connection process
        "sshd-auth",  # OpenSSH >= 10.0: the pre-authentication process
        "/usr/sbin/sshd",  # when the tag is taken from argv[0] (some relays, containers)
    }
)

_SYSTEM: Final = "ssh"

# "... for [invalid user ]USER from ADDR port N[ ssh2][: KEYTYPE FINGERPRINT[ ID ... CA ...]]"
_FOR_FROM: Final = re.compile(
    r"(?P<method>\S+) for (?P<invalid>(?:invalid|illegal) user )?(?P<user>.*)"
    r" from (?P<addr>\S+)(?: port (?P<port>\d+))?(?: (?P<proto>ssh[12]))?"
    r"(?:: (?P<ktype>[A-Za-z0-9@._-]+) (?P<kfp>SHA256:[A-Za-z0-9+/=]+|MD5:[0-9a-f:]+|"
    r"[0-9a-f]{2}(?::[0-9a-f]{2}){15})(?P<kextra> ID .*)?)?$",
    re.DOTALL,
)
# "maximum authentication attempts exceeded for [invalid user ]USER from ADDR port N ssh2"
_MAX_ATTEMPTS: Final = re.compile(
    r"authentication attempts exceeded for (?P<invalid>(?:invalid|illegal) user )?"
    r"(?P<user>.*) from (?P<addr>\S+)(?: port (?P<port>\d+))?(?: (?P<proto>ssh[12]))?$",
    re.DOTALL,
)
# "Invalid user USER from ADDR[ port N]"
_INVALID: Final = re.compile(
    r"user (?P<user>.*) from (?P<addr>\S+)(?: port (?P<port>\d+))?$", re.DOTALL
)
# sshd's connection id: "[authenticating |invalid ]user USER ADDR port N" or "ADDR port N"
# (or, before OpenSSH 7.x, just "ADDR"): the user is greedy, so the last "ADDR port N" wins.
_CONN_ID: Final = re.compile(
    r"(?:(?P<kind>authenticating |invalid |illegal |)user (?P<user>.*) )?"
    r"(?P<addr>\S+) port (?P<port>\d+)$",
    re.DOTALL,
)
_CONN_ID_NO_PORT: Final = re.compile(
    r"(?:(?P<kind>authenticating |invalid |illegal |)user (?P<user>.*) )?(?P<addr>\S+)$",
    re.DOTALL,
)
# The same, followed by ": DESCRIPTION" (the address cannot contain a space or a colon-space).
_CONN_ID_DESC: Final = re.compile(
    r"(?:(?P<kind>authenticating |invalid |illegal |)user (?P<user>.*) )?"
    r"(?P<addr>[0-9A-Fa-f.:%]+|\S+?) port (?P<port>\d+): (?P<desc>.*)$",
    re.DOTALL,
)
# "Received disconnect from ADDR port N:CODE: DESC" (also the pre-7.2 "from ADDR: CODE: DESC").
_RECEIVED: Final = re.compile(
    r"Received disconnect from (?P<addr>[^\s:]+|[0-9A-Fa-f:.%]+?)(?: port (?P<port>\d+))?:"
    r" ?(?P<code>\d+): ?(?P<desc>.*)$",
    re.DOTALL,
)
_IDENT: Final = re.compile(
    r"Did not receive identification string from (?P<addr>\S+)(?: port (?P<port>\d+))?$"
)
_NEGOTIATE: Final = re.compile(
    r"Unable to negotiate (?:with (?P<addr>[^\s:]+|\S+?)(?: port (?P<port>\d+))?: )?"
    r"(?:no matching (?P<what>.+?) found\. Their offer: (?P<offer>.*)|(?P<other>.*))$",
    re.DOTALL,
)
_BANNER: Final = re.compile(
    r"banner exchange: Connection from (?P<addr>\S+?) port (?P<port>\d+): (?P<desc>.*)$",
    re.DOTALL,
)
_BAD_VERSION: Final = re.compile(
    r"Bad protocol version identification (?P<ident>.*) from (?P<addr>\S+)"
    r"(?: port (?P<port>\d+))?$",
    re.DOTALL,
)
# Greedy user, anchored on the last " from ADDR not allowed because " (then without "from").
_NOT_ALLOWED: Final = re.compile(
    r"User (?P<user>.*) from (?P<addr>\S+) not allowed because (?P<why>.*)$", re.DOTALL
)
_NOT_ALLOWED_NO_FROM: Final = re.compile(
    r"User (?P<user>.*) not allowed because (?P<why>.*)$", re.DOTALL
)
_ROOT_REFUSED: Final = re.compile(
    r"ROOT LOGIN REFUSED FROM (?P<addr>\S+?)(?: port (?P<port>\d+))?$"
)
_TIMEOUT: Final = re.compile(
    r"Timeout before authentication for (?:connection from )?(?P<addr>[^\s,]+?)"
    r"(?: port (?P<port>\d+))?(?:[ ,].*)?$"
)
_REVERSE: Final = re.compile(
    r"reverse mapping checking getaddrinfo for (?P<host>\S+) \[(?P<addr>[^\]\s]+)\] failed"
)
_ADDRESS_MAPS: Final = re.compile(r"Address (?P<addr>\S+) maps to (?P<host>[^\s,]+),")
_REFUSED_CONNECT: Final = re.compile(r"refused connect from (?P<host>\S+) \((?P<addr>[^)\s]+)\)$")
_PAM_ERROR: Final = re.compile(
    r"PAM: (?P<err>.+?) for (?P<invalid>illegal user |invalid user )?(?P<user>.*)"
    r" from (?P<addr>\S+)$",
    re.DOTALL,
)
_PAM_MORE: Final = re.compile(r"PAM (?P<n>\d+) more authentication failures?;")
# pam_unix's key=value tail: rhost and user are the last two keys, user last.
_PAM_TAIL: Final = re.compile(r" rhost=(?P<rhost>\S*)(?:\s+user=(?P<user>.*))?$", re.DOTALL)
_STARTING: Final = re.compile(
    r"Starting session: (?P<what>.+?) for (?P<user>.*) from (?P<addr>\S+)"
    r" port (?P<port>\d+)(?: id (?P<id>\d+))?$",
    re.DOTALL,
)
_CLOSE: Final = re.compile(
    r"Close session: user (?P<user>.*) from (?P<addr>\S+) port (?P<port>\d+)"
    r"(?: id (?P<id>\d+))?$",
    re.DOTALL,
)
_SUBSYSTEM: Final = re.compile(
    r"subsystem request for (?P<name>\S+) by user (?P<user>.*?)(?P<failed> failed, .*)?$",
    re.DOTALL,
)
_READ_ERROR: Final = re.compile(
    r"Read error from remote host (?P<addr>[^\s:]+|\S+?): (?P<desc>.*)$"
)
_PENALTY: Final = re.compile(
    r"drop connection #\d+ from \[(?P<addr>[^\]]+)\]:(?P<port>\d+) on \[[^\]]*\]:\d+ "
    r"penalty: (?P<desc>.*)$"
)
_CONFIG: Final = re.compile(
    r"(?:Authentication refused: (?P<desc>bad ownership or modes for (?:file|directory))"
    r" (?P<file>.+)|(?P<desc2>Could not stat AuthorizedKeys(?:Command|PrincipalsCommand))"
    r' "(?P<file2>[^"]*)": .*)$',
    re.DOTALL,
)
_SOLARIS_ID: Final = re.compile(r"\[ID \d+ [\w.]+\] ")

_FAIL_REASON: Final = {
    "password": "bad_password",
    "publickey": "bad_key",
    "hostbased": "bad_key",
    "none": "no_auth_method",
}
_CLOSED_OR_RESET: Final = (
    ("Connection closed by ", "connection closed"),
    ("Connection reset by ", "connection reset"),
)
_TOO_MANY: Final = ": Too many authentication failures"
_CLIENT_QUOTED: Final = ": Change of username or service not allowed: "


@lru_cache(maxsize=4096)  # pure; brute-force logs repeat the same few addresses
def _address(text: str | None) -> tuple[str | None, str | None]:
    """``(ip, None)`` for a valid IP address, ``(None, text)`` for anything else."""
    if not text:
        return None, None
    ip = canonical_ip(text)
    return (ip, None) if ip is not None else (None, text)


def _event(
    msg: SyslogMessage,
    category: str,
    action: str,
    outcome: str,
    reason: str | None,
    user: str | None,
    addr: str | None,
    port: str | None,
    details: dict[str, DetailValue],
    *,
    method: str | None = None,
) -> Event:
    ip, host = _address(addr)
    return Event(
        time=msg.time,
        category=category,
        action=action,
        outcome=outcome,
        reason=reason,
        severity="low" if outcome == "failure" else "info",
        actor_name=user or None,
        actor_type="user" if user else None,
        actor_auth_method=method,
        source_ip=ip,
        source_port=ascii_int(port, max_value=PORT_MAX) if port else None,
        source_host=host,
        target_host=msg.host,
        target_system=_SYSTEM,
        details=details,
    )


def _for_from(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    """``Accepted``/``Failed``/``Partial``/``Postponed`` METHOD for USER from ADDR ..."""
    verb, _, rest = text.partition(" ")
    m = _FOR_FROM.match(rest)
    if m is None:
        return None
    method = m["method"]
    if m["proto"]:
        details["protocol"] = m["proto"]
    if m["ktype"]:
        details["key_type"] = m["ktype"]
        details["key_fingerprint"] = m["kfp"]
        if m["kextra"]:
            details["key_certificate"] = m["kextra"][1:]
    reason: str | None = None
    if m["invalid"]:
        details["invalid_user"] = True
    if verb == "Accepted":
        action, outcome = "ssh.login", "success"
    elif verb == "Failed":
        action, outcome = "ssh.login", "failure"
        if m["invalid"]:
            reason = "invalid_user"
        else:
            base = method.partition("/")[0]
            reason = _FAIL_REASON.get(
                base, "bad_password" if base == "keyboard-interactive" else "bad_credentials"
            )
    else:
        action = "ssh.auth_step"
        outcome = "success" if verb == "Partial" else "unknown"
        details["step"] = verb.lower()
    return _event(
        msg, "authentication", action, outcome, reason, m["user"], m["addr"], m["port"],
        details, method=method,
    )  # fmt: skip


def _conn_event(
    msg: SyslogMessage,
    conn: str,
    category: str,
    action: str,
    outcome: str,
    reason: str | None,
    details: dict[str, DetailValue],
) -> Event:
    """An event whose subject is sshd's connection id (``[kind ]user USER ADDR port N``)."""
    m = _CONN_ID.match(conn)
    if m is not None:
        port = m["port"]
    else:
        m = _CONN_ID_NO_PORT.match(conn)
        if m is None:  # an empty or multi-line id
            return _event(msg, category, action, outcome, reason, None, None, None, details)
        port = None
    if m["kind"] in ("invalid ", "illegal "):
        details["invalid_user"] = True
    return _event(msg, category, action, outcome, reason, m["user"], m["addr"], port, details)


def _disconnecting(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event:
    """``Disconnecting [kind user USER] ADDR port N: DESC`` and ``Disconnecting: DESC``."""
    rest = text[len("Disconnecting") :]
    if rest.startswith(": "):  # pre-7.x: "Disconnecting: Too many authentication failures for X"
        desc = rest[2:]
        details["description"] = desc
        prefix = "Too many authentication failures for "
        if desc.startswith(prefix):
            user = desc[len(prefix) :]
            invalid = user.startswith("invalid user ")
            if invalid:
                details["invalid_user"] = True
                user = user[len("invalid user ") :]
            return _event(
                msg, "authentication", "ssh.login", "failure", "max_attempts", user, None, None,
                details,
            )  # fmt: skip
        return _event(
            msg, "authentication", "ssh.connection", "failure", "protocol_error", None, None, None,
            details,
        )  # fmt: skip
    rest = rest.lstrip(" ")
    if rest.endswith(_TOO_MANY):
        details["description"] = _TOO_MANY[2:]
        return _conn_event(
            msg, rest[: -len(_TOO_MANY)], "authentication", "ssh.login", "failure",
            "max_attempts", details,
        )  # fmt: skip
    # Some descriptions quote what the client sent; cut there first, so client text can never
    # supply the "ADDR port N: " the match anchors on.
    quoted = rest.find(_CLIENT_QUOTED)
    full_desc = None
    if quoted >= 0:
        full_desc = rest[quoted + 2 :]
        rest = rest[: quoted + len(_CLIENT_QUOTED) - 2]
    m = _CONN_ID_DESC.match(rest)
    if m is None:
        return _conn_event(msg, rest, "session", "ssh.disconnect", "unknown", None, details)
    details["description"] = full_desc if full_desc is not None else m["desc"]
    if m["kind"] in ("invalid ", "illegal "):
        details["invalid_user"] = True
    return _event(
        msg, "session", "ssh.disconnect", "unknown", None, m["user"], m["addr"], m["port"],
        details,
    )  # fmt: skip


def _connection(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    """``Connection closed by ...`` / ``Connection reset by ...``."""
    for prefix, desc in _CLOSED_OR_RESET:
        if text.startswith(prefix):
            details["description"] = desc
            return _conn_event(
                msg, text[len(prefix) :], "session", "ssh.disconnect", "unknown", None, details
            )
    return None


def _disconnected(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    if not text.startswith("Disconnected from "):
        return None
    return _conn_event(msg, text[18:], "session", "ssh.disconnect", "unknown", None, details)


def _received(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _RECEIVED.match(text)
    if m is None:
        return None
    put_int(details, "disconnect_code", m["code"], max_value=UINT32_MAX)
    details["description"] = m["desc"]
    return _event(
        msg, "session", "ssh.disconnect", "unknown", None, None, m["addr"], m["port"], details
    )


def _connection_failure(
    msg: SyslogMessage,
    reason: str,
    m: re.Match[str],
    details: dict[str, DetailValue],
    user: str | None = None,
) -> Event:
    groups = m.groupdict()
    return _event(
        msg, "authentication", "ssh.connection", "failure", reason, user, groups.get("addr"),
        groups.get("port"), details,
    )  # fmt: skip


def _did(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _IDENT.match(text)
    return None if m is None else _connection_failure(msg, "no_identification", m, details)


def _unable(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _NEGOTIATE.match(text)
    if m is None:
        return None
    if m["what"]:
        details["negotiation"] = m["what"]
        details["client_offer"] = m["offer"].split(",")
    else:
        details["description"] = m["other"]
    return _connection_failure(msg, "negotiation_failed", m, details)


def _banner(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _BANNER.match(text)
    if m is None:
        return None
    details["description"] = m["desc"]
    return _connection_failure(msg, "banner_exchange_failed", m, details)


def _bad(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _BAD_VERSION.match(text)
    if m is not None:
        details["client_version"] = m["ident"].strip("'")
        return _connection_failure(msg, "banner_exchange_failed", m, details)
    if text.startswith("Bad packet length"):
        details["description"] = text.rstrip(".")
        return _event(
            msg, "authentication", "ssh.connection", "failure", "protocol_error", None, None,
            None, details,
        )  # fmt: skip
    return None


def _corrupted(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    if not text.startswith("Corrupted MAC on input"):
        return None
    details["description"] = text.rstrip(".")
    return _event(
        msg, "authentication", "ssh.connection", "failure", "protocol_error", None, None, None,
        details,
    )  # fmt: skip


def _user(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _NOT_ALLOWED.match(text) or _NOT_ALLOWED_NO_FROM.match(text)
    if m is None:
        return None
    details["denied_because"] = m["why"]
    return _event(
        msg, "authentication", "ssh.login", "failure", "denied", m["user"],
        m.groupdict().get("addr"), None, details,
    )  # fmt: skip


def _root(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _ROOT_REFUSED.match(text)
    if m is None:
        return None
    return _event(
        msg, "authentication", "ssh.login", "failure", "root_refused", "root", m["addr"],
        m["port"], details,
    )  # fmt: skip


def _invalid(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _INVALID.match(text, text.find(" ") + 1)
    if m is None:
        return None
    return _event(
        msg, "authentication", "ssh.invalid_user", "failure", "invalid_user", m["user"],
        m["addr"], m["port"], details,
    )  # fmt: skip


def _maximum(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _MAX_ATTEMPTS.match(text, len("maximum "))
    if m is None:
        return None
    if m["invalid"]:
        details["invalid_user"] = True
    if m["proto"]:
        details["protocol"] = m["proto"]
    return _event(
        msg, "authentication", "ssh.login", "failure", "max_attempts", m["user"], m["addr"],
        m["port"], details,
    )  # fmt: skip


def _timeout(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _TIMEOUT.match(text)
    if m is not None:
        return _connection_failure(msg, "timeout", m, details)
    if text.startswith("Timeout, client not responding from "):
        details["description"] = "client not responding"
        return _conn_event(msg, text[36:], "session", "ssh.disconnect", "unknown", None, details)
    return None


def _dns(
    msg: SyslogMessage, m: re.Match[str] | None, details: dict[str, DetailValue]
) -> Event | None:
    if m is None:
        return None
    ip, _ = _address(m["addr"])
    details["claimed_hostname"] = m["host"]
    event = _event(
        msg, "authentication", "ssh.dns_mismatch", "unknown", None, None, m["addr"], None, details
    )
    if ip is not None:  # the claimed name is the one the client's DNS gave
        event.source_host = m["host"]
    return event


def _reverse(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    return _dns(msg, _REVERSE.match(text), details)


def _address_maps(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    return _dns(msg, _ADDRESS_MAPS.match(text), details)


def _refused(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _REFUSED_CONNECT.match(text)
    if m is None:
        return None
    details["refused_by"] = "tcp_wrappers"
    event = _connection_failure(msg, "denied", m, details)
    if event.source_ip is not None and m["host"] != m["addr"]:
        event.source_host = m["host"]
    return event


def _pam(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    """``PAM: ERROR for [illegal user ]USER from HOST`` and ``PAM N more ... failures; ...``."""
    m = _PAM_ERROR.match(text)
    if m is not None:
        err = m["err"]
        details["pam_message"] = err
        invalid = bool(m["invalid"]) or err in (
            "User not known to the underlying authentication module",
            "unknown user",
        )
        if m["invalid"]:
            details["invalid_user"] = True
        reason = "invalid_user" if invalid else "pam_failure"
        return _event(
            msg, "authentication", "ssh.login", "failure", reason, m["user"], m["addr"], None,
            details,
        )  # fmt: skip
    return _pam_tail(msg, text, details)


def _pam_tail(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    """``PAM N more authentication failures; logname= ... rhost=H user=U`` (auth-pam.c)."""
    more = _PAM_MORE.match(text)
    if more is None:
        return None
    put_int(details, "attempts", more["n"], max_value=UINT32_MAX)
    tail = _PAM_TAIL.search(text)
    user = addr = None
    if tail is not None:
        user, addr = tail["user"], tail["rhost"]
    details["pam_message"] = "authentication failure"
    return _event(
        msg, "authentication", "ssh.login", "failure", "pam_failure", user, addr, None, details
    )


def _starting(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _STARTING.match(text)
    if m is None:
        return None
    details["session_type"] = m["what"]
    return _session(msg, m, "ssh.session_open", details)


def _close(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _CLOSE.match(text)
    return None if m is None else _session(msg, m, "ssh.session_close", details)


def _session(
    msg: SyslogMessage, m: re.Match[str], action: str, details: dict[str, DetailValue]
) -> Event:
    """``Starting session: ...`` / ``Close session: ...``: user, address, port, session id."""
    event = _event(
        msg, "session", action, "success", None, m["user"], m["addr"], m["port"], details
    )
    event.actor_session = m["id"]
    return event


def _subsystem(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _SUBSYSTEM.match(text)
    if m is None:
        return None
    failed = m["failed"]
    if failed:
        details["description"] = failed[9:]
    event = _event(
        msg, "session", "ssh.subsystem", "failure" if failed else "success", None, m["user"],
        None, None, details,
    )  # fmt: skip
    event.target_resource = m["name"]
    event.target_resource_type = "subsystem"
    return event


def _read(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _READ_ERROR.match(text)
    if m is None:
        return None
    details["description"] = m["desc"]
    return _event(msg, "session", "ssh.disconnect", "unknown", None, None, m["addr"], None, details)


def _drop(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    m = _PENALTY.match(text)
    if m is None:
        return None
    details["description"] = m["desc"]
    return _connection_failure(msg, "penalty", m, details)


def _protocol(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    # "Protocol major versions differ for ADDR: SSH-2.0-x vs. SSH-1.5-y"
    if not text.startswith("Protocol major versions differ for "):
        return None
    addr, _, desc = text[35:].partition(": ")
    details["description"] = desc
    return _event(
        msg, "authentication", "ssh.connection", "failure", "banner_exchange_failed", None, addr,
        None, details,
    )  # fmt: skip


def _config(msg: SyslogMessage, text: str, details: dict[str, DetailValue]) -> Event | None:
    """``Authentication refused: bad ownership or modes for file F``, unusable key commands."""
    m = _CONFIG.match(text)
    if m is None:
        return None
    details["description"] = m["desc"] or m["desc2"]
    event = _event(msg, "config", "ssh.config_error", "failure", None, None, None, None, details)
    event.target_resource = m["file"] or m["file2"]
    event.target_resource_type = "file"
    return event


_Handler = Callable[[SyslogMessage, str, dict[str, DetailValue]], Event | None]

_BY_FIRST_WORD: Final[dict[str, _Handler]] = {
    "Accepted": _for_from,
    "Failed": _for_from,
    "Partial": _for_from,
    "Postponed": _for_from,
    "Invalid": _invalid,
    "Illegal": _invalid,
    "maximum": _maximum,
    "Disconnecting": _disconnecting,
    "Disconnecting:": _disconnecting,
    "Disconnected": _disconnected,
    "Connection": _connection,
    "Received": _received,
    "Did": _did,
    "Unable": _unable,
    "banner": _banner,
    "Bad": _bad,
    "Corrupted": _corrupted,
    "Protocol": _protocol,
    "User": _user,
    "ROOT": _root,
    "Timeout": _timeout,
    "Timeout,": _timeout,
    "reverse": _reverse,
    "Address": _address_maps,
    "refused": _refused,
    "PAM": _pam,
    "PAM:": _pam,
    "Starting": _starting,
    "Close": _close,
    "subsystem": _subsystem,
    "Read": _read,
    "drop": _drop,
    "Authentication": _config,
    "Could": _config,
}


def parse(msg: SyslogMessage) -> Event | None:
    """The event for one sshd message, or ``None`` when it is not one this module knows."""
    text = msg.message
    if text.startswith(("error: ", "fatal: ")):
        text = text[7:]
    elif text.startswith("[ID "):
        m = _SOLARIS_ID.match(text)
        if m is not None:
            text = text[m.end() :]
    space = text.find(" ")
    word = text[:space] if space > 0 else text
    handler = _BY_FIRST_WORD.get(word)
    if handler is None:
        return None
    details: dict[str, DetailValue] = {}
    if text.endswith(" [preauth]"):
        text = text[:-10]
        details["preauth"] = True
    elif text.endswith(" [postauth]"):
        text = text[:-11]
    return handler(msg, text, details)
