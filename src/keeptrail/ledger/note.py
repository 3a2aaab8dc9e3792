"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys.

Checkpoints are signed notes so that anything that speaks the format (witnesses, Go's
``golang.org/x/mod/sumdb/note``, sigsum and tlog tooling) can check ours. A note is a text ending
in a newline, a blank line, then one or more lines ``— <key name> base64(key ID ‖ signature)``.
The key ID is ``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]``; keys travel as the Go strings
``<name>+<hex key ID>+base64(0x01 ‖ public key)`` and
``PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 ‖ seed)``.

Opening is strict in the ways the spec asks and Go enforces: a signature from a known key that
fails to verify rejects the whole note, signatures from unknown keys are ignored, and a note with
no verified signature is rejected. Errors are :class:`NoteError` subclasses so callers can tell
"malformed" from "not signed by anyone we trust".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519: Final = 0x01
SIG_PREFIX: Final = "\u2014 "  # em dash, space
MAX_SIGNATURES: Final = 100  # the spec asks for at least 16; Go accepts 100
_CONTROL: Final = re.compile("[\x00-\x09\x0b-\x1f]")


class NoteError(ValueError):
    """A note or key could not be used."""


class MalformedNoteError(NoteError):
    """The note or key string breaks the format."""


class UnverifiedNoteError(NoteError):
    """The note carries no signature from a known key."""


class InvalidSignatureError(NoteError):
    """A signature from a known key does not verify."""


def check_name(name: str) -> None:
    """Raise unless ``name`` is a valid key name: non-empty, no spaces, no ``+``, no controls."""
    if not name or "+" in name or any(c.isspace() or c < " " for c in name):
        raise MalformedNoteError(f"invalid key name {name!r}")
    _check_utf8(name)


def key_id(name: str, public_key: bytes) -> int:
    """Return the Ed25519 key ID: the first four bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True, slots=True)
class Verifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    key_id: int
    public_key: bytes

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Report whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    @property
    def key(self) -> str:
        """The verifier key string, ``<name>+<key ID hex>+base64(0x01 ‖ public key)``."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"


