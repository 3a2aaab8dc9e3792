"""The systemd journal, read through ``journalctl -o json --follow`` with a persisted cursor.

journalctl is the journal's stable interface (its files are not), so this source runs it as
a subprocess and reads its JSON export lines. Each batch of events is spooled together with the
``__CURSOR`` of its last entry, in one transaction; after a restart (of journalctl or of the
agent) it resumes with ``--after-cursor``, so no entry is lost or read twice. Without a cursor,
``start_at = "end"`` begins with new entries and ``"beginning"`` reads the whole journal.

Entries become events through :mod:`keeptrail.parsers.journald` (the same parser as
``keeptrail ingest --format journald``): MESSAGE goes to the per-program parsers by its
SYSLOG_IDENTIFIER, journald's trusted fields win, ``raw`` is the export line exactly as
journalctl wrote it, and the entry's cursor is in ``details.journal_cursor``.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import IO

from keeptrail.agent.spool import Spool, SpoolClosed
from keeptrail.agent.status import SourceStats
from keeptrail.event import Event, uuid7
from keeptrail.parsers import journald as journald_format
from keeptrail.parsers.base import StreamContext

log = logging.getLogger("keeptrail.sources.journald")


@dataclass(slots=True)
class JournalSettings:
    """One ``type = "journald"`` source."""

    name: str
    command: str = "journalctl"
    args: list[str] = field(default_factory=list)  # extra filters, e.g. ["-u", "ssh.service"]
    start_at: str = "end"
    tz: tzinfo = UTC
    batch_size: int = 500
    flush_seconds: float = 0.2
    restart_seconds: float = 2.0


class JournalSource:
    """Runs journalctl and spools its entries with their cursor until stopped."""

    def __init__(
        self, settings: JournalSettings, spool: Spool, *, host: str, stats: SourceStats
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.host = host
        self.stats = stats
        self.cursor_key = f"journald:{settings.name}:cursor"

    def command(self) -> list[str]:
        """The journalctl invocation, resuming after the persisted cursor when there is one."""
        s = self.settings
        cmd = [s.command, "-o", "json", "--follow", "--no-pager", *s.args]
        cursor = self.spool.get_meta(self.cursor_key)
        if cursor:
            return [*cmd, f"--after-cursor={cursor}"]
        return [*cmd, "--lines=0" if s.start_at == "end" else "--lines=all"]

    def run(self, stop: threading.Event) -> None:
        """(Re)start journalctl until ``stop``; each exit is logged and retried."""
        while not stop.is_set():
            try:
                proc = subprocess.Popen(  # noqa: S603 — the configured journalctl, no shell
                    self.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
            except OSError as exc:
                self._error(f"cannot run {self.settings.command}: {exc}")
                stop.wait(self.settings.restart_seconds)
                continue
            try:
                self._follow(proc, stop)
            except SpoolClosed:
                return
            finally:
                proc.kill()
                proc.wait()
            if not stop.is_set():
                err = proc.stderr.read().decode("utf-8", "replace").strip() if proc.stderr else ""
                self._error(f"journalctl exited with {proc.returncode}: {err[:300]}")
                stop.wait(self.settings.restart_seconds)

    def _follow(self, proc: subprocess.Popen[bytes], stop: threading.Event) -> None:
        s = self.settings
        lines: queue.Queue[bytes | None] = queue.Queue(maxsize=10_000)
        assert proc.stdout is not None
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        ended = False
        while not ended and not stop.is_set():
            batch: list[bytes] = []
            deadline = time.monotonic() + s.flush_seconds
            while len(batch) < s.batch_size:
                try:
                    item = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    ended = True
                    break
                batch.append(item)
            if batch:
                self._spool(batch)

    def _spool(self, batch: list[bytes]) -> None:
        now = time.time_ns() // 1000
        ctx = StreamContext(reference_us=now, tz=self.settings.tz, host=self.host)
        entries = journald_format.assembler(ctx)
        events: list[Event] = []
        cursor: str | None = None
        for raw in batch:
            for event in entries.feed(raw.rstrip(b"\n").decode("utf-8", "backslashreplace"), 0):
                event.id = uuid7()
                event.ingested_at = now
                event.collector_host = self.host
                event.collector_source = "journald"
                event.collector_offset = None
                entry_cursor = event.details.get("journal_cursor")
                cursor = entry_cursor if isinstance(entry_cursor, str) else cursor
                events.append(event)
        self.spool.append(events, meta={self.cursor_key: cursor} if cursor else None)
        self.stats.count(len(batch), len(events))
        self.stats.error = None

    def _error(self, message: str) -> None:
        log.error("journald source %s: %s", self.settings.name, message)
        self.stats.error = message


def _pump(stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)
