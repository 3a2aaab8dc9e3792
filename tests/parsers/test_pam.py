"""The PAM parser: markers in every position, key=value fields, sessions, lock-outs."""

from __future__ import annotations

import ipaddress
import json
import re

import pytest
from auth_golden import DATA, context, message, ossec_decoded
from hypothesis import given
from hypothesis import strategies as st

from keeptrail.netaddr import is_hostname, split_remote
from keeptrail.parsers import pam
from keeptrail.parsers.detect import parse_line

FAIL = "authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={rhost}  user={user}"


def test_auth_failure_fields() -> None:
    """All key=value fields are read, empty values allowed, the IP goes to source.ip."""
    text = "pam_unix(sshd:auth): " + FAIL.format(rhost="1.2.3.4", user="root")
    e = pam.parse(message("sshd", text))
    assert e is not None
    assert (e.category, e.action, e.outcome, e.reason) == (
        "authentication",
        "pam.auth",
        "failure",
        "bad_password",
    )
    assert (e.actor_name, e.source_ip, e.source_host, e.target_system) == (
        "root",
        "1.2.3.4",
        None,
        "sshd",
    )
    assert e.details == {
        "module": "pam_unix",
        "facility": "auth",
        "tty": "ssh",
        "uid": 0,
        "euid": 0,
    }


@pytest.mark.parametrize(
    ("rhost", "ip", "host"),
    [
        ("10.0.0.1", "10.0.0.1", None),
        ("2001:db8::1", "2001:db8::1", None),
        ("::ffff:192.0.2.7", "192.0.2.7", None),
        ("host.example.org", None, "host.example.org"),
        ("1.2.3.4 rhost=5.6.7.8", None, None),
        ("$(reboot)", None, None),
        ("999.1.1.1", None, None),
    ],
)
def test_rhost_is_trusted_only_when_clean(rhost: str, ip: str | None, host: str | None) -> None:
    """rhost becomes source.ip (valid IP) or source.host (clean name); garbage is refused."""
    e = pam.parse(message("sshd", "pam_unix(sshd:auth): " + FAIL.format(rhost=rhost, user="bob")))
    assert e is not None
    assert (e.source_ip, e.source_host) == (ip, host)


def test_hostile_ruser_cannot_move_source() -> None:
    """A ruser containing `` rhost=1.2.3.4`` does not become the source."""
    text = (
        "pam_unix(login:auth): authentication failure; logname= uid=0 euid=0 "
        "tty= ruser=x rhost=6.6.6.6 rhost=  user=bob"
    )
    e = pam.parse(message("login", text))
    assert e is not None
    assert e.source_ip is None


def test_user_with_spaces() -> None:
    """A user name with spaces is kept whole and does not move the source."""
    e = pam.parse(
        message("sshd", "pam_unix(sshd:auth): " + FAIL.format(rhost="", user="a b from 1.2.3.4"))
    )
    assert e is not None
    assert (e.actor_name, e.source_ip) == ("a b from 1.2.3.4", None)


@pytest.mark.parametrize(
    ("text", "action", "outcome", "reason", "actor"),
    [
        (
            "pam_unix(sshd:auth): check pass; user unknown",
            "pam.auth",
            "failure",
            "invalid_user",
            None,
        ),
        (
            "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
            "pam.session_open",
            "success",
            None,
            "root",
        ),
        (
            "pam_unix(sshd:session): session closed for user alice",
            "pam.session_close",
            "success",
            None,
            "alice",
        ),
        (
            "pam_unix(passwd:chauthtok): password changed for bob",
            "user.password_change",
            "success",
            None,
            None,
        ),
        (
            "pam_unix(sshd:account): account bob has expired (account expired)",
            "pam.account",
            "failure",
            "denied",
            "bob",
        ),
        (
            "pam_unix(sshd:account): expired password for user bob (password aged)",
            "pam.account",
            "failure",
            "denied",
            "bob",
        ),
        (
            "pam_tally2(sshd:auth): user root (0) tally 4, deny 3",
            "pam.account",
            "failure",
            "account_locked",
            "root",
        ),
        (
            "pam_faillock(sshd:auth): Consecutive login failures for user root "
            "account temporarily locked",
            "pam.account",
            "failure",
            "account_locked",
            "root",
        ),
        (
            "pam_sss(sshd:auth): authentication success; logname= uid=0 euid=0 "
            "tty=ssh ruser= rhost=10.1.1.1 user=carol",
            "pam.auth",
            "success",
            None,
            "carol",
        ),
        (
            "pam_sss(sshd:auth): authentication failure; logname= uid=0 euid=0 "
            "tty=ssh ruser= rhost=10.1.1.1 user=carol",
            "pam.auth",
            "failure",
            "bad_password",
            "carol",
        ),
        (
            "pam_ldap(sshd:auth): authentication failure; user=dave",
            "pam.auth",
            "failure",
            "bad_password",
            "dave",
        ),
        (
            "pam_krb5(sshd:auth): authentication succeeds for 'erin' (erin@EXAMPLE.ORG)",
            "pam.auth",
            "success",
            None,
            "erin",
        ),
        (
            "pam_krb5(sshd:auth): authentication fails for 'erin' "
            "(erin@EXAMPLE.ORG): Preauthentication failed (Cannot read password)",
            "pam.auth",
            "failure",
            "bad_password",
            "erin",
        ),
        (
            "gdm-password[1600]: pam_unix(gdm-password:session): session opened "
            "for user frank(uid=1000) by (uid=0)",
            "pam.session_open",
            "success",
            None,
            "frank",
        ),
        (
            "pam_unix(sudo:auth): auth could not identify password for [gina]",
            "pam.auth",
            "failure",
            "pam_failure",
            "gina",
        ),
    ],
)
def test_messages(
    text: str, action: str, outcome: str, reason: str | None, actor: str | None
) -> None:
    """Each standard PAM wording maps to its action, outcome, reason and actor."""
    e = pam.parse(message("pam", text))
    assert e is not None
    assert (e.action, e.outcome, e.reason, e.actor_name) == (action, outcome, reason, actor)


