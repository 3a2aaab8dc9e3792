"""Shared fixtures: real stores in temporary directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keeptrail.ledger.note import generate_signer
from keeptrail.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A real SQLite store in a fresh data directory, signing with a key it did not create.

    A store that creates its own key records a ``ledger.key_created`` event; passing a signer in
    keeps such stores empty until the test appends, so counts are the test's own.
    """
    s = SQLiteStore(tmp_path / "data" / "events.db", signer=generate_signer("keeptrail/test/0"))
    yield s
    s.close()
