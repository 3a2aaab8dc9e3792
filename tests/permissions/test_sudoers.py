"""The sudoers parser and rights: grammar, sudo's matching rules, and agreement with cvtsudoers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from keeptrail.permissions.collectors.linux import collect_linux
from keeptrail.permissions.collectors.sudo_rights import Policy, UnixUser, sudo_entitlements
from keeptrail.permissions.collectors.sudoers import (
    Item,
    SudoersSyntaxError,
    logical_lines,
    parse_sudoers,
)
from keeptrail.permissions.collectors.sudoers_cvt import parse_with_cvtsudoers

ROOT = Path(__file__).parent.parent / "data" / "permissions" / "linux-root"
HAS_CVTSUDOERS = shutil.which("cvtsudoers") is not None


def rights(
    text: str, users: list[UnixUser], hostname: str = "web-1"
) -> dict[tuple[str, str], dict]:
    parsed = parse_sudoers(text, "/etc/sudoers")
    policy = Policy(parsed.aliases, parsed.specs, parsed.defaults)
    found = sudo_entitlements(policy, users, system="linux:t", hostname=hostname)
    return {(e.principal, e.scope): {**e.attributes, "via": e.granted_via} for e in found}


def user(
    name: str, uid: int = 1000, groups: tuple[str, ...] = (), gids: tuple[int, ...] = ()
) -> UnixUser:
    return UnixUser(name, uid, frozenset(groups), frozenset(gids))


def test_logical_lines_join_continuations_and_drop_comments() -> None:
    """Backslash-newline joins lines; ``#`` comments go, but ``#1000`` and ``#include`` stay."""
    text = (
        "# comment\nalice ALL = /bin/a, \\\n   /bin/b # trailing\n#1000 ALL = ALL\n#includedir /x\n"
    )
    assert logical_lines(text) == [
        (2, "alice ALL = /bin/a,     /bin/b"),
        (4, "#1000 ALL = ALL"),
        (5, "#includedir /x"),
    ]


def test_aliases_specs_tags_and_runas_are_parsed() -> None:
    """Several aliases on one line, runas user:group, tags carried until changed, host parts."""
    f = parse_sudoers(
        "User_Alias A = alice, %wheel : B = !bob\n"
        "A web-1, web-2 = (root, %adm : wheel) NOPASSWD: /bin/x, NOEXEC: /bin/y, PASSWD: /bin/z"
        " : db-1 = /bin/w\n",
        "/etc/sudoers",
    )
    assert f.aliases["user"] == {
        "A": (Item("username", "alice"), Item("usergroup", "wheel")),
        "B": (Item("username", "bob", negated=True),),
    }
    first, second = f.specs
    assert [h.value for h in first.hosts] == ["web-1", "web-2"]
    assert [c.command.value for c in first.commands] == ["/bin/x", "/bin/y", "/bin/z"]
    assert [dict(c.options) for c in first.commands] == [
        {"authenticate": False},
        {"authenticate": False, "noexec": True},
        {"authenticate": True, "noexec": True},
    ]
    assert first.commands[0].runasusers == (Item("username", "root"), Item("usergroup", "adm"))
    assert first.commands[0].runasgroups == (Item("usergroup", "wheel"),)
    assert second.commands[0].runasusers is None  # a new host part starts afresh
    assert first.origin == second.origin == "/etc/sudoers:2"


def test_user_item_forms() -> None:
    """``#uid``, ``%#gid``, ``%:group``, ``+netgroup``, quoted and escaped names, ``ALL``."""
    f = parse_sudoers('#1003, %#27, %:domain\\ users, +admins, "odd name", ALL ALL = ALL\n', "f")
    assert [(i.kind, i.value) for i in f.specs[0].users] == [
        ("userid", "1003"),
        ("usergid", "27"),
        ("nonunixgroup", "domain users"),
        ("netgroup", "admins"),
        ("username", "odd name"),
        ("username", "ALL"),
    ]


def test_commands_keep_arguments_digests_and_unescape() -> None:
    """Arguments are normalised to single spaces; ``\\,`` is a literal comma; digests kept."""
    f = parse_sudoers(
        "alice ALL = sha256:abcd /bin/ls,   /bin/echo  a\\,b  c, !/bin/su, sudoedit /etc/hosts\n",
        "f",
    )
    cmds = [(c.command.value, c.command.negated, c.command.digest) for c in f.specs[0].commands]
    assert cmds == [
        ("/bin/ls", False, "sha256:abcd"),
        ("/bin/echo a,b c", False, None),
        ("/bin/su", True, None),
        ("sudoedit /etc/hosts", False, None),
    ]


