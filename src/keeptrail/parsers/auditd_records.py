"""One line of ``/var/log/audit/audit.log``, split and decoded (the record layer of auditd).

A record is ``[node=N ]type=T msg=audit(EPOCH.MS:SERIAL): key=value ...``; in auditd's
``log_format=ENRICHED`` the interpreted fields (``AUID="alice" UID="root" SYSCALL=execve``)
follow a ``\\x1d`` byte. Values come three ways, and the kernel chooses per value:

* ``"quoted"`` — printable text without spaces or quotes, taken literally;
* unquoted hex (``exe=2F7573...``, ``proctitle=6C73002D6C``) — the kernel's encoding of
  *untrusted* strings that contain spaces, quotes or control bytes, decoded here;
* bare tokens (``uid=0``, ``res=success``, ``key=(null)``).

User-space records (``USER_LOGIN``, ``ADD_USER``...) carry their facts inside
``msg='...'``, where an unquoted value may itself contain spaces (shadow-utils writes
``op=adding group to /etc/group id=1004``): such a value runs up to the next `` key=``.

Splitting is lazy: :func:`parse_record` keeps the raw tokens, and :func:`text` decodes
just the fields the mapping reads. Everything here is pure and never raises on odd input.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

from keeptrail.parsers.numerals import UINT32_MAX, ascii_int, epoch_micros

_HEADER: Final = re.compile(
    r"(?:node=(?P<node>\S{1,255}) )?type=(?P<type>[A-Z0-9_\[\]]{1,40}) "
    r"msg=audit\((?P<sec>\d{1,12})\.(?P<frac>\d{1,6}):(?P<serial>\d{1,20})\):?"
)
_KV: Final = re.compile(r"([\w\[\]-]+)=(\"[^\"]*\"|'[^']*'|\S*)")
# Inside msg='...': an unquoted value keeps its spaces until the next " key=".
_INNER_KV: Final = re.compile(r"([\w\[\]-]+)=(\"[^\"]*\"|(?:\S|\s(?![\w\[\]-]+=))*)")
_TRAILERS: Final = frozenset(" ,:)")  # RHEL 5's "acct=root : exe=... (hostname=?, addr=?)"
_HEX_RE: Final = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_ABSENT: Final = frozenset({"(null)", "?", "(none)", ""})

# Fields the kernel or libaudit may hex-encode (audit_log_untrustedstring, audit_encode_value).
UNTRUSTED: Final = frozenset(
    {
        "acct",
        "cmd",
        "comm",
        "cwd",
        "data",
        "exe",
        "key",
        "name",
        "path",
        "proctitle",
        "old-chardev",
        "new-chardev",
        "grp",
        "new_group",
        "new_user",
    }
)

UNSET_IDS: Final = frozenset({"4294967295", "-1", "unset"})


@dataclass(slots=True)
class Record:
    """One audit record: its header and its raw (undecoded) ``key=value`` tokens.

    ``fields`` holds the record's own tokens, with the user-space ``msg='...'`` tokens merged
    in (outer tokens win: they are written by the kernel, the inner ones by the program);
    ``enriched`` holds the interpreted fields after ``\\x1d`` (empty in the RAW format).
    """

    node: str | None
    type: str
    time_us: int
    serial: int
    fields: dict[str, str]
    enriched: dict[str, str]


def parse_record(line: str) -> Record | None:
    """Split one audit.log line into a :class:`Record`, or ``None`` when it is not one."""
    m = _HEADER.match(line)
    if m is None:
        return None
    body = line[m.end() :]
    enriched: dict[str, str] = {}
    sep = body.find("\x1d")
    if sep >= 0:
        enriched = dict(_KV.findall(body, sep + 1))
        body = body[:sep]
    fields = dict(_KV.findall(body))
    inner = fields.get("msg")
    if inner is not None and inner.startswith("'"):
        merged = {
            key: value.rstrip(" ,:)") if value[-1:] in _TRAILERS and value[:1] != '"' else value
            for key, value in _INNER_KV.findall(inner[1:-1] if inner.endswith("'") else inner[1:])
        }
        merged.update(fields)
        del merged["msg"]
        fields = merged
    node, kind, sec, frac, serial_text = m.groups()
    # The header's numbers are the record's identity: unreadable ones (Unicode digits, a time
    # past year 9999, a serial wider than the kernel's 32 bits) mean it is not a record.
    time_us = epoch_micros(f"{sec}.{frac}")
    serial = ascii_int(serial_text, max_value=UINT32_MAX)
    if time_us is None or serial is None:
        return None
    return Record(node, kind, time_us, serial, fields, enriched)


def is_hex(value: str) -> bool:
    """Whether an unquoted value is the kernel's hex encoding (even length, hex digits only)."""
    return _HEX_RE.fullmatch(value) is not None


