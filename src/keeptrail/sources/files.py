"""Reading log files: streaming, resumable, rotation-aware, ``.gz`` transparent.

A file is recognised by a fingerprint of its first bytes, not by its name: after
``auth.log`` is rotated to ``auth.log.1`` and later compressed to ``auth.log.2.gz``, all three
names show the same first bytes (decompressed), so the offset reached under one name is
honoured under the others and nothing is read twice. A file whose first bytes changed under
the same name was truncated or replaced (``copytruncate``) and is read from the start.

Only whole lines are consumed from a plain file: a last line without its newline may still be
being written, so its bytes stay unread until the writer finishes it. Compressed files and
standard input are finished, so their last line is taken as it is.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Final

FINGERPRINT_LEN: Final = 1024
_CHUNK: Final = 1 << 20


def is_gzip(path: Path) -> bool:
    """True for gzip content, whatever the file is called."""
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def open_binary(path: Path) -> BinaryIO:
    """The file's content as a binary stream, decompressed when it is gzip."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def fingerprint(path: Path, length: int = FINGERPRINT_LEN) -> tuple[str, int]:
    """SHA-256 (hex) of the first ``length`` content bytes, and how many there were."""
    with open_binary(path) as f:
        head = f.read(length)
    return hashlib.sha256(head).hexdigest(), len(head)


def seek_to(stream: BinaryIO, start: int) -> None:
    """Position a stream at ``start``: a seek where possible, else read and discard."""
    if start:
        if stream.seekable() and not isinstance(stream, gzip.GzipFile):
            stream.seek(start)
        else:
            _skip(stream, start)


def first_line(path: Path, limit: int = 64 * 1024) -> str | None:
    """The first non-blank line of a file's content (decompressed), for format sniffing."""
    with open_binary(path) as f:
        for _ in range(64):
            line = f.readline(limit)
            if not line:
                return None
            if line.strip():
                return line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
    return None


def read_lines(
    lines: Iterable[bytes], start: int, *, take_partial_last: bool
) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(line_start, line_end, line)`` counting from byte ``start``; no newline on line.

    ``lines`` is a binary stream already positioned at ``start`` (or any iterable of raw
    lines). ``line_end`` is the offset just after the newline: the position to resume from.
    Memory stays flat whatever the file size: one buffered line at a time.
    """
    offset = start
    for line in lines:
        end = offset + len(line)
        if line.endswith(b"\n"):
            body = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        elif take_partial_last:
            body = line
        else:
            return
        yield offset, end, body
        offset = end


def _skip(stream: BinaryIO, count: int) -> None:
    while count > 0:
        chunk = stream.read(min(count, _CHUNK))
        if not chunk:
            return
        count -= len(chunk)


def mtime_us(path: Path) -> int:
    """The file's modification time in µs: no line in it can be newer (give or take skew)."""
    return os.stat(path).st_mtime_ns // 1000
