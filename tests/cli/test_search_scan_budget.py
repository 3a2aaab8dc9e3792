"""``keeptrail search`` says on stderr when the residual scan budget ended a page early."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import orjson
import pytest
from tests.factories import make_event
from typer.testing import CliRunner

import keeptrail.store
from keeptrail.cli.main import app
from keeptrail.event import Event
from keeptrail.store import open_store
from keeptrail.store.sqlite import SQLiteStore

T0 = 1_700_000_000_000_000
BUDGET = 10


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[Event]]:
    """A real encrypted store of 25 events, only the oldest with 'needle' in its raw text;
    every store opened from a data directory in this test gets a scan budget of 10."""
    data = tmp_path / "data"
    events = [make_event(time=T0 + i, raw="needle" if i == 0 else "hay") for i in range(25)]
    store = open_store(data)
    store.append(events)
    store.close()
    monkeypatch.setattr(keeptrail.store, "SQLiteStore", partial(SQLiteStore, scan_budget=BUDGET))
    return data, events


def test_stopped_early_note_on_stderr_with_cursor(store_dir: tuple[Path, list[Event]]) -> None:
    """Free text over more events than the budget: no results, and a note on stderr that names
    the count, the remedies and the cursor that continues; stdout stays pure data."""
    data, events = store_dir
    runner = CliRunner()
    first = runner.invoke(app, ["search", "needle", "-f", "jsonl", "--data-dir", str(data)])
    assert first.exit_code == 0, first.output
    assert first.stdout == ""
    note = first.stderr.strip()
    assert note.startswith(f"note: stopped after scanning {BUDGET} events")
    assert "narrow the time range" in note
    assert "use indexed fields" in note
    cursor = note.rsplit("--cursor ", 1)[1]
    found: list[str] = []
    for _ in range(5):
        page = runner.invoke(
            app,
            ["search", "needle", "-f", "jsonl", "--cursor", cursor, "--data-dir", str(data)],
        )
        assert page.exit_code == 0, page.output
        found.extend(orjson.loads(line)["id"] for line in page.stdout.splitlines())
        if "--cursor " not in page.stderr:
            break
        cursor = page.stderr.strip().rsplit("--cursor ", 1)[1]
    assert found == [events[0].id]


def test_indexed_search_has_no_note(store_dir: tuple[Path, list[Event]]) -> None:
    """A query the clear columns answer never scans, so nothing is said about a budget."""
    data, _ = store_dir
    out = CliRunner().invoke(
        app, ["search", "user:root", "--limit", "30", "-f", "jsonl", "--data-dir", str(data)]
    )
    assert out.exit_code == 0, out.output
    assert len(out.stdout.splitlines()) == 25
    assert "stopped" not in out.stderr
