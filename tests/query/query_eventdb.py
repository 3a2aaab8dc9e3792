"""Test data for the query tests: a deterministic set of varied events, and a SQLite copy.

The SQLite table follows the store's layout (one column per Event attribute, ids and
addresses as 16 raw bytes, details as JSON text) so that compiled SQL is tested against the
encodings it will meet in production.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from dataclasses import fields
from pathlib import Path

from keeptrail.event import SEVERITIES, Event
from keeptrail.netaddr import ip_to_bytes
from keeptrail.query import compile_predicate, compile_sql, parse

SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    id BLOB,
    time INTEGER NOT NULL,
    ingested_at INTEGER,
    category TEXT NOT NULL, action TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT,
    severity TEXT NOT NULL,
    actor_name TEXT, actor_uid INTEGER, actor_type TEXT, actor_session TEXT,
    actor_auth_method TEXT, actor_effective_user TEXT,
    source_ip BLOB, source_port INTEGER, source_host TEXT,
    target_host TEXT, target_system TEXT, target_resource TEXT, target_resource_type TEXT,
    details TEXT,
    collector_host TEXT, collector_source TEXT, collector_parser TEXT, collector_file TEXT,
    collector_offset INTEGER,
    raw TEXT NOT NULL
);
CREATE INDEX events_time ON events (time);
CREATE INDEX events_actor_name_time ON events (actor_name, time);
CREATE INDEX events_source_ip_time ON events (source_ip, time);
CREATE INDEX events_action_time ON events (action, time);
CREATE INDEX events_target_host_time ON events (target_host, time);
"""

BASE_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
DAY_US = 86_400_000_000

NAMES = [None, "", "root", "admin", "administrator", "adm", "alice", "Alice", "bob",
         "svc-backup", "ädmin", "日本", "a[b]?*", "x%y_z\\", "o'brien", "\U0010ffff",
         "adm\U0010ffff"]  # fmt: skip
IPS = [None, "10.0.0.1", "10.0.3.7", "10.255.255.255", "11.0.0.1", "192.168.1.20",
       "172.16.5.4", "2001:db8::1", "2001:db8:ffff::2", "2001:db9::1", "::1", "fe80::1",
       "::ffff:10.0.0.9", "0.0.0.0"]  # fmt: skip
CATEGORIES = ["authentication", "session", "privilege", "account", "file", "unparsed"]
ACTIONS = ["login", "logout", "sudo", "su", "password_change", "Login", "unparsed"]
HOSTS = [None, "web-1", "web-2", "db-1", "DB-1", "bastion", "web-1.example.com"]
RAWS = [
    "Failed password for root from 10.0.0.1 port 22 ssh2",
    "Accepted publickey for alice from 2001:db8::1 port 50022 ssh2",
    "pam_unix(sshd:session): session opened for user admin by (uid=0)",
    "sudo:    bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/passwd",
    "ÉCHEC de connexion pour Ädmin",
    "weird [chars] * ? % _ \\ 'quote' \"dq\"",
    "FAILED PASSWORD for invalid user oracle",
    "",
    "session closed for user root",
    "useradd[991]: new user: name=svc-backup, UID=998",
]
DETAIL_VALUES: list[object] = ["/usr/bin/passwd", "/bin/ls -la", "rm -rf /tmp/x", 0, 1, 22,
                               -5, True, False, None, ["wheel", "sudo"], ["adm"], [], "",
                               "Passwd", "[x]*?"]  # fmt: skip
DETAIL_KEYS = ["command", "tty", "count", "flag", "groups", "a.b", "pwd"]


def make_events(count: int = 400, seed: int = 7) -> list[Event]:
    """Varied events: every field sometimes absent, odd characters, both IP families."""
    rng = random.Random(seed)

    def pick(options: list[object]) -> object:
        return rng.choice(options)

    events = []
    for n in range(count):
        details = {rng.choice(DETAIL_KEYS): pick(DETAIL_VALUES) for _ in range(rng.randint(0, 3))}
        event = Event(
            time=BASE_US + rng.randint(-40, 40) * DAY_US // 4 + rng.randint(0, 999_999),
            category=rng.choice(CATEGORIES),
            action=rng.choice(ACTIONS),
            outcome=rng.choice(["success", "failure", "unknown"]),
            reason=rng.choice([None, "bad password", "ok"]),
            severity=rng.choice(SEVERITIES),
            actor_name=rng.choice(NAMES),
            actor_uid=rng.choice([None, 0, 1000, 1001, 65534, -1]),
            actor_type=rng.choice([None, "user", "service"]),
            actor_session=rng.choice([None, "s1", "s2"]),
            actor_auth_method=rng.choice([None, "password", "publickey"]),
            actor_effective_user=rng.choice([None, "root", "postgres"]),
            source_ip=rng.choice(IPS),
            source_port=rng.choice([None, 22, 443, 50022, 65535]),
            source_host=rng.choice(HOSTS),
            target_host=rng.choice(HOSTS),
            target_system=rng.choice([None, "linux", "postgres"]),
            target_resource=rng.choice([None, "/etc/passwd", "/etc/shadow", "db.users"]),
            target_resource_type=rng.choice([None, "file", "table"]),
            details=details,  # type: ignore[arg-type]
            collector_host=rng.choice([None, "collector-1"]),
            collector_source=rng.choice([None, "file", "journald"]),
            collector_parser=rng.choice([None, "sshd", "sudo", "pam"]),
            collector_file=rng.choice([None, "/var/log/auth.log", "/var/log/secure"]),
            collector_offset=rng.choice([None, 0, 1024, 2**40]),
            raw=rng.choice(RAWS),
            id="" if n % 50 == 0 else str(uuid.UUID(int=rng.getrandbits(128))),
            ingested_at=rng.choice([None, BASE_US + n]),
        )
        events.append(event)
    return events


def to_row(event: Event) -> dict[str, object]:
    """The storage encoding of one event (what the store will write)."""
    row: dict[str, object] = {f.name: getattr(event, f.name) for f in fields(Event)}
    row["id"] = uuid.UUID(event.id).bytes if event.id else None
    row["source_ip"] = ip_to_bytes(event.source_ip) if event.source_ip is not None else None
    # empty details are stored both ways, as NULL and as '{}'
    row["details"] = json.dumps(event.details) if event.details or event.time % 2 else None
    return row


def build_db(path: Path, events: list[Event]) -> sqlite3.Connection:
    """A SQLite database at ``path`` holding ``events``; seq is the list index + 1."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    rows = [to_row(e) for e in events]
    columns = list(rows[0])
    marks = ", ".join(f":{c}" for c in columns)
    conn.executemany(f"INSERT INTO events ({', '.join(columns)}) VALUES ({marks})", rows)
    conn.commit()
    return conn


class EventDB:
    """Events in memory and in SQLite, with a way to run one query both ways."""

    def __init__(self, conn: sqlite3.Connection, events: list[Event]) -> None:
        self.conn = conn
        self.events = events

    def sql_matches(self, query: str) -> set[int]:
        """Indexes of the events the compiled SQL selects."""
        sql, params = compile_sql(parse(query), "sqlite")
        rows = self.conn.execute(f"SELECT seq FROM events WHERE {sql}", params).fetchall()
        return {seq - 1 for (seq,) in rows}

    def predicate_matches(self, query: str) -> set[int]:
        """Indexes of the events the compiled predicate accepts."""
        pred = compile_predicate(parse(query))
        return {i for i, e in enumerate(self.events) if pred(e)}
