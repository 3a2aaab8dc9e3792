"""``authorized_keys`` lines (sshd(8) AUTHORIZED_KEYS FILE FORMAT) — pure parsing.

Each key is a standing credential: whoever holds the private half logs in as the account,
without the password, until the line is removed. The audit needs which key (its SHA256
fingerprint, exactly as ``ssh-keygen -lf`` prints it, so it can be matched against sshd's
``Accepted publickey ... SHA256:...`` log lines), its type and size, the restrictions on it
(``from=``, ``command=``, ``restrict``, ``expiry-time=``...) and the comment that usually says
whose it is. The key blob itself is public, but only the fingerprint is kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Final

__all__ = ["AuthorizedKey", "fingerprint", "parse_authorized_keys"]

_KEY_TYPE: Final = re.compile(
    r"(ssh-(rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp(256|384|521)"
    r"|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com"
    r"|[a-z0-9-]+-cert-v01@openssh\.com)\Z"
)
_ECDSA_BITS: Final = {"nistp256": 256, "nistp384": 384, "nistp521": 521}


@dataclass(slots=True, frozen=True)
class AuthorizedKey:
    """One key line: where it is, what key, and under which restrictions."""

    line: int
    key_type: str
    fingerprint: str  # "SHA256:..." (unpadded base64, as OpenSSH prints it)
    bits: int | None
    comment: str
    options: dict[str, str | bool] = field(default_factory=dict)


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_authorized_keys(text: str) -> tuple[list[AuthorizedKey], list[int]]:
    """The keys in a file, and the numbers of the lines that are not valid keys.

    A line that is neither a comment nor a readable key is reported by number only: the
    caller decides how loudly to say so, and no file text reaches a message.
    """
    keys: list[AuthorizedKey] = []
    bad: list[int] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key = _parse_line(line, number)
        if key is None:
            bad.append(number)
        else:
            keys.append(key)
    return keys, bad


def _parse_line(line: str, number: int) -> AuthorizedKey | None:
    options: dict[str, str | bool] = {}
    first = line.split(None, 1)[0]
    rest = line
    if not _KEY_TYPE.match(first):
        parsed = _options(line)
        if parsed is None:
            return None
        options, rest = parsed
    parts = rest.split(None, 2)
    if len(parts) < 2 or not _KEY_TYPE.match(parts[0]):
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    inner_type, bits = _describe(blob)
    if inner_type is None or inner_type != parts[0]:
        return None  # a blob whose own type disagrees with the line is not a key sshd accepts
    return AuthorizedKey(
        line=number,
        key_type=inner_type,
        fingerprint=fingerprint(blob),
        bits=bits,
        comment=parts[2].strip() if len(parts) > 2 else "",
        options=options,
    )


def _options(line: str) -> tuple[dict[str, str | bool], str] | None:
    """``name[="value"]`` items separated by commas, up to the first unquoted blank."""
    options: dict[str, str | bool] = {}
    i = 0
    while True:
        m = re.compile(r"[A-Za-z0-9-]+").match(line, i)
        if not m:
            return None
        name = m.group().lower()
        i = m.end()
        if line[i : i + 1] == "=":
            if line[i + 1 : i + 2] != '"':
                return None
            j = i + 2
            value: list[str] = []
            while j < len(line) and line[j] != '"':
                if line[j] == "\\" and line[j + 1 : j + 2] == '"':
                    j += 1
                value.append(line[j])
                j += 1
            if j >= len(line):
                return None
            text = "".join(value)
            previous = options.get(name)  # permitopen= and friends may repeat
            options[name] = f"{previous},{text}" if isinstance(previous, str) else text
            i = j + 1
        else:
            options[name] = True
        if line[i : i + 1] == ",":
            i += 1
            continue
        if line[i : i + 1] in (" ", "\t"):
            return options, line[i:].strip()
        return None


def _describe(blob: bytes) -> tuple[str | None, int | None]:
    """The key type named inside the blob, and its size in bits where it has one."""
    fields = _ssh_strings(blob, 3)
    if not fields:
        return None, None
    try:
        key_type = fields[0].decode("ascii")
    except UnicodeDecodeError:
        return None, None
    bits: int | None = None
    if key_type == "ssh-rsa" and len(fields) >= 3:
        bits = int.from_bytes(fields[2]).bit_length()
    elif key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        bits = 256
    elif key_type.startswith(("ecdsa-sha2-", "sk-ecdsa-sha2-")) and len(fields) >= 2:
        bits = _ECDSA_BITS.get(fields[1].decode("ascii", "replace"))
    elif key_type == "ssh-dss" and len(fields) >= 2:
        bits = int.from_bytes(fields[1]).bit_length()
    return key_type, bits


def _ssh_strings(blob: bytes, count: int) -> list[bytes]:
    """The first ``count`` RFC 4251 length-prefixed strings of a blob (fewer if it ends)."""
    out: list[bytes] = []
    pos = 0
    while len(out) < count and pos + 4 <= len(blob):
        size = int.from_bytes(blob[pos : pos + 4])
        pos += 4
        if pos + size > len(blob):
            break
        out.append(blob[pos : pos + size])
        pos += size
    return out
