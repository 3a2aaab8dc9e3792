"""Generated detection scenarios: a realistic background with labelled attacks mixed in.

The background is scripted: people with office hours, home addresses in their own city,
vacations, the occasional mistyped password or sudo typo, an on-call admin at night; service
accounts (``deploy`` every 30 minutes from CI, nightly ``backup``, hourly cron), internet
scanners trying a few names each, an application database with a steady query load, an ETL
job, weekly migrations, the Kubernetes control plane reading secrets, agents' heartbeats.
Attacks are then mixed in, each with the ``(rule, key)`` pairs it should raise as labels.

Every line is in a real log format (RFC 3339 syslog for sshd/sudo/shadow-utils/PAM/logind,
PostgreSQL stderr with pgaudit, Kubernetes audit JSON, raw auditd, keeptrail.event/v1 JSON)
and goes through Keeptrail's own parsers when ingested.

    python bench/gen_scenarios.py OUTDIR [--days 40] [--seed 7] [--scale 1.0]

writes ``auth.log``, ``postgres.log``, ``k8s-audit.log``, ``audit.log``, ``heartbeat.log``,
``labels.json`` and ``geoip.mmdb`` (a tiny MaxMind-format database of the scenario's public
addresses, for the impossible-travel rule).
"""

from __future__ import annotations

import argparse
import json
import os
import random
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

HOSTS = ("web-1", "web-2", "db-1", "bastion")
CITIES = {
    "Paris": (48.85, 2.35, "FR"),
    "Berlin": (52.52, 13.40, "DE"),
    "Madrid": (40.42, -3.70, "ES"),
    "London": (51.51, -0.13, "GB"),
    "Lyon": (45.76, 4.84, "FR"),
    "Sydney": (-33.87, 151.21, "AU"),
    "Sao Paulo": (-23.55, -46.63, "BR"),
    "Tokyo": (35.68, 139.69, "JP"),
}
PEOPLE = [
    "alice",
    "bob",
    "carol",
    "dave",
    "eve",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "ken",
    "laura",
    "mike",
    "nina",
    "oscar",
    "peggy",
    "quinn",
    "rupert",
    "sybil",
    "trent",
]
ADMINS = {"alice", "bob", "ken", "laura"}
SCANNER_NAMES = ("admin", "test", "oracle", "ubuntu", "user", "git", "postgres", "support", "pi")
ATTACKS = (
    "brute_force",
    "spraying",
    "distributed",
    "success_after_failures",
    "new_source",
    "travel",
    "off_hours",
    "root_login",
    "sudo_failure",
    "not_in_sudoers",
    "priv_group",
    "account_created",
    "dormant",
    "sensitive_table",
    "sensitive_file",
    "k8s_secret",
    "destructive_ddl",
    "mass_delete",
    "delete_burst",
    "auditd_stop",
    "log_cleared",
    "silent",
    "baseline",
    "service_interactive",
)


@dataclass
class Label:
    """An alert the scenario should raise: rule, key, and which attack (or expected report)."""

    rule: str
    key: dict[str, str]
    attack: str
    kind: str = "attack"  # or "expected": in-scope activity the rule exists to report


@dataclass
class Scenario:
    start: datetime
    days: int
    files: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    labels: list[Label] = field(default_factory=list)
    geo: dict[str, tuple[float, float, str, str]] = field(default_factory=dict)

    def add(self, name: str, t: datetime, line: str) -> None:
        self.files.setdefault(name, []).append((t.timestamp(), line))

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


