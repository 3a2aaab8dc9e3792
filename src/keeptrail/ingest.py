"""The ingest pipeline: source → parse → normalize → batch → store.

Each batch is one store transaction that also records how far its file was read, so a crash
at any moment either keeps a whole batch and its position or neither: running the same ingest
again continues exactly where the last committed batch ended, with no line lost or repeated.

Per-line work is kept to the minimum on purpose (this is the hot loop of the product): decode,
one parser call, a few attribute stores. Counting and everything else happens per batch.
"""

from __future__ import annotations

import base64
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import BinaryIO, Final

from keeptrail.event import Event, uuid7
from keeptrail.parsers.detect import FORMATS, parse_line
from keeptrail.parsers.syslog import FrameContext
from keeptrail.sources.files import (
    FINGERPRINT_LEN,
    fingerprint,
    is_gzip,
    mtime_us,
    open_binary,
    read_lines,
)
from keeptrail.store.contract import FilePosition, Store

BATCH_SIZE: Final = 5000

Progress = Callable[[int], None]


@dataclass(slots=True)
class SourceResult:
    """What happened to one file or stream."""

    name: str
    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    blank: int = 0
    started_at: int = 0  # byte offset reading started from
    ended_at: int = 0  # byte offset reached (the next run resumes here)
    resumed: bool = False
    pending_partial: bool = False  # an unfinished last line was left for the next run


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
    ) -> None:
        if fmt != "auto" and fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose from auto, {', '.join(FORMATS)}")
        self.store = store
        self.fmt = fmt
        self.tz = tz
        self.host = host or socket.gethostname()
        self.batch_size = batch_size
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
        compressed = is_gzip(path)
        result = SourceResult(name=str(path), started_at=start, ended_at=start, resumed=resumed)
        ctx = FrameContext(reference_us=mtime_us(path), tz=self.tz)
        with open_binary(path) as stream:
            self._run(
                stream,
                start=start,
                result=result,
                ctx_factory=lambda: ctx,
                source="file",
                file=key,
                position=lambda end: FilePosition(key, fp, fp_len, end, _now_us()),
                take_partial_last=compressed,
                progress=progress,
            )
        if fp_len < FINGERPRINT_LEN and result.ended_at > fp_len:
            # The head grew: store a fingerprint over the longer head for rename detection.
            new_fp, new_len = fingerprint(path, min(result.ended_at, FINGERPRINT_LEN))
            self.store.append([], [FilePosition(key, new_fp, new_len, result.ended_at, _now_us())])
        if not compressed and path.stat().st_size > result.ended_at:
            result.pending_partial = True
        self.summary.sources.append(result)
        return result

    def ingest_stream(self, stream: BinaryIO, name: str = "-") -> SourceResult:
        """Ingest a finite stream (standard input); its lines are stamped as received."""
        result = SourceResult(name=name)
        self._run(
            stream,
            start=0,
            result=result,
            ctx_factory=lambda: FrameContext(reference_us=_now_us(), tz=self.tz),
            source="stdin",
            file=None,
            position=None,
            take_partial_last=True,
            progress=None,
        )
        self.summary.sources.append(result)
        return result

    # --- the loop ------------------------------------------------------------------------------

    def _run(
        self,
        stream: BinaryIO,
        *,
        start: int,
        result: SourceResult,
        ctx_factory: Callable[[], FrameContext],
        source: str,
        file: str | None,
        position: Callable[[int], FilePosition] | None,
        take_partial_last: bool,
        progress: Progress | None,
    ) -> None:
        fmt, host, batch_size = self.fmt, self.host, self.batch_size
        began = time.perf_counter()
        batch: list[Event] = []
        ctx = ctx_factory()
        last_end = start
        lines = blank = 0
        for line_start, line_end, data in read_lines(
            stream, start, take_partial_last=take_partial_last
        ):
            lines += 1
            last_end = line_end
            if not data.strip():
                blank += 1
                continue
            try:
                text = data.decode()
                bad_bytes = False
            except UnicodeDecodeError:
                text = data.decode("utf-8", "backslashreplace")
                bad_bytes = True
            event = parse_line(text, ctx, fmt)
            event.id = uuid7()
            event.collector_host = host
            event.collector_source = source
            event.collector_file = file
            event.collector_offset = line_start
            if bad_bytes:  # keep the exact bytes: raw holds an escaped rendering
                event.details["raw_base64"] = base64.b64encode(data).decode()
            batch.append(event)
            if len(batch) >= batch_size:
                self._flush(batch, position(line_end) if position else None, result)
                if progress:
                    progress(line_end - result.ended_at)
                result.ended_at = line_end
                batch = []
                if source == "stdin":
                    ctx = ctx_factory()
        self._flush(batch, position(last_end) if position else None, result)
        if progress:
            progress(last_end - result.ended_at)
        result.ended_at = last_end
        result.lines += lines
        result.blank += blank
        self.summary.elapsed += time.perf_counter() - began

    def _flush(self, batch: list[Event], pos: FilePosition | None, result: SourceResult) -> None:
        if not batch and pos is None:
            return
        now = _now_us()
        for event in batch:
            event.ingested_at = now
        stored = self.store.append(batch, [pos] if pos else [])
        result.stored += stored
        result.duplicates += len(batch) - stored
        counts = self.summary.by_action_outcome
        counts.update((e.action, e.outcome) for e in batch)


def _now_us() -> int:
    return time.time_ns() // 1000
