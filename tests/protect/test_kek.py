"""Master key providers: file, environment and a real external command."""

from __future__ import annotations

import base64
import os
import stat
import sys
from pathlib import Path

import pytest

from keeptrail.errors import UserError
from keeptrail.protect.kek import (
    CommandProvider,
    EnvProvider,
    FileProvider,
    KekConfig,
    Providers,
    UnwrapFailed,
    aes_unwrap,
    aes_wrap,
    context_for,
    master_key_path,
)

HELPER = Path(__file__).with_name("kek_command.py")


def command_for(keydir: Path) -> list[str]:
    """The kek_command that runs the test KMS with its keys in ``keydir``."""
    keydir.mkdir(exist_ok=True)
    return [sys.executable, str(HELPER), str(keydir)]


def b64key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_wrapping_is_bound_to_partition_and_version() -> None:
    """A wrapped key opens only with the context it was wrapped for."""
    kek, key = os.urandom(32), os.urandom(32)
    wrapped = aes_wrap(kek, key, context_for("p20240101_default", 1))
    assert aes_unwrap(kek, wrapped, context_for("p20240101_default", 1)) == key
    with pytest.raises(UnwrapFailed):
        aes_unwrap(kek, wrapped, context_for("p20240102_default", 1))
    with pytest.raises(UnwrapFailed):
        aes_unwrap(kek, wrapped, context_for("p20240101_default", 2))
    with pytest.raises(UnwrapFailed):
        aes_unwrap(os.urandom(32), wrapped, context_for("p20240101_default", 1))
    with pytest.raises(UnwrapFailed):
        aes_unwrap(kek, wrapped[:20], context_for("p20240101_default", 1))


def test_file_provider_creates_private_key_files(tmp_path: Path) -> None:
    """Master key files are 32 bytes, 0600, in a 0700 directory, and never overwritten."""
    provider = FileProvider(tmp_path)
    provider.create(1, previous=None)
    path = master_key_path(tmp_path, 1)
    assert path.stat().st_size == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    before = path.read_bytes()
    with pytest.raises(UserError, match="already exists"):
        provider.create(1, previous=None)
    assert path.read_bytes() == before
    key = os.urandom(32)
    assert provider.unwrap(1, provider.wrap(1, key, "c"), "c") == key


def test_file_provider_refuses_a_key_readable_by_others(tmp_path: Path) -> None:
    """A group- or world-readable master key file is refused with the chmod to run."""
    FileProvider(tmp_path).create(1, previous=None)
    path = master_key_path(tmp_path, 1)
    path.chmod(0o644)
    with pytest.raises(UserError, match=r"accessible by group or others \(mode 0644\).*chmod 600"):
        FileProvider(tmp_path).wrap(1, os.urandom(32), "c")


def test_file_provider_missing_and_malformed_keys(tmp_path: Path) -> None:
    """A missing or wrong-sized key file is a clear error naming the file."""
    with pytest.raises(UserError, match=r"master key v3 is missing: .*master-v3\.key"):
        FileProvider(tmp_path).wrap(3, os.urandom(32), "c")
    path = master_key_path(tmp_path, 1)
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"short")
    path.chmod(0o600)
    with pytest.raises(UserError, match="does not hold a 32-byte key"):
        FileProvider(tmp_path).wrap(1, os.urandom(32), "c")


def test_env_provider_versions_and_current() -> None:
    """KEEPTRAIL_MASTER_KEY_<N> names a version; the bare variable is the newest version."""
    old, new = b64key(), b64key()
    provider = EnvProvider({"KEEPTRAIL_MASTER_KEY": new, "KEEPTRAIL_MASTER_KEY_1": old})
    provider.current = 2
    key = os.urandom(32)
    wrapped_old = aes_wrap(base64.b64decode(old), key, "c")
    assert provider.unwrap(1, wrapped_old, "c") == key
    assert aes_unwrap(base64.b64decode(new), provider.wrap(2, key, "c"), "c") == key
    with pytest.raises(UserError, match="set KEEPTRAIL_MASTER_KEY_5 \\(base64"):
        provider.wrap(5, key, "c")


