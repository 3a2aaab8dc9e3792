"""From the records of one auditd event to a Keeptrail event (who did what, in the event model).

The actor is the *login* user, ``auid``, which the kernel keeps across ``sudo`` and ``su``:
``uid``/``euid`` become the effective user. For user-space authentication records
(``USER_LOGIN``, ``USER_AUTH``...) written before a login user exists (``auid`` unset), the
actor is the account being authenticated (``acct=``). Names come from the ENRICHED format's
``AUID=``/``UID=``/``EUID=`` fields; otherwise only uid 0 is named (``root`` everywhere) and
the numbers stay in ``actor.uid`` and ``details``. ``docs/event-vocabulary.md`` lists the
actions.
"""

from __future__ import annotations

from typing import Final

from keeptrail.event import DetailValue, Event
from keeptrail.netaddr import canonical_ip
from keeptrail.parsers.auditd_records import (
    UNSET_IDS,
    Record,
    execve_argv,
    proctitle,
    sockaddr,
    text,
)
from keeptrail.parsers.numerals import UINT32_MAX, ascii_int

# type -> (category, action) for records that are an event on their own.
_SIMPLE: Final[dict[str, tuple[str, str]]] = {
    "USER_LOGIN": ("authentication", "audit.login"),
    "USER_LOGOUT": ("session", "audit.logout"),
    "USER_AUTH": ("authentication", "audit.auth"),
    "USER_ACCT": ("authentication", "audit.account"),
    "USER_ERR": ("authentication", "audit.auth_error"),
    "CRED_ACQ": ("authentication", "audit.cred_acquire"),
    "CRED_DISP": ("authentication", "audit.cred_dispose"),
    "CRED_REFR": ("authentication", "audit.cred_refresh"),
    "USER_START": ("session", "audit.session_open"),
    "USER_END": ("session", "audit.session_close"),
    "USER_CMD": ("privilege", "audit.command"),
    "USER_ROLE_CHANGE": ("privilege", "audit.role_change"),
    "ADD_USER": ("account", "user.create"),
    "DEL_USER": ("account", "user.delete"),
    "USER_MGMT": ("account", "user.modify"),
    "ACCT_LOCK": ("account", "user.modify"),
    "ACCT_UNLOCK": ("account", "user.modify"),
    "USER_CHAUTHTOK": ("account", "user.password_change"),
    "ADD_GROUP": ("account", "group.create"),
    "DEL_GROUP": ("account", "group.delete"),
    "GRP_MGMT": ("account", "group.modify"),
    "GRP_CHAUTHTOK": ("account", "group.modify"),
    "CONFIG_CHANGE": ("audit", "audit.config_change"),
    "DAEMON_START": ("audit", "audit.daemon_start"),
    "DAEMON_END": ("audit", "audit.daemon_stop"),
    "DAEMON_ABORT": ("audit", "audit.daemon_abort"),
    "DAEMON_CONFIG": ("audit", "audit.config_change"),
    "DAEMON_RECONFIG": ("audit", "audit.config_change"),
    "DAEMON_ROTATE": ("audit", "audit.log_rotate"),
    "DAEMON_RESUME": ("audit", "audit.daemon_resume"),
    "USYS_CONFIG": ("config", "audit.config_change"),
    "SERVICE_START": ("process", "service.start"),
    "SERVICE_STOP": ("process", "service.stop"),
    "SYSTEM_BOOT": ("audit", "system.boot"),
    "SYSTEM_SHUTDOWN": ("audit", "system.shutdown"),
    "SYSTEM_RUNLEVEL": ("audit", "system.runlevel"),
    "LOGIN": ("session", "audit.login_uid"),
    "AVC": ("permission", "audit.mac_decision"),
    "NETFILTER_CFG": ("config", "audit.firewall_change"),
    "TIME_ADJNTPVAL": ("config", "system.time_change"),
    "TIME_INJOFFSET": ("config", "system.time_change"),
    "USER_AVC": ("permission", "audit.mac_decision"),
}
_ACCOUNT_GROUP: Final = frozenset({"ADD_GROUP", "DEL_GROUP", "GRP_MGMT", "GRP_CHAUTHTOK"})
# Records that are parts of a syscall event rather than its subject.
_AUXILIARY: Final = frozenset(
    {"EOE", "PATH", "CWD", "EXECVE", "PROCTITLE", "SOCKADDR", "BPRM_FCAPS", "OBJ_PID", "MMAP"}
)
_SEVERITY: Final[dict[str, str]] = {
    "account": "medium",
    "audit.config_change": "medium",
    "audit.daemon_stop": "medium",
    "audit.daemon_abort": "high",
}
# x86_64 (c000003e) and aarch64 (c00000b7) numbers of the syscalls rules usually watch.
_SYSCALLS: Final[dict[tuple[str, str], str]] = {
    **{("c000003e", n): name for n, name in (
        ("0", "read"), ("1", "write"), ("2", "open"), ("4", "stat"), ("42", "connect"),
        ("43", "accept"), ("49", "bind"), ("56", "clone"), ("57", "fork"), ("59", "execve"),
        ("62", "kill"), ("76", "truncate"), ("82", "rename"), ("83", "mkdir"), ("84", "rmdir"),
        ("87", "unlink"), ("88", "symlink"), ("90", "chmod"), ("92", "chown"),
        ("101", "ptrace"), ("105", "setuid"), ("165", "mount"), ("175", "init_module"),
        ("188", "setxattr"), ("257", "openat"), ("263", "unlinkat"), ("264", "renameat"),
        ("268", "fchmodat"), ("288", "accept4"), ("313", "finit_module"), ("322", "execveat"),
        ("50", "listen"), ("85", "creat"), ("86", "link"), ("91", "fchmod"), ("93", "fchown"),
        ("94", "lchown"), ("133", "mknod"), ("159", "adjtimex"), ("164", "settimeofday"),
        ("166", "umount2"), ("227", "clock_settime"), ("258", "mkdirat"), ("259", "mknodat"),
        ("260", "fchownat"), ("265", "linkat"), ("266", "symlinkat"), ("316", "renameat2"),
    )},
    **{("c00000b7", n): name for n, name in (
        ("56", "openat"), ("63", "read"), ("64", "write"), ("200", "bind"), ("203", "connect"),
        ("221", "execve"), ("35", "unlinkat"), ("38", "renameat"), ("117", "ptrace"),
        ("33", "mknodat"), ("34", "mkdirat"), ("36", "symlinkat"), ("37", "linkat"),
        ("39", "umount2"), ("40", "mount"), ("52", "fchmodat"), ("54", "fchownat"),
        ("276", "renameat2"), ("242", "accept4"), ("202", "accept"),
    )},
}  # fmt: skip
_SOCKET_CALLS: Final = frozenset({"connect", "bind", "accept", "accept4"})
_FILE_CALLS: Final = frozenset(
    {
        "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat", "symlink",
        "symlinkat", "mknod", "mknodat", "mount", "umount2", "chmod", "fchmodat", "chown",
        "fchownat", "truncate", "rmdir", "mkdir", "mkdirat", "setxattr", "creat", "fchmod",
        "fchown", "lchown",
    }
)  # fmt: skip
_OK: Final = frozenset({"success", "yes", "1"})
_FAILED: Final = frozenset({"failed", "no", "0", "fail"})


