"""The shipped pack on a generated scenario: every labelled attack raises its rule's alert.

The scenario (bench/gen_scenarios.py) is 38 days of scripted background — people with office
hours, service accounts, cron, scanners, a database, Kubernetes, heartbeats — with one instance
of every attack mixed in. Its log files go through the real parsers, the real store and the
engine, exactly as ``keeptrail ingest`` runs them.
"""

from __future__ import annotations

from datetime import UTC

import pytest
from bench.gen_scenarios import generate, write

from keeptrail.detect.alerts import Alert, AlertStore
from keeptrail.detect.rules import load_rule_set
from keeptrail.detect.runtime import open_engine
from keeptrail.ingest import Ingestor
from keeptrail.store import open_store

PACK = {r.id for r in load_rule_set([])}
# Rules whose background has no activity of their kind: any alert beyond the labels is a bug.
QUIET = PACK - {
    "off-hours-login",  # the on-call admin logs in at night
    "ssh-login-new-source",  # people work from home for the first time after the learning week
    "ssh-distributed-attempts",  # scanners try root from many addresses
    "destructive-ddl",  # the ETL job drops its temporary table now and then
    "sudo-failure",
}


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Alert], list[dict]]:
    work = tmp_path_factory.mktemp("pack")
    scenario = generate(seed=11, days=38, scale=0.05, instances=1)
    paths = write(scenario, work / "logs")
    data = work / "data"
    data.mkdir()
    (data / "keeptrail.toml").write_text(f'[detect]\ngeoip_db = "{work / "logs/geoip.mmdb"}"\n')
    store = open_store(data)
    engine = open_engine(data)
    assert engine is not None
    ingestor = Ingestor(
        store, tz=UTC, on_commit=lambda batch, _n: engine.catch_up(store, recent=batch)
    )
    for path in paths:
        ingestor.ingest_file(path)
    engine.catch_up(store)
    engine.close()
    store.close()
    alerts = AlertStore(data / "detect.db").list(limit=100_000)
    labels = [{"rule": lab.rule, "key": lab.key} for lab in scenario.labels]
    return alerts, labels


def test_every_pack_rule_has_a_labelled_attack(outcome) -> None:
    """The scenario exercises the whole pack (impossible travel included, via its GeoIP)."""
    _, labels = outcome
    assert {label["rule"] for label in labels} == PACK


@pytest.mark.parametrize("rule_id", sorted(PACK))
def test_rule_raises_its_labelled_attacks(outcome, rule_id: str) -> None:
    """Recall 1: each (rule, key) label has an alert, with evidence and a reason."""
    alerts, labels = outcome
    mine = [a for a in alerts if a.rule_id == rule_id]
    for label in (lab for lab in labels if lab["rule"] == rule_id):
        hits = [a for a in mine if a.key == label["key"]]
        assert hits, f"{rule_id} missed {label['key']}"
        assert all(a.evidence and a.reason and a.status == "open" for a in hits)
    if rule_id in QUIET:
        wanted = [lab["key"] for lab in labels if lab["rule"] == rule_id]
        extra = [(a.key, a.reason) for a in mine if a.key not in wanted]
        assert not extra, f"{rule_id} false positives: {extra}"
