"""A real uvicorn server on 127.0.0.1 (ephemeral port, background thread) over a real store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from tests.factories import make_event

from keeptrail.event import to_document
from keeptrail.server.runner import bind, uvicorn_config
from keeptrail.server.settings import Settings
from keeptrail.server.tokens import TokenStore

ROLES = ("admin", "auditor", "viewer", "ingest")


@dataclass
class Running:
    """A started server: its base URL, settings, the uvicorn server and a token per role."""

    url: str
    settings: Settings
    server: uvicorn.Server
    tokens: dict[str, str]

    def client(self, role: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


@contextmanager
def run_server(settings: Settings, **config: Any) -> Iterator[tuple[str, uvicorn.Server]]:
    """Serve ``settings`` on a fresh loopback port until the block ends."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(settings, log_level="warning", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    scheme = "https" if settings.tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def make_tokens(data_dir: Path, store_url: str | None = None) -> dict[str, str]:
    """One token per role, plus a revoked one under ``revoked`` (in the PostgreSQL store's
    database when ``store_url`` is given: where a server on that store looks them up)."""
    store = TokenStore(data_dir, store_url)
    try:
        out = {
            role: store.create(name=f"{role}-token", role=role, created_by="test")[1]
            for role in ROLES
        }
        out["revoked"] = store.create(name="old-admin", role="admin", created_by="test")[1]
        store.revoke("old-admin", revoked_by="test")
    finally:
        store.close()
    return out


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: the data dir, no rate limit unless asked."""
    base = Settings(listen="127.0.0.1:0", data_dir=data_dir, rate_limit_per_second=0)
    return replace(base, **overrides)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data directory."""
    return tmp_path / "data"


@pytest.fixture
def running(data_dir: Path) -> Iterator[Running]:
    """A server with one token per role."""
    tokens = make_tokens(data_dir)
    settings = settings_for(data_dir)
    with run_server(settings) as (url, server):
        yield Running(url, settings, server, tokens)


def docs(n: int, **overrides: object) -> list[dict[str, Any]]:
    """``n`` event documents as an agent sends them (each with its own UUIDv7)."""
    return [to_document(make_event(actor_name=f"user{i}", **overrides)) for i in range(n)]
