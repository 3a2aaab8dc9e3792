"""Single-node mode: the agent's sources feeding the server's own store, no HTTP in between.

``keeptrail serve --collect agent.toml`` runs the same sources as ``keeptrail agent`` (files,
journald, syslog), writing to the same durable spool; instead of the HTTP shipper, this
collector moves spooled events into the store through the server's writer thread and drops
them from the spool only once they are committed. A crash at any point is recovered exactly as
in the two-process setup: what is spooled is delivered again, and the store ignores ids it
already holds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Protocol

import orjson

from keeptrail.agent.config import AgentConfig
from keeptrail.agent.runner import Agent
from keeptrail.event import Event, from_document

log = logging.getLogger("keeptrail.agent")

IDLE_SECONDS = 0.2


class EventSink(Protocol):
    """What the collector needs from the server: commit a batch (the writer thread does it)."""

    async def append(self, events: list[Event]) -> int: ...


class LocalCollector:
    """An async source for ``create_app(settings, sources=[...])``."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config

    async def __call__(self, sink: EventSink) -> None:
        agent = Agent(self.config, ship=False)
        thread = threading.Thread(
            target=agent.run, kwargs={"handle_signals": False}, name="collector", daemon=True
        )
        thread.start()
        batch_size = self.config.shipper.batch_size
        try:
            while True:
                entries = await asyncio.to_thread(agent.spool.peek, batch_size)
                if not entries:
                    await asyncio.sleep(IDLE_SECONDS)
                    continue
                now = time.time_ns() // 1000
                events = []
                for entry in entries:
                    event = from_document(orjson.loads(entry.doc))
                    event.ingested_at = now
                    events.append(event)
                await sink.append(events)
                await asyncio.to_thread(agent.spool.ack, entries)
                agent.status.shipped += len(entries)
        finally:
            agent.shutdown()
            await asyncio.to_thread(thread.join, 15)
