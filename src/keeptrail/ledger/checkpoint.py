"""C2SP checkpoints (https://c2sp.org/tlog-checkpoint) and tlog-witness request bodies.

A checkpoint is the text a log signs to commit to its tree: the origin (the log's identity),
the tree size in decimal, the base64 root hash, then optional extension lines, each ending in a
newline. It becomes a signed note via :func:`keeptrail.ledger.note.sign_note`. Parsing is strict
(no leading zeros, a 32-byte root, canonical base64, no empty lines) because two byte strings
that parse to the same checkpoint would let one signature vouch for text nobody signed.

The witness side (https://c2sp.org/tlog-witness) needs one more text: the ``add-checkpoint``
request body, which carries the size the witness last cosigned and a consistency proof from it.
Formatting it here, purely, keeps the HTTP step a plain POST of a string.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from keeptrail.ledger.merkle import HASH_SIZE
from keeptrail.ledger.note import split_note

MAX_PROOF_LINES: Final = 63  # tlog-witness: clients MUST NOT send more
_MAX_SIZE: Final = (1 << 64) - 1
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")
_CONTROL: Final = re.compile(r"[\x00-\x1f]")


class CheckpointError(ValueError):
    """A checkpoint or witness request breaks its format."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One tree head: which log, how many leaves, and the root hash over them."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """Return the checkpoint note text (what gets signed)."""
        return format_checkpoint(self.origin, self.size, self.root, self.extensions)


def format_checkpoint(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
    """Return the checkpoint note text for this tree head, each line ending in a newline."""
    _check_line(origin, "origin")
    if not 0 <= size <= _MAX_SIZE:
        raise CheckpointError(f"tree size {size} is outside 0..2^64-1")
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"root hash must be {HASH_SIZE} bytes, got {len(root)}")
    for line in extensions:
        _check_line(line, "extension line")
    lines = [origin, str(size), base64.b64encode(root).decode(), *extensions]
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text (not the signed note: open that first) strictly."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint needs an origin, a tree size and a root hash")
    origin, size_text, root_text, *extensions = lines
    _check_line(origin, "origin")
    if not _DECIMAL.fullmatch(size_text):
        raise CheckpointError(f"tree size must be decimal without leading zeros: {size_text!r}")
    size = int(size_text)
    if size > _MAX_SIZE:
        raise CheckpointError(f"tree size {size_text} does not fit in 64 bits")
    root = _decode_hash(root_text, "root hash")
    for line in extensions:
        _check_line(line, "extension line")
    return Checkpoint(origin, size, root, tuple(extensions))


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], signed_checkpoint: str) -> str:
    """Return a tlog-witness ``add-checkpoint`` request body.

    ``old_size`` is the size the witness last cosigned (0 if none), ``proof`` the consistency
    proof from it to the checkpoint's size, ``signed_checkpoint`` the signed note. The body is
    ``old <size>``, one base64 line per proof hash, an empty line, then the signed checkpoint.
    """
    text, _ = split_note(signed_checkpoint)
    checkpoint = parse_checkpoint(text)
    if not 0 <= old_size <= checkpoint.size:
        raise CheckpointError(f"old size {old_size} is not within 0..{checkpoint.size}")
    if old_size == 0 and proof:
        raise CheckpointError("the consistency proof from size 0 must be empty")
    if len(proof) > MAX_PROOF_LINES:
        raise CheckpointError(f"a proof has at most {MAX_PROOF_LINES} hashes, got {len(proof)}")
    lines = [f"old {old_size}"]
    for h in proof:
        if len(h) != HASH_SIZE:
            raise CheckpointError(f"proof hash must be {HASH_SIZE} bytes, got {len(h)}")
        lines.append(base64.b64encode(h).decode())
    return "".join(line + "\n" for line in lines) + "\n" + signed_checkpoint


def parse_add_checkpoint(body: str) -> tuple[int, list[bytes], str]:
    """Split an ``add-checkpoint`` body into old size, proof hashes and the signed checkpoint."""
    head, sep, signed = body.partition("\n\n")
    if not sep:
        raise CheckpointError("request has no empty line before the checkpoint")
    old_line, *proof_lines = head.split("\n")
    keyword, _, old_text = old_line.partition(" ")
    if keyword != "old" or not _DECIMAL.fullmatch(old_text):
        raise CheckpointError(f"first line must be 'old <size>': {old_line!r}")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise CheckpointError(f"a proof has at most {MAX_PROOF_LINES} hashes")
    proof = [_decode_hash(line, "proof hash") for line in proof_lines]
    return int(old_text), proof, signed


def _check_line(line: str, what: str) -> None:
    if not line:
        raise CheckpointError(f"{what} must not be empty")
    if _CONTROL.search(line):
        raise CheckpointError(f"{what} must not contain newlines or control characters")


def _decode_hash(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError(f"{what} is not valid base64: {text!r}") from exc
    if len(raw) != HASH_SIZE or base64.b64encode(raw).decode() != text:
        raise CheckpointError(f"{what} must be the canonical base64 of {HASH_SIZE} bytes")
    return raw