def test_includes_and_defaults_are_recorded() -> None:
    """Both spellings of include directives; ``Defaults:user !authenticate`` is kept."""
    f = parse_sudoers(
        "Defaults env_reset\nDefaults:alice, %ops !authenticate\nDefaults>root !authenticate\n"
        "@includedir /etc/sudoers.d\n#include /etc/sudoers.local\n",
        "f",
    )
    assert [(i.path, i.directory) for i in f.includes] == [
        ("/etc/sudoers.d", True),
        ("/etc/sudoers.local", False),
    ]
    assert [(d.binding, d.authenticate) for d in f.defaults] == [(":", False), (">", False)]


def test_syntax_error_names_file_and_line_only() -> None:
    """A broken statement is reported by file and line, without echoing its text."""
    with pytest.raises(SudoersSyntaxError, match=r"^/etc/sudoers.d/x:2: cannot parse") as info:
        parse_sudoers("alice ALL = ALL\nsecret-text-here ALL = (root\n", "/etc/sudoers.d/x")
    assert "secret-text-here" not in str(info.value)


def test_last_match_wins_and_negation_composes() -> None:
    """``ADMINS = %wheel, !mallory``: mallory excluded; ``!!x`` includes; later items override."""
    users = [user("alice", groups=("wheel",)), user("mallory", groups=("wheel",)), user("bob")]
    found = rights("User_Alias ADMINS = %wheel, !mallory, !!bob\nADMINS ALL = ALL\n", users)
    assert {p for p, _ in found} == {"alice", "bob", "wheel"}
    assert found[("alice", "ALL")]["via"] == "/etc/sudoers:2 (ADMINS: %wheel)"
    reversed_order = rights("!alice, alice ALL = /bin/ls\n", [user("alice")])
    assert ("alice", "/bin/ls") in reversed_order


def test_negated_alias_inverts_the_alias_as_a_whole() -> None:
    """``ALL, !STAFF`` grants everyone except the alias' members."""
    users = [user("alice"), user("bob"), user("carol", groups=("ops",))]
    found = rights("User_Alias STAFF = bob, %ops\nALL, !STAFF ALL = /bin/ls\n", users)
    assert {p for p, _ in found} == {"alice"}


def test_nopasswd_from_tags_and_defaults() -> None:
    """``Defaults:user !authenticate`` removes the password unless ``PASSWD:`` puts it back."""
    users = [user("alice"), user("bob")]
    found = rights(
        "Defaults:alice !authenticate\nalice, bob ALL = /bin/a, PASSWD: /bin/b, NOPASSWD: /bin/c\n",
        users,
    )
    assert found[("alice", "/bin/a")]["nopasswd"] is True
    assert found[("alice", "/bin/b")]["nopasswd"] is False
    assert found[("bob", "/bin/a")]["nopasswd"] is False
    assert found[("bob", "/bin/c")]["nopasswd"] is True


def test_negated_commands_restrict_the_commands_before_them() -> None:
    """``ALL, !SHELLS`` records the exclusion on ALL; a negation first excludes nothing."""
    found = rights(
        "Cmnd_Alias SHELLS = /bin/sh, /bin/bash\n"
        "alice ALL = ALL, !SHELLS\nbob ALL = !/bin/su, ALL\n",
        [user("alice"), user("bob")],
    )
    assert found[("alice", "ALL")]["except"] == "/bin/sh, /bin/bash"
    assert "except" not in found[("bob", "ALL")]


def test_root_equivalence_and_host_applicability() -> None:
    """Shells or ALL as root are root-equivalent; a rule for another host does not apply here."""
    found = rights(
        "alice ALL = (www-data) ALL, (root) /usr/bin/vim /etc/motd, /usr/bin/uptime\n"
        "alice db-1 = /bin/x\nalice 10.0.0.0/8 = /bin/y\nalice web-* = /bin/z\n",
        [user("alice")],
    )
    assert found[("alice", "ALL")]["root_equivalent"] is False
    assert found[("alice", "/usr/bin/vim /etc/motd")]["root_equivalent"] is True
    assert found[("alice", "/usr/bin/uptime")]["root_equivalent"] is False
    assert found[("alice", "/bin/x")]["applies_here"] is False
    assert "applies_here" not in found[("alice", "/bin/y")]  # depends on the address: unknown
    assert found[("alice", "/bin/z")]["applies_here"] is True  # a wildcard host pattern


def test_group_members_resolved_through_uid_gid_and_primary_group() -> None:
    """``#uid`` and ``%#gid`` match by number; groups list holds the primary group too."""
    users = [user("frank", uid=1007, groups=("ops",), gids=(1100,)), user("eve", uid=1008)]
    found = rights("#1008 ALL = /bin/a\n%#1100 ALL = /bin/b\n%ops ALL = /bin/c\n", users)
    assert found[("eve", "/bin/a")]["via"] == "/etc/sudoers:1 (#1008)"
    assert ("frank", "/bin/b") in found
    assert ("#1100", "/bin/b") in found
    assert ("frank", "/bin/c") in found
    assert ("ops", "/bin/c") in found