@dataclass(frozen=True, slots=True)
class Signer:
    """A named Ed25519 private key that signs notes; its string form is a secret."""

    name: str
    key_id: int
    seed: bytes

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)

    def verifier(self) -> Verifier:
        """Return the matching public verifier."""
        return Verifier(self.name, self.key_id, _public_from_seed(self.seed))

    @property
    def key(self) -> str:
        """The signer key string, ``PRIVATE+KEY+<name>+<key ID hex>+base64(0x01 ‖ seed)``."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{encoded}"

    def __repr__(self) -> str:  # keep the seed out of logs and tracebacks
        return f"Signer(name={self.name!r}, key_id={self.key_id:08x})"


def generate_signer(name: str) -> Signer:
    """Create a fresh Ed25519 signer for ``name``."""
    check_name(name)
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    return Signer(name, key_id(name, _public_from_seed(seed)), seed)


def parse_verifier_key(vkey: str) -> Verifier:
    """Parse ``<name>+<key ID hex>+base64(0x01 ‖ public key)``, checking the key ID."""
    parts = vkey.split("+", 2)  # base64 may itself contain "+"
    if len(parts) != 3:
        raise MalformedNoteError("verifier key must be <name>+<hex id>+<base64 key>")
    name, id_hex, key64 = parts
    check_name(name)
    raw = _strict_b64(key64, "verifier key")
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise MalformedNoteError("verifier key is not a 32-byte Ed25519 key (type 0x01)")
    kid = _parse_key_id(id_hex)
    if kid != key_id(name, raw[1:]):
        raise MalformedNoteError(f"verifier key ID {id_hex} does not match the key")
    return Verifier(name, kid, raw[1:])


def parse_signer_key(skey: str) -> Signer:
    """Parse ``PRIVATE+KEY+<name>+<key ID hex>+base64(0x01 ‖ seed)``, checking the key ID."""
    parts = skey.split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise MalformedNoteError("signer key must be PRIVATE+KEY+<name>+<hex id>+<base64 key>")
    _, _, name, id_hex, key64 = parts
    check_name(name)
    raw = _strict_b64(key64, "signer key")
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise MalformedNoteError("signer key is not a 32-byte Ed25519 seed (type 0x01)")
    kid = _parse_key_id(id_hex)
    if kid != key_id(name, _public_from_seed(raw[1:])):
        raise MalformedNoteError(f"signer key ID {id_hex} does not match the key")
    return Signer(name, kid, raw[1:])


def sign_note(text: str, *signers: Signer) -> str:
    """Return ``text`` signed by each signer, in order, as a signed note."""
    if not signers:
        raise ValueError("a signed note needs at least one signer")
    check_note_text(text)
    message = text.encode()
    lines = []
    for signer in signers:
        check_name(signer.name)
        blob = signer.key_id.to_bytes(4, "big") + signer.sign(message)
        lines.append(f"{SIG_PREFIX}{signer.name} {base64.b64encode(blob).decode()}\n")
    return text + "\n" + "".join(lines)


def check_note_text(text: str) -> None:
    """Raise unless ``text`` may be signed: valid UTF-8, ends in a newline, no other controls."""
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    _check_utf8(text)
    _check_controls(text)


class NoteSignature(NamedTuple):
    """One parsed signature line: the claimed key name and ID, the signature, the line itself."""

    name: str
    key_id: int
    signature: bytes
    line: str


def split_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and parsed signature lines, checking the format only.

    The text is everything up to the last blank line (its final newline included), so a text
    may itself contain blank lines.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNoteError("note is not valid UTF-8") from exc
    _check_utf8(note)
    _check_controls(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedNoteError("note must end with a signature line and a newline")
    sigs: list[NoteSignature] = []
    for line in block[:-1].split("\n"):
        if len(sigs) == MAX_SIGNATURES:
            raise MalformedNoteError(f"note has more than {MAX_SIGNATURES} signatures")
        if not line.startswith(SIG_PREFIX):
            raise MalformedNoteError(f"signature line must start with an em dash: {line!r}")
        name, sep, b64 = line[len(SIG_PREFIX) :].partition(" ")
        if not sep:
            raise MalformedNoteError(f"signature line has no signature: {line!r}")
        check_name(name)
        blob = _strict_b64(b64, "signature")
        if len(blob) < 5:
            raise MalformedNoteError(f"signature is too short: {line!r}")
        sigs.append(NoteSignature(name, int.from_bytes(blob[:4], "big"), blob[4:], line))
    return text, sigs


class OpenedNote(NamedTuple):
    """A note whose signatures checked out: its text and the names of keys that verified it."""

    text: str
    signers: tuple[str, ...]


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Check a signed note against trusted keys and return its text and verified signers.

    Raises :class:`MalformedNoteError` for format errors, :class:`InvalidSignatureError` if a
    signature by a known key is bad, and :class:`UnverifiedNoteError` if no known key signed.
    """
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        prior = known.setdefault((v.name, v.key_id), v)
        if prior != v:
            raise NoteError(f"two different verifier keys share {v.name}+{v.key_id:08x}")
    text, sigs = split_note(note)
    message = text.encode()
    signers: list[str] = []
    seen: set[tuple[str, int]] = set()
    for sig in sigs:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None or (sig.name, sig.key_id) in seen:
            continue
        seen.add((sig.name, sig.key_id))
        if not verifier.verify(message, sig.signature):
            raise InvalidSignatureError(f"bad signature by {sig.name}+{sig.key_id:08x}")
        signers.append(sig.name)
    if not signers:
        raise UnverifiedNoteError("note has no signature from a known key")
    return OpenedNote(text, tuple(signers))


def _public_from_seed(seed: bytes) -> bytes:
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _parse_key_id(id_hex: str) -> int:
    if len(id_hex) != 8 or any(c not in "0123456789abcdefABCDEF" for c in id_hex):
        raise MalformedNoteError(f"key ID must be 8 hex digits, got {id_hex!r}")
    return int(id_hex, 16)


def _strict_b64(text: str, what: str) -> bytes:
    """Decode standard padded base64, refusing anything that would not re-encode identically."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedNoteError(f"{what} is not valid base64") from exc
    if not raw or base64.b64encode(raw).decode() != text:
        raise MalformedNoteError(f"{what} is not canonical base64")
    return raw


def _check_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise MalformedNoteError("note is not valid UTF-8") from exc


def _check_controls(text: str) -> None:
    if _CONTROL.search(text):
        raise MalformedNoteError("note contains an ASCII control character other than newline")
