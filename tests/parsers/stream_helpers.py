"""Helpers for the stream-format tests: feed lines with byte offsets, read compressed samples."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

from auth_golden import DATA, REFERENCE_US

from keeptrail.event import Event
from keeptrail.parsers.base import RecordAssembler, StreamContext


def stream_context(host: str | None = None) -> StreamContext:
    """A stream context with the parser tests' fixed reference time."""
    return StreamContext(reference_us=REFERENCE_US, host=host)


def read_lines(relative: str) -> list[str]:
    """The lines of ``tests/data/<relative>``, decompressing ``.gz`` / ``.bz2`` in memory."""
    path: Path = DATA / relative
    data = path.read_bytes()
    if relative.endswith(".bz2"):
        data = bz2.decompress(data)
    elif relative.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def feed_all(assembler: RecordAssembler, lines: list[str]) -> list[Event]:
    """Feed every line with its byte offset (UTF-8, one newline each), then flush."""
    events: list[Event] = []
    offset = 0
    for line in lines:
        events.extend(assembler.feed(line, offset))
        offset += len(line.encode("utf-8", errors="surrogatepass")) + 1
    events.extend(assembler.flush())
    assert assembler.pending_since() is None
    return events


def assert_lossless(lines: list[str], events: list[Event]) -> None:
    """Every fed line is in exactly one event's raw, in order."""
    joined = [part for e in events for part in e.raw.split("\n")]
    assert joined == lines
