"""What one running server holds: settings, store threads, tokens, alerts, metrics, rate limiter.

Built by the lifespan of :func:`keeptrail.server.app.create_app`, closed when it ends; handlers
reach it through :mod:`keeptrail.server.deps`. :meth:`ServerState.append` is the one way events
enter the store from inside the server, the ingest API and (in single-node mode) the server's own
collection sources alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from keeptrail.detect.alerts import AlertStore, open_alerts
from keeptrail.detect.engine import Engine
from keeptrail.detect.runtime import open_engine
from keeptrail.event import Event
from keeptrail.server.auth import RateLimiter
from keeptrail.server.metrics import Metrics, StoreSnapshot
from keeptrail.server.settings import Settings
from keeptrail.server.tokens import TokenStore
from keeptrail.server.workers import StoreThreads
from keeptrail.state_db import is_postgres_url
from keeptrail.store import FilePosition, Store


@dataclass(slots=True)
class ServerState:
    """The live parts of a server."""

    settings: Settings
    stores: StoreThreads
    tokens: TokenStore
    alerts: AlertStore  # what the API lists and transitions (the engine has its own connection)
    metrics: Metrics
    limiter: RateLimiter
    ready: bool = False
    detector: Engine | None = None  # the rules engine (docs/detect.md), run after each commit

    @classmethod
    def open(cls, settings: Settings) -> ServerState:
        """Open the store (writer first, creating it if needed), tokens, alerts and the engine.

        With a PostgreSQL store, tokens, alerts and the engine's state are tables of its
        database, shared by every server (:mod:`keeptrail.state_db`)."""
        directory = settings.directory
        stores = StoreThreads(
            directory,
            readers=settings.reader_threads,
            store=settings.store,
            config_file=settings.config_file,
        )
        stores.open()
        return cls(
            settings=settings,
            stores=stores,
            tokens=TokenStore(directory, settings.store),
            alerts=open_alerts(directory, settings.store),
            metrics=Metrics(),
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            detector=open_engine(directory, config_file=settings.config_file, store=settings.store),
        )

    async def append(self, events: Sequence[Event], positions: Sequence[FilePosition] = ()) -> int:
        """Commit events (and the file positions they reach) through the writer thread.

        Then the rules engine evaluates what was committed, on the writer thread too (it reads
        the store and appends its ``alert.raised`` events there), before the caller is answered.
        """
        stored = await self.stores.write(lambda s: s.append(events, positions))
        detector = self.detector
        if detector is not None and stored:
            await self.stores.write(detector.catch_up)
        return stored

    async def detect_clock(self, every: float = 15.0, follow: float = 0.5) -> None:
        """Evaluate silence rules against the wall clock (a source that stopped sending
        commits nothing that would wake the engine); runs until cancelled.

        On a PostgreSQL store other servers commit events too, and one server runs the rules
        for all: every ``follow`` seconds this one catches up with what they committed when it
        holds the engine's lock, and tries to take the lock when it does not (fail-over)."""
        detector = self.detector
        if detector is None:
            return
        shared = is_postgres_url(self.settings.store)
        ticked = time.monotonic()
        while True:
            await asyncio.sleep(follow if shared else every)
            if shared:
                await self.stores.write(detector.catch_up)
            if time.monotonic() - ticked >= every or not shared:
                await self.stores.write(detector.tick)
                ticked = time.monotonic()

    async def refresh_store_metrics(self) -> None:
        self.metrics.set_store(await self.stores.read(_snapshot))

    def close(self) -> None:
        self.ready = False
        self.stores.close()
        if self.detector is not None:
            self.detector.close()
        self.alerts.close()
        self.tokens.close()


def _snapshot(store: Store) -> StoreSnapshot:
    latest = store.latest_checkpoint()
    path = getattr(store, "path", None)
    size = 0
    if path is not None:
        for suffix in ("", "-wal", "-shm"):
            try:
                size += (path.parent / (path.name + suffix)).stat().st_size
            except OSError:
                continue
    return StoreSnapshot(
        leaves=store.ledger_frontier().size,
        bytes=size,
        checkpoint_size=latest.size if latest else None,
        checkpoint_time=latest.created_at / 1_000_000 if latest else None,
    )


# A collection source run by the server itself (single-node mode): an async function that reads
# lines and commits events with ``await state.append(events, positions)`` until it is cancelled.
Source = Callable[[ServerState], Coroutine[Any, Any, None]]
