"""``[notify]``: secrets from private files or the environment, never literals, never echoed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keeptrail.errors import UserError
from keeptrail.notify.config import WebhookSink, notify_config

SECRET = "s3cret-value-0123456789abcdef"


def _secret_file(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "webhook.key"
    path.write_text(SECRET + "\n")
    path.chmod(mode)
    return path


def _webhook(**extra: Any) -> dict[str, Any]:
    return {"notify": {"webhook": [{"name": "soc", "url": "https://hooks.example.org/x", **extra}]}}


def test_full_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KT_CHAT_URL", "json://127.0.0.1:9/hook")
    cfg = notify_config(
        {
            "notify": {
                "min_severity": "medium",
                "max_attempts": 4,
                "backoff": "5s",
                "max_backoff": "1h",
                "webhook": [
                    {
                        "name": "soc",
                        "url": "https://hooks.example.org/x",
                        "secret": f"$file:{_secret_file(tmp_path)}",
                        "min_severity": "high",
                    }
                ],
                "apprise": [{"name": "chat", "urls": ["$env:KT_CHAT_URL", "mailto://a@b.c"]}],
                "syslog": {"name": "siem", "address": "siem.example.org:6514", "protocol": "tcp"},
            }
        }
    )
    assert [s.name for s in cfg.sinks] == ["soc", "chat", "siem"]
    soc = cfg.sinks[0]
    assert isinstance(soc, WebhookSink)
    assert soc.secret == SECRET.encode()
    assert SECRET not in repr(soc)  # the secret is not in the repr (logs, tracebacks)
    assert cfg.sinks[1].urls[0] == "json://127.0.0.1:9/hook"  # type: ignore[union-attr]
    assert (cfg.max_attempts, cfg.backoff, cfg.max_backoff) == (4, 5.0, 3600.0)
    assert cfg.wants(soc, "high", is_new=True)
    assert not cfg.wants(soc, "medium", is_new=True)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (_webhook(secret=SECRET), "must be a reference"),
        (_webhook(secret="$env:KT_NOT_SET_ANYWHERE"), "KT_NOT_SET_ANYWHERE is not set"),
        (
            {"notify": {"webhook": [{"url": "http://hooks.example.org/x", "secret": "$env:X"}]}},
            "plain http beyond loopback",
        ),
        ({"notify": {"webhok": []}}, "unknown key 'webhok'"),
        ({"notify": {"syslog": [{"address": "siem", "protocol": "udp"}]}}, "host:port"),
        ({"notify": {"syslog": [{"address": "siem:514", "protocol": "quic"}]}}, "udp or tcp"),
        ({"notify": {"min_severity": "urgent"}}, "min_severity"),
        ({"notify": {"backoff": "soon"}}, "invalid duration"),
    ],
)
def test_refusals(table: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        notify_config(table)
    assert SECRET not in str(info.value)


def test_secret_file_must_be_private(tmp_path: Path) -> None:
    path = _secret_file(tmp_path, 0o644)
    with pytest.raises(UserError, match="readable by group or others") as info:
        notify_config(_webhook(secret=f"$file:{path}"))
    assert SECRET not in str(info.value)


def test_short_secret_and_duplicate_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KT_SHORT", "short")
    with pytest.raises(UserError, match="at least 16 bytes"):
        notify_config(_webhook(secret="$env:KT_SHORT"))
    monkeypatch.setenv("KT_LONG", SECRET)
    hook = {"name": "a", "url": "http://127.0.0.1:1/", "secret": "$env:KT_LONG"}
    with pytest.raises(UserError, match="two sinks are named 'a'"):
        notify_config({"notify": {"webhook": [hook, hook]}})


def test_no_table_means_no_sinks() -> None:
    assert notify_config({}).sinks == ()
