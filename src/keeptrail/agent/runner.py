"""The agent process: sources → spool → shipper, each on its own thread.

Sources (file tails, journald, syslog listeners) only ever write to the spool; the shipper
only ever reads from it. Nothing else connects them, so a slow or absent server never reaches
a source except through the spool's bound, and a crash anywhere is recovered from the spool
and the read positions committed with it. Heartbeats are spooled like any event.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from functools import partial
from types import FrameType

from keeptrail.agent.config import AgentConfig
from keeptrail.agent.shipper import Shipper
from keeptrail.agent.spool import Spool, SpoolClosed
from keeptrail.agent.status import AgentStatus
from keeptrail.permissions.collect import run_schedule, snapshot_event
from keeptrail.permissions.snapshots import open_snapshots
from keeptrail.sources.journald import JournalSource
from keeptrail.sources.syslog_listener import SyslogListener
from keeptrail.sources.tail import TailSource

log = logging.getLogger("keeptrail.agent")


class Agent:
    """One running agent; :meth:`run` blocks until :meth:`shutdown` (or SIGTERM/SIGINT)."""

    def __init__(self, config: AgentConfig, *, ship: bool = True) -> None:
        self.config = config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.stop = threading.Event()
        self.status = AgentStatus(host=config.host)
        self.spool = Spool(
            config.state_dir / "spool.db",
            max_events=config.spool_max_events,
            max_bytes=config.spool_max_bytes,
        )
        self.workers: list[tuple[str, Callable[[], None]]] = []
        if ship:  # single-node mode moves the spool into the store itself (agent/local.py)
            shipper = Shipper(self.spool, config.shipper, self.status, self.stop)
            self.workers.append(("shipper", shipper.run))
        for t in config.files:
            tail = TailSource(
                t, self.spool, host=config.host, stats=self.status.source(t.name, "file")
            )
            self.workers.append((f"file:{t.name}", partial(tail.run, self.stop)))
        for j in config.journals:
            journal = JournalSource(
                j, self.spool, host=config.host, stats=self.status.source(j.name, "journald")
            )
            self.workers.append((f"journald:{j.name}", partial(journal.run, self.stop)))
        self.listeners: list[SyslogListener] = []
        for s in config.syslogs:
            listener = SyslogListener(
                s, self.spool, host=config.host, stats=self.status.source(s.name, "syslog")
            )
            self.listeners.append(listener)
            self.workers.append((f"syslog:{s.name}", partial(listener.run, self.stop)))
        self.workers.append(("heartbeat", self._heartbeats))
        if config.permissions is not None and config.permissions.collect_every:
            self.workers.append(("permissions", self._permissions))
        self.threads: list[threading.Thread] = []

    def run(self, *, handle_signals: bool = True) -> None:
        """Start every worker, keep ``status.json`` fresh, stop cleanly when asked."""
        if handle_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        for listener in self.listeners:
            listener.bind()  # fail now, in the foreground, if an address is taken
        for name, target in self.workers:
            thread = threading.Thread(target=self._guard(name, target), name=name, daemon=True)
            thread.start()
            self.threads.append(thread)
        log.info(
            "agent %s shipping to %s; %d file, %d journald, %d syslog sources; spool %s",
            self.config.host,
            self.config.shipper.url,
            len(self.config.files),
            len(self.config.journals),
            len(self.config.syslogs),
            self.spool.path,
        )
        try:
            while not self.stop.wait(self.config.status_seconds):
                self._write_status()
        finally:
            self.stop.set()
            self.spool.release()
            for thread in self.threads:
                thread.join(timeout=10)
            self._write_status()
            self.spool.close()
            log.info("agent stopped")

    def shutdown(self) -> None:
        """Ask :meth:`run` to return."""
        self.stop.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        self.stop.set()

    def _guard(self, name: str, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except SpoolClosed:
                pass
            except Exception:
                log.exception("worker %s failed; stopping the agent", name)
                self.stop.set()

        return run

    def _heartbeats(self) -> None:
        while not self.stop.wait(self.config.heartbeat_seconds):
            self._refresh()
            self.spool.append([self.status.heartbeat()])

    def _permissions(self) -> None:
        """Scheduled permission snapshots, kept locally; each one announced by an event."""
        settings = self.config.permissions
        assert settings is not None
        directory = settings.data_dir or self.config.state_dir
        run_schedule(
            settings,
            lambda: open_snapshots(directory),
            self.stop,
            lambda saved: self.spool.append(
                [snapshot_event(s, host=self.config.host) for s in saved]
            ),
        )

    def _refresh(self) -> None:
        st = self.status
        st.spool_events, st.spool_bytes = self.spool.depth
        st.spool_full = self.spool.full_since is not None

    def _write_status(self) -> None:
        self._refresh()
        try:
            self.status.write(self.config.state_dir / "status.json")
        except OSError as exc:
            log.warning("cannot write status.json: %s", exc)
