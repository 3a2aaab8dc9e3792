"""The Linux collector on a fake root of real-format files: accounts, groups, keys, secrecy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from keeptrail.permissions.collectors.authorized_keys import parse_authorized_keys
from keeptrail.permissions.collectors.linux import collect_linux
from keeptrail.permissions.snapshots import open_snapshots

ROOT = Path(__file__).parent.parent / "data" / "permissions" / "linux-root"
DAY = 86_400_000_000


@pytest.fixture(scope="module")
def snapshot():  # type: ignore[no-untyped-def]
    return collect_linux(ROOT, sudoers="parser", now=1_800_000_000_000_000).snapshot


def test_system_and_accounts(snapshot) -> None:  # type: ignore[no-untyped-def]
    """Host name from /etc/hostname; kinds from UID_MIN and the shell."""
    assert snapshot.system == "linux:web-1"
    assert snapshot.source == "linux"
    kinds = {a.name: a.kind for a in snapshot.accounts}
    assert kinds["root"] == "system"
    assert kinds["www-data"] == "system"
    assert kinds["alice"] == "human"
    assert kinds["svc-ci"] == "service"
    assert kinds["nobody"] == "system"
    alice = next(a for a in snapshot.accounts if a.name == "alice")
    assert alice.uid == 1000
    assert alice.shell == "/bin/bash"
    assert alice.attributes["groups"] == "adm,users,wheel"
    assert alice.attributes["ssh_keys"] == 2


def test_shadow_facts(snapshot) -> None:  # type: ignore[no-untyped-def]
    """Lock, empty password, age, expiry and must-change come from /etc/shadow."""
    acc = {a.name: a for a in snapshot.accounts}
    assert acc["alice"].locked is False
    assert acc["alice"].password_changed == 20000 * DAY
    assert acc["alice"].attributes["password_max_days"] == 90
    assert acc["dave"].locked is True
    assert acc["dave"].expires == 20270 * DAY
    assert acc["toor"].attributes["password"] == "empty"
    assert acc["daemon"].attributes["password"] == "none"
    assert acc["frank"].attributes["must_change_password"] is True
    assert acc["frank"].password_changed is None


def test_privileged_means_root_equivalent(snapshot) -> None:  # type: ignore[no-untyped-def]
    """uid 0, sudo rights and root-equivalent groups are privileged; plain groups are not."""
    priv = {(e.principal, e.privilege) for e in snapshot.entitlements if e.privileged}
    assert ("toor", "uid0") in priv
    assert ("root", "uid0") in priv
    assert ("dave", "group:docker") in priv
    assert ("alice", "group:adm") in priv
    assert ("bob", "sudo") in priv
    plain = {(e.principal, e.privilege) for e in snapshot.entitlements if not e.privileged}
    assert ("alice", "group:users") in plain
    assert ("frank", "group:ops") in plain  # primary group shared with carol's membership


def test_sudo_rights_with_evidence(snapshot) -> None:  # type: ignore[no-untyped-def]
    """Each right names its file, line and matching item; mallory is excluded by ``!mallory``."""
    sudo = {(e.principal, e.scope): e for e in snapshot.entitlements if e.privilege == "sudo"}
    assert sudo[("carol", "ALL")].granted_via == "/etc/sudoers.d/ops:2 (%ops)"
    assert sudo[("carol", "ALL")].attributes["nopasswd"] is True
    assert sudo[("deploy", "/usr/bin/systemctl restart nginx")].attributes["runas"] == (
        "www-data,nginx"
    )
    assert sudo[("alice", "ALL")].attributes["except"] == "/bin/sh, /bin/bash, /usr/bin/su"
    assert ("mallory", "ALL") not in sudo
    on_db = [e for e in snapshot.entitlements if e.granted_via == "/etc/sudoers:35 (carol)"]
    assert {e.scope: e.attributes["applies_here"] for e in on_db} == {
        "/usr/bin/psql": False,  # DBSERVERS = db-1, and this is web-1
        "/usr/bin/pg_dump": False,
        "/usr/bin/tail /var/log/nginx/access.log": True,
    }


def test_ssh_keys_match_ssh_keygen(snapshot) -> None:  # type: ignore[no-untyped-def]
    """Fingerprints are exactly what ``ssh-keygen -lf`` prints; options and comments kept."""
    keys = {(e.principal, e.scope): e for e in snapshot.entitlements if e.privilege == "ssh-key"}
    expected = {
        ("alice", "SHA256:4LmsJxy6gyhT534QnVUh1qB7dEzHxKclJhA4bepIpFk"),
        ("alice", "SHA256:s4Bz3sIqw4ZtMDvI8cUtPAIFJwIwATadunEKstwXe9U"),
        ("deploy", "SHA256://RtjP7ulzbMcJx1I6EZHZIDRpJNT3fz0vohmqqQmTI"),
        ("svc-ci", "SHA256:3fJpleH49fRnYQhPOqTh4yUiVJgmFnexlvi4QC0R71o"),
        ("root", "SHA256:/N3KgA3fnMiMaCK2zWcxn8ucwMfJ43lbEnllzPppuGc"),
        ("toor", "SHA256:/N3KgA3fnMiMaCK2zWcxn8ucwMfJ43lbEnllzPppuGc"),  # same home: /root
    }
    assert set(keys) == expected
    rsa = keys[("alice", "SHA256:s4Bz3sIqw4ZtMDvI8cUtPAIFJwIwATadunEKstwXe9U")]
    assert rsa.attributes["bits"] == 3072
    assert rsa.attributes["key_type"] == "ssh-rsa"
    assert rsa.attributes["from"] == "10.0.0.0/8,!10.9.9.9"
    assert rsa.granted_via == "/home/alice/.ssh/authorized_keys:4"
    deploy = keys[("deploy", "SHA256://RtjP7ulzbMcJx1I6EZHZIDRpJNT3fz0vohmqqQmTI")]
    assert deploy.attributes["command"] == '/usr/local/bin/deploy "$SSH_ORIGINAL_COMMAND"'
    assert deploy.attributes["restrict"] is True
    svc = keys[("svc-ci", "SHA256:3fJpleH49fRnYQhPOqTh4yUiVJgmFnexlvi4QC0R71o")]
    assert svc.attributes["permitopen"] == "db:5432,db:6432"


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")
def test_fingerprints_equal_ssh_keygen_output() -> None:
    """The same file through ssh-keygen -lf and through our parser gives the same fingerprints."""
    for path in sorted(ROOT.glob("**/authorized_keys")):
        out = subprocess.run(
            ["ssh-keygen", "-lf", str(path)], capture_output=True, text=True, check=True
        ).stdout
        theirs = [(int(line.split()[0]), line.split()[1]) for line in out.splitlines()]
        ours = [(k.bits, k.fingerprint) for k in parse_authorized_keys(path.read_text())[0]]
        assert ours == theirs


def test_bad_key_lines_reported_by_number() -> None:
    """Broken lines become a warning with the line number, never the file's text."""
    keys, bad = parse_authorized_keys(
        '# c\nssh-ed25519 AAAA!!notbase64 x\nfrom="unterminated ssh-ed25519 AAAA x\n'
        "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIDGsylAlFMeL9MHSmXS/tLp83Qi0JjHyzg3Ro9xcNePz mismatch\n"
    )
    assert keys == []
    assert bad == [2, 3, 4]
    result = collect_linux(ROOT, sudoers="parser")
    assert "/home/alice/.ssh/authorized_keys:5: not a public key line, skipped" in result.warnings


