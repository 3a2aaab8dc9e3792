"""The sudo parser: commands, refusals, sudo 1.9 JSON, and hostile command lines."""

from __future__ import annotations

import pytest
from auth_golden import context, message, ossec_decoded
from hypothesis import given
from hypothesis import strategies as st

from keeptrail.parsers import sudo
from keeptrail.parsers.base import SyslogMessage
from keeptrail.parsers.detect import parse_line


def test_classic_command() -> None:
    """A plain command line gives actor, target user, tty, pwd and the exact command."""
    e = sudo.parse(
        message("sudo", "alice : TTY=pts/0 ; PWD=/home/x ; USER=root ; COMMAND=/bin/ls -la")
    )
    assert e is not None
    assert (e.category, e.action, e.outcome) == ("privilege", "sudo.command", "success")
    assert (e.actor_name, e.actor_effective_user, e.target_host) == ("alice", "root", "host1")
    assert e.details == {"command": "/bin/ls -la", "tty": "pts/0", "pwd": "/home/x"}


def test_variants_without_tty_and_with_group_env() -> None:
    """The TTY-less sudo 1.9 form and the GROUP=/ENV= fields are understood."""
    e = sudo.parse(message("sudo", "bob : PWD=/ ; USER=root ; COMMAND=/usr/bin/id"))
    assert e is not None
    assert e.details == {"command": "/usr/bin/id", "pwd": "/"}
    text = "bob : TTY=pts/1 ; PWD=/tmp ; USER=www ; GROUP=adm ; ENV=A=1 B=2 ; COMMAND=/bin/true"
    e = sudo.parse(message("sudo", text))
    assert e is not None
    assert e.actor_effective_user == "www"
    assert e.details == {
        "command": "/bin/true",
        "tty": "pts/1",
        "pwd": "/tmp",
        "group": "adm",
        "env": "A=1 B=2",
    }


@pytest.mark.parametrize(
    ("problem", "reason"),
    [
        ("user NOT in sudoers", "not_in_sudoers"),
        ("command not allowed", "command_not_allowed"),
        ("user NOT authorized on host", "not_allowed_on_host"),
        ("a password is required", "password_required"),
        ("2 incorrect password attempts", "bad_password"),
        ("no tty present and no askpass program specified", "other"),
    ],
)
def test_refusals(problem: str, reason: str) -> None:
    """Each refusal text maps to a failure with its reason and medium severity."""
    text = f"eve : {problem} ; TTY=pts/3 ; PWD=/ ; USER=root ; COMMAND=/bin/sh"
    e = sudo.parse(message("sudo", text))
    assert e is not None
    assert (e.outcome, e.reason, e.severity) == ("failure", reason, "medium")
    assert e.details["command"] == "/bin/sh"


def test_command_with_injected_fields_stays_in_command() -> None:
    """A ``; USER=root ;`` inside the command does not change the target user."""
    text = (
        "mallory : TTY=pts/0 ; PWD=/tmp ; USER=nobody ; COMMAND=/bin/echo ; "
        "USER=root ; COMMAND=/bin/sh"
    )
    e = sudo.parse(message("sudo", text))
    assert e is not None
    assert e.actor_effective_user == "nobody"
    assert e.details["command"] == "/bin/echo ; USER=root ; COMMAND=/bin/sh"


def test_hostile_directory_cannot_fake_target_user() -> None:
    """A working directory named ``x ; USER=root`` does not override sudo's own USER field."""
    text = "mallory : TTY=pts/0 ; PWD=/tmp/x ; USER=root ; USER=nobody ; COMMAND=/bin/id"
    e = sudo.parse(message("sudo", text))
    assert e is not None
    assert e.actor_effective_user == "nobody"


def test_user_with_spaces_is_before_first_separator() -> None:
    """The invoking user is everything before the first `` : ``, spaces included."""
    text = "john smith from 1.2.3.4 : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/ls"
    e = sudo.parse(message("sudo", text))
    assert e is not None
    assert e.actor_name == "john smith from 1.2.3.4"
    assert e.source_ip is None


def test_pam_lines_are_left_to_pam() -> None:
    """``pam_unix(sudo:...)`` lines are not sudo's, and the PAM parser takes them."""
    text = "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)"
    assert sudo.parse(message("sudo", text)) is None
    line = f"Nov 19 10:07:55 web1 sudo[2441]: {text}"
    e = parse_line(line, context())
    assert (e.collector_parser, e.action, e.actor_name) == ("pam", "pam.session_open", "root")
    assert e.details["by_user"] == "alice"


def test_sudo_19_json() -> None:
    """sudo 1.9's ``@cee:`` JSON accept and reject records become the same events."""
    accept = (
        '@cee:{"sudo":{"accept":{"submituser":"czanik","command":"/bin/bash","runuser":"root",'
        '"runcwd":"/home/czanik","ttyname":"/dev/pts/0","submitcwd":"/home/czanik",'
        '"runargv":["/bin/bash","-l"]}}}'
    )
    e = sudo.parse(message("sudo", accept))
    assert e is not None
    assert (e.outcome, e.actor_name, e.actor_effective_user) == ("success", "czanik", "root")
    assert e.details == {"command": "/bin/bash -l", "tty": "pts/0", "pwd": "/home/czanik"}
    reject = (
        '@cee:{"sudo":{"reject":{"submituser":"eve","command":"/bin/sh","runuser":"root",'
        '"reason":"command not allowed"}}}'
    )
    e = sudo.parse(message("sudo", reject))
    assert e is not None
    assert (e.outcome, e.reason) == ("failure", "command_not_allowed")
    assert sudo.parse(message("sudo", '@cee:{"sudo":{"accept":{"submituser"')) is None


@pytest.mark.parametrize("number", [5, 31, 32])
def test_matches_ossec_decoder(number: int) -> None:
    """Our fields equal OSSEC's decoded ones (its dstuser is sudo's invoking user)."""
    line, decoded = ossec_decoded(number)
    e = parse_line(line, context())
    assert e.actor_name == decoded["dstuser"]
    assert e.actor_effective_user == decoded["srcuser"]
    assert e.details["pwd"] == decoded["url"]
    assert e.details["command"] == decoded["status"]


def test_unknown_lines_are_none() -> None:
    """Lines sudo writes that are not command records are left unparsed."""
    for text in ("unable to resolve host web1", "", "   ", "alice :", "x : y"):
        assert sudo.parse(message("sudo", text)) is None


@given(st.text(), st.text(max_size=20))
def test_never_raises(text: str, program: str) -> None:
    """Arbitrary text never makes the parser raise."""
    sudo.parse(message(program, text))
    sudo.parse(message("sudo", "a : " + text))
    sudo.parse(message("sudo", "@cee:" + text))


def test_command_injected_through_the_working_directory_is_flagged() -> None:
    """A directory named "a ; COMMAND=…" cannot hide the target user or the real command."""
    msg = SyslogMessage(
        0, "h", "sudo", None,
        "bob : TTY=pts/0 ; PWD=/tmp/a ; COMMAND=/bin/true ; USER=root ; COMMAND=/bin/sh",
    )  # fmt: skip
    event = sudo.parse(msg)
    assert event is not None
    assert (event.actor_name, event.actor_effective_user) == ("bob", "root")
    assert event.details["command"] == "/bin/sh"
    assert event.details["ambiguous"] is True