def _uid_name(record: Record, key: str) -> tuple[str | None, int | None]:
    """A user id field as (name, number): the ENRICHED name, ``root`` for 0, else no name."""
    raw = record.fields.get(key)
    if raw is None or raw in UNSET_IDS:
        return None, None
    number = ascii_int(raw, max_value=UINT32_MAX)
    name = record.enriched.get(key.upper())
    if name is not None:
        name = name.strip('"')
        if name in ("unset", "") or name.startswith("unknown("):
            name = None
    if name is None and raw == "0":
        name = "root"
    return name, number


def _primary(records: list[Record]) -> Record:
    """The record an event is about: a known subject record, else SYSCALL, else the first."""
    syscall: Record | None = None
    other: Record | None = None
    for r in records:
        if r.type in _SIMPLE or r.type.startswith("ANOM_"):
            return r
        if r.type == "SYSCALL":
            syscall = r
        elif other is None and r.type not in _AUXILIARY:
            other = r
    return syscall or other or records[0]


def build(records: list[Record], host: str | None) -> Event:
    """The event for one assembled group of records (all sharing node and serial)."""
    primary = _primary(records)
    by_type: dict[str, list[Record]] = {}
    for r in records:
        by_type.setdefault(r.type, []).append(r)
    f = primary.fields
    details: dict[str, DetailValue] = {"record_type": primary.type, "serial": primary.serial}
    if len(records) > 1:
        details["record_types"] = [r.type for r in records]
    event = Event(time=primary.time_us, category="audit", action="audit.record")
    event.target_host = primary.node or host
    event.target_system = "auditd"

    if "auid" not in f and "SYSCALL" in by_type:  # TIME_*, NETFILTER_CFG: the syscall says who
        f = by_type["SYSCALL"][0].fields
        actor, auid = _uid_name(by_type["SYSCALL"][0], "auid")
    else:
        actor, auid = _uid_name(primary, "auid")
    event.actor_uid = auid
    event.actor_name = actor
    session = f.get("ses")
    if session is not None and session not in UNSET_IDS:
        event.actor_session = session
    for key in ("auid", "uid", "euid", "pid", "ses"):
        value = f.get(key)
        if value is not None and value != "?":
            details[key] = value

    if primary.type in _SIMPLE:
        event.category, event.action = _SIMPLE[primary.type]
        _user_space(event, primary, details)
        if "SYSCALL" in by_type:  # e.g. CONFIG_CHANGE or LOGIN with its syscall context
            for key in ("exe", "comm"):
                value = text(by_type["SYSCALL"][0].fields, key)
                if value is not None:
                    details.setdefault(key, value)
    elif primary.type == "SYSCALL" or primary.type in _AUXILIARY:
        _syscall(event, primary, by_type, details)
    else:
        _user_space(event, primary, details)
    event.actor_type = "user" if event.actor_name or event.actor_uid is not None else "system"
    event.severity = _SEVERITY.get(event.action, _SEVERITY.get(event.category, "info"))
    if event.outcome == "failure" and event.severity == "info":
        event.severity = "low"
    if primary.type.startswith("ANOM_"):
        event.category, event.action, event.severity = "audit", "audit.anomaly", "medium"
    event.details = details
    return event


