"""Wiring notifications into a running server: one call from the app's lifespan.

The server's engine calls the notifier's listener after each stored alert; the notifier's
thread records ``alert.delivery_failed`` events through the server's writer (scheduled on the
event loop, so the writer thread stays the only one writing), and its metrics go into the
server's registry, so ``/metrics`` shows deliveries and failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from keeptrail.config import load_config_file
from keeptrail.event import Event
from keeptrail.notify.config import notify_config
from keeptrail.notify.dispatcher import Notifier
from keeptrail.server.state import ServerState

RECORD_TIMEOUT = 60.0


def attach(state: ServerState, loop: asyncio.AbstractEventLoop) -> Notifier | None:
    """Start delivering the server's alerts; None when no sink is configured or detection is off."""
    directory = state.settings.directory
    cfg = notify_config(load_config_file(directory, state.settings.config_file))
    detector = state.detector
    if not cfg.sinks or detector is None:
        return None

    def record(events: Sequence[Event]) -> None:
        future = asyncio.run_coroutine_threadsafe(state.append(list(events)), loop)
        future.result(timeout=RECORD_TIMEOUT)

    notifier = Notifier.open(
        directory, cfg, record=record, registry=state.metrics.registry, store=state.settings.store
    )
    detector.add_listener(notifier.listener)
    notifier.catch_up(detector.alerts)  # alerts stored while no notifier was listening
    notifier.start()
    return notifier
