"""Alerts to a SIEM: RFC 5424 syslog messages whose text is a CEF:0 record.

CEF (ArcSight Common Event Format) is what most SIEMs parse without configuration::

    CEF:0|Keeptrail|Keeptrail|<version>|<rule id>|<title>|<severity 0-10>|<extension>

In the seven header fields ``|`` and ``\\`` are escaped with a backslash; in the extension's
values ``\\``, ``=`` and line breaks are (``\\n``), and keys are fixed names. All alert text
comes from logs, so escaping is what keeps an attacker-chosen user name from forging fields.

The syslog frame is RFC 5424 (``<PRI>1 TIMESTAMP HOST keeptrail - alert - MSG``), facility
``authpriv`` (10); over TCP each frame is length-prefixed (RFC 6587 octet counting), over UDP
it is one datagram (truncated beyond 64 KiB by the network anyway).
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any, Final

from keeptrail import __version__
from keeptrail.event import parse_time
from keeptrail.notify.payload import DeliveryError

FACILITY: Final = 10  # authpriv
_CEF_SEVERITY: Final = {"info": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}
_SYSLOG_SEVERITY: Final = {"info": 6, "low": 5, "medium": 4, "high": 3, "critical": 2}
_KEY_FIELDS: Final = {"source.ip": "src", "actor.name": "suser", "target.host": "dhost"}


def cef_header(value: object) -> str:
    """A CEF header field: backslash and pipe escaped, line breaks made spaces."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r", " ").replace("\n", " ")


def cef_value(value: object) -> str:
    """A CEF extension value: backslash, equals and line breaks escaped."""
    text = str(value).replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def cef_record(doc: dict[str, Any]) -> str:
    """The CEF:0 record of an alert payload."""
    a = doc["alert"]
    ext: list[tuple[str, object]] = [
        ("rt", int(parse_time(a["last_time"]) // 1000)),
        ("start", int(parse_time(a["first_time"]) // 1000)),
        ("cnt", a["count"]),
        ("externalId", a["id"]),
        ("msg", a["reason"]),
        ("cs1Label", "tags"),
        ("cs1", ",".join(a["tags"])),
        ("cs2Label", "key"),
        ("cs2", ",".join(f"{k}={v}" for k, v in a["key"].items())),
        ("cs3Label", "evidence"),
        ("cs3", ",".join(e["event_id"] for e in a["evidence"])),
    ]
    for name, cef_key in _KEY_FIELDS.items():
        if name in a["key"]:
            ext.append((cef_key, a["key"][name]))
    header = "|".join(
        cef_header(v)
        for v in (
            "CEF:0",
            "Keeptrail",
            "Keeptrail",
            __version__,
            a["rule_id"],
            a["title"],
            _CEF_SEVERITY.get(a["severity"], 5),
        )
    )
    return header + "|" + " ".join(f"{k}={cef_value(v)}" for k, v in ext)


def rfc5424(
    doc: dict[str, Any], *, hostname: str | None = None, now: datetime | None = None
) -> bytes:
    """One RFC 5424 message carrying the CEF record (UTF-8, with BOM as the RFC asks)."""
    severity = _SYSLOG_SEVERITY.get(doc["alert"]["severity"], 4)
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    host = _token(hostname or socket.gethostname())
    msgid = "alert"
    head = f"<{FACILITY * 8 + severity}>1 {stamp} {host} keeptrail - {msgid} -"
    return head.encode() + b" \xef\xbb\xbf" + cef_record(doc).encode("utf-8")


def _token(text: str) -> str:
    """An RFC 5424 header token: printable ASCII without spaces, at most 255, or ``-``."""
    clean = "".join(c for c in text if 33 <= ord(c) <= 126)[:255]
    return clean or "-"


def send(host: str, port: int, protocol: str, frame: bytes, timeout: float) -> None:
    """Send one message over UDP (a datagram) or TCP (octet counting); DeliveryError on failure."""
    try:
        if protocol == "udp":
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(timeout)
                sock.sendto(frame, (host, port))
            return
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(str(len(frame)).encode() + b" " + frame)
    except OSError as exc:
        raise DeliveryError(f"syslog {protocol} to {host}:{port}: {exc.strerror or exc}") from None
