"""The shadow-utils parser: who changed which account or group, and how.

Beyond the real samples of the golden file, the lines here follow shadow's ``SYSLOG`` format
strings (shadow-maint/shadow ``src/*.c``), one per kind of change.
"""

from __future__ import annotations

from typing import Any

import pytest
from auth_golden import message
from hypothesis import given
from hypothesis import strategies as st

from keeptrail.parsers import shadow

CASES: list[tuple[str, str, str, str | None, str | None, dict[str, Any]]] = [
    (
        "useradd",
        "new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0",
        "user.create",
        "bob",
        None,
        {"uid": 1001, "gid": 1001, "home": "/home/bob", "shell": "/bin/bash", "tty": "/dev/pts/0"},
    ),
    ("useradd", "new group: name=bob, GID=1001", "group.create", "bob", None, {"gid": 1001}),
    (
        "groupadd",
        "group added to /etc/group: name=ops, GID=1002",
        "group.create",
        "ops",
        None,
        {"file": "/etc/group", "gid": 1002},
    ),
    (
        "groupadd",
        "group added to /etc/gshadow: name=ops",
        "group.create",
        "ops",
        None,
        {"file": "/etc/gshadow"},
    ),
    ("useradd", "add 'bob' to group 'sudo'", "group.member_add", "sudo", None, {"member": "bob"}),
    (
        "usermod",
        "add 'bob' to shadow group 'sudo'",
        "group.member_add",
        "sudo",
        None,
        {"member": "bob", "shadow": True},
    ),
    (
        "usermod",
        "delete 'bob' from group 'sudo'",
        "group.member_remove",
        "sudo",
        None,
        {"member": "bob"},
    ),
    ("userdel", "delete user 'bob'", "user.delete", "bob", None, {}),
    ("userdel", "delete user `bob'", "user.delete", "bob", None, {}),
    (
        "userdel",
        "removed group 'bob' owned by 'bob'",
        "group.delete",
        "bob",
        None,
        {"owner": "bob"},
    ),
    ("groupdel", "group 'ops' removed", "group.delete", "ops", None, {}),
    (
        "groupdel",
        "group 'ops' removed from /etc/group",
        "group.delete",
        "ops",
        None,
        {"file": "/etc/group"},
    ),
    (
        "usermod",
        "change user 'bob' shell from '/bin/sh' to '/bin/bash'",
        "user.modify",
        "bob",
        None,
        {"field": "shell", "old": "/bin/sh", "new": "/bin/bash"},
    ),
    (
        "usermod",
        "change user 'bob' home from '/home/bob' to '/srv/bob'",
        "user.modify",
        "bob",
        None,
        {"field": "home", "old": "/home/bob", "new": "/srv/bob"},
    ),
    (
        "usermod",
        "change user 'bob' UID from '1001' to '0'",
        "user.modify",
        "bob",
        None,
        {"field": "uid", "old": "1001", "new": "0"},
    ),
    (
        "usermod",
        "change user 'bob' GID from '1001' to '0'",
        "user.modify",
        "bob",
        None,
        {"field": "gid", "old": "1001", "new": "0"},
    ),
    (
        "usermod",
        "change user 'bob' expiration from 'never' to '2030-01-01'",
        "user.modify",
        "bob",
        None,
        {"field": "expiry", "old": "never", "new": "2030-01-01"},
    ),
    (
        "usermod",
        "change user name 'bob' to 'robert'",
        "user.modify",
        "bob",
        None,
        {"field": "name", "old": "bob", "new": "robert"},
    ),
    (
        "usermod",
        "lock user 'bob' password",
        "user.modify",
        "bob",
        None,
        {"field": "password", "new": "locked"},
    ),
    (
        "usermod",
        "unlock user 'bob' password",
        "user.modify",
        "bob",
        None,
        {"field": "password", "new": "unlocked"},
    ),
    ("usermod", "change user 'bob' password", "user.password_change", "bob", None, {}),
    (
        "usermod",
        "change 'bob' to 'robert' in group 'sudo'",
        "group.modify",
        "sudo",
        None,
        {"field": "member", "old": "bob", "new": "robert"},
    ),
    (
        "groupmod",
        "group changed in /etc/group (group ops/1002, new name: devops)",
        "group.modify",
        "ops",
        None,
        {"file": "/etc/group", "field": "name", "old": "ops", "new": "devops"},
    ),
    (
        "gpasswd",
        "user bob added by root to group sudo",
        "group.member_add",
        "sudo",
        "root",
        {"member": "bob"},
    ),
    (
        "gpasswd",
        "user bob removed by alice from group sudo in /etc/gshadow",
        "group.member_remove",
        "sudo",
        "alice",
        {"member": "bob", "file": "/etc/gshadow"},
    ),
    (
        "gpasswd",
        "members of group sudo set by root to bob,carol",
        "group.modify",
        "sudo",
        "root",
        {"field": "members", "new": "bob,carol"},
    ),
    (
        "gpasswd",
        "password of group sudo removed by root",
        "group.modify",
        "sudo",
        "root",
        {"field": "password", "new": "removed"},
    ),
    ("passwd", "password for 'bob' changed by 'root'", "user.password_change", "bob", "root", {}),
    (
        "chage",
        "changed password expiry for bob",
        "user.modify",
        "bob",
        None,
        {"field": "password_expiry"},
    ),
    (
        "chsh",
        "changed user 'bob' shell to '/bin/zsh'",
        "user.modify",
        "bob",
        None,
        {"field": "shell", "new": "/bin/zsh"},
    ),
    ("chfn", "changed user 'bob' information", "user.modify", "bob", None, {"field": "gecos"}),
    (
        "userdel",
        "delete 'bob' from shadow group 'sudo'#012",
        "group.member_remove",
        "sudo",
        None,
        {"member": "bob", "shadow": True},
    ),
]


@pytest.mark.parametrize(("program", "text", "action", "resource", "actor", "details"), CASES)
def test_change(
    program: str, text: str, action: str, resource: str, actor: str | None, details: dict[str, Any]
) -> None:
    """Each message names the object changed, the administrator when known, the change."""
    e = shadow.parse(message(program, text))
    assert e is not None
    assert (e.category, e.action, e.outcome, e.severity) == ("account", action, "success", "medium")
    assert (e.target_resource, e.target_resource_type) == (resource, action.partition(".")[0])
    assert e.actor_name == actor
    assert e.details == {"tool": program, **details}


def test_failed_useradd() -> None:
    """``failed adding user`` is a failed creation with reason ``error``."""
    e = shadow.parse(message("useradd", "failed adding user 'ansible', data deleted"))
    assert e is not None
    assert (e.action, e.outcome, e.reason, e.target_resource) == (
        "user.create",
        "failure",
        "error",
        "ansible",
    )


def test_pam_password_change_is_not_shadow() -> None:
    """``pam_unix(passwd:chauthtok)`` lines are left to the PAM parser."""
    assert (
        shadow.parse(message("passwd", "pam_unix(passwd:chauthtok): password changed for bob"))
        is None
    )


@given(st.text(), st.text(max_size=20))
def test_never_raises(text: str, program: str) -> None:
    """Arbitrary text never makes the parser raise."""
    shadow.parse(message(program, text))
    for word in ("new user: ", "group ", "add '", "change user '", "user ", "password of group "):
        shadow.parse(message("usermod", word + text))
