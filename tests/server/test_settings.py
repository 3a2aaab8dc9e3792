"""Server settings: precedence, refusals, secrets as references."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeptrail.errors import UserError
from keeptrail.server.settings import load_settings, split_listen


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keeptrail.toml"
    path.write_text(text)
    return path


def test_defaults_listen_on_loopback() -> None:
    """With nothing configured the server listens on 127.0.0.1:8087 over plain HTTP."""
    s = load_settings(env={})
    assert (s.host, s.port, s.tls) == ("127.0.0.1", 8087, False)


def test_flag_beats_env_beats_file(tmp_path: Path) -> None:
    """A flag overrides the environment, which overrides the config file."""
    config = _config(tmp_path, '[server]\nlisten = "127.0.0.1:9001"\nmax_batch_events = 7\n')
    assert load_settings(config, env={}).listen == "127.0.0.1:9001"
    env = {"KEEPTRAIL_LISTEN": "127.0.0.1:9002"}
    assert load_settings(config, env=env).listen == "127.0.0.1:9002"
    chosen = load_settings(config, env=env, listen="[::1]:9003")
    assert (chosen.host, chosen.port, chosen.max_batch_events) == ("::1", 9003, 7)


def test_unknown_keys_and_bad_types_are_errors(tmp_path: Path) -> None:
    """A misspelt key or a wrong type is an error, not a silent default."""
    with pytest.raises(UserError, match=r"unknown key server\.lsiten"):
        load_settings(_config(tmp_path, '[server]\nlsiten = "x"\n'), env={})
    with pytest.raises(UserError, match="must be a int"):
        load_settings(_config(tmp_path, '[server]\nmax_body_bytes = "big"\n'), env={})
    with pytest.raises(UserError, match="HOST:PORT"):
        split_listen("8087")


def test_plain_http_off_loopback_is_refused(tmp_path: Path) -> None:
    """Listening beyond loopback without TLS needs an explicit insecure_http = true."""
    with pytest.raises(UserError, match="plain HTTP"):
        load_settings(env={}, listen="0.0.0.0:8087")
    config = _config(tmp_path, '[server]\nlisten = "0.0.0.0:8087"\ninsecure_http = true\n')
    assert load_settings(config, env={}).host == "0.0.0.0"
    with pytest.raises(UserError, match="both a certificate and a key"):
        load_settings(env={}, tls_cert=tmp_path / "c.pem")


def test_secrets_are_references_and_placeholders_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tls.key_password must be $env:/$file:, must resolve, and must not be a placeholder."""
    base = '[server]\n[server.tls]\ncert = "c.pem"\nkey = "k.pem"\n'
    with pytest.raises(UserError, match="reference"):
        load_settings(_config(tmp_path, base + 'key_password = "hunter2"\n'), env={})
    monkeypatch.setenv("KT_TEST_PW", "changeme")
    with pytest.raises(UserError, match="placeholder"):
        load_settings(_config(tmp_path, base + 'key_password = "$env:KT_TEST_PW"\n'), env={})
    (tmp_path / "pw").write_text("s3cret-enough\n")
    ref = f'key_password = "$file:{tmp_path / "pw"}"\n'
    s = load_settings(_config(tmp_path, base + ref), env={})
    assert s.tls_key_password == "s3cret-enough"
    assert s.summary()["tls_key_password"] is True  # audit events say "set", never the value
