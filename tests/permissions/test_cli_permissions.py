"""``keeptrail permissions`` as a user runs it: real processes, real files, real stores."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson

DATA = Path(__file__).parent.parent / "data" / "permissions"


def kt(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data_dir), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "keeptrail", "permissions", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_collect_list_show_and_changes(tmp_path: Path) -> None:
    """Collect twice with a new sudo rule in between: show --changes lists exactly that right."""
    root = tmp_path / "root"
    shutil.copytree(DATA / "linux-root", root)
    data = tmp_path / "data"
    first = kt("collect", "--root", str(root), "--sudoers", "parser", data_dir=data)
    assert first.returncode == 0, first.stderr
    assert "linux:web-1: 16 accounts," in first.stdout
    assert "warning: /home/alice/.ssh/authorized_keys:5" in first.stderr
    (root / "etc" / "sudoers.d" / "zz-new").write_text("bob ALL = (root) /usr/bin/apt-get\n")
    second = kt("collect", "--root", str(root), "--sudoers", "parser", "--json", data_dir=data)
    summary = orjson.loads(second.stdout)
    assert summary[0]["system"] == "linux:web-1"
    assert summary[0]["privileged_count"] > 0
    listing = orjson.loads(kt("snapshots", "--json", data_dir=data).stdout)
    assert next(s["id"] for s in listing) == summary[0]["id"]
    assert len(listing) == 2
    changes = orjson.loads(kt("show", "latest", "--changes", "--json", data_dir=data).stdout)
    assert [(e["change"], e["principal"], e["scope"]) for e in changes["entitlements"]] == [
        ("+", "bob", "/usr/bin/apt-get")
    ]
    assert changes["previous"] == listing[1]["id"]
    table = kt("show", listing[1]["id"][:30], "--privileged", "--principal", "toor", data_dir=data)
    assert table.returncode == 0
    assert "uid0" in table.stdout
    assert "/etc/passwd:16" in table.stdout


def test_k8s_import_and_roster(tmp_path: Path) -> None:
    """The other sources and the roster through the command line."""
    data = tmp_path / "data"
    k8s = kt(
        "collect", "--k8s-json", str(DATA / "k8s-rbac.json"), "--cluster", "prod", data_dir=data
    )
    assert k8s.returncode == 0
    assert "k8s:prod:" in k8s.stdout
    imported = kt(
        "collect", "--import", str(DATA / "app-roles.csv"), "--system", "billing",
        "--map", "principal=user,privilege=role,scope=app", data_dir=data,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert "import:billing: 4 accounts, 5 entitlements" in imported.stdout
    roster = kt(
        "roster", "import", str(DATA / "hr-roster.csv"),
        "--map", "person=employee_id,email=mail,usernames=logins,active=status,left_at=end_date",
        data_dir=data,
    )  # fmt: skip
    assert roster.returncode == 0
    assert "4 people, 3 active, 1 gone" in roster.stderr
    shown = orjson.loads(kt("roster", "show", "--json", data_dir=data).stdout)
    assert [e["person"] for e in shown["entries"] if not e["active"]] == ["E1003"]


def test_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    """Bad source, unknown snapshot, missing columns: one line on stderr, status 2."""
    data = tmp_path / "data"
    for args, message in (
        (("collect", "--source", "ldap"), "--source 'ldap'"),
        (("show", "nope"), "no snapshot 'nope'"),
        (("show",), "no snapshot yet"),
        (("collect", "--import", str(DATA / "app-roles.csv")), "no column 'principal'"),
        (("collect", "--root", str(tmp_path / "missing")), "is not a directory"),
        (("collect", "--source", "k8s"), "needs --k8s-json"),
    ):
        done = kt(*args, data_dir=data)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_hostile_names_are_escaped_in_tables(tmp_path: Path) -> None:
    """An account name carrying terminal escapes is shown escaped, never interpreted."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("ev\x1b[2Jil:x:0:0::/nonexistent:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    data = tmp_path / "data"
    assert kt("collect", "--root", str(root), "--hostname", "h", data_dir=data).returncode == 0
    shown = kt("show", "--privileged", data_dir=data)
    assert "\x1b" not in shown.stdout
    assert "ev\\x1b[2Jil" in shown.stdout


def test_collect_follows_the_configuration_file(tmp_path: Path) -> None:
    """Without source options, [permissions] in keeptrail.toml says what to collect."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "keeptrail.toml").write_text(
        f'[permissions]\nsources = ["linux", "k8s"]\nroot = "{DATA / "linux-root"}"\n'
        f'sudoers = "parser"\nk8s_json = "{DATA / "k8s-rbac.json"}"\nk8s_cluster = "lab"\n'
    )
    done = kt("collect", data_dir=data)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("linux:web-1: 16 accounts")
    assert "\nk8s:lab: 6 accounts" in done.stdout
