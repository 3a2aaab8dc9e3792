"""The ingest pipeline: source → parse → normalize → batch → store.

Each batch is one store transaction that also records how far its file was read, so a crash
at any moment either keeps a whole batch and its position or neither: running the same ingest
again continues exactly where the last committed batch ended, with no line lost or repeated.
For formats whose records span lines, the position stored is the start of the oldest record
still being assembled, so a half-read record is read again whole, never stored in halves.

Per-line work is kept to the minimum on purpose (this is the hot loop of the product): decode,
one assembler call, a few attribute stores. Counting and everything else happens per batch.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import BinaryIO, Final

from keeptrail.event import Event, uuid7, uuid7_for
from keeptrail.parsers.base import RecordAssembler, StreamContext
from keeptrail.parsers.formats import choose_format, format_names
from keeptrail.sources.files import (
    FINGERPRINT_LEN,
    fingerprint,
    first_line,
    is_gzip,
    mtime_us,
    open_binary,
    read_lines,
    seek_to,
)
from keeptrail.store.contract import FilePosition, Store

BATCH_SIZE: Final = 5000
IDLE_FINISHED_SECONDS: Final = 60
"""A plain file untouched for this long is finished: its unterminated last line is taken and
records still being assembled are emitted. A file written more recently may still grow, so
those wait for the next run."""

Progress = Callable[[int], None]
_SURROGATE: Final = re.compile("[\udc80-\udcff]")


@dataclass(slots=True)
class SourceResult:
    """What happened to one file or stream."""

    name: str
    format: str = ""
    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    blank: int = 0
    started_at: int = 0  # byte offset reading started from
    ended_at: int = 0  # byte offset reached (the next run resumes here)
    resumed: bool = False
    pending: bool = False  # unfinished line or record left for the next run


@dataclass(slots=True)
class IngestSummary:
    """Totals over a whole `keeptrail ingest` run."""

    sources: list[SourceResult] = field(default_factory=list)
    by_action_outcome: Counter[tuple[str, str]] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def unparsed(self) -> int:
        return self.by_action_outcome[("unparsed", "unknown")]

    @property
    def lines(self) -> int:
        return sum(s.lines for s in self.sources)

    @property
    def stored(self) -> int:
        return sum(s.stored for s in self.sources)

    @property
    def events(self) -> int:
        return sum(self.by_action_outcome.values())

    @property
    def rate(self) -> float:
        return self.events / self.elapsed if self.elapsed > 0 else 0.0


class Ingestor:
    """Feeds files and streams into a store; one instance per run."""

    def __init__(
        self,
        store: Store,
        *,
        fmt: str = "auto",
        tz: tzinfo = UTC,
        host: str | None = None,
        batch_size: int = BATCH_SIZE,
        on_commit: Callable[[list[Event], int], None] | None = None,
    ) -> None:
        if fmt not in format_names():
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(format_names())}")
        self.store = store
        self.fmt = fmt
        self.tz = tz
        self.host = host or socket.gethostname()
        self.batch_size = batch_size
        # called with (batch, events stored) after each batch that stored events (detection)
        self.on_commit = on_commit
        self.summary = IngestSummary()

    # --- files ---------------------------------------------------------------------------------

    def plan_file(self, path: Path) -> tuple[str, int, int, bool]:
        """(fingerprint, its length, offset to start from, resumed?) for a file."""
        key = str(path.resolve())
        known = self.store.file_position(key)
        if known is not None:
            fp, n = fingerprint(path, known.fingerprint_len)
            if n == known.fingerprint_len and fp == known.fingerprint:
                return fp, n, known.offset, True
        fp, n = fingerprint(path, FINGERPRINT_LEN)
        if n == FINGERPRINT_LEN:
            renamed = self.store.file_position_by_fingerprint(fp)
            if renamed is not None:
                return fp, n, renamed.offset, True
        return fp, n, 0, False

    def ingest_file(self, path: Path, progress: Progress | None = None) -> SourceResult:
        """Ingest what is new in one file (plain or gzip)."""
        key = str(path.resolve())
        fp, fp_len, start, resumed = self.plan_file(path)
        modified = mtime_us(path)
        finished = is_gzip(path) or (time.time_ns() // 1000 - modified) > (
            IDLE_FINISHED_SECONDS * 1_000_000
        )
        fmt = choose_format(self.fmt, first_line(path) if self.fmt == "auto" else None)
        result = SourceResult(
            name=str(path), format=fmt.NAME, started_at=start, ended_at=start, resumed=resumed
        )
        assembler = fmt.assembler(StreamContext(reference_us=modified, tz=self.tz))
        with open_binary(path) as stream:
            seek_to(stream, start)
            self._run(
                stream,
                start=start,
                result=result,
                assembler=assembler,
                source="file",
                file=key,
                position=lambda end: FilePosition(key, fp, fp_len, end, _now_us()),
                id_key=bytes.fromhex(fp),
                finished=finished,
                progress=progress,
            )
        if fp_len < FINGERPRINT_LEN and result.ended_at > fp_len:
            # The head grew: store a fingerprint over the longer head for rename detection —
            # unless the file was truncated or replaced while it was read (its head changed).
            with open_binary(path) as f:
                head = f.read(min(result.ended_at, FINGERPRINT_LEN))
            if hashlib.sha256(head[:fp_len]).hexdigest() == fp and len(head) > fp_len:
                new_fp = hashlib.sha256(head).hexdigest()
                new_pos = FilePosition(key, new_fp, len(head), result.ended_at, _now_us())
                self.store.append([], [new_pos])
        if path.stat().st_size > result.ended_at and not is_gzip(path):
            result.pending = True
        self.summary.sources.append(result)
        return result

    def ingest_stream(self, stream: BinaryIO, name: str = "-") -> SourceResult:
        """Ingest a finite stream (standard input); its lines are stamped as received."""
        head = stream.readline()
        sniffed = head.rstrip(b"\r\n").decode("utf-8", "backslashreplace") if head else None
        fmt = choose_format(self.fmt, sniffed if self.fmt == "auto" else None)
        result = SourceResult(name=name, format=fmt.NAME)
        assembler = fmt.assembler(StreamContext(reference_us=_now_us(), tz=self.tz))
        self._run(
            itertools.chain([head], stream) if head else stream,
            start=0,
            result=result,
            assembler=assembler,
            source="stdin",
            file=None,
            position=None,
            id_key=None,
            finished=True,
            progress=None,
        )
        self.summary.sources.append(result)
        return result

    # --- the loop ------------------------------------------------------------------------------

    def _run(
        self,
        lines_in: Iterable[bytes],
        *,
        start: int,
        result: SourceResult,
        assembler: RecordAssembler,
        source: str,
        file: str | None,
        position: Callable[[int], FilePosition] | None,
        id_key: bytes | None,
        finished: bool,
        progress: Progress | None,
    ) -> None:
        batch_size = self.batch_size
        began = time.perf_counter()
        batch: list[Event] = []
        feed = assembler.feed
        last_end = start
        lines = blank = 0
        repair = False  # a line in this batch was not valid UTF-8
        for line_start, line_end, data in read_lines(lines_in, start, take_partial_last=finished):
            lines += 1
            last_end = line_end
            if not data or data.isspace():
                blank += 1
                continue
            try:
                text = data.decode()
            except UnicodeDecodeError:
                text = data.decode("utf-8", "surrogateescape")
                repair = True
            try:
                batch += feed(text, line_start)
            except Exception as exc:  # a parser bug must cost one line, never the ingest
                batch.append(_parser_error(text, line_start, exc))
            if len(batch) >= batch_size:
                self._flush(
                    batch, assembler, line_end, position, result, repair, source, file, id_key
                )
                if progress:
                    progress(line_end - result.ended_at)
                result.ended_at = line_end
                batch = []
                repair = False
        if finished:
            try:
                batch += assembler.flush()
            except Exception as exc:  # a parser bug at the end of input must not stop ingest
                batch.append(_parser_error("", last_end, exc))
        self._flush(batch, assembler, last_end, position, result, repair, source, file, id_key)
        if progress:
            progress(last_end - result.ended_at)
        result.ended_at = last_end
        result.lines += lines
        result.blank += blank
        self.summary.elapsed += time.perf_counter() - began

    def _flush(
        self,
        batch: list[Event],
        assembler: RecordAssembler,
        line_end: int,
        position: Callable[[int], FilePosition] | None,
        result: SourceResult,
        repair: bool,
        source: str,
        file: str | None,
        id_key: bytes | None,
    ) -> None:
        pending = assembler.pending_since()
        resume_at = line_end if pending is None else pending
        pos = position(resume_at) if position else None
        if not batch and pos is None:
            return
        now = _now_us()
        host = self.host
        seen: dict[int, int] = {}
        for event in batch:
            if id_key is None:
                event.id = uuid7()
            else:  # same file, same record → same id, so re-reading never duplicates
                offset = event.collector_offset or 0
                n = seen[offset] = seen.get(offset, -1) + 1
                # The record's own bytes are part of the key: files whose heads look alike
                # (or were empty when first seen) never lend one record's id to another.
                key = b"%b:%d:%d:" % (id_key, offset, n) + event.raw.encode("utf-8", "replace")
                event.id = uuid7_for(event.time // 1000, key)
            event.ingested_at = now
            event.collector_host = host
            event.collector_source = source
            event.collector_file = file
            if repair:
                _repair_surrogates(event)
        stored = self.store.append(batch, [pos] if pos else [])
        if stored and self.on_commit is not None:
            self.on_commit(batch, stored)
        result.stored += stored
        result.duplicates += len(batch) - stored
        self.summary.by_action_outcome.update((e.action, e.outcome) for e in batch)


def _parser_error(text: str, start: int, exc: Exception) -> Event:
    return Event(
        time=_now_us(),
        category="unparsed",
        action="unparsed",
        reason="parser_error",
        raw=text,
        details={"error": type(exc).__name__},
        collector_parser="unparsed",
        collector_offset=start,
    )


def _repair_surrogates(event: Event) -> None:
    """Bytes that were not UTF-8 travel as surrogate escapes; make them storable, keep them.

    ``raw`` gets a visible ``\\xNN`` rendering and ``details.raw_base64`` the exact bytes;
    every other text field a parser copied from the line gets the same visible rendering.
    """
    if _SURROGATE.search(event.raw):
        exact = event.raw.encode("utf-8", "surrogateescape")
        event.details["raw_base64"] = base64.b64encode(exact).decode()
        event.raw = exact.decode("utf-8", "backslashreplace")
    for name in Event.__slots__:
        value = getattr(event, name)
        if isinstance(value, str) and _SURROGATE.search(value):
            setattr(event, name, _visible(value))
    for key, value in list(event.details.items()):
        if isinstance(value, str) and _SURROGATE.search(value):
            event.details[key] = _visible(value)
        elif isinstance(value, list):
            event.details[key] = [_visible(v) if isinstance(v, str) else v for v in value]
    for key in [k for k in event.details if _SURROGATE.search(k)]:
        event.details[_visible(key)] = event.details.pop(key)


def _visible(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _now_us() -> int:
    return time.time_ns() // 1000