def decode_hex(value: str) -> str:
    """The text a hex value encodes (invalid UTF-8 escaped with backslashes)."""
    return bytes.fromhex(value).decode("utf-8", "backslashreplace")


def unquote(value: str) -> str | None:
    """A token as text: quotes removed, hex decoded, ``(null)``/``?`` as ``None``."""
    if value.startswith('"'):
        return value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:]
    if value in _ABSENT:
        return None
    if is_hex(value):
        return decode_hex(value)
    return value


def text(fields: dict[str, str], key: str) -> str | None:
    """A field's decoded value: hex is decoded only for fields the kernel may encode."""
    value = fields.get(key)
    if value is None:
        return None
    if value.startswith('"'):
        value = value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:]
        return None if value == "?" else value
    if value in _ABSENT:
        return None
    if key in UNTRUSTED and is_hex(value):
        return decode_hex(value)
    return value


def proctitle(value: str) -> str:
    """The process title: hex-encoded argv with NUL separators, joined with spaces."""
    if value.startswith('"'):
        return unquote(value) or ""
    if is_hex(value):
        return (
            bytes.fromhex(value)
            .rstrip(b"\x00")
            .replace(b"\x00", b" ")
            .decode("utf-8", "backslashreplace")
        )
    return value


def execve_argv(records: list[dict[str, str]]) -> list[str]:
    """The decoded argv of one or more EXECVE records (``aN``, and ``aN[i]`` chunks)."""
    merged: dict[str, str] = {}
    for fields in records:
        merged.update(fields)
    argc = min(ascii_int(merged.get("argc"), max_value=UINT32_MAX) or 0, 100_000)
    argv: list[str] = []
    for i in range(argc):
        key = f"a{i}"
        value = merged.get(key)
        if value is None:
            chunks: list[str] = []
            j = 0
            while (chunk := merged.get(f"{key}[{j}]")) is not None:
                chunks.append(chunk)
                j += 1
            if not chunks:
                break
            value = "".join(chunks)
        decoded = unquote(value)
        argv.append(value if decoded is None else decoded)
    return argv


def sockaddr(value: str) -> dict[str, str | int]:
    """The address a SOCKADDR ``saddr`` holds: family, and ip/port or a unix path."""
    if not is_hex(value) or len(value) < 4:
        return {}
    data = bytes.fromhex(value)
    family = int.from_bytes(data[:2], "little")
    if family not in (1, 2, 10):
        family = int.from_bytes(data[:2], "big")  # big-endian machines
    if family == 2 and len(data) >= 8:
        port = int.from_bytes(data[2:4], "big")
        return {"family": "inet", "ip": ".".join(str(b) for b in data[4:8]), "port": port}
    if family == 10 and len(data) >= 24:
        port = int.from_bytes(data[2:4], "big")
        ip = str(ipaddress.IPv6Address(data[8:24]))
        return {"family": "inet6", "ip": ip, "port": port}
    if family == 1:
        rest = data[2:]
        abstract = rest[:1] == b"\x00"  # abstract socket: a leading NUL, shown as '@'
        name = b"@" + rest[1:].rstrip(b"\x00") if abstract else rest.split(b"\x00", 1)[0]
        return {"family": "unix", "path": name.decode("utf-8", "backslashreplace")}
    return {"family": str(family)}
