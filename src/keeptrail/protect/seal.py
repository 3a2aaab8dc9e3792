"""AES-256-GCM sealing of one stored event: ``nonce(12) || ciphertext || tag(16)``.

The associated data binds a ciphertext to its row: ``id (16 bytes) || partition name``. A
sealed event copied onto another row, or into another partition, fails authentication instead
of being read as that row's event. Nonces are random (96 bits) from a pooled ``os.urandom``
read: each data key seals at most one day of one retention class, far below the 2**32
messages per key where random GCM nonces start to matter.

:class:`Sealer` caches one ``AESGCM`` object per key, since building it costs more than
sealing a short event.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keeptrail.errors import UserError

NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
KEY_BYTES: Final = 32


class SealError(UserError):
    """A sealed value does not authenticate: wrong key, tampered bytes, or moved to another row."""


def aad_for(id16: bytes, partition: str) -> bytes:
    """The associated data of a row: the event id's 16 bytes, then the partition name."""
    return id16 + partition.encode()


class _NoncePool:
    """Random nonces cut from one ``os.urandom`` call per 4096 of them."""

    __slots__ = ("_buf", "_pos")

    _SIZE: Final = NONCE_BYTES * 4096

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0

    def __call__(self) -> bytes:
        pos = self._pos
        if pos >= len(self._buf):
            self._buf = os.urandom(self._SIZE)
            pos = 0
        self._pos = pos + NONCE_BYTES
        return self._buf[pos : pos + NONCE_BYTES]


_nonce: Final = _NoncePool()


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` (AES-256-GCM) bound to ``aad``."""
    nonce = _nonce()
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`seal`; :class:`SealError` when the value does not authenticate."""
    return _open(AESGCM(key), blob, aad)


def _open(cipher: AESGCM, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise SealError("sealed value is too short to be an AES-GCM ciphertext")
    try:
        return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise SealError(
            "sealed value does not authenticate (wrong key, altered bytes, or moved from "
            "another row or partition)"
        ) from None


class Sealer:
    """Seal and open with per-key cached ciphers (one store instance, many partitions)."""

    __slots__ = ("_ciphers",)

    def __init__(self) -> None:
        self._ciphers: dict[bytes, AESGCM] = {}

    def _cipher(self, key: bytes) -> AESGCM:
        cipher = self._ciphers.get(key)
        if cipher is None:
            if len(key) != KEY_BYTES:
                raise SealError(f"a data key must be {KEY_BYTES} bytes, not {len(key)}")
            cipher = self._ciphers[key] = AESGCM(key)
        return cipher

    def seal(self, key: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """As :func:`seal`, reusing the key's cipher."""
        nonce = _nonce()
        return nonce + self._cipher(key).encrypt(nonce, plaintext, aad)

    def open(self, key: bytes, blob: bytes, aad: bytes) -> bytes:
        """As :func:`open_sealed`, reusing the key's cipher."""
        return _open(self._cipher(key), blob, aad)

    def forget(self, key: bytes) -> None:
        """Drop the cached cipher of a key (after the key is destroyed)."""
        self._ciphers.pop(key, None)
