"""Following log files with ``tail -F`` semantics: globs, rotation, copytruncate, resume.

The reading itself is the :class:`~keeptrail.ingest.Ingestor`'s (``ingest_file`` resumes from
the position stored for a file's fingerprint, and the spool commits events and position
together); this module decides *which* files to read and *when*:

* every ``poll_seconds`` the globs are expanded; files are read oldest (by mtime) first;
* each followed file is held open, like ``tail -F``. When its name now points elsewhere
  (rotation by rename) or nowhere (deleted), the old file is finished through the open
  descriptor — before any other file is read — and closed once it has been quiet for
  ``rotate_wait`` seconds with no partial line left;
* a truncated file (``copytruncate``) no longer shows the first bytes it was known by, so the
  Ingestor reads it again from the start; the copy, if a glob matches it, is recognised by its
  first bytes and resumed where the original stopped;
* a file whose name is new to the spool is first matched against the fingerprints of files
  read before (this covers small files, under the Ingestor's 1 KiB rename detection); failing
  that, ``start_at = "end"`` skips what a file held when the source first ran — files appearing
  later (e.g. after a rotation) are always read from their beginning, so nothing is skipped.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import cast

from keeptrail.agent.spool import Spool, SpoolClosed
from keeptrail.agent.status import SourceStats
from keeptrail.ingest import Ingestor, IngestSummary
from keeptrail.sources.files import FINGERPRINT_LEN, fingerprint, is_gzip
from keeptrail.store.contract import FilePosition, Store

log = logging.getLogger("keeptrail.sources.tail")


@dataclass(slots=True)
class TailSettings:
    """One ``type = "file"`` source of the agent's configuration."""

    name: str
    paths: list[str]
    fmt: str = "auto"
    start_at: str = "beginning"  # or "end"
    poll_seconds: float = 0.25
    rotate_wait: float = 5.0
    batch_size: int = 1000
    tz: tzinfo = UTC


@dataclass(slots=True)
class _Followed:
    """An open file: its descriptor keeps it readable after a rename or an unlink."""

    fd: int
    ident: tuple[int, int]
    size: int = -1
    mtime_ns: int = -1
    pending: bool = True
    changed_at: float = field(default_factory=time.monotonic)