def test_includedir_skips_names_with_dots_and_tildes() -> None:
    """sudo ignores ``monitoring.conf`` and ``old.bak~`` in an includedir, and so do we."""
    snapshot = collect_linux(ROOT, sudoers="parser").snapshot
    principals = {e.principal for e in snapshot.entitlements if e.privilege == "sudo"}
    assert "eve" not in principals
    assert not any(
        e.principal == "nagios" and e.scope == "ALL" for e in snapshot.entitlements
    )  # only from monitoring.conf, which is skipped
    via = {e.granted_via for e in snapshot.entitlements}
    assert "/etc/sudoers.d/ops:2 (%ops)" in via


def test_relative_and_hostname_includes_and_loops(tmp_path: Path) -> None:
    """``@include`` relative to the including file, ``%h`` is the host name, loops stop."""
    etc = tmp_path / "etc"
    (etc / "sudo").mkdir(parents=True)
    (etc / "passwd").write_text("alice:x:1000:1000::/home/alice:/bin/bash\n")
    (etc / "group").write_text("alice:x:1000:\n")
    (etc / "sudoers").write_text("@include sudo/hosts/%h.rules\n@include sudoers\n")
    (etc / "sudo" / "hosts").mkdir()
    (etc / "sudo" / "hosts" / "db-7.rules").write_text("alice ALL = /usr/bin/psql\n")
    result = collect_linux(tmp_path, hostname="db-7.example.org", sudoers="parser")
    sudo = [e for e in result.snapshot.entitlements if e.privilege == "sudo"]
    assert [(e.principal, e.scope, e.granted_via) for e in sudo] == [
        ("alice", "/usr/bin/psql", "/etc/sudo/hosts/db-7.rules:1 (alice)")
    ]
    assert any("include loop" in w for w in result.warnings)


def _sudo_rights(backend: str) -> list[tuple[object, ...]]:
    result = collect_linux(ROOT, sudoers=backend)
    return sorted(
        (e.principal, e.principal_kind, e.scope, e.granted_via, sorted(e.attributes.items()))
        for e in result.snapshot.entitlements
        if e.privilege == "sudo"
    )


@pytest.mark.skipif(not HAS_CVTSUDOERS, reason="cvtsudoers (sudo package) not installed")
def test_parser_and_cvtsudoers_agree_on_the_test_files() -> None:
    """Every right from the test tree (aliases, negations, tags, digests) is the same both ways."""
    parser = _sudo_rights("parser")
    assert len(parser) > 40
    assert parser == _sudo_rights("cvtsudoers")


@pytest.mark.skipif(not HAS_CVTSUDOERS, reason="cvtsudoers (sudo package) not installed")
@pytest.mark.parametrize(
    "text",
    [
        "alice ALL = (ALL:ALL) NOPASSWD: ALL\n",
        "User_Alias A = %wheel, !bob\nA ALL = ALL, !/bin/su\n",
        "alice ALL = (:adm) /usr/bin/tail /var/log/auth.log\n",
        "#1000, %#27 ALL = sha256:" + "ab" * 32 + " /bin/ls, /bin/echo a\\,b\n",
        "Runas_Alias R = root, #0\nCmnd_Alias C = /bin/a, !/bin/b\nalice ALL = (R) C\n",
        "alice ALL = NOPASSWD: NOEXEC: /bin/a, EXEC: /bin/b, PASSWD: /bin/c : db-1 = /bin/d\n",
        "ALL ALL = (root) /usr/bin/uptime\n",
    ],
)
def test_each_construct_reads_the_same_through_cvtsudoers(text: str) -> None:
    """Item for item, the parser's structure equals cvtsudoers' for each construct."""
    ours = parse_sudoers(text, "/etc/sudoers")
    theirs = parse_with_cvtsudoers(text, "/etc/sudoers", [s.origin for s in ours.specs])
    assert theirs.aliases == ours.aliases

    def flat(specs: list) -> list:  # cvtsudoers adds setenv to ALL; it changes no right
        return [
            (
                s.users,
                s.hosts,
                [
                    (
                        c.runasusers,
                        c.runasgroups,
                        c.command,
                        {k: v for k, v in c.options.items() if k != "setenv"},
                    )
                    for c in s.commands
                ],
                s.origin,
            )
            for s in specs
        ]

    assert flat(theirs.specs) == flat(ours.specs)


def test_failing_cvtsudoers_falls_back_to_the_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cvtsudoers that prints invalid JSON (as 1.9.13 does for CWD=) costs a warning only."""
    fake = tmp_path / "bin" / "cvtsudoers"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\ncat > /dev/null\necho \'{"User_Specs": [ "runcwd": "/tmp" }\'\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    result = collect_linux(ROOT, sudoers="cvtsudoers")
    assert any(
        w.startswith("/etc/sudoers: cvtsudoers printed invalid JSON")
        and w.endswith("read with the built-in parser instead")
        for w in result.warnings
    )
    ours = collect_linux(ROOT, sudoers="parser").snapshot.entitlements
    assert {e.granted_via for e in result.snapshot.entitlements} == {e.granted_via for e in ours}