def test_env_provider_rejects_bad_values_and_a_repeated_key() -> None:
    """Bad base64, a wrong length and a rotation to the same key are clear errors."""
    bad = EnvProvider({"KEEPTRAIL_MASTER_KEY": "not base64!"})
    bad.current = 1
    with pytest.raises(UserError, match="KEEPTRAIL_MASTER_KEY is not valid base64"):
        bad.wrap(1, os.urandom(32), "c")
    with pytest.raises(UserError, match="must decode to 32 bytes, not 3"):
        EnvProvider({"KEEPTRAIL_MASTER_KEY_1": "YWJj"}).wrap(1, os.urandom(32), "c")
    same = b64key()
    provider = EnvProvider({"KEEPTRAIL_MASTER_KEY": same, "KEEPTRAIL_MASTER_KEY_1": same})
    with pytest.raises(UserError, match="the new master key v2 is the same as v1"):
        provider.create(2, previous=1)


def test_command_provider_round_trip_through_a_real_process(tmp_path: Path) -> None:
    """wrap/unwrap go through the external program; the key material stays in its directory."""
    keydir = tmp_path / "kms"
    provider = CommandProvider(command_for(keydir))
    provider.create(1, previous=None)
    key = os.urandom(32)
    wrapped = provider.wrap(1, key, "ctx-a")
    assert provider.unwrap(1, wrapped, "ctx-a") == key
    with pytest.raises(UnwrapFailed, match="unwrap v1 failed \\(exit 1\\): kms: unwrap failed"):
        provider.unwrap(1, wrapped, "ctx-b")
    calls = (keydir / "calls.log").read_text().splitlines()
    assert calls[-2:] == ["unwrap 1 ctx-a", "unwrap 1 ctx-b"]


def test_command_provider_failures_show_one_line_of_stderr(tmp_path: Path) -> None:
    """A failing command's first stderr line is shown, never the key or the rest."""
    keydir = tmp_path / "kms"
    provider = CommandProvider(command_for(keydir))
    (keydir / "fail").touch()
    key = os.urandom(32)
    with pytest.raises(UserError) as info:
        provider.wrap(1, key, "c")
    message = str(info.value)
    assert message == (
        "kek_command wrap v1 failed (exit 3): kms: access denied for key keeptrail (simulated)"
    )
    assert base64.b64encode(key).decode() not in message


def test_command_provider_timeout_and_missing_program(tmp_path: Path) -> None:
    """A hanging command times out; a missing program is named."""
    keydir = tmp_path / "kms"
    (keydir).mkdir()
    (keydir / "slow").touch()
    with pytest.raises(UserError, match=r"did not answer within 0\.5s"):
        CommandProvider(command_for(keydir), timeout=0.5).wrap(1, os.urandom(32), "c")
    with pytest.raises(UserError, match="kek_command /nonexistent/kms not found"):
        CommandProvider(["/nonexistent/kms"]).wrap(1, os.urandom(32), "c")


def test_config_validation() -> None:
    """[protect] kek settings are checked with messages that say what is expected."""
    assert KekConfig.from_protect({}) == KekConfig()
    cfg = KekConfig.from_protect({"kek": "command", "kek_command": ["/bin/kms"], "kek_timeout": 3})
    assert cfg.command == ("/bin/kms",)
    assert cfg.timeout == 3.0
    with pytest.raises(UserError, match="kek must be one of file, env, command"):
        KekConfig.from_protect({"kek": "vault"})
    with pytest.raises(UserError, match="needs kek_command"):
        KekConfig.from_protect({"kek": "command"})
    with pytest.raises(UserError, match="list of strings"):
        KekConfig.from_protect({"kek_command": [1, 2]})
    with pytest.raises(UserError, match="positive number"):
        KekConfig.from_protect({"kek_timeout": 0})


def test_providers_are_built_once_and_unknown_names_refused(tmp_path: Path) -> None:
    """Providers.get caches instances and refuses a provider name it does not know."""
    providers = Providers(tmp_path, KekConfig())
    assert providers.get("file") is providers.get("file")
    with pytest.raises(UserError, match="unknown key provider 'hsm'"):
        providers.get("hsm")