class Gen:
    """Writes lines for one scenario; every random choice comes from one seeded generator."""

    def __init__(self, seed: int, start: datetime, days: int, scale: float) -> None:
        self.r = random.Random(seed)
        self.s = Scenario(start, days)
        self.scale = scale
        self.pid = 1000
        self.serial = 5000
        self.ip_pool = 0
        self.homes: dict[str, str] = {}
        self.silent_cut: dict[str, datetime] = {}
        self.used: set[tuple[str, int]] = set()
        self.current = ""
        self.cities: dict[str, str] = {}
        self.office: dict[str, str] = {}
        for i, who in enumerate(PEOPLE):
            city = list(CITIES)[i % 5]  # everyone lives in Europe
            self.cities[who] = city
            self.homes[who] = self.public_ip(city)
            self.office[who] = f"10.1.0.{10 + i}"

    # --- addresses -----------------------------------------------------------------------

    def public_ip(self, city: str | None) -> str:
        self.ip_pool += 1
        ip = f"203.0.{113 + self.ip_pool // 250}.{self.ip_pool % 250 + 1}"
        if city is not None:
            lat, lon, cc = CITIES[city]
            self.s.geo[ip] = (lat, lon, city, cc)
        return ip

    def scanner_ip(self) -> str:
        return f"{self.r.choice((45, 91, 185, 193))}.{self.r.randrange(256)}.{self.r.randrange(256)}.{self.r.randrange(1, 255)}"

    # --- line writers --------------------------------------------------------------------

    def syslog(self, t: datetime, host: str, prog: str, msg: str, pid: bool = True) -> None:
        self.pid += 1
        tag = f"{prog}[{self.pid}]" if pid else prog
        self.s.add("auth.log", t, f"{t.strftime('%Y-%m-%dT%H:%M:%S')}+00:00 {host} {tag}: {msg}")

    def ssh_ok(self, t: datetime, host: str, user: str, ip: str, method: str = "publickey") -> None:
        port = self.r.randrange(30000, 65000)
        suffix = " ssh2: ED25519 SHA256:k3y" if method == "publickey" else " ssh2"
        self.syslog(t, host, "sshd", f"Accepted {method} for {user} from {ip} port {port}{suffix}")
        self.syslog(
            t,
            host,
            "sshd",
            f"pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)",
        )

    def ssh_fail(self, t: datetime, host: str, user: str, ip: str, invalid: bool = False) -> None:
        port = self.r.randrange(30000, 65000)
        if invalid:
            self.syslog(t, host, "sshd", f"Invalid user {user} from {ip} port {port}")
            self.syslog(
                t,
                host,
                "sshd",
                f"Failed password for invalid user {user} from {ip} port {port} ssh2",
            )
        else:
            self.syslog(t, host, "sshd", f"Failed password for {user} from {ip} port {port} ssh2")

    def sudo(
        self, t: datetime, host: str, user: str, command: str, tty: str | None = "pts/0"
    ) -> None:
        tty_part = f"TTY={tty} ; " if tty else ""
        self.syslog(
            t,
            host,
            "sudo",
            f"   {user} : {tty_part}PWD=/home/{user} ; USER=root ; COMMAND={command}",
            pid=False,
        )

    def pg(self, t: datetime, user: str, sev: str, msg: str) -> None:
        self.pid += 1
        stamp = t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d} UTC"
        self.s.add("postgres.log", t, f"{stamp} [{self.pid}] {user}@shop {sev}:  {msg}")

    def pgaudit(self, t: datetime, user: str, cls: str, tag: str, obj: str, stmt: str) -> None:
        self.serial += 1
        self.pg(
            t,
            user,
            "LOG",
            f"AUDIT: SESSION,{self.serial},1,{cls},{tag},TABLE,{obj},{stmt},<not logged>",
        )

    def k8s(
        self,
        t: datetime,
        user: str,
        verb: str,
        resource: str,
        ns: str,
        name: str | None,
        ua: str,
        ip: str,
    ) -> None:
        self.serial += 1
        uri = f"/api/v1/namespaces/{ns}/{resource}" + (f"/{name}" if name else "")
        obj = {"resource": resource, "namespace": ns, "apiVersion": "v1"}
        if name:
            obj["name"] = name
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        doc = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": f"aud-{self.serial}",
            "stage": "ResponseComplete",
            "requestURI": uri,
            "verb": verb,
            "user": {"username": user, "groups": ["system:authenticated"]},
            "sourceIPs": [ip],
            "userAgent": ua,
            "objectRef": obj,
            "responseStatus": {"metadata": {}, "code": 200},
            "requestReceivedTimestamp": stamp,
            "stageTimestamp": stamp,
        }
        self.s.add("k8s-audit.log", t, json.dumps(doc, separators=(",", ":")))

    def audit_open(self, t: datetime, host: str, user: str, uid: int, exe: str, path: str) -> None:
        self.serial += 1
        stamp = f"{t.timestamp():.3f}:{self.serial}"
        comm = exe.rsplit("/", 1)[-1]
        self.s.add(
            "audit.log",
            t,
            f"node={host} type=SYSCALL msg=audit({stamp}): arch=c000003e syscall=257 success=yes exit=3 "
            f"a0=ffffff9c a1=7ffd a2=0 a3=0 items=1 ppid=900 pid={self.pid} auid={uid} uid=0 gid=0 "
            f'euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts1 ses=7 comm="{comm}" exe="{exe}" '
            f'key="identity"\x1dAUID="{user}" UID="root"',
        )
        self.s.add(
            "audit.log",
            t,
            f'node={host} type=PATH msg=audit({stamp}): item=0 name="{path}" inode=1234 dev=08:01 '
            "mode=0100640 ouid=0 ogid=42 rdev=00:00 nametype=NORMAL",
        )

    def audit_daemon_end(self, t: datetime, host: str) -> None:
        self.serial += 1
        self.s.add(
            "audit.log",
            t,
            f"node={host} type=DAEMON_END msg=audit({t.timestamp():.3f}:{self.serial}): op=terminate "
            "auid=0 uid=0 ses=4294967295 pid=1 res=success",
        )

    def heartbeat(self, t: datetime, host: str) -> None:
        doc = {
            "schema": "keeptrail.event/v1",
            "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "category": "audit",
            "action": "agent.heartbeat",
            "outcome": "success",
            "target": {"host": host, "system": "keeptrail-agent"},
        }
        self.s.add("heartbeat.log", t, json.dumps(doc))

    def label(self, rule: str, key: dict[str, str], attack: str, kind: str = "attack") -> None:
        self.s.labels.append(Label(rule, key, attack, kind))

    # --- time helpers --------------------------------------------------------------------

    def at(self, day: int, hour: float) -> datetime:
        return self.s.start + timedelta(days=day, hours=hour)

    def workday(self, day: int) -> bool:
        return self.at(day, 0).weekday() < 5

    def attack_day(self, low: int = 8) -> int:
        """A weekday after the learning week, not the last day (heartbeats live there)."""
        for _ in range(1000):
            day = self.r.randrange(low, self.s.days - 1)
            if self.workday(day) and (self.current, day) not in self.used:
                break
        self.used.add((self.current, day))
        return day

    # --- background ----------------------------------------------------------------------

    def background(self) -> None:
        r = self.r
        vacations = {who: set() for who in PEOPLE}
        for who in r.sample(PEOPLE, 5):
            first = r.randrange(0, max(1, self.s.days - 14))
            vacations[who] = set(range(first, first + r.randrange(5, 15)))
        oncall_nights = set(r.sample(range(self.s.days), min(2, self.s.days)))
        for day in range(self.s.days):
            if self.workday(day):
                for who in PEOPLE:
                    if day in vacations[who] or who == "olduser":
                        continue
                    self.person_day(day, who)
            if day in oncall_nights:
                t = self.at(day, 23 + r.random())
                self.ssh_ok(t, "bastion", "bob", self.homes["bob"])
            self.services_day(day)
            self.scanners_day(day)
            self.database_day(day)
            self.k8s_day(day)
        for who in r.sample(PEOPLE, 4):  # password changes: what account-changed exists for
            day = r.randrange(self.s.days)
            self.syslog(
                self.at(day, 10),
                "bastion",
                "passwd",
                f"pam_unix(passwd:chauthtok): password changed for {who}",
            )
            self.label(
                "account-changed",
                {"target.host": "bastion", "target.resource": who},
                "password change",
                "expected",
            )
        # heartbeats for the last 12 hours
        end = self.s.end
        t = end - timedelta(hours=12)
        while t < end:
            for host in HOSTS:
                if not (
                    host == "db-1"
                    and "silent" in self.silent_cut
                    and t >= self.silent_cut["silent"]
                ):
                    self.heartbeat(t + timedelta(seconds=HOSTS.index(host)), host)
            t += timedelta(minutes=1)

    def person_day(self, day: int, who: str) -> None:
        r = self.r
        remote = r.random() < 0.2
        ip = self.homes[who] if remote else self.office[who]
        begin = 8 + r.random()
        for _ in range(r.randrange(1, 4)):
            t = self.at(day, begin + r.random() * 8.5)
            host = r.choice(HOSTS)
            if r.random() < 0.01:  # a mistyped password
                self.ssh_fail(t - timedelta(seconds=8), host, who, ip)
            self.ssh_ok(t, host, who, ip)
            self.syslog(
                t, host, "systemd-logind", f"New session {self.pid} of user {who}.", pid=True
            )
            if who in ADMINS:
                for k in range(r.randrange(0, 5)):
                    ts = t + timedelta(minutes=2 + k * 3)
                    if r.random() < 0.02:
                        self.sudo(ts, host, who, "/bin/systemctl restart nginx")  # logged below too
                        self.syslog(
                            ts,
                            host,
                            "sudo",
                            f"   {who} : 1 incorrect password attempt ; TTY=pts/0 ; PWD=/home/{who} ; USER=root ; COMMAND=/bin/systemctl restart nginx",
                            pid=False,
                        )
                    cmd = r.choice(
                        (
                            "/bin/systemctl restart nginx",
                            "/usr/bin/tail -n 100 /var/log/syslog",
                            "/usr/bin/apt-get update",
                            "/bin/journalctl -u app",
                        )
                    )
                    self.sudo(ts, host, who, cmd)
            if host == "db-1" and r.random() < 0.3:  # login checks /etc/shadow
                self.audit_open(
                    t, host, who, 1000 + PEOPLE.index(who), "/usr/sbin/unix_chkpwd", "/etc/shadow"
                )
        if who == "judy":  # the analyst: a steady query load during the day
            for hour in range(9, 17):
                for _ in range(r.randrange(10, 40)):
                    t = self.at(day, hour + r.random())
                    self.pg(
                        t,
                        "judy",
                        "LOG",
                        f"statement: select region, sum(total) from orders where day = '{t.date()}' group by region",
                    )

    def services_day(self, day: int) -> None:
        r = self.r
        for half in range(48):
            t = self.at(day, half / 2 + r.random() * 0.05)
            host = HOSTS[half % 2]
            self.ssh_ok(t, host, "deploy", "10.0.5.10")
            self.sudo(
                t + timedelta(seconds=20), host, "deploy", "/bin/systemctl restart app", tty=None
            )
        t = self.at(day, 2 + r.random() * 0.1)
        self.ssh_ok(t, "db-1", "backup", "10.0.5.20")
        for hour in range(24):
            for host in HOSTS:
                t = self.at(day, hour + 0.01 * HOSTS.index(host))
                self.syslog(
                    t,
                    host,
                    "CRON",
                    "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
                )

    def scanners_day(self, day: int) -> None:
        r = self.r
        for _ in range(r.randrange(20, 40)):
            ip = self.scanner_ip()
            t = self.at(day, r.random() * 24)
            for k in range(r.randrange(1, 5)):
                if r.random() < 0.15:
                    self.ssh_fail(t + timedelta(seconds=3 * k), "bastion", "root", ip)
                else:
                    self.ssh_fail(
                        t + timedelta(seconds=3 * k),
                        "bastion",
                        r.choice(SCANNER_NAMES),
                        ip,
                        invalid=True,
                    )

    def database_day(self, day: int) -> None:
        r = self.r
        per_hour = max(1, int(60 * self.scale))
        for hour in range(24):
            for _ in range(per_hour):
                t = self.at(day, hour + r.random())
                self.pg(
                    t,
                    "app",
                    "LOG",
                    f"statement: select * from orders where id = {r.randrange(10**6)}",
                )
        self.pgaudit(
            self.at(day, 11),
            "billing",
            "READ",
            "SELECT",
            "public.credit_cards",
            "select last4 from credit_cards where customer_id = 42",
        )
        self.pg(
            self.at(day, 1),
            "etl",
            "LOG",
            "statement: DELETE FROM staging WHERE loaded_at < now() - interval '7 days'",
        )
        if r.random() < 0.05:
            self.pg(self.at(day, 1.1), "etl", "LOG", "statement: DROP TABLE IF EXISTS tmp_import")
        if self.at(day, 0).weekday() == 2:
            self.pg(
                self.at(day, 14),
                "deploy",
                "LOG",
                f"statement: ALTER TABLE orders ADD COLUMN note_{day} text",
            )

    def k8s_day(self, day: int) -> None:
        r = self.r
        for slot in range(0, 24 * 6, 6):
            t = self.at(day, slot / 6)
            self.k8s(
                t,
                "system:kube-controller-manager",
                "list",
                "secrets",
                "prod",
                None,
                "kube-controller-manager/v1.30.1",
                "10.3.0.1",
            )
        for _ in range(8):
            t = self.at(day, r.random() * 24)
            self.k8s(
                t,
                "system:serviceaccount:ci:deployer",
                "patch",
                "deployments",
                "prod",
                "app",
                "argocd-application-controller/v2.11",
                "10.3.0.9",
            )
        if self.workday(day):
            for who in ("dev-jane", "dev-tom"):
                for _ in range(r.randrange(2, 6)):
                    t = self.at(day, 9 + r.random() * 8)
                    self.k8s(
                        t,
                        who,
                        "get",
                        "pods",
                        "prod",
                        None,
                        "kubectl/v1.30.1 (linux/amd64)",
                        "10.3.0.7",
                    )

    # --- attacks -------------------------------------------------------------------------

    def attack(self, name: str, n: int) -> None:
        self.current = name
        getattr(self, f"a_{name}")(n)

    def a_brute_force(self, n: int) -> None:
        ip = self.scanner_ip()
        day = self.attack_day()
        t = self.at(day, self.r.random() * 24)
        for k in range(self.r.randrange(30, 60)):
            self.ssh_fail(t + timedelta(seconds=6 * k), "bastion", "root", ip)
        self.label("ssh-brute-force-source", {"source.ip": ip}, f"brute_force#{n}")
        self.label(
            "ssh-brute-force-account",
            {"actor.name": "root", "target.host": "bastion"},
            f"brute_force#{n}",
        )

    def a_spraying(self, n: int) -> None:
        ip = self.scanner_ip()
        t = self.at(self.attack_day(), self.r.random() * 24)
        for k, who in enumerate(self.r.sample(PEOPLE, 14)):
            self.ssh_fail(t + timedelta(seconds=30 * k), "web-1", who, ip)
        self.label("ssh-password-spraying", {"source.ip": ip}, f"spraying#{n}")
        self.label("ssh-brute-force-source", {"source.ip": ip}, f"spraying#{n}")

    def a_distributed(self, n: int) -> None:
        who = ("carol", "nina", "oscar")[n % 3]
        t = self.at(self.attack_day(), 12)
        for k in range(7):
            self.ssh_fail(t + timedelta(minutes=6 * k), "web-2", who, self.scanner_ip())
        self.label("ssh-distributed-attempts", {"actor.name": who}, f"distributed#{n}")

    def a_success_after_failures(self, n: int) -> None:
        who = ("dave", "peggy", "quinn")[n % 3]
        ip = self.public_ip(None)
        t = self.at(self.attack_day(), 10 + self.r.random() * 6)
        for k in range(6):
            self.ssh_fail(t + timedelta(seconds=20 * k), "web-1", who, ip)
        self.ssh_ok(t + timedelta(seconds=150), "web-1", who, ip, method="password")
        self.label("ssh-success-after-failures", {"source.ip": ip}, f"success_after_failures#{n}")
        self.label("ssh-login-new-source", {"actor.name": who}, f"success_after_failures#{n}")

    def a_new_source(self, n: int) -> None:
        who = ("eve", "rupert", "sybil")[n % 3]
        self.ssh_ok(self.at(self.attack_day(), 11), "web-2", who, self.public_ip(None))
        self.label("ssh-login-new-source", {"actor.name": who}, f"new_source#{n}")

    def a_travel(self, n: int) -> None:
        who = ("frank", "trent", "mike")[n % 3]
        t = self.at(self.attack_day(), 9.5)
        self.ssh_ok(t, "bastion", who, self.homes[who])
        self.ssh_ok(
            t + timedelta(minutes=25),
            "bastion",
            who,
            self.public_ip(("Sydney", "Tokyo", "Sao Paulo")[n % 3]),
        )
        self.label("impossible-travel", {"actor.name": who}, f"travel#{n}")
        self.label("ssh-login-new-source", {"actor.name": who}, f"travel#{n}")

    def a_off_hours(self, n: int) -> None:
        who = ("grace", "laura", "ken")[n % 3]
        self.ssh_ok(self.at(self.attack_day(), 2.5), "web-1", who, self.office[who])
        self.label("off-hours-login", {"actor.name": who}, f"off_hours#{n}")

    def a_root_login(self, n: int) -> None:
        host = ("web-2", "db-1")[n % 2]
        self.ssh_ok(self.at(self.attack_day(), 15), host, "root", "10.0.9.9", method="password")
        self.label("root-login", {"target.host": host}, f"root_login#{n}")

    def a_sudo_failure(self, n: int) -> None:
        host = HOSTS[n % 4]
        t = self.at(self.attack_day(), 13)
        self.syslog(
            t,
            host,
            "sudo",
            "   heidi : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/heidi ; USER=root ; COMMAND=/bin/cat /etc/shadow",
            pid=False,
        )
        self.label(
            "sudo-failure", {"actor.name": "heidi", "target.host": host}, f"sudo_failure#{n}"
        )

    def a_not_in_sudoers(self, n: int) -> None:
        host = HOSTS[(n + 1) % 4]
        t = self.at(self.attack_day(), 14)
        self.syslog(
            t,
            host,
            "sudo",
            "   ivan : user NOT in sudoers ; TTY=pts/2 ; PWD=/home/ivan ; USER=root ; COMMAND=/bin/bash",
            pid=False,
        )
        self.label(
            "sudo-not-in-sudoers",
            {"actor.name": "ivan", "target.host": host},
            f"not_in_sudoers#{n}",
        )

    def a_priv_group(self, n: int) -> None:
        host, group = (("web-1", "sudo"), ("web-2", "docker"), ("db-1", "wheel"))[n % 3]
        t = self.at(self.attack_day(), 16)
        self.syslog(t, host, "usermod", f"add 'mallory' to group '{group}'")
        self.syslog(t, host, "usermod", f"add 'mallory' to shadow group '{group}'")
        self.label(
            "privileged-group-add",
            {"target.host": host, "target.resource": group},
            f"priv_group#{n}",
        )

    def a_account_created(self, n: int) -> None:
        name = f"backdoor{n}"
        t = self.at(self.attack_day(), 17)
        self.syslog(t, "bastion", "useradd", f"new group: name={name}, GID={1100 + n}")
        self.syslog(
            t,
            "bastion",
            "useradd",
            f"new user: name={name}, UID={1100 + n}, GID={1100 + n}, home=/home/{name}, shell=/bin/bash, from=/dev/pts/0",
        )
        self.label(
            "account-created-deleted",
            {"target.host": "bastion", "target.resource": name},
            f"account_created#{n}",
        )

    def a_dormant(self, n: int) -> None:
        if self.s.days < 37:
            return
        who = f"olduser{n}"
        for day in range(3):
            self.ssh_ok(self.at(day, 10), "web-1", who, "10.1.0.99")
        day = self.attack_day(low=35)
        self.ssh_ok(self.at(day, 10), "web-1", who, "10.1.0.99")
        self.label("dormant-account-active", {"actor.name": who}, f"dormant#{n}")

    def a_sensitive_table(self, n: int) -> None:
        t = self.at(self.attack_day(), 15)
        self.pgaudit(
            t, "intern", "READ", "SELECT", "public.credit_cards", "select * from credit_cards"
        )
        self.label(
            "sensitive-table-access",
            {"actor.name": "intern", "target.resource": "public.credit_cards"},
            f"sensitive_table#{n}",
        )

    def a_sensitive_file(self, n: int) -> None:
        host = ("db-1", "web-1")[n % 2]
        self.audit_open(
            self.at(self.attack_day(), 15), host, "mallory", 1066, "/usr/bin/cat", "/etc/shadow"
        )
        self.label(
            "sensitive-file-access",
            {"actor.name": "mallory", "target.host": host},
            f"sensitive_file#{n}",
        )

    def a_k8s_secret(self, n: int) -> None:
        who = ("dev-jane", "dev-tom")[n % 2]
        t = self.at(self.attack_day(), 11)
        self.k8s(
            t,
            who,
            "get",
            "secrets",
            "prod",
            "db-password",
            "kubectl/v1.30.1 (linux/amd64)",
            "10.3.0.7",
        )
        self.label("k8s-secret-read", {"actor.name": who}, f"k8s_secret#{n}")

    def a_destructive_ddl(self, n: int) -> None:
        self.pg(
            self.at(self.attack_day(), 16), "mallory_db", "LOG", "statement: DROP TABLE customers"
        )
        self.label("destructive-ddl", {"actor.name": "mallory_db"}, f"destructive_ddl#{n}")

    def a_mass_delete(self, n: int) -> None:
        self.pg(self.at(self.attack_day(), 16), "intern", "LOG", "statement: DELETE FROM orders;")
        self.label("mass-delete", {"actor.name": "intern"}, f"mass_delete#{n}")

    def a_delete_burst(self, n: int) -> None:
        t = self.at(self.attack_day(), 16)
        for k in range(250):
            self.pg(
                t + timedelta(milliseconds=150 * k),
                "mallory_db",
                "LOG",
                f"statement: DELETE FROM orders WHERE id = {k}",
            )
        self.label("delete-burst", {"actor.name": "mallory_db"}, f"delete_burst#{n}")

    def a_auditd_stop(self, n: int) -> None:
        host = ("db-1", "web-2")[n % 2]
        t = self.at(self.attack_day(), 18)
        self.sudo(t, host, "alice", "/usr/bin/systemctl stop auditd")
        self.label("auditd-stopped", {"target.host": host}, f"auditd_stop#{n}")

    def a_log_cleared(self, n: int) -> None:
        host = ("web-1", "bastion")[n % 2]
        self.sudo(
            self.at(self.attack_day(), 18.5),
            host,
            "alice",
            "/usr/bin/truncate -s 0 /var/log/auth.log",
        )
        self.label("log-cleared", {"target.host": host}, f"log_cleared#{n}")

    def a_silent(self, n: int) -> None:
        if n == 0:
            self.silent_cut["silent"] = self.s.end - timedelta(hours=3)
            self.label("source-silent", {"target.host": "db-1"}, "silent#0")

    def a_baseline(self, n: int) -> None:
        t = self.at(self.attack_day(), 14 + n * 0.0)
        for k in range(1500):
            self.pg(
                t + timedelta(seconds=2 * k),
                "judy",
                "LOG",
                f"statement: select * from customers where id = {k}",
            )
        self.label("activity-above-baseline", {"actor.name": "judy"}, f"baseline#{n}")

    def a_service_interactive(self, n: int) -> None:
        t = self.at(self.attack_day(), 11)
        if n == 0:
            self.ssh_ok(t, "web-1", "deploy", "10.1.0.77", method="password")
            self.label(
                "service-account-interactive", {"actor.name": "deploy"}, "service_interactive#0"
            )
            self.label("ssh-login-new-source", {"actor.name": "deploy"}, "service_interactive#0")
        else:
            sa = "system:serviceaccount:ci:deployer"
            self.k8s(
                t, sa, "get", "pods", "prod", None, "kubectl/v1.30.1 (linux/amd64)", "10.3.0.7"
            )
            self.label(
                "service-account-interactive", {"actor.name": sa}, f"service_interactive#{n}"
            )


