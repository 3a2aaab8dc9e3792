"""What the agent knows about itself: per-source counters, shipping state, heartbeats.

The same figures go three ways: into ``status.json`` in the state directory (for people and
monitoring), into the log when something is wrong, and into a periodic ``agent.heartbeat``
event shipped like any other, so the server can tell a silent source (no heartbeat, or a
heartbeat whose line count stopped moving while the host is up) from a quiet one.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import orjson

from keeptrail import __version__
from keeptrail.event import DetailValue, Event, format_time, uuid7


@dataclass(slots=True)
class SourceStats:
    """Counters of one source, updated by the source's own thread."""

    name: str
    kind: str
    lines: int = 0
    events: int = 0
    last_read_us: int | None = None
    error: str | None = None

    def count(self, lines: int, events: int) -> None:
        """Record lines read and events spooled."""
        if lines:
            self.lines += lines
            self.events += events
            self.last_read_us = time.time_ns() // 1000


@dataclass(slots=True)
class AgentStatus:
    """The whole agent's state, written to ``status.json`` and summarised in heartbeats."""

    host: str
    started_us: int = field(default_factory=lambda: time.time_ns() // 1000)
    sources: dict[str, SourceStats] = field(default_factory=dict)
    spool_events: int = 0
    spool_bytes: int = 0
    spool_full: bool = False
    shipped: int = 0
    duplicates: int = 0
    quarantined: int = 0
    retries: int = 0
    last_ship_us: int | None = None
    last_error: str | None = None
    auth_failed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def source(self, name: str, kind: str) -> SourceStats:
        """The counters for a source, created on first use."""
        with self._lock:
            return self.sources.setdefault(name, SourceStats(name, kind))

    def snapshot(self) -> dict[str, object]:
        """A JSON-ready copy."""
        with self._lock:
            sources = {name: asdict(s) for name, s in self.sources.items()}
        data: dict[str, object] = {
            f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")
        }
        data["sources"] = sources
        data["version"] = __version__
        return data

    def write(self, path: Path) -> None:
        """Replace ``status.json`` atomically."""
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.snapshot(), option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)

    def heartbeat(self) -> Event:
        """An ``agent.heartbeat`` event with per-source line counts and last-read times."""
        now = time.time_ns() // 1000
        details: dict[str, DetailValue] = {
            "agent_version": __version__,
            "uptime_seconds": (now - self.started_us) // 1_000_000,
            "spool_events": self.spool_events,
            "spool_full": self.spool_full,
            "auth_failed": self.auth_failed,
            "sources": sorted(self.sources),
        }
        for name, s in sorted(self.sources.items()):
            details[f"source.{name}.kind"] = s.kind
            details[f"source.{name}.lines"] = s.lines
            details[f"source.{name}.events"] = s.events
            details[f"source.{name}.last_read"] = (
                format_time(s.last_read_us) if s.last_read_us else None
            )
            if s.error:
                details[f"source.{name}.error"] = s.error
        return Event(
            time=now,
            category="audit",
            action="agent.heartbeat",
            outcome="success",
            target_host=self.host,
            target_system="keeptrail-agent",
            details=details,
            collector_host=self.host,
            collector_source="agent",
            collector_parser="agent",
            raw=f"keeptrail agent heartbeat from {self.host}",
            id=uuid7(),
            ingested_at=now,
        )
