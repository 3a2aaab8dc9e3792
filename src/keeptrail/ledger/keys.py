"""The ledger's signing key: created once per data directory, kept outside the event database.

The key lives in ``<data-dir>/keys/ledger.key`` (directory mode 0700, file mode 0600), as the
C2SP signer key string. Keeping it out of ``events.db`` means that someone who can only reach
the database (a backup, a replica, a stolen copy, a compromised reader) cannot sign a forged
checkpoint. The key is never printed or logged: :class:`~keeptrail.ledger.note.Signer` hides
its seed from ``repr``, and only the verifier key (``keeptrail keys public``) leaves this module.

The key name, which is also every checkpoint's origin line, is
``keeptrail/<hostname>/<8 random hex digits>``: readable, and unique per data directory.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from pathlib import Path
from typing import Final

from keeptrail.errors import UserError
from keeptrail.ledger.note import NoteError, Signer, Verifier, generate_signer, parse_signer_key

KEY_DIR: Final = "keys"
KEY_FILE: Final = "ledger.key"
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")


def key_path(data_dir: Path) -> Path:
    """Where the signing key of a data directory lives."""
    return data_dir / KEY_DIR / KEY_FILE


def origin_name(hostname: str | None = None) -> str:
    """A fresh key name / checkpoint origin: ``keeptrail/<host>/<random>``."""
    host = _UNSAFE.sub("-", hostname or socket.gethostname()) or "localhost"
    return f"keeptrail/{host[:64]}/{secrets.token_hex(4)}"


def load_signer(data_dir: Path) -> Signer | None:
    """The data directory's signing key, or ``None`` if it has none yet."""
    path = key_path(data_dir)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    try:
        return parse_signer_key(text)
    except NoteError as exc:
        raise UserError(f"{path} does not hold a valid ledger signing key") from exc


def create_signer(data_dir: Path, name: str | None = None) -> Signer:
    """Create and save a new signing key; refuses to overwrite an existing one."""
    directory = data_dir / KEY_DIR
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    signer = generate_signer(name or origin_name())
    path = directory / KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (signer.key + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return signer


def load_verifier(data_dir: Path) -> Verifier:
    """The public verifier of a data directory's key; a clear error when there is none."""
    signer = load_signer(data_dir)
    if signer is None:
        raise UserError(f"no ledger key in {data_dir / KEY_DIR}: ingest something first")
    return signer.verifier()
