"""The systemd journal, read through ``journalctl -o json --follow`` with a persisted cursor.

journalctl is the journal's stable interface (its files are not), so this source runs it as
a subprocess and reads its JSON export lines. Each batch of events is spooled together with the
``__CURSOR`` of its last entry, in one transaction; after a restart (of journalctl or of the
agent) it resumes with ``--after-cursor``, so no entry is lost or read twice. Without a cursor,
``start_at = "end"`` begins with new entries and ``"beginning"`` reads the whole journal.

An entry becomes an event by its syslog identity: ``SYSLOG_IDENTIFIER[_PID]: MESSAGE`` goes
through the same parsers as a line of auth.log (so sshd, sudo and PAM entries come out as
normalized events), stamped with ``__REALTIME_TIMESTAMP``. ``raw`` is the export line exactly
as journalctl wrote it.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import IO, Any

import orjson

from keeptrail.agent.spool import Spool, SpoolClosed
from keeptrail.agent.status import SourceStats
from keeptrail.event import Event, format_time, unparsed, uuid7
from keeptrail.parsers.detect import parse_line
from keeptrail.parsers.syslog import FrameContext

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


def journal_event(line: str, tz: tzinfo, host: str, received_us: int) -> tuple[Event, str | None]:
    """One JSON export line as an event, and the entry's cursor (pure)."""
    try:
        entry: Any = orjson.loads(line)
        if not isinstance(entry, dict):
            raise TypeError("not an object")
    except (orjson.JSONDecodeError, TypeError):
        event = unparsed(line, received_us, reason="bad_journal_json")
        event.collector_parser = "unparsed"
        return _stamp(event, host, received_us), None
    stamp = _int(entry.get("__REALTIME_TIMESTAMP")) or received_us
    ident = _text(entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM")) or "journal"
    pid = _text(entry.get("SYSLOG_PID") or entry.get("_PID"))
    origin = _text(entry.get("_HOSTNAME")) or host
    message = _text(entry.get("MESSAGE"))
    framed = f"{format_time(stamp)} {origin} {ident}{f'[{pid}]' if pid else ''}: {message}"
    event = parse_line(framed, FrameContext(reference_us=stamp, tz=tz))
    event.raw = line
    unit = _text(entry.get("_SYSTEMD_UNIT"))
    if unit:
        event.details.setdefault("systemd_unit", unit)
    cursor = entry.get("__CURSOR")
    return _stamp(event, host, received_us), cursor if isinstance(cursor, str) else None


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
        events: list[Event] = []
        cursor: str | None = None
        for raw in batch:
            text = raw.rstrip(b"\n").decode("utf-8", "backslashreplace")
            if not text.strip():
                continue
            event, entry_cursor = journal_event(text, self.settings.tz, self.host, now)
            events.append(event)
            cursor = entry_cursor or cursor
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


def _stamp(event: Event, host: str, now: int) -> Event:
    event.id = uuid7()
    event.ingested_at = now
    event.collector_host = host
    event.collector_source = "journald"
    return event


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) for b in value):  # binary MESSAGE
        return bytes(b & 0xFF for b in value).decode("utf-8", "backslashreplace")
    return "" if value is None else str(value)


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
