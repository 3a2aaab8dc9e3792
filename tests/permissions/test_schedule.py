"""Scheduled collection: the [permissions] table, and the agent collecting on its own."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest

from keeptrail.agent.config import parse_config
from keeptrail.agent.runner import Agent
from keeptrail.errors import UserError
from keeptrail.permissions.collect import PermissionsConfig, parse_duration
from keeptrail.permissions.snapshots import open_snapshots

ROOT = Path(__file__).parent.parent / "data" / "permissions" / "linux-root"


def test_table_validation() -> None:
    """Durations, sources and references are checked; a literal password is refused."""
    cfg = PermissionsConfig.from_config(
        {"collect_every": "24h", "sources": ["linux", "postgres"], "root": "fake",
         "postgres_url": "$env:PGURL", "findings": {"window": "90d"}},
        base=Path("/etc/keeptrail"),
    )  # fmt: skip
    assert cfg.collect_every == 86400
    assert cfg.plan.root == Path("/etc/keeptrail/fake")
    assert parse_duration("30m") == 1800
    assert parse_duration("7d") == 604800
    for table, message in (
        ({"postgres_url": "postgresql://u:secret@db/app", "sources": ["postgres"]}, "password"),
        ({"sources": ["ldap"]}, "sources must be"),
        ({"sources": ["k8s"]}, "k8s_json or k8s_api"),
        ({"collect_every": "soon"}, "not a duration"),
        ({"colect_every": "1h"}, "unknown setting 'colect_every'"),
    ):
        with pytest.raises(UserError, match=message) as info:
            PermissionsConfig.from_config(table)
        assert "secret" not in str(info.value)


def test_agent_collects_on_schedule_and_announces_it(tmp_path: Path) -> None:
    """With [permissions] collect_every, the agent stores a snapshot and spools an event."""
    config = parse_config(
        {
            "agent": {"state_dir": str(tmp_path / "state"), "host": "web-1", "status_seconds": 0.2},
            "permissions": {"collect_every": "1h", "root": str(ROOT), "sudoers": "parser"},
        },
        base=tmp_path,
        local=True,
    )
    agent = Agent(config, ship=False)
    thread = threading.Thread(target=agent.run, kwargs={"handle_signals": False}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        events: list[dict] = []
        while time.monotonic() < deadline and not events:
            docs = [orjson.loads(e.doc) for e in agent.spool.peek(100)]
            events = [d for d in docs if d["action"] == "permissions.snapshot"]
            time.sleep(0.2)
    finally:
        agent.shutdown()
        thread.join(15)
    assert events, "no permissions.snapshot event was spooled"
    assert events[0]["target"]["system"] == "linux:web-1"
    with open_snapshots(tmp_path / "state") as store:
        latest = store.latest(system="linux:web-1")
    assert latest is not None
    assert latest.id == events[0]["details"]["snapshot"]
    assert events[0]["details"]["entitlements"] == len(latest.entitlements)
