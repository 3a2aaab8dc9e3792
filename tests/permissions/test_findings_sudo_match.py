"""sudoers command specifications against the command lines sudo logs (sudoers(5) semantics)."""

from __future__ import annotations

import pytest

from keeptrail.permissions.sudo_match import list_matches, parse_command_list


@pytest.mark.parametrize(
    ("spec", "command", "expected"),
    [
        ("ALL", "/bin/anything --at all", True),
        ("/usr/bin/systemctl", "/usr/bin/systemctl restart nginx", True),
        ("/usr/bin/systemctl", "/usr/bin/systemctlx", False),
        ("/usr/bin/systemctl restart nginx", "/usr/bin/systemctl restart nginx", True),
        ("/usr/bin/systemctl restart nginx", "/usr/bin/systemctl restart sshd", False),
        ("/usr/bin/systemctl restart *", "/usr/bin/systemctl restart sshd", True),
        ('/usr/bin/passwd ""', "/usr/bin/passwd", True),
        ('/usr/bin/passwd ""', "/usr/bin/passwd root", False),
        ("/usr/sbin/", "/usr/sbin/reboot", True),
        ("/usr/sbin/", "/usr/sbin/x/y", False),
        ("/usr/bin/*", "/usr/bin/id", True),
        ("sudoedit /etc/hosts", "sudoedit /etc/hosts", True),
        ("sudoedit /etc/hosts", "sudoedit /etc/shadow", False),
        ("ALL, !/usr/bin/su", "/usr/bin/su -", False),
        ("ALL, !/usr/bin/su", "/usr/bin/id", True),
        ("!/usr/bin/su, ALL", "/usr/bin/su -", True),  # the last match decides, as in sudo
        ("NOPASSWD: /usr/bin/id", "/usr/bin/id -u", True),
        ("(root) NOPASSWD: /usr/bin/id", "/usr/bin/id", True),
        ("/usr/bin/echo a\\, b", "/usr/bin/echo a, b", True),
        ("!!/usr/bin/id", "/usr/bin/id", True),
    ],
)
def test_command_lists(spec: str, command: str, expected: bool) -> None:
    """Each specification form matches exactly the commands sudo would let it run."""
    assert list_matches(parse_command_list(spec), command) is expected


def test_items_keep_their_form() -> None:
    """Parsed items say whether they are negated and which arguments they require."""
    items = parse_command_list('ALL, !/usr/bin/su, /usr/bin/passwd ""')
    assert [(i.path, i.negated, i.args) for i in items] == [
        ("ALL", False, None),
        ("/usr/bin/su", True, None),
        ("/usr/bin/passwd", False, ""),
    ]
