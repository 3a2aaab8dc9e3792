"""The su parser: util-linux, shadow, BSD, Solaris and IRIX forms."""

from __future__ import annotations

import pytest
from auth_golden import context, message
from hypothesis import given
from hypothesis import strategies as st

from keeptrail.parsers import su
from keeptrail.parsers.detect import parse_line


@pytest.mark.parametrize(
    ("text", "outcome", "user", "to", "tty"),
    [
        ("(to root) alice on pts/0", "success", "alice", "root", "pts/0"),
        ("FAILED SU (to root) alice on pts/0", "failure", "alice", "root", "pts/0"),
        ("Successful su for root by alice", "success", "alice", "root", None),
        ("+ pts/0 alice:root", "success", "alice", "root", "pts/0"),
        ("- pts/0 alice:root", "failure", "alice", "root", "pts/0"),
        ("+ pts/4 dcid-root", "success", "dcid", "root", "pts/4"),
        ("BAD SU alice to root on /dev/pts/0", "failure", "alice", "root", "pts/0"),
        ("alice to root on /dev/ttyp1", "success", "alice", "root", "ttyp1"),
        ("'su root' succeeded for alice on /dev/pts/3", "success", "alice", "root", "pts/3"),
        ("'su root' failed for alice on /dev/pts/3", "failure", "alice", "root", "pts/3"),
        ("failed: ttyq4 changing from ldap to root", "failure", "ldap", "root", "ttyq4"),
        ("Authentication failed for root", "failure", None, "root", None),
        ("pam_authenticate: Authentication failure", "failure", None, None, None),
    ],
)
def test_forms(text: str, outcome: str, user: str | None, to: str | None, tty: str | None) -> None:
    """Each real su wording gives the switching user, the target and the verdict."""
    e = su.parse(message("su", text))
    assert e is not None
    assert (e.category, e.action, e.outcome) == ("privilege", "su.switch", outcome)
    assert (e.actor_name, e.actor_effective_user, e.details.get("tty")) == (user, to, tty)
    assert (e.reason == "bad_password") == (outcome == "failure")


def test_other_pam_error_is_pam_failure() -> None:
    """A ``pam_authenticate`` error other than a bad password keeps its text."""
    e = su.parse(
        message("su", "pam_authenticate: User not known to the underlying authentication module")
    )
    assert e is not None
    assert (e.outcome, e.reason) == ("failure", "pam_failure")


def test_user_with_spaces_and_fake_source() -> None:
    """A user name with spaces and `` from 1.2.3.4`` stays a name, never a source."""
    e = su.parse(message("su", "(to root) evil user from 1.2.3.4 on pts/0"))
    assert e is not None
    assert (e.actor_name, e.source_ip, e.source_host) == ("evil user from 1.2.3.4", None, None)


def test_old_pam_tag_goes_to_pam() -> None:
    """``su(pam_unix)`` lines are PAM lines: the requesting user is ruser, the target user."""
    line = (
        "Apr 27 15:22:23 niban su(pam_unix)[2298]: authentication failure; "
        "logname= uid=1342 euid=0 tty= ruser=dcid rhost=  user=root"
    )
    e = parse_line(line, context())
    assert (e.action, e.outcome, e.actor_name, e.actor_effective_user) == (
        "pam.auth",
        "failure",
        "dcid",
        "root",
    )


def test_pam_session_lines_are_not_su() -> None:
    """``pam_unix(su:session)`` lines are left to the PAM parser."""
    assert (
        su.parse(
            message("su", "pam_unix(su:session): session opened for user root by alice(uid=1000)")
        )
        is None
    )


@given(st.text(), st.text(max_size=20))
def test_never_raises(text: str, program: str) -> None:
    """Arbitrary text never makes the parser raise."""
    su.parse(message(program, text))
    for prefix in ("(to ", "+ ", "- ", "BAD SU ", "'su ", "failed: "):
        su.parse(message("su", prefix + text))
