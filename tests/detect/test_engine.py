"""The streaming engine over a real SQLite store: clauses, event-time order, restarts, alerts."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.gen_scenarios import build_mmdb

from keeptrail.detect.alerts import Alert
from keeptrail.detect.engine import Engine
from keeptrail.detect.geoip import GeoIP
from keeptrail.detect.rules import Rule, load_rules_text
from keeptrail.event import Event, uuid7
from keeptrail.store.sqlite import SQLiteStore
from tests.factories import make_event

T0 = 1_790_000_000_000_000  # 2026-09-22T14:13:20Z, a Tuesday
MIN = 60_000_000

BRUTE = """
id: brute
title: Brute force
severity: high
match: action:ssh.login outcome:failure
group_by: [source.ip]
window: 10m
threshold: 5
"""


def rules(text: str) -> list[Rule]:
    return load_rules_text(text, source="test.yaml")


def fail(minute: float, ip: str = "203.0.113.9", user: str = "root", **kw: object) -> Event:
    return make_event(time=T0 + int(minute * MIN), source_ip=ip, actor_name=user, id=uuid7(), **kw)


def ok(minute: float, ip: str = "203.0.113.9", user: str = "root", **kw: object) -> Event:
    return fail(minute, ip, user, outcome="success", reason=None, **kw)


@pytest.fixture
def engine_for(tmp_path: Path):
    opened: list[Engine] = []

    def make(text: str, **kw: object) -> Engine:
        engine = Engine.open(tmp_path / "detect.db", rules(text), **kw)  # type: ignore[arg-type]
        opened.append(engine)
        return engine

    yield make
    for e in opened:
        e.close()


def run(engine: Engine, store: SQLiteStore, events: list[Event]) -> list[tuple[Alert, bool]]:
    seen: list[tuple[Alert, bool]] = []
    engine.add_listener(lambda a, new: seen.append((a, new)))
    store.append(events)
    engine.catch_up(store)
    return seen


def test_threshold_fires_once_then_grows(store: SQLiteStore, engine_for) -> None:
    """The 5th failure in 10 minutes raises one alert; later ones update it. Firings of one
    batch reach listeners once, merged (a storm is one notification, not one per event)."""
    engine = engine_for(BRUTE)
    seen = run(engine, store, [fail(m) for m in range(8)])
    assert [(new, a.count) for a, new in seen] == [(True, 8)]
    store.append([fail(8)])
    engine.catch_up(store)
    assert [(new, a.count) for a, new in seen] == [(True, 8), (False, 9)]
    (alert,) = engine.alerts.list()
    assert alert.count == 9
    assert alert.key == {"source.ip": "203.0.113.9"}
    assert alert.reason == "5 matching events within 10m for source.ip=203.0.113.9 (threshold 5)"
    assert len(alert.evidence) == 9


def test_below_threshold_or_spread_out_does_not_fire(store: SQLiteStore, engine_for) -> None:
    """Four per window, or five spread over an hour, or five sources: nothing."""
    engine = engine_for(BRUTE)
    events = [fail(m) for m in range(4)]
    events += [fail(30 + 12 * k, ip="198.51.100.1") for k in range(5)]
    events += [fail(100, ip=f"198.51.100.{k + 10}") for k in range(5)]
    assert run(engine, store, events) == []


def test_a_late_event_counts_in_its_own_window(store: SQLiteStore, engine_for) -> None:
    """Four failures, a newer one 20 minutes on, then a late one back in the first window."""
    engine = engine_for(BRUTE, lateness=30 * MIN)
    assert run(engine, store, [*[fail(m) for m in range(4)], fail(20)]) == []
    store.append([fail(5)])  # arrives late, belongs with the first four
    engine.catch_up(store)
    (alert,) = engine.alerts.list()
    assert [e.time for e in alert.evidence] == [T0 + m * MIN for m in (0, 1, 2, 3, 5)]


def test_too_late_events_are_not_miscounted(store: SQLiteStore, engine_for) -> None:
    """Beyond the lateness tolerance a windowed rule ignores the event and says so."""
    engine = engine_for(BRUTE, lateness=2 * MIN)
    store.append([*[fail(m) for m in range(4)], fail(20)])
    engine.catch_up(store)
    store.append([fail(5)])
    stats = engine.catch_up(store)
    assert stats.too_late == 1
    assert engine.alerts.count() == 0


def test_order_within_a_batch_does_not_matter(store: SQLiteStore, engine_for) -> None:
    """A batch is evaluated in event-time order."""
    engine = engine_for(BRUTE)
    run(engine, store, [fail(m) for m in (4, 0, 3, 1, 2)])
    (alert,) = engine.alerts.list()
    assert alert.first_time == T0
    assert alert.count == 5


def test_distinct_counts_values_per_key(store: SQLiteStore, engine_for) -> None:
    """Password spraying: six accounts from one source within the window."""
    engine = engine_for(BRUTE.replace("threshold: 5", "distinct: {field: user, count: 6}"))
    run(engine, store, [fail(k, user=f"user{k % 7}") for k in range(5)] + [fail(6, user="zed")])
    (alert,) = engine.alerts.list()
    assert "6 distinct actor.name" in alert.reason
    assert "zed" in alert.reason


SUCCESS_AFTER = """
id: success-after
title: Success after failures
severity: critical
match: action:ssh.login
group_by: [source.ip]
window: 30m
sequence:
  first: {match: outcome:failure, threshold: 3}
  then: {match: outcome:success}
