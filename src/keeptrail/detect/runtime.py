"""Wiring: the rules and the engine of a data directory, and retro-hunting over stored history.

The CLI (``ingest``, ``serve``, ``rules``) and the server call these; they read the ``[detect]``
table, load the pack and the site's rules, open GeoIP when configured, and open the engine's
state: ``detect.db``, or the PostgreSQL store's database (:mod:`keeptrail.state_db`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from keeptrail.config import load_config_file
from keeptrail.detect.alerts import Alert
from keeptrail.detect.config import DetectConfig, detect_config
from keeptrail.detect.engine import Engine, RunStats
from keeptrail.detect.geoip import GeoIP
from keeptrail.detect.rules import Rule, load_rule_set
from keeptrail.event import Event
from keeptrail.query.tree import Node, Or
from keeptrail.state_db import DETECT_DB, open_state_db
from keeptrail.store.contract import Store

MAX_HUNT_EVENTS: Final = 2_000_000


def load_detect_config(data_dir: Path, config_file: Path | None = None) -> DetectConfig:
    return detect_config(load_config_file(data_dir, config_file))


def site_rules(data_dir: Path, cfg: DetectConfig) -> list[Rule]:
    """The pack (unless ``pack = false``) and the site's rules, minus ``disabled``."""
    rules = load_rule_set(cfg.all_rule_dirs(data_dir), include_pack=cfg.pack)
    return [r for r in rules if r.id not in cfg.disabled]


def open_geoip(cfg: DetectConfig) -> GeoIP | None:
    return GeoIP(cfg.geoip_db) if cfg.geoip_db is not None else None


def open_engine(
    data_dir: Path,
    *,
    config_file: Path | None = None,
    cfg: DetectConfig | None = None,
    store: str | Path | None = None,
) -> Engine | None:
    """The engine of a data directory, or None when ``[detect] enabled = false``.

    ``store`` is the store's URL: with a PostgreSQL store the engine's state and alerts are in
    that database, shared by every server, and one server at a time runs the rules.
    """
    cfg = cfg or load_detect_config(data_dir, config_file)
    if not cfg.enabled:
        return None
    rules = site_rules(data_dir, cfg)
    geo = open_geoip(cfg)
    return Engine(
        rules,
        open_state_db(data_dir, store, DETECT_DB),
        geo=geo.lookup if geo else None,
        lateness=cfg.lateness,
    )


@dataclass(slots=True)
class HuntResult:
    """What a replay of stored history through some rules would have raised."""

    alerts: list[Alert] = field(default_factory=list)
    scanned: int = 0
    truncated: bool = False
    stats: RunStats = field(default_factory=RunStats)


def hunt(
    store: Store,
    rules: Sequence[Rule],
    *,
    since: int | None = None,
    until: int | None = None,
    geo: GeoIP | None = None,
    max_events: int = MAX_HUNT_EVENTS,
) -> HuntResult:
    """Replay stored events matching any of ``rules`` through a fresh engine, oldest first.

    Nothing is written: the engine's state and alerts live in memory and vanish with it.
    """
    result = HuntResult()
    if not rules:
        return result
    trees: list[Node] = [r.tree for r in rules]
    query: Node = trees[0] if len(trees) == 1 else Or(tuple(trees))
    events: list[Event] = []
    cursor: str | None = None
    while True:
        page = store.search(query, since=since, until=until, limit=5000, cursor=cursor)
        events.extend(page.events)
        cursor = page.next_cursor
        if cursor is None:
            break
        if len(events) >= max_events:
            result.truncated = True
            break
    events.reverse()
    result.scanned = len(events)
    engine = Engine.in_memory(rules, geo=geo.lookup if geo else None)
    latest: dict[str, Alert] = {}

    def collect(alert: Alert, _is_new: bool) -> None:
        latest[alert.id] = alert

    engine.add_listener(collect)
    try:
        for start in range(0, len(events), 20_000):
            stats = engine.feed(events[start : start + 20_000])
            result.stats.events += stats.events
            result.stats.alerts_new += stats.alerts_new
            result.stats.alerts_updated += stats.alerts_updated
    finally:
        engine.close()
    result.alerts = sorted(latest.values(), key=lambda a: (a.first_time, a.id))
    return result
