"""Converted SigmaHQ rules against real log lines: ingested, then searched and replayed.

Each converted ``match`` is run as a search over a real store (the SQL path) and each rule is
replayed through the engine (the predicate path), so both agree with what the Sigma rule means.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from keeptrail.cli.main import app
from keeptrail.detect.rules import Rule, parse_rule
from keeptrail.detect.runtime import hunt
from keeptrail.detect.sigma import convert_path
from keeptrail.query.parse import parse
from keeptrail.store import Store, open_store

SIGMA = Path(__file__).parent.parent / "data" / "sigma"
LOGS = SIGMA / "logs"


@pytest.fixture(scope="module")
def rules() -> dict[str, dict[str, Any]]:
    return {c.rule_id: c.document for c in convert_path(SIGMA).converted}


def _ingest(data_dir: Path, *files: Path) -> None:
    for f in files:
        result = CliRunner().invoke(
            app, ["ingest", str(f), "--data-dir", str(data_dir), "--timezone", "UTC", "-q"]
        )
        assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    data_dir = tmp_path_factory.mktemp("sigma") / "data"
    _ingest(
        data_dir,
        LOGS / "auth.log",
        LOGS / "auditd.log",
        LOGS / "auditd-exec.log",
        LOGS / "access.log",
        LOGS / "k8s-exec.json",
        LOGS / "k8s-create-secret.json",
    )
    s = open_store(data_dir)
    yield s
    s.close()


def _raw_matches(store: Store, query: str) -> list[str]:
    page = store.search(parse(query), limit=100)
    return sorted(e.raw for e in page.events if e.category != "alert")


@pytest.mark.parametrize(
    ("rule_id", "expected"),
    [
        (
            "sigma-e76b413a-83d0-4b94-8e4c-85db4a5b8bdc",  # suspicious sshd errors
            [
                "Feb 14 14:34:15 someserver sshd[1234]: Corrupted MAC on input. [preauth]",
                "Nov 22 19:24:55 server sshd[4046]: Corrupted MAC on input.",
            ],
        ),
        (
            "sigma-0ac15ec3-d24f-4246-aa2a-3077bb1cf90e",  # privileged user created
            [
                "Dec 21 17:13:54 testserver useradd[1337]: new user: name=john, UID=0, GID=0, "
                "home=/home/john, shell=/bin/bash",
                "Dec 21 17:30:22 testserver useradd[1337]: new user: name=butter4, UID=1000, "
                "GID=27, home=/home/butter4, shell=/bin/bash",
            ],
        ),
        (
            "sigma-7fcc54cb-f27d-4684-84b7-436af096f858",  # sudo CVE-2019-14287
            [
                "Oct 15 10:00:00 niban sudo:     dcid : TTY=pts/4 ; PWD=/home/dcid ; "
                "USER=#-1 ; COMMAND=/usr/bin/id"
            ],
        ),
        ("sigma-759d0d51-bc99-4b5e-9add-8f5b2c8e7512", []),  # useradd syscall: none here
        (
            "sigma-7745c2ea-24a5-4290-b680-04359cb84b35",  # path traversal
            [
                '203.0.113.7 - - [1/Apr/2014:00:00:02 -0500] "GET /index.php?page=../../../etc/'
                'passwd HTTP/1.1" 200 512 "-" "curl/8.5.0"'
            ],
        ),
        (
            "sigma-953d460b-f810-420a-97a2-cfca4c98e602",  # .git/ probing
            [
                '203.0.113.7 - - [1/Apr/2014:00:00:03 -0500] "GET /.git/config HTTP/1.1" 404 '
                '162 "-" "curl/8.5.0"'
            ],
        ),
        ("sigma-eeb3e9e1-b685-44e4-9232-6bb701f925b5", []),  # secrets listed: only a create
    ],
)
def test_converted_query_matches_the_right_lines(
    store: Store, rules: dict[str, dict[str, Any]], rule_id: str, expected: list[str]
) -> None:
    assert _raw_matches(store, rules[rule_id]["match"]) == sorted(expected)


def test_auditd_config_change_and_pod_exec(store: Store, rules: dict[str, dict[str, Any]]) -> None:
    audit_change = store.search(parse(rules["sigma-977ef627-4539-4875-adf4-ed8f780c4922"]["match"]))
    assert [e.target_resource for e in audit_change.events] == [
        "/etc/audit/rules.d/.audit.rules.swp"
    ]
    pod_exec = store.search(parse(rules["sigma-a1b0ca4e-7835-413e-8471-3ff2b8a66be6"]["match"]))
    assert [e.target_resource for e in pod_exec.events] == [
        "default/pods/nginx-deployment-7998647bdf-phvq7/exec"
    ]


def test_process_creation_maps_image_and_command_line(
    store: Store, rules: dict[str, dict[str, Any]]
) -> None:
    rule = rules["sigma-0f79c4d2-4e1f-4683-9c36-b5469a665e06"]  # cat /etc/sudoers
    page = store.search(parse(rule["match"]))
    assert [e.details.get("command") for e in page.events] == ["cat /etc/sudoers"]


def _loaded(doc: dict[str, Any]) -> Rule:
    return parse_rule(doc, source="sigma-test")


def test_event_count_correlation_fires_once_per_public_source(
    tmp_path: Path, rules: dict[str, dict[str, Any]]
) -> None:
    # the format of the beats line (auth.log line 3), repeated: 60 from a public address,
    # 60 from a private one (excluded by the rule) and 49 from another public one (too few)
    lines: list[str] = []
    for i, (ip, n) in enumerate((("216.160.83.57", 60), ("10.1.2.3", 60), ("198.51.100.9", 49))):
        for k in range(n):
            second = k % 60
            minute = 35 + (k // 60) + i
            lines.append(
                f"Feb 20 08:{minute:02d}:{second:02d} slave22 sshd[{5774 + k}]: Failed password "
                f"for root from {ip} port {29160 + k} ssh2"
            )
    log = tmp_path / "brute.log"
    log.write_text("\n".join(lines) + "\n")
    data_dir = tmp_path / "data"
    _ingest(data_dir, log)
    rule = _loaded(rules["sigma-f55634e2-baa3-489b-bbce-0c9818cf62ee"])
    store = open_store(data_dir)
    try:
        result = hunt(store, [rule])
    finally:
        store.close()
    assert [a.key for a in result.alerts] == [
        {"source.ip": "216.160.83.57", "target.host": "slave22"}
    ]


def test_count_by_aggregation_fires_on_four_users_from_one_rhost(
    tmp_path: Path, rules: dict[str, dict[str, Any]]
) -> None:
    # the format of the ossec vsftpd PAM line (auth.log line 9), with user= varied
    lines = [
        f"Nov 11 22:46:{10 + i:02d} localhost vsftpd: pam_unix(vsftpd:auth): authentication "
        f"failure; logname= uid=0 euid=0 tty= ruser= rhost={rhost} user={user}"
        for i, (rhost, user) in enumerate(
            [("1.2.3.4", u) for u in ("alice", "bob", "carol", "dave", "alice")]
            + [("5.6.7.8", u) for u in ("alice", "bob", "carol")]
        )
    ]
    log = tmp_path / "spray.log"
    log.write_text("\n".join(lines) + "\n")
    data_dir = tmp_path / "data"
    _ingest(data_dir, log)
    rule = _loaded(rules["sigma-fc947f8e-ea81-4b14-9a7b-13f888f94e18"])
    store = open_store(data_dir)
    try:
        result = hunt(store, [rule])
    finally:
        store.close()
    assert [a.key for a in result.alerts] == [{"source.ip": "1.2.3.4"}]
