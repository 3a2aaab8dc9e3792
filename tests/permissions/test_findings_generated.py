"""Findings joined with a generated audit history: the expected set is known in advance."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.permissions.history_gen import DAY, NOW, History

from keeptrail.ledger.note import generate_signer
from keeptrail.permissions.findings import Finding, compute_findings
from keeptrail.permissions.findings_config import FindingsConfig
from keeptrail.permissions.model import Account, Entitlement, RosterEntry, Snapshot
from keeptrail.permissions.usage import UsageReader
from keeptrail.store import Store, open_store
from keeptrail.store.sqlite import SQLiteStore

WEB = "linux:web-1"
PG = "postgres:db-1:5432/app"
K8S = "k8s:prod"
SA = "system:serviceaccount:ci:deployer"


def _sudo(user: str, command: str, line: int, *, first_seen: int = NOW - 400 * DAY) -> Entitlement:
    return Entitlement(
        WEB,
        user,
        "user",
        "sudo",
        command,
        f"/etc/sudoers:{line} ({user})",
        True,
        {"runas": "root", "nopasswd": False},
        first_seen,
    )


def _ops(command: str, line: int) -> list[Entitlement]:
    via = f"/etc/sudoers:{line} (%ops)"
    return [
        Entitlement(WEB, who, kind, "sudo", command, via, True, {}, NOW - 400 * DAY)
        for who, kind in (("bob", "user"), ("erin", "user"), ("ops", "group"))
    ]


def _group(
    user: str, group: str, privileged: bool, first_seen: int = NOW - 400 * DAY
) -> Entitlement:
    return Entitlement(
        WEB, user, "user", f"group:{group}", group, "/etc/group", privileged, {}, first_seen
    )


def _human(name: str, uid: int, **kw: object) -> Account:
    return Account(WEB, name, "human", uid=uid, shell="/bin/bash", **kw)  # type: ignore[arg-type]


def web_snapshot() -> Snapshot:
    accounts = (
        _human("alice", 1000, password_changed=NOW - 400 * DAY),
        _human("bob", 1001, password_changed=NOW - 30 * DAY),
        _human("carol", 1002),
        _human("dave", 1003),
        Account(WEB, "deploy", "service", uid=1100, shell="/bin/bash"),
        _human("erin", 1004),
        Account(WEB, "daemon", "system", uid=1, shell="/usr/sbin/nologin"),
        _human("mallory", 1005),
        _human("frank", 1006),
    )
    entitlements = (
        _sudo("alice", "ALL", 20),
        _group("alice", "sudo", True),
        _sudo("bob", "/usr/bin/apt-get update", 21),
        # %ops rules: listed for each member (bob, erin) and for the group, as the collector does
        *_ops("/usr/bin/reboot", 30),  # nobody ran it: one finding for the rule
        *_ops("/usr/bin/systemctl reload nginx", 31),  # erin ran it, bob never: bob only
        _group("bob", "ops", False),
        _group("erin", "ops", False),
        _sudo("dave", "/usr/bin/docker *", 23),
        _sudo("erin", "/usr/bin/systemctl restart nginx", 24, first_seen=NOW - 5 * DAY),
        _group("mallory", "docker", True, first_seen=NOW - 5 * DAY),
        _group("carol", "users", False),
        _group("frank", "users", False),
    )
    return Snapshot("snap-web-2", WEB, "linux", NOW - 3600 * 1_000_000, accounts, entitlements)


def web_previous() -> Snapshot:
    """Eight days earlier: erin had no sudo rule, mallory was not in docker, carol was in adm."""
    current = web_snapshot()
    kept = tuple(
        e
        for e in current.entitlements
        if not e.granted_via.startswith("/etc/sudoers:24 ")
        and not (e.principal == "mallory" and e.privilege == "group:docker")
    )
    extra = (_group("carol", "adm", True),)
    return Snapshot("snap-web-1", WEB, "linux", NOW - 8 * DAY, current.accounts, kept + extra)


def pg_snapshot() -> Snapshot:
    def grant(role: str, privilege: str, table: str) -> Entitlement:
        return Entitlement(
            PG,
            role,
            "role",
            privilege,
            table,
            f"GRANT {privilege} ON {table}",
            False,
            {},
            NOW - 300 * DAY,
        )

    return Snapshot(
        "snap-pg",
        PG,
        "postgres",
        NOW - 3600 * 1_000_000,
        (Account(PG, "app_rw", "service"), Account(PG, "report", "service")),
        (
            grant("app_rw", "SELECT", "public.orders"),
            grant("app_rw", "INSERT", "public.orders"),
            grant("app_rw", "DELETE", "public.orders"),
            grant("report", "SELECT", "public.invoices"),
        ),
    )


def k8s_snapshot() -> Snapshot:
    def rule(privilege: str, scope: str) -> Entitlement:
        return Entitlement(
            K8S,
            SA,
            "serviceaccount",
            privilege,
            scope,
            "rolebinding:ci/deployer (role:ci/deployer)",
            False,
            {},
            NOW - 200 * DAY,
        )

    return Snapshot(
        "snap-k8s",
        K8S,
        "k8s",
        NOW - 3600 * 1_000_000,
        (),
        (
            rule("get pods", "namespace:ci"),
            rule("delete pods", "namespace:ci"),
            rule("* deployments", "namespace:ci"),
            Entitlement(
                K8S,
                "system:masters",
                "group",
                "* *",
                "*",
                "clusterrolebinding:cluster-admin",
                True,
                {},
                NOW - 900 * DAY,
            ),
        ),
    )


def uncovered_snapshot() -> Snapshot:
    return Snapshot(
        "snap-web9",
        "linux:web-9",
        "linux",
        NOW - 3600 * 1_000_000,
        (Account("linux:web-9", "ops", "human", uid=1000, shell="/bin/bash"),),
        (Entitlement("linux:web-9", "ops", "user", "group:wheel", "wheel", "/etc/group", True),),
    )


def history() -> History:
    h = History()
    h.ssh_login("web-1", "alice", 3)
    h.sudo("web-1", "alice", "/usr/bin/systemctl restart nginx", 3, times=5)
    h.sudo("web-1", "alice", "/usr/bin/journalctl -u nginx", 2, times=2)
    h.ssh_login("web-1", "bob", 200)
    h.sudo("web-1", "bob", "/usr/bin/apt-get update", 200)
    h.ssh_login("web-2", "carol", 1)  # another host: carol never used web-1
    for i, ip in enumerate(("10.0.0.11", "10.0.0.12", "10.0.0.13")):
        h.ssh_login("web-1", "deploy", 1 + i, ip=ip)
    h.ssh_login("web-1", "erin", 4)
    h.sudo("web-1", "erin", "/usr/bin/systemctl restart nginx", 4)
    h.sudo("web-1", "erin", "/usr/bin/systemctl reload nginx", 4)
    h.ssh_login("web-1", "mallory", 2)
    h.member_add("web-1", "root", "mallory", "docker", 5.5)
    h.ssh_login("web-1", "frank", 6)
    h.sql("db-1", "app_rw", "SELECT * FROM orders WHERE id = 1", "SELECT", 1, times=3)
    h.sql("db-1", "app_rw", "INSERT INTO public.orders (id) VALUES (2)", "INSERT", 2)
    h.sql("db-1", "report", "SELECT total FROM invoices", "SELECT", 3, table="public.invoices")
    h.k8s(SA, "get", "pods", "ci", 1)
    h.k8s(SA, "patch", "deployments", "ci", 2)
    h.k8s(SA, "get", "pods", "other", 2)  # another namespace: does not use the ci rules
    return h


ROSTER = (
    RosterEntry("e1", True, "alice@example.com", usernames=("alice",)),
    RosterEntry("e2", True, "bob@example.com"),
    RosterEntry("e3", True, "carol@example.com"),
    RosterEntry("e4", True, "dave@example.com"),
    RosterEntry("e5", True, "erin@example.com"),
    RosterEntry("e6", False, "mallory@example.com", "Mallory M", left_at=NOW - 20 * DAY),
    RosterEntry("ops", True, None, usernames=("ops",)),
)

EXPECTED = [
    # linux:web-1
    ("privileged_account", WEB, "alice"),
    ("unused_privilege", WEB, "alice"),  # ALL used for 2 commands: narrow it
    ("stale_password", WEB, "alice"),
    ("privileged_account", WEB, "bob"),
    ("dormant_privileged", WEB, "bob"),
    ("unused_privilege", WEB, "bob"),  # apt-get update: last used 200 days ago
    ("unused_privilege", WEB, "ops"),  # %ops reboot: none of its holders ran it
    ("unused_privilege", WEB, "bob"),  # %ops systemctl: erin ran it, bob never did
    ("never_used", WEB, "carol"),
    ("privileged_account", WEB, "dave"),
    ("never_used", WEB, "dave"),
    ("unused_privilege", WEB, "dave"),
    ("shared_account", WEB, "deploy"),
    ("privileged_account", WEB, "erin"),
    ("privileged_account", WEB, "mallory"),
    ("orphaned_account", WEB, "mallory"),
    ("orphaned_account", WEB, "frank"),
    ("drift", WEB, "erin"),  # gained sudo, unexplained
    ("drift", WEB, "mallory"),  # gained docker, explained by group.member_add
    ("drift", WEB, "carol"),  # lost adm, unexplained
    # postgres
    ("unused_privilege", PG, "app_rw"),  # DELETE on public.orders
    # kubernetes
    ("unused_privilege", K8S, SA),  # delete pods never
    ("unused_privilege", K8S, SA),  # * deployments used for patch only: narrow
    ("privileged_account", K8S, "system:masters"),
    # a host whose logs never reached the store
    ("privileged_account", "linux:web-9", "ops"),
    ("no_audit_coverage", "linux:web-9", "*"),
]


def _compute(store: Store) -> list[Finding]:
    history().write(store)
    config = FindingsConfig(shared_min_sources=4, generic_min_sources=2)
    usage = UsageReader(store, since=NOW - config.window_us, until=NOW)
    return compute_findings(
        [web_snapshot(), pg_snapshot(), k8s_snapshot(), uncovered_snapshot()],
        usage=usage,
        config=config,
        now=NOW,
        roster=ROSTER,
        previous={WEB: web_previous()},
    )


@pytest.fixture
def findings(store: SQLiteStore) -> list[Finding]:
    return _compute(store)


def test_exactly_the_expected_findings(findings: list[Finding]) -> None:
    """Every dormant, unused, shared, orphaned, stale and drifted right is found; nothing else."""
    got = sorted((f.kind, f.system, f.principal) for f in findings)
    assert got == sorted(EXPECTED)


def _one(findings: list[Finding], kind: str, principal: str, text: str = "") -> Finding:
    found = [
        f for f in findings if f.kind == kind and f.principal == principal and text in f.reason
    ]
    assert len(found) == 1, [f.reason for f in findings if f.principal == principal]
    return found[0]


def test_narrowing_recommendation_lists_the_commands_used(findings: list[Finding]) -> None:
    """sudo ALL used for two commands is narrowed to exactly those two, with event evidence."""
    f = _one(findings, "unused_privilege", "alice")
    assert f.recommendation == (
        "narrow `ALL` to the 2 commands used: `/usr/bin/journalctl -u nginx`, "
        "`/usr/bin/systemctl restart nginx`"
    )
    assert "(5x)" in " ".join(e.note for e in f.evidence)
    assert {e.kind for e in f.evidence} == {"file", "event"}


def test_dormant_and_unused_carry_their_evidence(
    findings: list[Finding], store: SQLiteStore
) -> None:
    """The dormant finding names the last action's event, which the store returns."""
    f = _one(findings, "dormant_privileged", "bob")
    events = [e for e in f.evidence if e.kind == "event"]
    assert len(events) == 1
    last = store.get(events[0].ref)
    assert last is not None
    assert last.actor_name == "bob"
    assert last.time == NOW - 200 * DAY
    reasons = sorted(
        x.reason for x in findings if x.kind == "unused_privilege" and x.principal == "bob"
    )
    assert ["`/usr/bin/apt-get update`" in r for r in reasons].count(True) == 1
    assert ["while other holders did" in r for r in reasons].count(True) == 1