def generate(
    *,
    seed: int = 7,
    days: int = 40,
    scale: float = 1.0,
    start: datetime = datetime(2026, 9, 1, tzinfo=UTC),
    attacks: tuple[str, ...] = ATTACKS,
    instances: int = 2,
    background: bool = True,
) -> Scenario:
    """A scenario: ``instances`` of each attack over ``days`` of background."""
    gen = Gen(seed, start, days, scale)
    for name in attacks:
        for n in range(instances):
            gen.attack(name, n)
    if background:
        gen.background()
    return gen.s


def write(scenario: Scenario, directory: Path) -> list[Path]:
    """Write each log file sorted by time (as the system would have), plus labels and GeoIP."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, items in sorted(scenario.files.items()):
        items.sort(key=lambda item: item[0])
        path = directory / name
        path.write_text("".join(line + "\n" for _, line in items), encoding="utf-8")
        # finished files, last written when the scenario ends: ingest reads them to the end
        stamp = scenario.end.timestamp()
        os.utime(path, (stamp, stamp))
        paths.append(path)
    labels = [asdict(label) for label in scenario.labels]
    (directory / "labels.json").write_text(json.dumps(labels, indent=1))
    build_mmdb(scenario.geo, directory / "geoip.mmdb")
    return paths


def build_mmdb(geo: dict[str, tuple[float, float, str, str]], path: Path) -> Path:
    """A MaxMind-format City database of single addresses (mmdb-writer, a dev dependency)."""
    from mmdb_writer import MMDBWriter  # noqa: PLC0415
    from netaddr import IPSet  # noqa: PLC0415

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    for ip, (lat, lon, city, cc) in geo.items():
        writer.insert_network(
            IPSet([f"{ip}/32"]),
            {
                "location": {"latitude": lat, "longitude": lon},
                "city": {"names": {"en": city}},
                "country": {"iso_code": cc, "names": {"en": cc}},
            },
        )
    writer.to_db_file(str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0, help="database load multiplier")
    args = parser.parse_args()
    scenario = generate(seed=args.seed, days=args.days, scale=args.scale)
    paths = write(scenario, args.outdir)
    for p in paths:
        print(f"{p}: {sum(1 for _ in p.open())} lines")
    print(f"{len(scenario.labels)} labels in {args.outdir / 'labels.json'}")


if __name__ == "__main__":
    main()
