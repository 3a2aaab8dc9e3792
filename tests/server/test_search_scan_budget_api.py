"""`GET /api/v1/events` carries `stopped_early`/`scanned`; `search --server` shows it."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from tests.factories import make_event
from tests.server.conftest import Running, make_tokens, run_server, settings_for
from typer.testing import CliRunner

import keeptrail.store
from keeptrail.cli.main import app
from keeptrail.event import Event
from keeptrail.store import open_store
from keeptrail.store.sqlite import SQLiteStore

T0 = 1_700_000_000_000_000
BUDGET = 10


@pytest.fixture
def budgeted(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Running, Event]]:
    """A real server over a store of 25 events (only the oldest says 'needle') whose stores
    open with a scan budget of 10."""
    events = [make_event(time=T0 + i, raw="needle" if i == 0 else "hay") for i in range(25)]
    store = open_store(data_dir)
    store.append(events)
    store.close()
    monkeypatch.setattr(keeptrail.store, "SQLiteStore", partial(SQLiteStore, scan_budget=BUDGET))
    tokens = make_tokens(data_dir)
    settings = settings_for(data_dir)
    with run_server(settings) as (url, server):
        yield Running(url, settings, server, tokens), events[0]


def test_api_says_stopped_early_and_the_cursor_continues(budgeted: tuple[Running, Event]) -> None:
    """The first page of a free-text search is empty with stopped_early and scanned set;
    following next_cursor reaches the match, on a page that did not stop early."""
    running, needle = budgeted
    q = {"q": "needle", "until": "2023-11-15"}  # leaves out the server's own audit events
    with running.client("viewer") as c:
        first = c.get("/api/v1/events", params=q).json()
        assert (first["events"], first["count"]) == ([], 0)
        assert (first["stopped_early"], first["scanned"]) == (True, BUDGET)
        assert first["next_cursor"] is not None
        found: list[str] = []
        page = first
        while page["next_cursor"] is not None:
            page = c.get("/api/v1/events", params={**q, "cursor": page["next_cursor"]}).json()
            found.extend(e["id"] for e in page["events"])
        indexed = c.get("/api/v1/events", params={"q": "user:root", "limit": 5}).json()
    assert found == [needle.id]
    assert page["stopped_early"] is False
    assert (indexed["count"], indexed["stopped_early"], indexed["scanned"]) == (5, False, 0)


def test_remote_cli_search_prints_the_note(budgeted: tuple[Running, Event]) -> None:
    """keeptrail search --server: the server's stopped_early reaches the user as the same note."""
    running, _ = budgeted
    out = CliRunner().invoke(
        app,
        [
            "search", "needle", "--until", "2023-11-15", "-f", "jsonl",
            "--server", running.url, "--token", running.tokens["viewer"],
        ],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert out.stdout == ""
    assert out.stderr.startswith(f"note: stopped after scanning {BUDGET} events")
    assert "--cursor " in out.stderr
