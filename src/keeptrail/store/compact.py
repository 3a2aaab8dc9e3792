"""Compressing an event's canonical bytes before they are sealed (docs/storage.md).

A stored event is its canonical JSON: field names, the vocabulary of actions and parsers, and
the raw line repeating half of it. DEFLATE alone saves little on ~600 bytes (~385 B), because
an event is too short to repeat itself; with a *preset dictionary* of typical canonical
events it finds nearly every name and phrase already "seen" (~160 B for an sshd event).

What ``sealed`` holds (inside the AES-GCM envelope when the partition is sealed, as is
otherwise) is one format byte and a payload:

* ``0x00`` — the canonical bytes as they are;
* ``0x01`` — raw DEFLATE (no zlib header) of the canonical bytes with preset dictionary v1
  (:mod:`keeptrail.store.zdict_v1`);
* ``{`` (``0x7B``) — a row written before this format existed: the whole value is the
  canonical JSON, which always starts with ``{``. No format byte is ever ``0x7B``, so old and
  new rows need no per-partition flag and no migration.

The leaf hash stays over the canonical bytes (the ledger format does not change): they are
what :func:`unpack` returns, byte for byte. A dictionary version is forever — every row
written with it needs exactly its bytes — so a better dictionary is a new format byte and a
new ``zdict_v<N>`` module, never an edit (the module's SHA-256 is checked at import).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Final

from keeptrail.protect.seal import SealError
from keeptrail.store import zdict_v1

RAW: Final = 0x00
ZDICT_V1: Final = 0x01
LEGACY_JSON: Final = 0x7B  # "{": a value without a format byte

# Raw DEFLATE, 32 KiB window (the dictionary's size). Level 1 with a primed compressor's
# ``copy()`` per event was the fastest (bench_compact.py: 24 µs, 199 B; level 6: 41 µs, 165 B).
_WBITS: Final = -15
_LEVEL: Final = 1
_MEM_LEVEL: Final = 8
# No canonical event comes near this; a payload inflating past it is not one of ours.
MAX_EVENT_BYTES: Final = 16 * 1024 * 1024


def _load_v1() -> bytes:
    data = base64.b64decode(zdict_v1.BASE64)
    if hashlib.sha256(data).hexdigest() != zdict_v1.SHA256:
        raise RuntimeError("keeptrail/store/zdict_v1.py was altered: stored events need it intact")
    return data


ZDICT_V1_BYTES: Final = _load_v1()

_PRIMED: Final = zlib.compressobj(
    _LEVEL, zlib.DEFLATED, _WBITS, _MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, ZDICT_V1_BYTES
)
_V1_PREFIX: Final = bytes([ZDICT_V1])
_RAW_PREFIX: Final = bytes([RAW])


class CompactError(SealError):
    """A stored value whose format byte or compressed payload is not valid (altered bytes)."""


def pack(canonical: bytes) -> bytes:
    """What to store for ``canonical``: ``0x01`` + DEFLATE, or ``0x00`` + itself if not smaller.

    Copying a compressor already primed with the dictionary skips re-hashing its 32 KiB for
    every event (the cost of ``compressobj(..., zdict)``).
    """
    c = _PRIMED.copy()
    body = c.compress(canonical) + c.flush()
    if len(body) < len(canonical):
        return _V1_PREFIX + body
    return _RAW_PREFIX + canonical


def unpack(stored: bytes) -> bytes:
    """The canonical bytes of a stored value; :class:`CompactError` when it cannot be one."""
    if not stored:
        raise CompactError("the stored value is empty")
    kind = stored[0]
    if kind == LEGACY_JSON:
        return stored
    if kind == ZDICT_V1:
        return _inflate(stored)
    if kind == RAW:
        return stored[1:]
    raise CompactError(
        f"unknown storage format byte 0x{kind:02x} (altered, or written by a newer keeptrail)"
    )


def _inflate(stored: bytes) -> bytes:
    d = zlib.decompressobj(_WBITS, ZDICT_V1_BYTES)
    try:
        out = d.decompress(memoryview(stored)[1:], MAX_EVENT_BYTES)
    except zlib.error as exc:
        raise CompactError(f"the compressed event is corrupt ({exc})") from None
    if not d.eof:
        raise CompactError("the compressed event is truncated or larger than any event")
    if d.unused_data:
        raise CompactError("the compressed event has trailing bytes")
    if out[:1] != b"{":
        raise CompactError("the compressed event does not hold a JSON object")
    return out
