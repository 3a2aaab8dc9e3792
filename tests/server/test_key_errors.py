"""A partition whose data key cannot be opened makes the API answer 503 with the reason."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from tests.factories import make_event
from tests.server.conftest import make_tokens, run_server, settings_for

from keeptrail.store import open_store


def test_search_over_an_unopenable_partition_is_a_503_naming_it(tmp_path: Path) -> None:
    """A damaged wrapped key (here: overwritten in keyring.db while the server runs) is a
    503 ``key_unavailable`` that names the partition, not a 500 or garbage."""
    data = tmp_path / "data"
    store = open_store(data)
    try:  # 2023-11-14: a day of its own, whose key the running server has not opened yet
        store.append([make_event(actor_name="alice", raw="sudo: alice : COMMAND=/bin/id")])
    finally:
        store.close()
    tokens = make_tokens(data)
    with run_server(settings_for(data)) as (url, _server):
        keyring = sqlite3.connect(data / "keyring.db")
        with keyring:
            changed = keyring.execute(
                "UPDATE data_keys SET wrapped = zeroblob(length(wrapped))"
                " WHERE partition LIKE 'p20231114%'"
            ).rowcount
        keyring.close()
        assert changed == 1
        headers = {"Authorization": f"Bearer {tokens['viewer']}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            answer = client.get("/api/v1/events", params={"q": "user:alice", "since": "2023-11-01"})
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body["error"] == "key_unavailable"
    assert body["partition"].startswith("p20231114")
    assert body["partition"] in body["message"]
