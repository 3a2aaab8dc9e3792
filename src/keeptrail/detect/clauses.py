"""The stateful clauses: pure functions from (rule, a key's state, an event) to a firing.

Each key of each rule has a small JSON-able ``dict`` of state (the engine loads it from and
saves it to ``detect.db``); the functions here read and update it and say whether the rule
fires. They never do I/O and never read the clock, so the same events always give the same
alerts, in a live engine, after a restart, and in ``keeptrail rules test``.

Windowed state keeps entries sorted by *event* time and is searched with ``bisect``, so an
event arriving late (within the lateness tolerance) is counted in the window it belongs to,
not in the one it arrived in.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from keeptrail.detect.alerts import Evidence
from keeptrail.detect.rules import Rule
from keeptrail.event import Event

State = dict[str, Any]
Entry = list[Any]  # [time, event id, summary] (+ value for distinct)
GeoLookup = Callable[[str], tuple[float, float, str] | None]  # ip -> (lat, lon, place)

MAX_ENTRIES: Final = 5000
"""Per key and rule: a flood beyond this many events in one window is counted from here."""
MAX_VALUES: Final = 2000
MAX_LATER_CHECKS: Final = 64
MAX_BUCKETS: Final = 24 * 35
"""Baseline buckets kept one by one (35 days of hours); older ones only count in the mean."""


@dataclass(slots=True)
class Firing:
    """A rule fired for a key: how many events, which ones, and the facts for the reason."""

    count: int
    evidence: list[Evidence]
    facts: dict[str, str]
    time: int


def summarize(event: Event) -> str:
    """One line describing an event, for evidence lists (attacker text is escaped later)."""
    parts = [event.action, event.outcome]
    if event.reason:
        parts.append(f"({event.reason})")
    if event.actor_name:
        parts.append(f"user={event.actor_name}")
    if event.actor_effective_user:
        parts.append(f"as={event.actor_effective_user}")
    if event.source_ip:
        parts.append(f"from={event.source_ip}")
    if event.target_host:
        parts.append(f"host={event.target_host}")
    if event.target_resource:
        parts.append(f"resource={event.target_resource}")
    member = event.details.get("member")
    if isinstance(member, str):
        parts.append(f"member={member}")
    command = event.details.get("command") or event.details.get("statement")
    if isinstance(command, str):
        parts.append(f"cmd={command[:80]}")
    return " ".join(parts)[:240]


def entry(event: Event, *extra: Any) -> Entry:
    return [event.time, event.id, summarize(event), *extra]


def evidence_of(entries: list[Entry], limit: int = 20) -> list[Evidence]:
    """The first and the last entries when there are too many (how it started, how it ends)."""
    if len(entries) > limit:
        half = limit // 2
        entries = entries[:half] + entries[-half:]
    return [Evidence(e[1], e[0], e[2]) for e in entries]


def duration_text(micros: int) -> str:
    seconds = micros // 1_000_000
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    if seconds >= 3_600:
        return f"{seconds / 3_600:.1f}h"
    return f"{seconds}s"


def _insort(entries: list[Entry], item: Entry) -> int:
    if not entries or entries[-1][0] <= item[0]:
        entries.append(item)
        return len(entries) - 1
    i = bisect.bisect_right(entries, item[0], key=lambda e: e[0])
    entries.insert(i, item)
    return i


def prune_window(entries: list[Entry], oldest: int) -> None:
    """Drop entries older than ``oldest`` and keep at most :data:`MAX_ENTRIES`."""
    cut = bisect.bisect_left(entries, oldest, key=lambda e: e[0])
    if len(entries) - cut > MAX_ENTRIES:
        cut = len(entries) - MAX_ENTRIES
    if cut:
        del entries[:cut]


def _window_ends(entries: list[Entry], t: int, window: int) -> list[int]:
    """Indexes of entries whose window ``[time - window, time]`` contains ``t``.

    In order, that is only the newest entry; a late event also completes windows that end at
    events which arrived before it.
    """
    hi = bisect.bisect_right(entries, t + window, key=lambda e: e[0])
    lo = bisect.bisect_left(entries, t, key=lambda e: e[0])
    ends = list(range(lo, hi))
    if len(ends) > MAX_LATER_CHECKS:
        ends = ends[:MAX_LATER_CHECKS]
    return ends or [hi - 1]


def _continuing(st: State, t: int, window: int) -> bool:
    """The key already fired recently: report only the new event (the alert grows)."""
    last = st.get("lf")
    return last is not None and abs(t - last) <= window


def threshold(rule: Rule, st: State, event: Event) -> Firing | None:
    """N matching events for the key within the window."""
    window, needed = rule.window or 0, rule.threshold or 1
    entries: list[Entry] = st.setdefault("e", [])
    _insort(entries, entry(event))
    t = event.time
    if _continuing(st, t, window):
        st["lf"] = max(st["lf"], t)
        return Firing(1, evidence_of([entry(event)]), {"count": "1"}, t)
    for end in _window_ends(entries, t, window):
        end_t = entries[end][0]
        start = bisect.bisect_left(entries, end_t - window, key=lambda e: e[0])
        n = end + 1 - start
        if n >= needed:
            st["lf"] = end_t
            inside = entries[start : end + 1]
            facts = {"count": str(n), "threshold": str(needed), "window": duration_text(window)}
            return Firing(n, evidence_of(inside), facts, end_t)
    return None


def distinct(rule: Rule, st: State, event: Event) -> Firing | None:
    """N distinct values of a field for the key within the window."""
    assert rule.distinct_getter is not None
    value = rule.distinct_getter(event)
    if value is None:
        return None
    window, needed = rule.window or 0, rule.distinct_count or 1
    entries: list[Entry] = st.setdefault("e", [])
    _insort(entries, entry(event, value))
    t = event.time
    if _continuing(st, t, window):
        st["lf"] = max(st["lf"], t)
        return Firing(1, evidence_of([entry(event)]), {"count": "1", "values": value}, t)
    for end in _window_ends(entries, t, window):
        end_t = entries[end][0]
        start = bisect.bisect_left(entries, end_t - window, key=lambda e: e[0])
        inside = entries[start : end + 1]
        values = {e[3] for e in inside}
        if len(values) >= needed:
            st["lf"] = end_t
            shown = sorted(values)[:10]
            more = f" (+{len(values) - 10} more)" if len(values) > 10 else ""
            facts = {
                "count": str(len(inside)),
                "distinct": str(len(values)),
                "threshold": str(needed),
                "field": rule.distinct_field or "",
                "values": ", ".join(shown) + more,
                "window": duration_text(window),
            }
            return Firing(len(inside), evidence_of(_one_per_value(inside)), facts, end_t)
    return None


def _one_per_value(entries: list[Entry]) -> list[Entry]:
    seen: set[str] = set()
    out: list[Entry] = []
    for e in entries:
        if e[3] not in seen:
            seen.add(e[3])
            out.append(e)
    return out


def sequence(rule: Rule, st: State, event: Event) -> Firing | None:
    """``first`` (N times) then ``then``, for the same key, within the window."""
    assert rule.first is not None
    assert rule.then is not None
    window = rule.window or 0
    firsts: list[Entry] = st.setdefault("a", [])
    thens: list[Entry] = st.setdefault("b", [])
    t = event.time
    candidates: list[Entry] = []
    if rule.first.predicate(event):
        _insort(firsts, entry(event))
        lo = bisect.bisect_left(thens, t, key=lambda e: e[0])
        hi = bisect.bisect_right(thens, t + window, key=lambda e: e[0])
        candidates.extend(thens[lo:hi][:MAX_LATER_CHECKS])  # a late first step
    if rule.then.predicate(event):
        item = entry(event)
        _insort(thens, item)
        candidates.insert(0, item)
    for then in candidates:
        then_t = then[0]
        lo = bisect.bisect_left(firsts, then_t - window, key=lambda e: e[0])
        hi = bisect.bisect_left(firsts, then_t, key=lambda e: e[0])
        if hi - lo >= rule.first.threshold:
            before = firsts[lo:hi]
            del firsts[:hi]  # these failures are spent: the next success needs new ones
            facts = {
                "count": str(len(before)),
                "threshold": str(rule.first.threshold),
                "window": duration_text(window),
                "then": then[2],
            }
            return Firing(len(before) + 1, evidence_of([*before, then]), facts, then_t)
    return None


def first_seen(rule: Rule, st: State, event: Event, learning_since: int) -> Firing | None:
    """A value of the field never seen for this key, once the learning period is over.

    A key's very first value does not fire (a new account's first login is not a *new*
    source for it; account creation has its own rule).
    """
    assert rule.seen_getter is not None
    value = rule.seen_getter(event)
    if value is None:
        return None
    seen: dict[str, int] = st.setdefault("v", {})
    t = event.time
    known = seen.get(value)
    if known is not None:
        seen[value] = max(known, t)
        return None
    seen[value] = t
    if len(seen) > MAX_VALUES:  # forget the value seen longest ago
        del seen[min(seen, key=seen.__getitem__)]
    others = sorted(v for v in seen if v != value)
    if t < learning_since + rule.learning or not others:
        return None  # still learning, or a key seen for the first time: nothing to compare
    facts = {
        "field": rule.seen_field or "",
        "value": value,
        "known": ", ".join(others[:10]) + (" ..." if len(others) > 10 else ""),
        "known_count": str(len(others)),
    }
    return Firing(1, evidence_of([entry(event)]), facts, t)


def dormant(rule: Rule, st: State, event: Event) -> Firing | None:
    """The key acts again after more than ``dormant_after`` without any activity."""
    after = rule.dormant_after or 0
    t = event.time
    last = st.get("l")
    st["l"] = t if last is None else max(last, t)
    if last is None or t - last < after:
        return None
    facts = {"idle": duration_text(t - last), "after": duration_text(after), "last": str(last)}
    return Firing(1, evidence_of([entry(event)]), facts, t)


def baseline(rule: Rule, st: State, event: Event) -> Firing | None:
    """This bucket's count far above the key's mean per active bucket, after learning.

    Counts are kept per bucket (not only the current one), so a log file read after a newer
    one still lands its events in the right hours; old buckets fold into a running total.
    """
    size = rule.baseline_bucket or 3_600_000_000
    t = event.time
    bucket = str(t - t % size)
    st["first"] = min(st.get("first", t), t)
    counts: dict[str, int] = st.setdefault("c", {})
    n = counts[bucket] = counts.get(bucket, 0) + 1
    st["tot"] = st.get("tot", 0) + 1
    if len(counts) > MAX_BUCKETS:  # fold the oldest bucket into the history totals
        oldest = min(counts, key=int)
        st["old_sum"] = st.get("old_sum", 0) + counts.pop(oldest)
        st["old_k"] = st.get("old_k", 0) + 1
        st["tot"] = sum(counts.values())
        fired = st.get("fired", [])
        st["fired"] = [b for b in fired if b in counts]
    others = st.get("old_k", 0) + len(counts) - 1
    if others < 3 or t - st["first"] < rule.learning or bucket in st.get("fired", []):
        return None
    mean = (st.get("old_sum", 0) + st["tot"] - n) / others
    limit = max(rule.baseline_min, math.ceil(rule.baseline_factor * mean))
    if n < limit:
        return None
    st.setdefault("fired", []).append(bucket)
    facts = {
        "count": str(n),
        "mean": f"{mean:.1f}",
        "factor": f"{n / mean:.1f}" if mean else "inf",
        "bucket": duration_text(size),
        "buckets": str(others),
    }
    return Firing(n, evidence_of([entry(event)]), facts, t)


def travel(rule: Rule, st: State, event: Event, geo: GeoLookup | None) -> Firing | None:
    """Two logins of one key whose places are too far apart for the time between them."""
    if geo is None or not event.source_ip:
        return None
    here = geo(event.source_ip)
    if here is None:
        return None
    lat, lon, place = here
    t = event.time
    prev = st.get("p")
    if prev is None or t >= prev[0]:
        st["p"] = [t, lat, lon, event.source_ip, place, event.id, summarize(event)]
    if prev is None or prev[3] == event.source_ip:
        return None
    km = haversine_km(prev[1], prev[2], lat, lon)
    hours = max(abs(t - prev[0]) / 3_600_000_000, 1 / 60)
    speed = km / hours
    if km < rule.travel_min_km or speed <= (rule.travel_speed_kmh or 0):
        return None
    facts = {
        "distance_km": f"{km:.0f}",
        "speed_kmh": f"{speed:.0f}",
        "from": f"{prev[3]} ({prev[4]})",
        "to": f"{event.source_ip} ({place})",
        "minutes": f"{abs(t - prev[0]) / 60_000_000:.0f}",
    }
    evidence = [Evidence(prev[5], prev[0], prev[6]), Evidence(event.id, t, summarize(event))]
    evidence.sort(key=lambda e: e.time)
    return Firing(2, evidence, facts, t)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def silence_seen(st: State, event: Event) -> None:
    """A key of a silence rule sent something: remember when, and that it is not silent."""
    last = st.get("l")
    if last is None or event.time >= last[0]:
        st["l"] = entry(event)
    st["f"] = False


def silence_check(rule: Rule, st: State, clock: int) -> Firing | None:
    """Fire once when the key has sent nothing for longer than ``silence_after``."""
    last = st.get("l")
    after = rule.silence_after or 0
    if last is None or st.get("f") or clock - last[0] <= after:
        return None
    st["f"] = True
    facts = {"idle": duration_text(clock - last[0]), "after": duration_text(after)}
    return Firing(1, evidence_of([last]), facts, clock)
