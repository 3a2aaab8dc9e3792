"""Search, read, stats, checkpoint, proof and export over HTTP against a real server."""

from __future__ import annotations

import csv
import io

import orjson
from tests.server.conftest import Running, docs

from keeptrail.ledger.bundle import check_bundle
from keeptrail.ledger.note import parse_verifier_key
from keeptrail.store import open_store


def _ingest(running: Running, batch: list[dict[str, object]]) -> None:
    with running.client("ingest") as c:
        r = c.post("/api/v1/events", json=batch)
    assert r.status_code == 200, r.text


def test_cursor_pagination_visits_every_event_once(running: Running) -> None:
    """Walking next_cursor pages (with events sharing timestamps) yields each event exactly once."""
    batch = docs(237)  # all share one timestamp: the cursor must break ties by insertion order
    _ingest(running, batch)
    seen: list[str] = []
    cursor = None
    with running.client("viewer") as c:
        while True:
            params = {
                "q": "action:ssh.login",
                "limit": 25,
                **({"cursor": cursor} if cursor else {}),
            }
            page = c.get("/api/v1/events", params=params).json()
            seen.extend(e["id"] for e in page["events"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert len(seen) == len(set(seen)) == 237
    assert set(seen) == {d["id"] for d in batch}


def test_invalid_query_is_400_with_position(running: Running) -> None:
    """A query that does not parse answers 400 with the message and the character position."""
    with running.client("viewer") as c:
        r = c.get("/api/v1/events", params={"q": "user:alice AND (outcome:failure"})
        bad_time = c.get("/api/v1/events", params={"since": "yesterday-ish"})
        bad_cursor = c.get("/api/v1/events", params={"cursor": "!!!"})
        big = c.get("/api/v1/events", params={"limit": 100_000})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid_query"
    assert isinstance(body["position"], int)
    assert body["position"] > 0
    assert body["query"] == "user:alice AND (outcome:failure"
    assert (bad_time.status_code, bad_time.json()["error"]) == (400, "invalid_time")
    assert (bad_cursor.status_code, bad_cursor.json()["error"]) == (400, "invalid_cursor")
    assert big.status_code == 400


def test_stats_and_checkpoint(running: Running) -> None:
    """Stats count the ingested events; the checkpoint covers them and verifies with its key."""
    _ingest(running, docs(5, source_ip="198.51.100.7"))
    with running.client("viewer") as c:
        stats = c.get("/api/v1/stats").json()
        cp = c.get("/api/v1/checkpoint").json()
        note = c.get("/api/v1/checkpoint", headers={"Accept": "text/plain"})
    assert stats["by_category"]["authentication"] == 5
    assert stats["top_sources"] == {"198.51.100.7": 5}
    assert cp["size"] >= 5
    assert note.text == cp["note"]
    assert parse_verifier_key(cp["verifier_key"]).name in cp["note"]


def test_proof_bundle_verifies_offline(running: Running) -> None:
    """An inclusion proof fetched over HTTP checks out with only the store's verifier key."""
    batch = docs(3)
    _ingest(running, batch)
    with running.client("auditor") as c:
        bundle = c.get(f"/api/v1/events/{batch[1]['id']}/proof")
        missing = c.get("/api/v1/events/0190b7c2-5a1e-7000-8000-1234567890ab/proof")
    assert bundle.status_code == 200
    assert missing.status_code == 404
    store = open_store(running.settings.directory, readonly=True)
    try:
        verifier = store.verifier
    finally:
        store.close()
    assert verifier is not None
    verdict = check_bundle(bundle.content, verifier)
    assert verdict


def test_export_limit_beyond_64_bits_is_a_400(running: Running) -> None:
    """An absurd export limit is refused as a bad request, not a server error."""
    with running.client("auditor") as c:
        r = c.get("/api/v1/export", params={"limit": "9" * 30})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


def test_export_jsonl_and_csv(running: Running) -> None:
    """Exports stream every match (past one page) as JSON lines, and CSV with formulas defused."""
    batch = docs(1203)
    batch[0]["raw"] = "=cmd|' /C calc'!A0"
    _ingest(running, batch)
    with running.client("auditor") as c:
        lines = c.get("/api/v1/export", params={"q": "action:ssh.login"}).content.splitlines()
        table = c.get("/api/v1/export", params={"q": "action:ssh.login", "format": "csv"}).text
        capped = c.get("/api/v1/export", params={"limit": 7}).content.splitlines()
    assert {orjson.loads(line)["id"] for line in lines} == {d["id"] for d in batch}
    rows = list(csv.DictReader(io.StringIO(table)))
    assert len(rows) == 1203
    assert "'=cmd|' /C calc'!A0" in {r["raw"] for r in rows}
    assert len(capped) == 7