def _user_space(event: Event, r: Record, details: dict[str, DetailValue]) -> None:
    """Fill an event from a single user-space or kernel record (USER_*, ADD_USER, LOGIN...)."""
    f = r.fields
    res = (f.get("res") or f.get("success") or "").strip("'\"")
    event.outcome = "success" if res in _OK else "failure" if res in _FAILED else "unknown"
    if r.type in ("AVC", "USER_AVC"):
        denied = "denied" in f or "denied" in str(f.get("seresult", ""))
        event.outcome = "failure" if denied else "success"
    acct = text(f, "acct")
    if acct is not None and acct.startswith("(") and acct.endswith(")"):
        details["acct"] = acct
        acct = None
    exe = text(f, "exe")
    for key in ("op", "terminal", "grantors", "id", "key", "list", "unit", "comm", "old-auid"):
        value = text(f, key)
        if value is not None:
            details[key] = value
    if exe is not None:
        details["exe"] = exe
        if event.category != "audit":
            event.target_system = exe.rpartition("/")[2] or exe
    if r.type == "USER_CMD":
        command = text(f, "cmd")
        if command is not None:
            details["command"] = command
        cwd = text(f, "cwd")
        if cwd is not None:
            details["cwd"] = cwd
    if event.category == "account":
        event.target_resource = acct or text(f, "id")
        event.target_resource_type = "group" if r.type in _ACCOUNT_GROUP else "user"
        if event.outcome == "failure":
            event.reason = "error"
    elif acct is not None:
        if event.actor_name is None and event.actor_uid is None:
            event.actor_name = acct  # before login: the account being authenticated
        elif acct != event.actor_name:
            event.actor_effective_user = acct
    elif r.type in {"SERVICE_START", "SERVICE_STOP"}:
        event.target_resource, event.target_resource_type = text(f, "unit"), "service"
    if event.actor_effective_user is None and event.actor_uid is not None:
        _effective_from(event, r, "uid")
    if event.outcome == "failure" and event.reason is None:
        if details.get("acct") in ("(invalid user)", "(unknown)"):
            event.reason = "invalid_user"
        elif event.category == "authentication":
            event.reason = "denied" if r.type == "USER_ACCT" else "pam_failure"
        elif event.category == "permission":
            event.reason = "denied"
        else:
            event.reason = "error"
    addr = f.get("addr")
    if addr is not None:
        event.source_ip = canonical_ip(addr.strip('"'))
    hostname = text(f, "hostname")
    if hostname is not None and hostname != addr and canonical_ip(hostname) is None:
        event.source_host = hostname
    if r.type == "LOGIN":
        event.outcome = "success" if res in _OK or res == "" else "failure"


