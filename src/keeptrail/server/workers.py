"""Store access from async handlers: one writer thread, a few reader threads.

A SQLite connection belongs to the thread that opened it, and SQLite has one writer at a time
anyway, so the server follows datasette: a single writer thread owns the writable store (every
ingest batch and every self-audit event goes through it, in arrival order) while reader threads
each own a read-only connection (WAL: readers never wait for the writer). Handlers ``await``
:meth:`StoreThreads.write` / :meth:`StoreThreads.read` with a function of the store.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

from keeptrail.store import Store, open_store

T = TypeVar("T")


class _Worker:
    """One thread and the store it opened; every call runs on that thread."""

    def __init__(self, name: str, opener: Callable[[], Store]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._store: Store | None = None
        self._opener = opener

    def _call(self, fn: Callable[[Store], T]) -> T:
        if self._store is None:
            self._store = self._opener()
        return fn(self._store)

    def open(self) -> None:
        self._pool.submit(self._call, lambda _s: None).result()

    async def run(self, fn: Callable[[Store], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn)

    def close(self) -> None:
        def _close() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        try:
            self._pool.submit(_close).result()
        finally:
            self._pool.shutdown(wait=True)


class StoreThreads:
    """The writer and the readers of one data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        readers: int = 2,
        store: str | None = None,
        config_file: Path | None = None,
    ) -> None:
        opener = partial(_opener, data_dir, store, config_file)
        self._writer = _Worker("keeptrail-writer", opener(readonly=False))
        self._readers = [
            _Worker(f"keeptrail-reader{i}", opener(readonly=True)) for i in range(readers)
        ]
        self._next = itertools.cycle(self._readers)

    def open(self) -> None:
        """Open the writable store first (it creates and migrates), then the readers."""
        self._writer.open()
        for reader in self._readers:
            reader.open()

    async def write(self, fn: Callable[[Store], T]) -> T:
        return await self._writer.run(fn)

    async def read(self, fn: Callable[[Store], T]) -> T:
        return await next(self._next).run(fn)

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self._writer.close()


def _opener(
    data_dir: Path, store: str | None, config_file: Path | None, *, readonly: bool
) -> Callable[[], Store]:
    """How a worker opens its store: a PostgreSQL URL (with the data directory for the ledger
    key and keyring), another store URL, or the embedded store in the data directory; each
    reads ``[protect]``/``[retention]`` from ``config_file`` (``--config``) when given."""
    if store and store.startswith(("postgresql://", "postgres://")):
        from keeptrail.store.postgres import open_postgres  # noqa: PLC0415  # psycopg on use

        return lambda: open_postgres(
            store, readonly=readonly, data_dir=data_dir, config_file=config_file
        )
    location = store or data_dir
    return lambda: open_store(location, readonly=readonly, config_file=config_file)
