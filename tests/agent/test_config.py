"""The agent's configuration: the documented example parses, every key is documented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from keeptrail.agent.config import parse_config
from keeptrail.errors import UserError

DOCS = Path(__file__).parents[2] / "docs" / "agent.md"
SOURCE = Path(__file__).parents[2] / "src" / "keeptrail" / "agent" / "config.py"


def documented_example() -> str:
    text = DOCS.read_text()
    return text.split("```toml\n", 1)[1].split("```", 1)[0]


def test_documented_example_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """The complete example in docs/agent.md parses into three sources."""
    monkeypatch.setenv("KEEPTRAIL_AGENT_TOKEN", "from-env")
    config = parse_config(tomllib.loads(documented_example()), base=Path("/etc/keeptrail"))
    assert config.shipper.token == "from-env"
    assert [s.name for s in config.files] == ["auth"]
    assert [s.name for s in config.journals] == ["journal"]
    assert [s.name for s in config.syslogs] == ["net"]
    assert config.files[0].paths == ["/var/log/auth.log*", "/var/log/secure*"]


def test_every_key_the_code_reads_is_documented() -> None:
    """A setting the parser reads but docs/agent.md does not show fails this test."""
    keys = set(re.findall(r'\.get\("([a-z_]+)"', SOURCE.read_text()))
    example = documented_example()
    present = set(re.findall(r"^\[*([a-z_]+)\]* ?=?", example, re.MULTILINE))
    missing = sorted(keys - present)
    assert missing == []


def test_a_literal_token_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token must be a reference ($env: or $file:), never the secret itself."""
    monkeypatch.delenv("KEEPTRAIL_AGENT_TOKEN", raising=False)
    data = {"server": {"url": "http://127.0.0.1:1", "token": "hunter2"}}
    with pytest.raises(UserError, match="reference"):
        parse_config(data, base=tmp_path)
    (tmp_path / "token").write_text("s3cret\n")
    data["server"]["token"] = "$file:token"
    assert parse_config(data, base=tmp_path).shipper.token == "s3cret"
