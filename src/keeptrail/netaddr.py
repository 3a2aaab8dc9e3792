"""IP addresses in their 16-byte storage form, shared by the store and the query compiler.

Every address is stored as 16 bytes, IPv4 as its IPv4-mapped IPv6 form (``::ffff:a.b.c.d``).
One width for both families means one column, one index, and CIDR ranges that are plain
byte ranges (``BETWEEN lo AND hi``), which compare the same way in SQLite (memcmp on BLOB),
PostgreSQL (bytea) and Python (``bytes`` ordering).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from functools import lru_cache
from typing import Final

_V4_MAPPED_PREFIX: Final = b"\x00" * 10 + b"\xff\xff"
# A DNS name as logs write it: ASCII letters, digits, '.', '-' and '_' (seen in real host
# names), starting and ending with a letter or digit, 253 characters at most.
_HOSTNAME: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?")


def ip_to_bytes(text: str) -> bytes:
    """The 16-byte storage form of an IPv4 or IPv6 address; ValueError if it is not one.

    A zone index (``fe80::1%eth0``) is dropped: it names an interface, not an address. IPv4,
    by far the common case on the ingest path, is packed without building an object.
    """
    text = text.strip()
    if is_ipv4(text):
        return _V4_MAPPED_PREFIX + bytes(int(part) for part in text.split("."))
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv4Address):
        return _V4_MAPPED_PREFIX + address.packed
    return address.packed


def bytes_to_ip(data: bytes) -> str:
    """The display form of a stored address: IPv4-mapped addresses come back as dotted quads."""
    if len(data) != 16:
        raise ValueError(f"an address is stored as 16 bytes, got {len(data)}")
    if data.startswith(_V4_MAPPED_PREFIX):
        return socket.inet_ntop(socket.AF_INET, data[12:])
    return str(ipaddress.IPv6Address(data))


def network_bounds(text: str) -> tuple[bytes, bytes]:
    """First and last address of a CIDR network in storage form (host bits are ignored).

    ``10.0.0.0/8`` maps into ``::ffff:10.0.0.0/104``, so an IPv4 range never matches an
    IPv6 address outside the mapped block.
    """
    network = ipaddress.ip_network(text.strip(), strict=False)
    return ip_to_bytes(str(network.network_address)), ip_to_bytes(str(network.broadcast_address))


@lru_cache(maxsize=65_536)
def try_ip_to_bytes(text: str) -> bytes | None:
    """:func:`ip_to_bytes`, or ``None`` for a value that is not an address (cached).

    The in-memory predicate calls this once per event; the cache keeps repeated source
    addresses, which dominate real logs, from being re-parsed.
    """
    try:
        return ip_to_bytes(text)
    except ValueError:
        return None


def is_ipv4(text: str) -> bool:
    """Dotted-quad check, as strict as :mod:`ipaddress` (no leading zeros) but much cheaper.

    Parsers call this on every line that names a remote address; a test checks that it
    agrees with :mod:`ipaddress` on generated input.
    """
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not (part.isascii() and part.isdigit()) or len(part) > 3 or int(part) > 255:
            return False
        if len(part) > 1 and part[0] == "0":
            return False
    return True


def canonical_ip(text: str) -> str | None:
    """The address in canonical text form, or ``None`` when ``text`` is not an IP address."""
    if is_ipv4(text):
        return text
    if ":" not in text:
        return None
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        return None


def is_hostname(text: str) -> bool:
    """Whether a remote name a log claims is one clean host name (so it may be ``source.host``).

    Parsers take a client's name only when it is a single token of host-name characters:
    anything else (spaces, quotes, ``=``, text injected through a user-controlled field) is not
    a name. A last label of digits only is a broken IP address (``10.0.0.999``), not a name.
    """
    return _HOSTNAME.fullmatch(text) is not None and not text.rpartition(".")[2].isdigit()


def ip_or_hostname(text: str) -> tuple[str | None, str | None]:
    """``(ip, None)`` for an IP address (canonical form), ``(None, text)`` for a clean host name
    (:func:`is_hostname`), else ``(None, None)``: the two ways a log names a client."""
    ip = canonical_ip(text)
    if ip is not None:
        return ip, None
    return (None, text) if is_hostname(text) else (None, None)


def split_remote(text: str) -> tuple[str | None, str | None]:
    """``(ip, host)`` for a remote end a log claims: an IP address, a clean name, or neither.

    An IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) is read as the IPv4 address it maps.
    """
    if not text or len(text) > 253:
        return None, None
    if text[0].isdigit() or ":" in text:
        if text.startswith("::ffff:") and "." in text:
            text = text[7:]
        ip = canonical_ip(text)
        if ip is not None or ":" in text:
            return ip, None
    if is_hostname(text):
        return None, text
    return None, None
