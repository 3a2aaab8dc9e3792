"""Fixtures for the query tests (the data itself lives in query_eventdb.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from query_eventdb import EventDB, build_db, make_events


@pytest.fixture(scope="session")
def event_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventDB]:
    """A session-wide database of varied events (read-only for tests)."""
    events = make_events()
    conn = build_db(tmp_path_factory.mktemp("query") / "events.db", events)
    yield EventDB(conn, events)
    conn.close()
