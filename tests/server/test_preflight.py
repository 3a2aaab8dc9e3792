"""A bad configuration stops ``keeptrail serve`` before it listens: one line, exit 2, no traceback.

Real processes (``python -m keeptrail``), real files. Each table is broken the way an operator
would break it, and the message must name the table and the file without leaking a secret.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from keeptrail.errors import UserError
from keeptrail.preflight import check_config

BROKEN_RULE = '- id: broken\n  title: t\n  severity: high\n  match: "action:("\n'
SECRET = "s3cr3t-value-that-must-never-be-printed"

# (case, TOML, what the one error line must contain)
BAD: list[tuple[str, str, str]] = [
    ("protect", '[protect]\nkek = "vault"\n', "[protect] kek must be one of"),
    ("protect-clear", '[protect]\nclear_fields = ["raw"]\n', "[protect] clear_fields"),
    ("retention", "[retention]\ndefault_days = 0\n", "retention.default_days"),
    ("detect", '[detect]\nlateness = "soon"\n', "[detect] lateness"),
    ("detect-key", "[detect]\nenable = false\n", "[detect] unknown key 'enable'"),
    ("rule-file", '[detect]\nrules_dirs = ["RULES"]\n', "rule 'broken': match: invalid query"),
    ("notify", "[notify]\nbogus = 1\n", "[notify] unknown key 'bogus'"),
    (
        "notify-secret",
        '[[notify.webhook]]\nname = "soc"\nurl = "https://hooks.example.org/x"\n'
        'secret = "$file:SECRET"\n',
        "is readable by group or others",
    ),
    ("permissions", '[permissions]\nsources = ["windows"]\n', "[permissions] sources"),
    (
        "permissions-findings",
        "[permissions.findings]\ndormant_days = -1\n",
        "[permissions.findings] dormant_days",
    ),
]


def kt(*args: str, data_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data_dir), "COLUMNS": "80"}
    env.pop("KEEPTRAIL_CONFIG", None)
    env.pop("KEEPTRAIL_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "keeptrail", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_bad(tmp_path: Path, case: str, text: str) -> Path:
    """The broken configuration of one case, outside the data directory (as with --config)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "site.yaml").write_text(BROKEN_RULE)
    secret = tmp_path / "webhook.key"
    secret.write_text(SECRET)
    secret.chmod(0o644)  # the mistake in the notify-secret case
    config = tmp_path / f"{case}.toml"
    config.write_text(text.replace("RULES", str(rules)).replace("SECRET", str(secret)))
    return config


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert SECRET not in result.stderr + result.stdout


@pytest.mark.parametrize(("case", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_serve_refuses_a_bad_table_in_one_line(
    tmp_path: Path, case: str, text: str, expected: str
) -> None:
    """serve --config BAD: exit 2 before listening, nothing created in the data directory."""
    config = write_bad(tmp_path, case, text)
    data = tmp_path / "data"
    listen = f"127.0.0.1:{free_port()}"
    result = kt("serve", "--config", str(config), "--listen", listen, data_dir=data)
    assert_one_line_error(result, expected)
    assert str(config) in result.stderr  # the message names the file
    assert not data.exists()  # refused before the store, keyring or detect.db were made


@pytest.mark.parametrize(("case", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_check_config_raises_the_same_error(
    tmp_path: Path, case: str, text: str, expected: str
) -> None:
    """The library call the commands share: UserError, one line, the file named."""
    config = write_bad(tmp_path, case, text)
    with pytest.raises(UserError) as caught:
        check_config(tmp_path / "data", config)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{config}: ")
    assert expected in message
    assert SECRET not in message


def test_config_check_ok_and_warnings(tmp_path: Path) -> None:
    """A good file is OK (exit 0); typos that parse are warnings; --strict makes them fail."""
    data = tmp_path / "data"
    good = tmp_path / "good.toml"
    good.write_text(
        "[server]\nreader_threads = 2\n"
        "[protect]\nencrypt = true\n"
        "[retention]\ndefault_days = 400\ncompliance = []\n"
        '[detect]\ndisabled = ["ssh-brute-force-source"]\n'
        '[notify]\nmin_severity = "high"\n'
        '[permissions.findings]\nwindow = "30d"\n'
    )
    result = kt("config", "check", "--config", str(good), data_dir=data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"OK: {good}"
    assert result.stderr == ""
    assert not data.exists()  # checking writes nothing

    typos = tmp_path / "typos.toml"
    typos.write_text(
        '[protect]\nencrpyt = false\n[detect]\ndisabled = ["no-such-rule"]\n[notfy]\nx = 1\n'
    )
    result = kt("config", "check", "--config", str(typos), data_dir=data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"OK: {typos} (3 warnings)"
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 3
    assert any("'notfy'" in w for w in warnings)
    assert any("[protect] unknown key 'encrpyt'" in w for w in warnings)
    assert any("no rule has the id 'no-such-rule'" in w for w in warnings)
    short = tmp_path / "short.toml"
    short.write_text('[retention]\ndefault_days = 30\ncompliance = ["pci_dss"]\n')
    result = kt("config", "check", "--config", str(short), data_dir=data)
    assert result.returncode == 0, result.stderr
    assert "keeps events 30 days, less than the 365 days of PCI DSS" in result.stderr
    strict = kt("config", "check", "--config", str(typos), "--strict", data_dir=data)
    assert strict.returncode == 1


def test_config_check_without_a_file_and_with_a_bad_one(tmp_path: Path) -> None:
    """No file: the defaults are OK. A bad [notify] in <data-dir>/keeptrail.toml: exit 2."""
    data = tmp_path / "data"
    result = kt("config", "check", data_dir=data)
    assert result.returncode == 0, result.stderr
    assert "no configuration file" in result.stdout
    data.mkdir()
    (data / "keeptrail.toml").write_text("[notify]\nmax_attempts = 0\n")
    assert_one_line_error(
        kt("config", "check", data_dir=data), "[notify] max_attempts must be a whole number"
    )


def test_a_bad_server_table_is_one_line_too(tmp_path: Path) -> None:
    """[server] is checked by the settings loader, with the same one-line contract."""
    config = tmp_path / "server.toml"
    config.write_text('[server]\nlisten = "0.0.0.0:8087"\n')
    data = tmp_path / "data"
    assert_one_line_error(
        kt("config", "check", "--config", str(config), data_dir=data),
        "refusing to serve plain HTTP",
    )
    assert_one_line_error(
        kt("serve", "--config", str(config), data_dir=data), "refusing to serve plain HTTP"
    )


def test_a_startup_failure_after_preflight_is_one_line(tmp_path: Path) -> None:
    """A store that cannot be opened (nothing listens on the PostgreSQL port) fails inside the
    lifespan: still one error line and exit 2, not uvicorn's traceback and exit 3."""
    data = tmp_path / "data"
    url = f"postgresql://keeptrail@127.0.0.1:{free_port()}/nothing"
    listen = f"127.0.0.1:{free_port()}"
    result = kt("serve", "--store", url, "--listen", listen, data_dir=data)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "the server did not start: cannot connect to PostgreSQL" in errors[0]
