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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

FINGERPRINT_LEN: Final = 1024
_CHUNK: Final = 1 << 20


@dataclass(slots=True, frozen=True)
class OpenedFile:
    """A file ready to read from ``start``, with what identifies it."""

    path: str
    fingerprint: str
    fingerprint_len: int
    start: int
    size: int | None  # None for compressed files, whose decompressed size is unknown
    mtime_us: int
    compressed: bool


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


def read_lines(
    stream: BinaryIO, start: int, *, take_partial_last: bool
) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(line_start, line_end, line)`` from byte ``start``; ``line`` lacks its newline.

    ``line_end`` is the offset just after the newline: the position to resume from. Memory
    stays flat whatever the file size: one buffered line at a time.
    """
    if start:
        if stream.seekable() and not isinstance(stream, gzip.GzipFile):
            stream.seek(start)
        else:
            _skip(stream, start)
    offset = start
    for line in stream:
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