def test_a_group_rule_is_judged_once(findings: list[Finding]) -> None:
    """A %group rule nobody used is one finding naming its holders, not one per member."""
    rule = _one(findings, "unused_privilege", "ops")
    assert rule.reason.startswith("none of its 2 holders (bob, erin) used the sudo rule")
    assert rule.recommendation == "remove the rule"
    bob = _one(findings, "unused_privilege", "bob", "while other holders did")
    assert bob.recommendation == "remove bob from %ops"
    assert bob.severity == "low"


def test_drift_says_whether_an_audited_change_explains_it(findings: list[Finding]) -> None:
    """mallory's docker membership is explained by group.member_add; erin's sudo is not."""
    mallory = _one(findings, "drift", "mallory")
    assert "explained by the audited group.member_add" in mallory.reason
    assert mallory.severity == "low"
    erin = _one(findings, "drift", "erin")
    assert "no audited change" in erin.reason
    assert erin.severity == "high"
    carol = _one(findings, "drift", "carol")
    assert "lost" in carol.reason
    assert carol.severity == "low"


def test_database_and_kubernetes_recommendations(findings: list[Finding]) -> None:
    """Unused grants get a REVOKE; a wildcard k8s rule is narrowed to the verbs seen."""
    pg = _one(findings, "unused_privilege", "app_rw")
    assert pg.recommendation == "REVOKE DELETE ON public.orders FROM app_rw"
    narrow = _one(findings, "unused_privilege", SA, "wildcard")
    assert narrow.recommendation == "narrow `* deployments` to: `patch deployments`"
    _one(findings, "unused_privilege", SA, "`delete pods`")


