"""The streaming engine: every rule on every committed event, in event-time order.

It follows the store by leaf index (``Store.events_after``), so whichever
process commits a batch — ``keeptrail ingest``, the server's ingest API, its own collectors —
the engine sees each event exactly once. A batch is evaluated, its alerts are appended to the
event store as ``alert.raised`` events (which puts them in the ledger), and then the alerts,
the rules' state and the new high-water mark are committed to ``detect.db`` in one transaction.

On PostgreSQL the state and alerts are tables of the store's database and one server at a time
runs the engine: the holder of the advisory lock :data:`keeptrail.state_db.DETECT_LOCK`. The
others skip detection until the holder's session ends; the next one to take the lock reloads the
state its predecessor committed and carries on from its high-water mark, so the rules see every
server's events once and raise each alert once.
If the process dies in between, the batch is evaluated again from the state before it: the
alert events have deterministic ids, so the store keeps one copy of each.

Evaluation order is event time: a batch is sorted before it is evaluated, and windowed state is
kept sorted, so an event that arrives up to ``lateness`` after newer ones for the same key is
counted in its own window. Later than that, windowed rules ignore it (``RunStats.too_late``)
rather than count it in a window it does not belong to.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from keeptrail.detect import clauses
from keeptrail.detect.alerts import Alert, AlertStore, key_text
from keeptrail.detect.clauses import Firing, GeoLookup, State
from keeptrail.detect.config import DEFAULT_LATENESS
from keeptrail.detect.rules import Rule
from keeptrail.detect.state import GROUP_PREFIX, RULE_KEY, StateStore
from keeptrail.event import DetailValue, Event, uuid7_for
from keeptrail.state_db import DETECT_LOCK, StateDB, connect_sqlite
from keeptrail.store.contract import Store

log = logging.getLogger(__name__)

Listener = Callable[[Alert, bool], None]
CHUNK: Final = 5000
_IDLE_MIN: Final = 24 * 3_600_000_000
_MAX_SKEW: Final = 5 * 60_000_000
_WINDOWED: Final = frozenset({"threshold", "distinct", "sequence"})
_PLACEHOLDER: Final = re.compile(r"\{([a-z_]+)\}")

DEFAULT_REASONS: Final[dict[str, str]] = {
    "instant": "{summary}",
    "threshold": "{count} matching events within {window} for {key} (threshold {threshold})",
    "distinct": "{distinct} distinct {field} within {window} for {key} (threshold "
    "{threshold}): {values}",
    "sequence": "{count} matching events then [{then}] within {window} for {key}",
    "first_seen": "{field} {value} never seen before for {key} ({known_count} known: {known})",
    "dormant": "{key} active again after {idle} without activity (dormant after {after})",
    "baseline": "{count} events in one {bucket} for {key}: {factor}x its mean of {mean} per "
    "active {bucket} over {buckets} buckets",
    "travel": "{key}: {from} then {to}: {distance_km} km in {minutes} min ({speed_kmh} km/h)",
    "silence": "nothing from {key} for {idle} (expected at least every {after})",
}


@dataclass(slots=True)
class RunStats:
    """What one catch-up did."""

    events: int = 0
    batches: int = 0
    alerts_new: int = 0
    alerts_updated: int = 0
    too_late: int = 0
    high_water: int = -1
    seconds: float = 0.0


@dataclass(slots=True)
class Raised:
    """A firing turned into an alert, before or after it was stored."""

    rule: Rule
    alert: Alert
    is_new: bool = True


class Engine:
    """Rules, their state and the alert store of one data directory (or PostgreSQL store)."""

    def __init__(
        self,
        rules: Sequence[Rule],
        db: StateDB,
        *,
        geo: GeoLookup | None = None,
        lateness: int = DEFAULT_LATENESS,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.rules = [r for r in rules if r.enabled]
        self._db = db
        self.alerts = AlertStore(Path(":memory:"), db=db)
        self.state = StateStore(db)
        self.geo = geo
        self.lateness = lateness
        self._clock = clock or (lambda: time.time_ns() // 1000)
        self._listeners: list[Listener] = []
        self._candidates: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self._silence = [r for r in self.rules if r.kind == "silence"]
        self._load()
        self._leading = db.dialect == "sqlite"  # PostgreSQL: see lead()

    @classmethod
    def open(
        cls,
        path: Path,
        rules: Sequence[Rule],
        *,
        geo: GeoLookup | None = None,
        lateness: int = DEFAULT_LATENESS,
    ) -> Engine:
        """The engine of ``<data-dir>/detect.db``."""
        return cls(rules, StateDB(connect_sqlite(path)), geo=geo, lateness=lateness)

    @classmethod
    def in_memory(cls, rules: Sequence[Rule], *, geo: GeoLookup | None = None) -> Engine:
        """An engine that remembers nothing (``keeptrail rules test``)."""
        db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        return cls(rules, StateDB(db), geo=geo, lateness=2**62)

    def _load(self) -> None:
        self._states: dict[str, dict[str, State]] = self.state.load(r.id for r in self.rules)
        self._dirty: set[tuple[str, str]] = set()
        for rule in self.rules:  # a rule whose logic changed starts afresh, not on odd state
            states = self._states[rule.id]
            stamp = rule.fingerprint
            if states.get(RULE_KEY, {}).get("fp") != stamp:
                self._dirty.update((rule.id, k) for k in states)
                states.clear()
                states[RULE_KEY] = {"fp": stamp}
                self._dirty.add((rule.id, RULE_KEY))
        self.high_water = self.state.high_water()
        self.watermark = int(self.state.meta("watermark") or 0)
        # per rule, the newest event it matched: its own "now" for silence and forgetting
        self._rule_clock: dict[str, int] = {
            rule_id: int(states.get(RULE_KEY, {}).get("clock", 0))
            for rule_id, states in self._states.items()
        }

    def lead(self) -> bool:
        """Whether this process runs the rules now (always with SQLite; on PostgreSQL, the
        holder of :data:`DETECT_LOCK`). Taking over reloads the state the previous holder
        committed: what this process loaded at start is stale by then."""
        if self._leading:
            return True
        if not self._db.lead(DETECT_LOCK):
            return False
        self._load()
        self._leading = True
        log.info("this process now runs the rules engine (high-water mark %d)", self.high_water)
        return True

    def add_listener(self, callback: Listener) -> None:
        """Call ``callback(alert, is_new)`` after each alert is stored (delivery hooks here)."""
        self._listeners.append(callback)

    # --- following the store --------------------------------------------------------------

    def catch_up(
        self, store: Store, *, chunk: int = CHUNK, recent: Sequence[Event] | None = None
    ) -> RunStats:
        """Evaluate every event committed since the high-water mark; return what happened.

        ``recent`` is the batch the caller has just appended, still in memory: when exactly
        that many leaves were added since the high-water mark, they are those events, and
        reading them back from the store (decrypting, decoding) is skipped. Anything else —
        duplicates skipped, another writer in between — falls back to reading the store.
        """
        stats = RunStats(high_water=self.high_water)
        if not self.lead():
            return stats  # another server runs the rules over every server's events
        began = time.perf_counter()
        if recent:
            size = store.ledger_frontier().size
            if size - 1 - self.high_water == len(recent):
                self._commit(list(recent), store, stats, high_water=size - 1)
        while True:
            batch = store.events_after(self.high_water, chunk)
            if not batch:
                break
            raised = stats.alerts_new
            self._commit_batch(batch, store, stats)
            if len(batch) < chunk and stats.alerts_new == raised:
                break  # caught up (alert events just appended are read by the next loop)
        stats.seconds = time.perf_counter() - began
        return stats

    def feed(self, events: list[Event], store: Store | None = None) -> RunStats:
        """Evaluate events given directly (retro-hunting); alerts go to ``store`` if given."""
        stats = RunStats(high_water=self.high_water)
        self._commit(events, store, stats)
        return stats

    def tick(self, store: Store | None, now: int | None = None) -> RunStats:
        """Check silence rules against the wall clock (the server calls this periodically)."""
        stats = RunStats(high_water=self.high_water)
        if self._silence and self.lead():
            self._commit([], store, stats, clock=now if now is not None else self._clock())
        return stats

    def _commit_batch(self, batch: list[tuple[int, Event]], store: Store, stats: RunStats) -> None:
        self._commit([e for _, e in batch], store, stats, high_water=batch[-1][0])

    def _commit(
        self,
        events: list[Event],
        store: Store | None,
        stats: RunStats,
        *,
        high_water: int | None = None,
        clock: int | None = None,
    ) -> None:
        self.state.begin()
        try:
            firings = self.evaluate(events, stats)
            firings.extend(self.check_silence(clock))
            built = [self.build_alert(rule, key, firing) for rule, key, firing in firings]
            raised = [
                Raised(firings[first][0], stored, is_new)
                for stored, is_new, first in self.alerts.upsert_many(built)
            ]
            fresh = [r for r in raised if r.is_new]
            if store is not None and fresh:
                store.append([alert_event(r.rule, r.alert) for r in fresh])
            for r in fresh:
                r.alert.event_id = alert_event_id(r.alert)
                self.alerts.set_event_id(r.alert.id, r.alert.event_id)
            self._prune_idle()
            self._save()
            if high_water is not None:
                self.high_water = high_water
                self.state.set_meta("high_water", str(high_water))
            self.state.set_meta("watermark", str(self.watermark))
            self.state.commit()
        except BaseException:
            self.state.rollback()
            self._load()  # memory ran ahead of what was committed
            raise
        stats.events += len(events)
        stats.batches += 1
        stats.high_water = self.high_water
        for r in raised:
            if r.is_new:
                stats.alerts_new += 1
            else:
                stats.alerts_updated += 1
            for listener in self._listeners:
                try:
                    listener(r.alert, r.is_new)
                except Exception:  # a broken notifier must not stop detection
                    log.exception("alert listener failed for %s", r.alert.id)

    # --- evaluation (no I/O) ---------------------------------------------------------------

    def evaluate(
        self, events: Iterable[Event], stats: RunStats | None = None
    ) -> list[tuple[Rule, dict[str, str], Firing]]:
        """Feed events (sorted here by time) through every rule; return the firings."""
        out: list[tuple[Rule, dict[str, str], Firing]] = []
        candidates = self._candidates
        watermark = self.watermark
        # a forged future timestamp must not age every window out: the clock caps it
        ceiling = self._clock() + _MAX_SKEW
        rule_clock = self._rule_clock
        for event in sorted(events, key=_event_time):
            capped = min(event.time, ceiling)
            watermark = max(watermark, capped)
            pair = (event.action, event.category)
            rules = candidates.get(pair)
            if rules is None:
                rules = candidates[pair] = self._rules_for(*pair)
            for rule in rules:
                if not rule.predicate(event):
                    continue
                if rule.allow and rule.allowed(event):
                    continue
                if rule.schedule is not None and not rule.schedule.fires(event.time):
                    continue
                if capped > rule_clock.get(rule.id, 0):
                    rule_clock[rule.id] = capped
                key = rule.key_of(event)
                firing = self._apply(rule, key, event, stats)
                if firing is not None:
                    out.append((rule, key, firing))
            self.watermark = watermark
        return out

    def _rules_for(self, action: str, category: str) -> tuple[Rule, ...]:
        """The rules that can match events of this action and category (cached per pair).

        A rule whose query pins actions or categories is only tried on those; alert events
        only reach rules that ask for them (``on_alerts``), so the engine never feeds on its
        own output by accident.
        """
        found: list[Rule] = []
        for rule in self.rules:
            if category == "alert" and not rule.on_alerts:
                continue
            pins = rule.pins
            if pins is None or ("action", action) in pins or ("category", category) in pins:
                found.append(rule)
        return tuple(found)

    def _apply(
        self, rule: Rule, key: dict[str, str], event: Event, stats: RunStats | None
    ) -> Firing | None:
        kind = rule.kind
        if kind == "instant":
            return Firing(
                1,
                clauses.evidence_of([clauses.entry(event)]),
                {"summary": clauses.summarize(event)},
                event.time,
            )
        ktext = key_text(key)
        states = self._states.setdefault(rule.id, {})
        st = states.get(ktext)
        if st is None:
            st = states[ktext] = {}
        self._dirty.add((rule.id, ktext))
        newest = st.get("nt")
        if kind in _WINDOWED:
            if newest is not None and event.time < newest - self.lateness:
                if stats is not None:
                    stats.too_late += 1
                return None
            st["nt"] = event.time if newest is None else max(newest, event.time)
            firing = _WINDOW_FUNCS[kind](rule, st, event)
            horizon = st["nt"] - (rule.window or 0) - self.lateness
            for name in ("e", "a", "b"):
                if name in st:
                    clauses.prune_window(st[name], horizon)
            return firing
        st["nt"] = event.time if newest is None else max(newest, event.time)
        if kind == "first_seen":
            return clauses.first_seen(rule, st, event, self._learning_since(rule, event.time))
        if kind == "dormant":
            return clauses.dormant(rule, st, event)
        if kind == "baseline":
            return clauses.baseline(rule, st, event)
        if kind == "travel":
            return clauses.travel(rule, st, event, self.geo)
        clauses.silence_seen(st, event)
        return None

    def _learning_since(self, rule: Rule, t: int) -> int:
        """When the rule started learning: the time of the first event it saw."""
        own = self._states.setdefault(rule.id, {}).setdefault(RULE_KEY, {})
        since = own.get("since")
        if since is None or t < since:
            own["since"] = since = t
            self._dirty.add((rule.id, RULE_KEY))
        return int(since)

    def check_silence(self, wall: int | None = None) -> list[tuple[Rule, dict[str, str], Firing]]:
        """Silence rules: every key quiet for longer than its limit fires once.

        "Now" is the newest event the rule itself matched (the other hosts' heartbeats), or
        the wall clock when the server ticks: never the time of some unrelated event.
        """
        out: list[tuple[Rule, dict[str, str], Firing]] = []
        for rule in self._silence:
            states = self._states.get(rule.id, {})
            clock = max(self._rule_clock.get(rule.id, 0), wall or 0)
            for ktext, st in states.items():
                if ktext == RULE_KEY or ktext.startswith(GROUP_PREFIX):
                    continue
                firing = clauses.silence_check(rule, st, clock)
                if firing is not None:
                    self._dirty.add((rule.id, ktext))
                    out.append((rule, _key_from_text(ktext), firing))
        return out

    def build_alert(self, rule: Rule, key: dict[str, str], firing: Firing) -> Alert:
        """The alert for a firing, in the key's current group window (state updated)."""
        ktext = key_text(key)
        states = self._states.setdefault(rule.id, {})
        gkey = GROUP_PREFIX + ktext
        group = states.get(gkey)
        t = firing.time
        if group is None or t > group["ws"] + rule.group_window or t < group["ws"] - self.lateness:
            group = states[gkey] = {"ws": t, "last": t}
        else:
            group["last"] = max(group["last"], t)
        self._dirty.add((rule.id, gkey))
        ws = int(group["ws"])
        times = [e.time for e in firing.evidence] or [t]
        now = self._clock()
        return Alert(
            id=uuid7_for(ws // 1000, f"alert:{rule.id}:{ktext}:{ws}".encode()),
            rule_id=rule.id,
            title=rule.title,
            severity=rule.severity,
            tags=list(rule.tags),
            key=dict(key),
            first_time=min(times),
            last_time=max(times),
            count=firing.count,
            evidence=firing.evidence,
            reason=reason_text(rule, key, firing),
            status="open",
            created_at=now,
            updated_at=now,
            history=[],
            window_start=ws,
            description=rule.description,
        )

    # --- persistence -----------------------------------------------------------------------

    def _prune_idle(self) -> None:
        """Forget windowed keys (and alert groups) idle for long past any window they fill."""
        for rule in self.rules:
            states = self._states.get(rule.id)
            if not states:
                continue
            keep = max((rule.window or 0) + self.lateness, rule.group_window, _IDLE_MIN)
            horizon = self._rule_clock.get(rule.id, 0) - keep
            windowed = rule.kind in _WINDOWED
            for ktext in list(states):
                st = states[ktext]
                if ktext.startswith(GROUP_PREFIX):
                    stale = st["last"] < horizon
                else:
                    stale = windowed and st.get("nt", horizon) < horizon
                if stale:
                    del states[ktext]
                    self._dirty.add((rule.id, ktext))

    def _save(self) -> None:
        for rule_id, clock in self._rule_clock.items():
            own = self._states.setdefault(rule_id, {}).setdefault(RULE_KEY, {})
            if own.get("clock") != clock:
                own["clock"] = clock
                self._dirty.add((rule_id, RULE_KEY))
        self.state.save_many(
            (rule_id, ktext, self._states.get(rule_id, {}).get(ktext))
            for rule_id, ktext in self._dirty
        )
        self._dirty.clear()

    def close(self) -> None:
        self._db.close()


_WINDOW_FUNCS: Final[dict[str, Callable[[Rule, State, Event], Firing | None]]] = {
    "threshold": clauses.threshold,
    "distinct": clauses.distinct,
    "sequence": clauses.sequence,
}


def _event_time(event: Event) -> int:
    return event.time


def _key_from_text(ktext: str) -> dict[str, str]:
    import orjson  # noqa: PLC0415

    value = orjson.loads(ktext)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def describe_key(key: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items()) or "all events"


def reason_text(rule: Rule, key: dict[str, str], firing: Firing) -> str:
    """Why the rule fired: the rule's ``reason`` template, or the default for its kind."""
    template = rule.reason or DEFAULT_REASONS[rule.kind]
    facts: dict[str, str] = {"key": describe_key(key), "title": rule.title, **firing.facts}
    facts.setdefault("summary", firing.evidence[-1].summary if firing.evidence else "")
    return _PLACEHOLDER.sub(lambda m: facts.get(m[1], m[0]), template)


def alert_event_id(alert: Alert) -> str:
    return uuid7_for(alert.window_start // 1000, f"alert-event:{alert.id}".encode())


def alert_event(rule: Rule, alert: Alert) -> Event:
    """The ``alert.raised`` event that records an alert in the ledger."""
    details: dict[str, DetailValue] = {
        "rule_id": rule.id,
        "alert_id": alert.id,
        "title": rule.title,
        "count": alert.count,
        "reason": alert.reason,
        "tags": list(rule.tags),
        "evidence": [e.event_id for e in alert.evidence],
        "window_start": alert.window_start,
    }
    for name, value in alert.key.items():
        details[f"key.{name}"] = value
    # The actor is the engine, not the user the alert is about: a search for what bob did
    # must not return alerts about bob (those are found with details.key.actor.name:bob).
    return Event(
        time=alert.last_time,
        category="alert",
        action="alert.raised",
        outcome="success",
        severity=rule.severity,
        actor_name="keeptrail-detect",
        actor_type="system",
        target_system="keeptrail-detect",
        target_resource=rule.id,
        target_resource_type="rule",
        details=details,
        collector_source="detect",
        collector_parser="detect",
        raw=f"alert {rule.id}: {rule.title}: {alert.reason}"[:2000],
        id=alert_event_id(alert),
        ingested_at=alert.created_at,
    )
