"""Event factories for tests."""

from __future__ import annotations

from keeptrail.event import Event, uuid7


def make_event(**overrides: object) -> Event:
    """An authentication event with sensible defaults; keyword arguments replace fields."""
    values: dict[str, object] = {
        "time": 1_700_000_000_000_000,
        "category": "authentication",
        "action": "ssh.login",
        "outcome": "failure",
        "reason": "bad_password",
        "actor_name": "root",
        "source_ip": "203.0.113.50",
        "source_port": 40022,
        "target_host": "web-1",
        "target_system": "ssh",
        "raw": "Nov 14 22:13:20 web-1 sshd[1]: Failed password for root from 203.0.113.50",
        "id": uuid7(),
        "ingested_at": 1_700_000_001_000_000,
    }
    values.update(overrides)
    return Event(**values)  # type: ignore[arg-type]
