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


@pytest.fixture
def sealed_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """Like ``store``, with a real keyring (``<data>/keyring.db``, master key file in
    ``<data>/keys``): every partition it creates is sealed with AES-256-GCM."""
    from keeptrail.protect.keyring import open_keyring  # noqa: PLC0415

    data = tmp_path / "data"
    keyring = open_keyring(data, {})
    assert keyring is not None
    s = SQLiteStore(
        data / "events.db",
        signer=generate_signer("keeptrail/test/0"),
        keyring=keyring,
        close_keyring=True,
    )
    yield s
    s.close()


def _postgres_admin_url() -> str | None:
    import os  # noqa: PLC0415

    return os.environ.get("KEEPTRAIL_TEST_POSTGRES_URL") or (
        "postgresql://keeptrail:keeptrail@127.0.0.1:5432/postgres"
    )


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the loopback server that ``.ci/run`` starts.

    The URL comes from ``KEEPTRAIL_TEST_POSTGRES_URL`` (default: role ``keeptrail`` on
    127.0.0.1:5432). Without a reachable server the test is skipped, unless
    ``KEEPTRAIL_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), where it fails: in CI these tests must
    run. The database is dropped afterwards.
    """
    import os  # noqa: PLC0415
    import uuid  # noqa: PLC0415

    import psycopg  # noqa: PLC0415
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    admin = _postgres_admin_url()
    assert admin is not None
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("KEEPTRAIL_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required but unreachable: {exc}")
        pytest.skip(f"no PostgreSQL on loopback (run .ci/postgres-up): {exc}")
    name = f"kt_test_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(admin)
    # Hand out a URL (the store is chosen by a postgresql:// URL), not a key=value conninfo.
    user, password = params.get("user", ""), params.get("password", "")
    host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
    url = f"postgresql://{user}:{password}@{host}:{port}/{name}"
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