class TailSource:
    """Follows the files matching some globs into the spool."""

    def __init__(
        self, settings: TailSettings, spool: Spool, *, host: str, stats: SourceStats
    ) -> None:
        if settings.start_at not in {"beginning", "end"}:
            raise ValueError(f"start_at must be 'beginning' or 'end', not {settings.start_at!r}")
        self.settings = settings
        self.spool = spool
        self.stats = stats
        # The spool implements the part of the Store contract the Ingestor uses.
        self.ingestor = Ingestor(
            cast(Store, spool),
            fmt=settings.fmt,
            tz=settings.tz,
            host=host,
            batch_size=settings.batch_size,
        )
        self.live: dict[str, _Followed] = {}
        self.rotated: list[_Followed] = []
        self._init_key = f"tail:{settings.name}:initialised"

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set (or the spool closes while the source waits for room)."""
        first = self.spool.get_meta(self._init_key) is None
        try:
            while not stop.is_set():
                self.poll(first_scan=first)
                if first:
                    self.spool.set_meta(self._init_key, "1")
                    first = False
                stop.wait(self.settings.poll_seconds)
        except SpoolClosed:
            pass
        finally:
            self.close()

    def poll(self, *, first_scan: bool = False) -> None:
        """One pass: notice rotations, finish rotated files, then read the live ones."""
        for path, followed in list(self.live.items()):
            try:
                st = os.stat(path)
                ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except FileNotFoundError:
                ident = None
            if ident != followed.ident:
                del self.live[path]
                followed.changed_at = time.monotonic()
                self.rotated.append(followed)
                self._adopt(_fd_path(followed), first_scan=False)
                log.info("%s was rotated or removed: finishing the old file first", path)
        for followed in list(self.rotated):
            self._read(_fd_path(followed), followed)
            quiet = time.monotonic() - followed.changed_at > self.settings.rotate_wait
            if quiet and not followed.pending:
                self.rotated.remove(followed)
                os.close(followed.fd)
        for path, st in self._discover():
            live = self.live.get(path)
            if live is None:
                live = self._follow(path, (st.st_dev, st.st_ino))
                if live is None:
                    continue
                self._adopt(Path(path), first_scan=first_scan)
            self._read(Path(path), live)

    def close(self) -> None:
        """Release every descriptor."""
        for followed in [*self.live.values(), *self.rotated]:
            os.close(followed.fd)
        self.live.clear()
        self.rotated.clear()

    # --- internals ----------------------------------------------------------------------------

    def _discover(self) -> list[tuple[str, os.stat_result]]:
        found: dict[str, os.stat_result] = {}
        for pattern in self.settings.paths:
            for name in glob.glob(os.path.expanduser(pattern)):
                try:
                    st = os.stat(name)
                except OSError:
                    continue
                if os.path.isfile(name):
                    found[name] = st
        return sorted(found.items(), key=lambda kv: (kv[1].st_mtime_ns, kv[0]))

    def _follow(self, path: str, ident: tuple[int, int]) -> _Followed | None:
        for followed in self.rotated:  # a rotated file the glob matches under its new name
            if followed.ident == ident:
                self.rotated.remove(followed)
                self.live[path] = followed
                return followed
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            self._error(f"{path}: {exc.strerror}")
            return None
        st = os.fstat(fd)
        followed = _Followed(fd, (st.st_dev, st.st_ino))
        self.live[path] = followed
        return followed

    def _read(self, path: Path, followed: _Followed) -> None:
        try:
            st = os.stat(path)
            if st.st_size == 0:
                return  # nothing to read; an empty file has no identity (its fingerprint is "")
            if st.st_size == followed.size and st.st_mtime_ns == followed.mtime_ns:
                if not followed.pending:
                    return
            elif st.st_size != followed.size:
                followed.changed_at = time.monotonic()
            result = self.ingestor.ingest_file(path)
        except (FileNotFoundError, EOFError):
            return  # vanished or a .gz still being written: the next pass sees the truth
        except OSError as exc:
            self._error(f"{path}: {exc}")
            return
        finally:
            self.ingestor.summary = IngestSummary()  # per-run totals would grow forever here
        log.debug(
            "read %s: %d..%d, %d lines %d stored %d dup %d blank",
            path,
            result.started_at,
            result.ended_at,
            result.lines,
            result.stored,
            result.duplicates,
            result.blank,
        )
        followed.size, followed.mtime_ns = st.st_size, st.st_mtime_ns
        followed.pending = result.pending
        self.stats.count(result.lines, result.stored)
        self.stats.error = None

    def _adopt(self, path: Path, *, first_scan: bool) -> None:
        """Give a name new to the spool the position its content already reached, if any."""
        try:
            key = str(path.resolve())
            mine = self.spool.file_position(key)
            if mine is not None and fingerprint(path, mine.fingerprint_len)[0] == mine.fingerprint:
                return  # the name still holds the content it was read under
            fp, n = fingerprint(path, FINGERPRINT_LEN)
            if n == FINGERPRINT_LEN and self.spool.file_position_by_fingerprint(fp) is not None:
                return  # the Ingestor recognises a renamed file of 1 KiB or more itself
            best: FilePosition | None = None
            for length in self.spool.short_fingerprint_lengths():
                fp, n = fingerprint(path, length)
                known = self.spool.file_position_by_fingerprint(fp) if n == length else None
                if known is not None and (best is None or known.offset > best.offset):
                    best = known
            if best is None and first_scan and self.settings.start_at == "end":
                if is_gzip(path):
                    return
                end = _last_line_end(path)
                fp, n = fingerprint(path, min(end, FINGERPRINT_LEN))
                best = FilePosition(key, fp, n, end, 0)
            if best is not None:
                now = time.time_ns() // 1000
                fp, n, end = best.fingerprint, best.fingerprint_len, best.offset
                log.debug("%s: adopting offset %d of fingerprint %s/%d", key, end, fp[:8], n)
                self.spool.append([], [FilePosition(key, fp, n, end, now)])
        except OSError as exc:
            self._error(f"{path}: {exc}")

    def _error(self, message: str) -> None:
        if self.stats.error != message:
            log.error("file source %s: %s", self.settings.name, message)
        self.stats.error = message


def _fd_path(followed: _Followed) -> Path:
    return Path(f"/proc/self/fd/{followed.fd}")


def _last_line_end(path: Path) -> int:
    """Offset just after the last newline: where reading "from the end" starts."""
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        pos = size
        while pos > 0:
            step = min(pos, 64 * 1024)
            f.seek(pos - step)
            chunk = f.read(step)
            at = chunk.rfind(b"\n")
            if at >= 0:
                return pos - step + at + 1
            pos -= step
    return 0