def test_session_opened_by() -> None:
    """``by Y(uid=M)`` is recorded as who opened the session, with both uids."""
    e = pam.parse(
        message(
            "sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)"
        )
    )
    assert e is not None
    assert (e.actor_name, e.actor_uid) == ("root", 0)
    assert (e.details["by_user"], e.details["by_uid"]) == ("alice", 1000)


def test_password_change_target() -> None:
    """A PAM password change names the account changed as target.resource."""
    e = pam.parse(message("passwd", "pam_unix(passwd:chauthtok): password changed for bob"))
    assert e is not None
    assert (e.category, e.target_resource, e.target_resource_type, e.target_system) == (
        "account",
        "bob",
        "user",
        "passwd",
    )


def test_more_failures_counts_attempts() -> None:
    """``N more authentication failures`` records N + 1 attempts."""
    text = (
        "pam_unix(sshd:auth): 2 more authentication failures; logname= uid=0 "
        "euid=0 tty=ssh ruser= rhost=10.0.3.1  user=root"
    )
    e = pam.parse(message("sshd", text))
    assert e is not None
    assert (e.details["attempts"], e.source_ip) == (3, "10.0.3.1")


def test_fallback_from_any_program() -> None:
    """A PAM line from a program without a parser still becomes a PAM event."""
    line = "Nov 11 22:46:29 localhost vsftpd: pam_unix(vsftpd:auth): check pass; user unknown"
    e = parse_line(line, context())
    assert (e.collector_parser, e.action, e.target_system) == ("pam", "pam.auth", "vsftpd")


def test_matches_ossec_decoder() -> None:
    """The source IP equals the one OSSEC decoded from the same line."""
    line, decoded = ossec_decoded(3)
    assert parse_line(line, context()).source_ip == decoded["srcip"]


def test_matches_fail2ban_hosts() -> None:
    """The remote host of each fail2ban pam-generic sample is the one fail2ban expects."""
    expected_host: str | None = None
    checked = 0
    for raw in (DATA / "fail2ban" / "pam-generic").read_text().splitlines():
        m = re.match(r"# failJSON: (.*)", raw)
        if m is not None:
            expected_host = json.loads(m[1]).get("host")
            continue
        if not raw or raw.startswith("#"):
            continue
        e = parse_line(raw, context())
        assert e.action == "pam.auth"
        if expected_host is not None:
            assert expected_host in (e.source_ip, e.source_host)
            checked += 1
        expected_host = None
    assert checked == 6


def test_not_pam() -> None:
    """Messages merely mentioning ``pam_`` mid-sentence, or unknown PAM texts, are None."""
    for text in (
        "error: something about pam_foo went wrong",
        "pam_systemd(sshd:session): Failed to create session: No such file",
        "pam_unix(sshd:auth): conversation failed",
        "",
    ):
        assert pam.parse(message("sshd", text)) is None


@given(st.text(), st.text(max_size=30))
def test_never_raises(text: str, program: str) -> None:
    """Arbitrary text never makes the parser raise."""
    pam.parse(message(program, text))
    pam.parse(message("sshd", "pam_unix(sshd:auth): " + text))
    pam.parse(message("sshd", "pam_unix(sshd:auth): authentication failure; " + text))
    pam.parse(message("su(pam_unix)", text))


@given(st.from_regex(r"(::ffff:)?[0-9a-f.:]{1,20}", fullmatch=True))
def test_source_ip_is_always_a_valid_address(text: str) -> None:
    """Whatever rhost holds, source.ip is set only to an address ``ipaddress`` accepts."""
    ip, _ = split_remote(text)
    if ip is not None:
        ipaddress.ip_address(ip)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("db-1.example.com", True), ("host_1", True), ("a", True), ("x" * 253, True),
     ("x" * 254, False), ("-lead", False), ("trail-", False), ("trail.", False),
     ("10.0.0.999", False), ("has space", False), ("rhost=x", False), ("ünï", False),
     ("", False)],
)  # fmt: skip
def test_one_hostname_rule_for_every_parser(text: str, expected: bool) -> None:
    """PAM, PostgreSQL, MySQL, MariaDB and web logs share netaddr.is_hostname."""
    assert is_hostname(text) is expected
    assert split_remote(text) == (None, text if expected else None)