def _syscall(
    event: Event, r: Record, by_type: dict[str, list[Record]], details: dict[str, DetailValue]
) -> None:
    """Fill an event from a SYSCALL and its EXECVE/CWD/PATH/PROCTITLE/SOCKADDR records."""
    f = r.fields
    if r.type == "SYSCALL":
        event.category, event.action = "process", "process.syscall"
    success = f.get("success")
    event.outcome = "success" if success == "yes" else "failure" if success == "no" else "unknown"
    if event.outcome == "failure":
        exit_code = f.get("exit", "")
        event.reason = "denied" if exit_code in ("-13", "-1") else "error"
        details["exit"] = exit_code
    number = f.get("syscall")
    if number is not None:
        name = r.enriched.get("SYSCALL") or _SYSCALLS.get((f.get("arch", ""), number))
        details["syscall"] = name or number
    _effective_from(event, r, "euid")
    for key in ("exe", "comm", "key", "tty"):
        value = text(f, key)
        if value is not None:
            details[key] = value.replace("\x01", ",") if key == "key" else value
    if "CWD" in by_type:
        cwd = text(by_type["CWD"][0].fields, "cwd")
        if cwd is not None:
            details["cwd"] = cwd
    title = by_type.get("PROCTITLE")
    if title is not None and "proctitle" in title[0].fields:
        details["proctitle"] = proctitle(title[0].fields["proctitle"])
    if "EXECVE" in by_type:
        event.category, event.action = "process", "process.exec"
        argv = execve_argv([x.fields for x in by_type["EXECVE"]])
        details["command"] = " ".join(argv)
        exe = details.get("exe")
        event.target_resource = exe if isinstance(exe, str) else (argv[0] if argv else None)
        event.target_resource_type = "executable"
    elif "SOCKADDR" in by_type and details.get("syscall") in _SOCKET_CALLS:
        addr = sockaddr(by_type["SOCKADDR"][0].fields.get("saddr", ""))
        event.action = f"process.{str(details['syscall']).removesuffix('4')}"
        event.target_resource_type = "socket"
        if "ip" in addr:
            ip = canonical_ip(str(addr["ip"]))
            if ip is not None:
                details["remote_ip"], details["remote_port"] = ip, int(addr["port"])
                port = addr["port"]
                event.target_resource = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        elif "path" in addr:
            event.target_resource = str(addr["path"])
        details["family"] = str(addr.get("family", ""))
    elif details.get("syscall") in _FILE_CALLS or ("PATH" in by_type and "key" in details):
        event.category, event.action = "file", "file.access"
        event.target_resource_type = "file"
        event.target_resource = _object_path(by_type.get("PATH", []), details.get("cwd"))
    if "command" not in details and "proctitle" in details:
        details["command"] = details["proctitle"]
    del_key = details.pop("proctitle", None)
    if del_key is not None and details.get("command") != del_key:
        details["proctitle"] = del_key


def _effective_from(event: Event, r: Record, key: str) -> None:
    """Set the effective user from ``euid``/``uid`` when the login user is known and differs."""
    effective, number = _uid_name(r, key)
    if event.actor_uid is None and event.actor_name is None:
        event.actor_effective_user = effective  # a daemon: no login user, only its account
    elif number is not None and number != event.actor_uid:
        event.actor_effective_user = effective


def _object_path(paths: list[Record], cwd: DetailValue) -> str | None:
    """The file a syscall acted on: the first non-PARENT PATH item, made absolute with cwd.

    For ``rename`` that is the old name (the DELETE item), as go-libaudit reports it.
    """
    chosen: str | None = None
    parent: str | None = None
    for p in paths:
        name = text(p.fields, "name")
        if name is None:
            continue
        if p.fields.get("nametype") == "PARENT":
            parent = parent or name
        else:
            chosen = name
            break
    chosen = chosen or parent
    if chosen is not None and not chosen.startswith("/") and isinstance(cwd, str):
        chosen = f"{cwd.rstrip('/')}/{chosen}"
    return chosen
