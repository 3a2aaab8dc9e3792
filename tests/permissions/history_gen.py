"""A small generator of audit histories for permission tests: events with known usage.

Tests describe what each principal did ("alice ran sudo systemctl 3 days ago, from 10.0.0.5")
and this module writes the matching events into a real store, in the exact shape the parsers
produce (docs/event-vocabulary.md): ``ssh.login`` with a source, ``sudo.command`` with
``details.command``, ``db.query`` with ``details.statement``/``command_tag`` (or a pgaudit
object), ``k8s.<verb>`` with ``details.verb``/``resource``/``namespace``, and account changes
(``group.member_add``, ``user.create``). The expected findings are then known in advance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keeptrail.event import DetailValue, Event, uuid7
from keeptrail.store import Store

DAY = 86_400 * 1_000_000
NOW = 1_780_000_000_000_000  # 2026-05-28T20:26:40Z


@dataclass
class History:
    """Events being built; ``write`` appends them to a store in one batch."""

    now: int = NOW
    events: list[Event] = field(default_factory=list)

    def _add(self, days_ago: float, **fields: object) -> Event:
        values: dict[str, object] = {
            "time": self.now - int(days_ago * DAY),
            "outcome": "success",
            "id": uuid7(),
            "raw": "generated",
            "ingested_at": self.now,
        }
        values.update(fields)
        event = Event(**values)  # type: ignore[arg-type]
        self.events.append(event)
        return event

    def ssh_login(self, host: str, user: str, days_ago: float, ip: str = "10.0.0.5") -> Event:
        return self._add(
            days_ago,
            category="authentication",
            action="ssh.login",
            actor_name=user,
            actor_auth_method="publickey",
            source_ip=ip,
            target_host=host,
            target_system="ssh",
            raw=f"sshd: Accepted publickey for {user} from {ip}",
        )

    def sudo(self, host: str, user: str, command: str, days_ago: float, times: int = 1) -> None:
        for i in range(times):
            self._add(
                days_ago + i * 0.01,
                category="privilege",
                action="sudo.command",
                actor_name=user,
                actor_effective_user="root",
                target_host=host,
                target_system="sudo",
                details={"command": command, "tty": "pts/0", "pwd": "/home"},
                raw=f"sudo: {user} : TTY=pts/0 ; PWD=/home ; USER=root ; COMMAND={command}",
            )

    def sql(
        self,
        host: str,
        role: str,
        statement: str,
        tag: str,
        days_ago: float,
        *,
        table: str | None = None,
        times: int = 1,
    ) -> None:
        details: dict[str, DetailValue] = {"statement": statement, "command_tag": tag}
        for i in range(times):
            self._add(
                days_ago + i * 0.01,
                category="database",
                action="db.ddl" if tag in {"GRANT", "REVOKE"} else "db.query",
                actor_name=role,
                target_host=host,
                target_system="postgres",
                target_resource=table or "app",
                target_resource_type="table" if table else "database",
                details=dict(details),
                raw=f"LOG:  statement: {statement}",
            )

    def k8s(self, subject: str, verb: str, resource: str, namespace: str, days_ago: float) -> None:
        self._add(
            days_ago,
            category="kubernetes",
            action=f"k8s.{verb}",
            actor_name=subject,
            actor_type="service",
            source_ip="10.1.0.9",
            target_host="prod-apiserver",
            target_system="kubernetes",
            target_resource=f"{namespace}/{resource}/x",
            target_resource_type=resource,
            details={"verb": verb, "resource": resource, "namespace": namespace},
        )

    def member_add(self, host: str, admin: str, user: str, group: str, days_ago: float) -> Event:
        return self._add(
            days_ago,
            category="account",
            action="group.member_add",
            actor_name=admin,
            target_host=host,
            target_system="gpasswd",
            target_resource=group,
            target_resource_type="group",
            details={"member": user, "tool": "gpasswd"},
            raw=f"gpasswd: user {user} added by {admin} to group {group}",
        )

    def write(self, store: Store) -> None:
        store.append(self.events)
