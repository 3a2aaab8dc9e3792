"""POST /api/v1/events against a real server: idempotency, encodings, limits, bad input."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import orjson
from tests.server.conftest import Running, docs, make_tokens, run_server, settings_for

from keeptrail.store import open_store

EVENTS = "/api/v1/events"


def _count(running: Running, action: str = "ssh.login") -> int:
    with running.client("viewer") as c:
        r = c.get(EVENTS, params={"q": f"action:{action}", "limit": 1000})
    assert r.status_code == 200, r.text
    return int(r.json()["count"])


def test_same_batch_twice_is_stored_once(running: Running) -> None:
    """A retried batch is acknowledged again but creates no duplicates."""
    batch = docs(50)
    with running.client("ingest") as c:
        first = c.post(EVENTS, json=batch)
        second = c.post(EVENTS, json=batch)
    assert first.status_code == 200
    assert first.json() == {"accepted": 50, "stored": 50, "duplicates": 0}
    assert second.json() == {"accepted": 50, "stored": 0, "duplicates": 50}
    assert _count(running) == 50


def test_duplicates_inside_one_batch_are_stored_once(running: Running) -> None:
    """An id repeated within a batch is stored once and counted as a duplicate."""
    batch = docs(3)
    with running.client("ingest") as c:
        r = c.post(EVENTS, json=[*batch, batch[0]])
    assert r.json() == {"accepted": 4, "stored": 3, "duplicates": 1}


def test_events_round_trip_exactly(running: Running) -> None:
    """What an agent sends is what a reader gets back (apart from the server's ingested_at)."""
    sent = docs(1)[0]
    with running.client("ingest") as c:
        assert c.post(EVENTS, json=[sent]).status_code == 200
    with running.client("viewer") as c:
        got = c.get(f"{EVENTS}/{sent['id']}").json()
    assert got.pop("ingested_at") != sent.pop("ingested_at")
    assert got == sent


def test_gzip_body(running: Running) -> None:
    """A gzip-compressed JSON array is accepted."""
    body = gzip.compress(orjson.dumps(docs(20)))
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with running.client("ingest") as c:
        r = c.post(EVENTS, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 20


def test_json_lines_body(running: Running) -> None:
    """JSON lines (with a blank line) are accepted, gzipped too."""
    lines = b"\n".join(orjson.dumps(d) for d in docs(10)) + b"\n\n"
    with running.client("ingest") as c:
        r = c.post(EVENTS, content=lines, headers={"Content-Type": "application/x-ndjson"})
        r2 = c.post(
            EVENTS,
            content=gzip.compress(b"\n".join(orjson.dumps(d) for d in docs(5))),
            headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
        )
    assert r.json()["stored"] == 10
    assert r2.json()["stored"] == 5


def test_events_without_id_get_one(running: Running) -> None:
    """An application may leave out the id; the server assigns a UUIDv7."""
    doc = docs(1)[0]
    del doc["id"]
    with running.client("ingest") as c:
        assert c.post(EVENTS, json=[doc]).json()["stored"] == 1
    with running.client("viewer") as c:
        (event,) = c.get(EVENTS, params={"q": "user:user0"}).json()["events"]
    assert event["id"][14] == "7"


def test_oversized_request_is_413(data_dir: Path) -> None:
    """A body over max_body_bytes is refused with 413, declared or streamed (chunked)."""
    tokens = make_tokens(data_dir)
    with run_server(settings_for(data_dir, max_body_bytes=10_000)) as (url, _):
        headers = {"Authorization": f"Bearer {tokens['ingest']}"}
        body = orjson.dumps(docs(100))
        r = httpx.post(f"{url}{EVENTS}", content=body, headers=headers)
        assert r.status_code == 413
        assert r.json()["error"] == "too_large"

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(body), 1000):
                yield body[i : i + 1000]

        r = httpx.post(
            f"{url}{EVENTS}",
            content=chunks(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 413


def test_gzip_bomb_is_413(running: Running) -> None:
    """A small gzip body that inflates past the limit is refused without inflating it all."""
    bomb = gzip.compress(b"[" + b" " * (80 * 1024 * 1024) + b"]", compresslevel=9)
    assert len(bomb) < 200_000
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with running.client("ingest") as c:
        r = c.post(EVENTS, content=bomb, headers=headers)
    assert r.status_code == 413
    assert "decompressed" in r.json()["message"]


def test_too_many_events_is_413(data_dir: Path) -> None:
    """More events than max_batch_events in one batch is a 413 that gives the limit."""
    tokens = make_tokens(data_dir)
    settings = replace(settings_for(data_dir), max_batch_events=10)
    with run_server(settings) as (url, _):
        r = httpx.post(
            f"{url}{EVENTS}", json=docs(11), headers={"Authorization": f"Bearer {tokens['ingest']}"}
        )
    assert r.status_code == 413
    assert r.json()["limit"] == 10


def test_malformed_json_is_400(running: Running) -> None:
    """Broken JSON, a non-array body and a broken JSON line are 400s with a reason."""
    with running.client("ingest") as c:
        r1 = c.post(EVENTS, content=b"[{", headers={"Content-Type": "application/json"})
        r2 = c.post(EVENTS, content=b'{"a": 1}', headers={"Content-Type": "application/json"})
        r3 = c.post(
            EVENTS,
            content=orjson.dumps(docs(1)[0]) + b"\n{nope\n",
            headers={"Content-Type": "application/x-ndjson"},
        )
        r4 = c.post(EVENTS, content=b"[]", headers={"Content-Type": "text/plain"})
    assert (r1.status_code, r1.json()["error"]) == (400, "malformed_json")
    assert r2.status_code == 400
    assert r3.status_code == 400
    assert r3.json()["line"] == 2
    assert r4.status_code == 415


def test_non_string_choice_fields_are_a_400(running: Running) -> None:
    """A list where a category is expected is refused with a 400 that names it, not a 500."""
    batch = docs(2)
    batch[1]["category"] = ["authentication"]
    with running.client("ingest") as c:
        r = c.post(
            EVENTS, content=orjson.dumps(batch), headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 400
    assert "category" in r.text


def test_bad_events_are_named_and_nothing_is_stored(running: Running) -> None:
    """A 400 lists each bad event by index, id and reason, and the good ones are not stored."""
    batch = docs(4)
    batch[1]["outcome"] = "maybe"
    batch[3]["source"] = {"ip": "not-an-ip"}
    batch[2]["details"] = {"ratio": 0.5}
    with running.client("ingest") as c:
        r = c.post(EVENTS, json=batch)
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid_events"
    assert [e["index"] for e in body["errors"]] == [1, 2, 3]
    assert body["errors"][0]["id"] == batch[1]["id"]
    assert "outcome" in body["errors"][0]["reason"]
    assert "details.ratio" in body["errors"][1]["reason"]
    assert "source.ip" in body["errors"][2]["reason"]
    assert _count(running) == 0


def test_batch_is_committed_before_the_answer(running: Running) -> None:
    """Once the 200 arrives, a fresh store connection already sees every event."""
    with running.client("ingest") as c:
        assert c.post(EVENTS, json=docs(30)).status_code == 200
    store = open_store(running.settings.directory, readonly=True)
    try:
        assert len(store.search(None, limit=1000).events) >= 30
    finally:
        store.close()