def test_orphans_and_shared(findings: list[Finding]) -> None:
    """A leaver's account is high, an unknown owner medium; deploy is shared across 3 sources."""
    assert _one(findings, "orphaned_account", "mallory").severity == "high"
    assert _one(findings, "orphaned_account", "frank").severity == "medium"
    shared = _one(findings, "shared_account", "deploy")
    assert "3 different sources" in shared.reason


@pytest.mark.postgres
def test_same_findings_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """The PostgreSQL store answers the usage questions exactly as SQLite does."""
    from keeptrail.store.postgres import PostgresStore  # noqa: PLC0415

    store = PostgresStore(postgres_url, data_dir=tmp_path, signer=generate_signer("kt/test/0"))
    try:
        found = _compute(store)
    finally:
        store.close()
    assert sorted((f.kind, f.system, f.principal) for f in found) == sorted(EXPECTED)


REAL_SUDO = """\
Apr 27 15:22:23 niban sudo:     dcid : TTY=pts/4 ; PWD=/home/dcid ; USER=root ; COMMAND=/usr/bin/tail /var/log/snort/alert.fast
Feb 4 10:43:02 niban sudo: dcid : TTY=pts/4 ; PWD=/home/dcid ; USER=root ; COMMAND=/bin/ls
Feb 4 10:44:00 niban sudo: dcid : TTY=pts/4 ; PWD=/home/dcid ; USER=root ; COMMAND=/bin/chmod 777 /home/dcid/test1
Feb 1 14:39:16 nogan sudo: test2 : 3 incorrect password attempts ; TTY=pts/4 ; PWD=/home/test2 ; USER=root ; COMMAND=/bin/ls
May 26 20:16:17 lili sudo: dcid : TTY=pts/1 ; PWD=/home/dcid ; USER=root ; COMMAND=/usr/bin/vi /etc/sudoers
"""  # noqa: E501  (real lines from tests/data/ossec/contrib/logtesting, OSSEC's test logs)