SECRETS = ("$y$j9T$Zx3rT0pSecretSaltQ1", "SaltySaltySalty", "Y2LPxVh2nB5yq0fP0B6l9uZ3", "DaveSalt")


def test_password_hashes_never_reach_the_model_store_or_output(tmp_path: Path) -> None:
    """No hash text in the snapshot, the database file, the CLI output or the warnings."""
    root = tmp_path / "root"
    shutil.copytree(ROOT, root)
    with (root / "etc" / "shadow").open("a") as f:  # a malformed line that carries a hash
        f.write("broken:$6$BrokenSaltXYZ$HashOfBrokenLine:notanumber:0:99999:7:::\n")
        f.write("short:$6$ShortSalt$ShortHash\n")
    result = collect_linux(root, sudoers="parser")
    assert "/etc/shadow:17: not a shadow entry, skipped" in result.warnings
    assert "/etc/shadow:18: not a shadow entry, skipped" in result.warnings
    data = tmp_path / "data"
    with open_snapshots(data) as store:
        store.save(result.snapshot)
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data), "COLUMNS": "250"}
    cli = [
        subprocess.run(
            [sys.executable, "-m", "keeptrail", "permissions", *args],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        for args in (
            ["collect", "--root", str(root), "--sudoers", "parser", "--json"],
            ["collect", "--root", str(root), "--sudoers", "parser"],
            ["show", "latest", "--json"],
        )
    ]
    blobs = [repr(result.snapshot), repr(result.warnings)]
    blobs += [p.stdout + p.stderr for p in cli]
    blobs += [p.read_bytes().decode("latin-1") for p in data.iterdir()]
    for secret in (*SECRETS, "BrokenSaltXYZ", "HashOfBrokenLine", "ShortSalt"):
        for blob in blobs:
            assert secret not in blob
    assert "not a shadow entry" in cli[1].stderr  # the warning itself is shown


def test_unreadable_shadow_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    """Without /etc/shadow (not root), accounts are still collected, lock state unknown."""
    root = tmp_path / "root"
    shutil.copytree(ROOT, root)
    (root / "etc" / "shadow").unlink()
    result = collect_linux(root, sudoers="parser")
    alice = next(a for a in result.snapshot.accounts if a.name == "alice")
    assert alice.locked is None
    assert alice.password_changed is None
    assert len(result.snapshot.entitlements) > 40


def test_odd_numbers_in_account_files_are_skipped_not_fatal(tmp_path: Path) -> None:
    """Non-ASCII digits (``"²".isdigit()`` is true) are malformed lines, not a crash."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("a:x:1²:0::/h:/bin/sh\nb:x:1001:1001::/h:/bin/sh\n")
    (etc / "group").write_text("g:x:²:a\nb:x:1001:\n")
    (etc / "shadow").write_text("b:$6$s$h:²:0:99999:7:::\n")
    result = collect_linux(tmp_path, hostname="h", sudoers="parser")
    assert [a.name for a in result.snapshot.accounts] == ["b"]
    assert set(result.warnings) >= {
        "/etc/passwd:1: not a passwd entry, skipped",
        "/etc/group:1: not a group entry, skipped",
        "/etc/shadow:1: not a shadow entry, skipped",
    }
