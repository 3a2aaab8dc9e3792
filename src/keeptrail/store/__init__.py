"""Storage backends behind one contract (:mod:`.contract`); :func:`open_store` picks one."""

from __future__ import annotations

from pathlib import Path

from keeptrail.store.contract import FilePosition, SearchPage, Stats, Store
from keeptrail.store.sqlite import SQLiteStore

__all__ = ["FilePosition", "SearchPage", "Stats", "Store", "open_store"]


def open_store(location: str | Path, *, readonly: bool = False) -> Store:
    """Open the store at a data directory, a ``.db`` file, or a ``sqlite:///`` URL."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        raise ValueError("the PostgreSQL backend is not available yet; use a data directory")
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    path = Path(text)
    if path.suffix != ".db":
        path = path / "events.db"
    return SQLiteStore(path, readonly=readonly)