def test_real_sudo_lines_through_the_parser(tmp_path: Path) -> None:
    """Lines read by `keeptrail ingest` feed the sudo findings: ALL narrowed to what dcid ran."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    log = tmp_path / "auth.log"
    log.write_text(REAL_SUDO)
    mtime = 1_780_000_000  # 2026-05-28: the BSD lines' year is taken from it
    os.utime(log, (mtime, mtime))
    data = tmp_path / "data"
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data), "TZ": "UTC"}
    ingest = [sys.executable, "-m", "keeptrail", "ingest", str(log)]
    done = subprocess.run(ingest, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    system = "linux:niban"
    rights = (
        Entitlement(system, "dcid", "user", "sudo", "ALL", "/etc/sudoers:12 (dcid)", True),
        Entitlement(
            system, "dcid", "user", "sudo", "/usr/bin/vi /etc/sudoers", "/etc/sudoers:13", True
        ),
    )
    snapshot = Snapshot("s", system, "linux", NOW, (_human("dcid", 1000),), rights)
    store = open_store(data, readonly=True)
    try:
        usage = UsageReader(store, since=NOW - 120 * DAY, until=NOW)
        found = compute_findings([snapshot], usage=usage, config=FindingsConfig(), now=NOW)
    finally:
        store.close()
    unused = {f.recommendation for f in found if f.kind == "unused_privilege"}
    assert unused == {
        "narrow `ALL` to the 3 commands used: `/bin/chmod 777 /home/dcid/test1`, `/bin/ls`, "
        "`/usr/bin/tail /var/log/snort/alert.fast`",
        "remove the rule",  # vi /etc/sudoers was run on another host (lili), never on niban
    }