"""


def test_sequence_needs_the_failures_before_the_success(store: SQLiteStore, engine_for) -> None:
    """Failures then success fires; success then failures does not; late failures count."""
    engine = engine_for(SUCCESS_AFTER)
    run(engine, store, [ok(0, ip="198.51.100.1"), *[fail(m, ip="198.51.100.1") for m in (1, 2, 3)]])
    assert engine.alerts.count() == 0
    store.append([fail(10), fail(11), ok(15)])
    engine.catch_up(store)
    assert engine.alerts.count() == 0
    store.append([fail(12)])  # a late failure completes the sequence before the success
    engine.catch_up(store)
    (alert,) = engine.alerts.list()
    assert alert.count == 4
    assert "3 matching events from" not in alert.reason
    assert alert.evidence[-1].summary.startswith("ssh.login success")


def test_first_seen_learns_then_fires(store: SQLiteStore, engine_for) -> None:
    """Sources seen while learning are known; a new one afterwards fires once."""
    engine = engine_for(
        "id: new-src\ntitle: New source\nseverity: medium\n"
        "match: action:ssh.login outcome:success\n"
        "group_by: [user]\nfirst_seen: {field: source.ip, learning: 1d}\n"
    )
    day = 24 * 60
    events = [ok(0, ip="10.0.0.1", user="alice"), ok(60, ip="10.0.0.2", user="alice")]
    events += [
        ok(2 * day, ip="10.0.0.1", user="alice"),
        ok(2 * day + 5, ip="10.9.9.9", user="alice"),
    ]
    events += [ok(2 * day + 6, ip="10.9.9.9", user="alice")]
    run(engine, store, events)
    (alert,) = engine.alerts.list()
    assert alert.key == {"actor.name": "alice"}
    assert "10.9.9.9 never seen before" in alert.reason
    assert "2 known: 10.0.0.1, 10.0.0.2" in alert.reason


def test_dormant_account(store: SQLiteStore, engine_for) -> None:
    """Active, silent for longer than the limit, active again: fires."""
    engine = engine_for(
        "id: dormant\ntitle: Dormant\nseverity: high\nmatch: outcome:success\ngroup_by: [user]\n"
        "dormant: {after: 30d}\n"
    )
    day = 24 * 60
    run(engine, store, [ok(0, user="old"), ok(day, user="old"), ok(40 * day, user="old")])
    (alert,) = engine.alerts.list()
    assert "after 39d without activity" in alert.reason


def test_baseline_fires_far_above_the_mean(store: SQLiteStore, engine_for) -> None:
    """Ten events an hour for days, then 80 in one hour: over 5x and over min_count."""
    engine = engine_for(
        "id: base\ntitle: Baseline\nseverity: medium\nmatch: user:*\ngroup_by: [user]\n"
        "baseline: {bucket: 1h, factor: 5, min_count: 60, learning: 1d}\n"
    )
    events = [ok(h * 60 + k, user="judy") for h in range(48) for k in range(10)]
    events += [ok(48 * 60 + k * 0.5, user="judy") for k in range(80)]
    run(engine, store, events)
    (alert,) = engine.alerts.list()
    assert alert.count == 60
    assert "mean of 10.0" in alert.reason


def test_impossible_travel_with_a_maxmind_database(
    store: SQLiteStore, engine_for, tmp_path: Path
) -> None:
    """Paris then Sydney 30 minutes later fires; Paris then Lyon does not."""
    db = build_mmdb(
        {
            "81.0.0.1": (48.85, 2.35, "Paris", "FR"),
            "1.120.0.1": (-33.87, 151.21, "Sydney", "AU"),
            "90.0.0.1": (45.76, 4.84, "Lyon", "FR"),
        },
        tmp_path / "geo.mmdb",
    )
    geo = GeoIP(db)
    engine = engine_for(
        "id: travel\ntitle: Travel\nseverity: high\nmatch: outcome:success\ngroup_by: [user]\n"
        "travel: {max_speed_kmh: 900}\n",
        geo=geo.lookup,
    )
    run(
        engine,
        store,
        [
            ok(0, "81.0.0.1", "bob"),
            ok(90, "90.0.0.1", "bob"),
            ok(0, "81.0.0.1", "eve"),
            ok(30, "1.120.0.1", "eve"),
        ],
    )
    (alert,) = engine.alerts.list()
    assert alert.key == {"actor.name": "eve"}
    assert "Paris" in alert.reason
    assert "Sydney" in alert.reason
    assert "km/h" in alert.reason
    geo.close()


def test_silence_fires_on_the_event_clock_and_the_wall_clock(
    store: SQLiteStore, engine_for
) -> None:
    """A host whose heartbeats stop while others go on is reported once; tick() also checks."""
    engine = engine_for(
        "id: silent\ntitle: Silent\nseverity: high\nmatch: action:agent.heartbeat\n"
        "group_by: [host]\nsilence: {after: 5m}\n"
    )

    def beat(minute: int, host: str) -> Event:
        return make_event(
            time=T0 + minute * MIN,
            action="agent.heartbeat",
            category="audit",
            outcome="success",
            target_host=host,
            id=uuid7(),
        )

    events = [beat(m, "a") for m in range(20)] + [beat(m, "b") for m in range(5)]
    run(engine, store, events)
    (alert,) = engine.alerts.list()
    assert alert.key == {"target.host": "b"}
    assert "nothing from target.host=b" in alert.reason
    engine.tick(store, now=T0 + 60 * MIN)
    assert {tuple(a.key.values()) for a in engine.alerts.list()} == {("a",), ("b",)}


def test_schedule_and_allow_list(store: SQLiteStore, engine_for) -> None:
    """Off-hours fires outside business hours only, never for allow-listed actors."""
    engine = engine_for(
        "id: off-hours\ntitle: Off hours\nseverity: low\nmatch: outcome:success\ngroup_by: [user]\n"
        "schedule: {hours: '07:00-20:00', days: mon-fri, timezone: UTC}\n"
        "allow: [{field: user, values: [deploy]}]\n"
    )
    night = 12 * 60  # T0 is 14:13 UTC; +12h is 02:13 on Wednesday
    run(engine, store, [ok(0, user="alice"), ok(night, user="alice"), ok(night, user="deploy")])
    (alert,) = engine.alerts.list()
    assert alert.key == {"actor.name": "alice"}
    assert alert.first_time == T0 + night * MIN


def test_alerts_enter_the_ledger_and_are_not_input(store: SQLiteStore, engine_for) -> None:
    """Each new alert is an alert.raised event in the store; rules do not see them."""
    engine = engine_for(
        BRUTE + "---\nid: any-alert\ntitle: x\nseverity: low\nmatch: severity>=info\n"
    )
    run(engine, store, [fail(m) for m in range(5)])
    raised = store.search(None, limit=100).events
    alert_events = [e for e in raised if e.action == "alert.raised"]
    assert len(alert_events) == 2  # one per alert: brute, and any-alert on the failures
    alert_events = [e for e in alert_events if e.target_resource == "brute"]
    event = alert_events[0]
    assert (event.category, event.actor_name, event.target_resource) == (
        "alert",
        "keeptrail-detect",
        "brute",
    )
    assert event.details["key.source.ip"] == "203.0.113.9"
    assert event.source_ip is None
    (alert,) = [a for a in engine.alerts.list() if a.rule_id == "brute"]
    assert event.id == alert.event_id
    assert event.details["alert_id"] == alert.id
    assert {a.rule_id for a in engine.alerts.list()} == {"brute", "any-alert"}
    assert all(a.key == {} or a.rule_id == "brute" for a in engine.alerts.list())
    any_alert = next(a for a in engine.alerts.list() if a.rule_id == "any-alert")
    assert any_alert.count == 5  # the five failures, not the alert event


def test_a_rule_can_ask_for_alert_events(store: SQLiteStore, engine_for) -> None:
    """on_alerts: true lets a rule correlate alerts (two brute-force alerts per source)."""
    engine = engine_for(
        BRUTE + "---\nid: meta\ntitle: Alert seen\nseverity: critical\nmatch: action:alert.raised\n"
        "group_by: [source.ip]\non_alerts: true\n"
    )
    run(engine, store, [fail(m) for m in range(5)])
    assert {a.rule_id for a in engine.alerts.list()} == {"brute", "meta"}


def test_restart_neither_forgets_nor_repeats(
    store: SQLiteStore, engine_for, tmp_path: Path
) -> None:
    """Windows survive a restart; events already evaluated are not evaluated again."""
    first = engine_for(BRUTE)
    run(first, store, [fail(m) for m in range(3)])
    first.close()
    second = engine_for(BRUTE)
    assert second.catch_up(store).events == 0
    run(second, store, [fail(3), fail(4)])
    (alert,) = second.alerts.list()
    assert alert.count == 5


def test_a_crash_before_commit_replays_without_duplicates(store: SQLiteStore, engine_for) -> None:
    """Dying after the alert event was stored, before detect.db committed: one alert, one event."""
    engine = engine_for(BRUTE)
    store.append([fail(m) for m in range(5)])

    def boom() -> None:
        raise RuntimeError("power cut")

    engine.state.commit = boom  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        engine.catch_up(store)
    engine.close()
    again = engine_for(BRUTE)
    again.catch_up(store)
    assert again.alerts.count() == 1
    events = store.search(None, limit=100).events
    assert sum(e.action == "alert.raised" for e in events) == 1


def test_a_failing_listener_does_not_stop_detection(store: SQLiteStore, engine_for) -> None:
    """A notifier that raises is logged; the alert is stored anyway."""
    engine = engine_for(BRUTE)

    def broken(alert: Alert, new: bool) -> None:
        raise OSError("webhook down")

    engine.add_listener(broken)
    run(engine, store, [fail(m) for m in range(5)])
    assert engine.alerts.count() == 1


def test_a_forged_future_timestamp_does_not_silence_everyone(
    store: SQLiteStore, engine_for
) -> None:
    """An unrelated event dated 2100 neither fires silence rules nor ages windows out."""
    engine = engine_for(
        BRUTE + "---\nid: silent\ntitle: Silent\nseverity: high\nmatch: action:agent.heartbeat\n"
        "group_by: [host]\nsilence: {after: 5m}\n"
    )
    beats = [
        make_event(
            time=T0 + m * MIN,
            action="agent.heartbeat",
            category="audit",
            outcome="success",
            target_host="a",
            id=uuid7(),
        )
        for m in range(3)
    ]
    forged = make_event(
        time=4_102_444_800_000_000, action="ssh.login", outcome="success", id=uuid7()
    )
    run(engine, store, [*beats, *[fail(m) for m in range(3)], forged])
    store.append([fail(3), fail(4)])
    engine.catch_up(store)
    assert [a.rule_id for a in engine.alerts.list()] == ["brute"]


def test_the_batch_just_appended_is_used_only_when_it_is_exactly_the_new_leaves(
    store: SQLiteStore, engine_for
) -> None:
    """recent= skips reading back; a batch with a duplicate falls back to the store's view."""
    engine = engine_for(BRUTE)
    first = [fail(m) for m in range(3)]
    store.append(first)
    engine.catch_up(store, recent=first)
    assert engine.high_water == store.ledger_frontier().size - 1
    again = [first[0], fail(3), fail(4)]  # first[0] is a duplicate: only two leaves are new
    store.append(again)
    engine.catch_up(store, recent=again)
    (alert,) = engine.alerts.list()
    assert alert.count == 5


def test_a_rule_whose_logic_changed_starts_afresh(store: SQLiteStore, engine_for) -> None:
    """Changing a rule's clause under the same id drops its old state instead of misreading it."""
    first = engine_for(BRUTE)
    run(first, store, [fail(m) for m in range(4)])
    first.close()
    changed = engine_for(BRUTE.replace("threshold: 5", "distinct: {field: user, count: 2}"))
    run(changed, store, [fail(5, user="admin")])
    assert changed.alerts.count() == 0  # the four old failures are not reread as distinct values
    store.append([fail(6, user="oracle")])
    changed.catch_up(store)
    assert changed.alerts.count() == 1
