"""The systemd-logind parser: sessions and power events."""

from __future__ import annotations

import pytest
from auth_golden import DATA, context, message
from hypothesis import given
from hypothesis import strategies as st

from keeptrail.parsers import logind
from keeptrail.parsers.detect import parse_line


@pytest.mark.parametrize(
    ("text", "action", "session", "user"),
    [
        ("New session 3 of user root.", "logind.session_open", "3", "root"),
        ("New session c1 of user gdm.", "logind.session_open", "c1", "gdm"),
        (
            "New session '2' of user 'alice' with class 'user' and type 'tty'.",
            "logind.session_open",
            "2",
            "alice",
        ),
        ("Removed session 3.", "logind.session_close", "3", None),
        ("Removed session c12.", "logind.session_close", "c12", None),
        (
            "Session 5 logged out. Waiting for processes to exit.",
            "logind.session_logout",
            "5",
            None,
        ),
    ],
)
def test_sessions(text: str, action: str, session: str, user: str | None) -> None:
    """Session lines carry the session id in actor.session and details.session."""
    e = logind.parse(message("systemd-logind", text))
    assert e is not None
    assert (e.category, e.action, e.outcome) == ("session", action, "success")
    assert (e.actor_session, e.details["session"], e.actor_name) == (session, session, user)


def test_new_session_class_and_type() -> None:
    """systemd 255's class and type are kept."""
    e = logind.parse(
        message(
            "systemd-logind", "New session '2' of user 'alice' with class 'user' and type 'tty'."
        )
    )
    assert e is not None
    assert (e.details["class"], e.details["type"]) == ("user", "tty")


@pytest.mark.parametrize(
    ("text", "event"),
    [
        ("System is powering down.", "power_off"),
        ("Power key pressed.", "power_key"),
        ("Lid closed.", "lid_closed"),
    ],
)
def test_power(text: str, event: str) -> None:
    """Power and seat events become ``logind.power`` with the event kind."""
    e = logind.parse(message("systemd-logind", text))
    assert e is not None
    assert (e.action, e.actor_type, e.details) == ("logind.power", "system", {"event": event})


def test_session_ids_join_across_lines() -> None:
    """In a real excerpt, each opened logind session is later removed under the same id."""
    events = [
        parse_line(line, context())
        for line in (DATA / "crmsh" / "hb_report_session_excerpt.log").read_text().splitlines()
    ]
    opened = [e.actor_session for e in events if e.action == "logind.session_open"]
    closed = [e.actor_session for e in events if e.action == "logind.session_close"]
    assert (opened, closed) == (["3", "4"], ["3"])


def test_other_lines_are_none() -> None:
    """Other logind chatter is left unparsed."""
    for text in (
        "New seat seat0.",
        "Watching system buttons on /dev/input/event0 (Power Button)",
        "Removed session .",
        "New session 3 of user",
    ):
        assert logind.parse(message("systemd-logind", text)) is None


@given(st.text(), st.text(max_size=20))
def test_never_raises(text: str, program: str) -> None:
    """Arbitrary text never makes the parser raise."""
    logind.parse(message(program, text))
    for prefix in ("New session ", "Removed session ", "Session "):
        logind.parse(message("systemd-logind", prefix + text))
