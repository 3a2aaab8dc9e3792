"""Master keys (key-encryption keys): where they come from, and wrapping data keys under them.

A master key never encrypts an event; it only wraps the per-partition data keys kept in the
keyring. That indirection is what makes rotation cheap (re-wrap a few hundred 32-byte keys, never
re-encrypt the events) and crypto-shredding instant (forget one wrapped key).

Three providers, chosen by ``[protect] kek`` in the configuration:

- ``file`` (default): ``<data-dir>/keys/master-v<N>.key``, 32 random bytes, mode 0600 in a 0700
  directory, created when the keyring is initialised or rotated. A key file that group or others
  can read is refused: a master key readable by everyone protects nothing.
- ``env``: ``KEEPTRAIL_MASTER_KEY_<N>`` holds version N (base64 of 32 bytes);
  ``KEEPTRAIL_MASTER_KEY`` holds the *current* (newest) version. To rotate, keep the old key as
  ``KEEPTRAIL_MASTER_KEY_<N>``, put the new one in ``KEEPTRAIL_MASTER_KEY`` and run
  ``keeptrail keys rotate``; afterwards the old variable can go.
- ``command``: ``kek_command = ["/path/prog", "arg"]`` is run as ``prog arg wrap <version>
  <context>`` (stdin: base64 data key, stdout: base64 wrapped key) and ``prog arg unwrap
  <version> <context>`` (the reverse), so a KMS, Vault transit key or TPM can hold the master key
  without Keeptrail ever seeing it. The command owns its key versions.

For ``file`` and ``env`` the wrapping itself is AES-256-GCM done here, with a fresh nonce; the
associated data (the *context*) binds the wrapped key to its partition and master key version,
so a wrapped key copied onto another partition's row does not open.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keeptrail.errors import UserError

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
KEY_DIR: Final = "keys"
ENV_CURRENT: Final = "KEEPTRAIL_MASTER_KEY"
PROVIDERS: Final = ("file", "env", "command")
DEFAULT_COMMAND_TIMEOUT: Final = 10.0


class UnwrapFailed(Exception):
    """The master key did not open a wrapped key: wrong key, or the blob was tampered with."""


class KekProvider(Protocol):
    """Wraps and unwraps data keys under master key versions it can reach."""

    name: str

    def create(self, version: int, *, previous: int | None) -> None:
        """Make master key ``version`` available (generate it, or check the operator did)."""

    def wrap(self, version: int, key: bytes, context: str) -> bytes:
        """``key`` wrapped under master key ``version``, bound to ``context``."""

    def unwrap(self, version: int, wrapped: bytes, context: str) -> bytes:
        """The data key; :class:`UnwrapFailed` when this master key does not open it."""

    def present(self, version: int) -> bool | None:
        """Whether master key ``version`` is at hand (``None``: cannot tell without using it)."""


@dataclass(frozen=True, slots=True)
class KekConfig:
    """The key-provider part of ``[protect]``: which provider, and the command's settings."""

    provider: str = "file"
    command: tuple[str, ...] = ()
    timeout: float = DEFAULT_COMMAND_TIMEOUT

    @classmethod
    def from_protect(cls, table: Mapping[str, Any]) -> KekConfig:
        """Validate ``kek``, ``kek_command`` and ``kek_timeout``; other keys are not ours."""
        provider = table.get("kek", "file")
        if provider not in PROVIDERS:
            choices = ", ".join(PROVIDERS)
            raise UserError(f"[protect] kek must be one of {choices}, not {provider!r}")
        raw_command = table.get("kek_command", [])
        if isinstance(raw_command, str):
            raw_command = [raw_command]
        if not isinstance(raw_command, list) or not all(isinstance(a, str) for a in raw_command):
            raise UserError('[protect] kek_command must be a list of strings: ["/path/prog"]')
        if provider == "command" and not raw_command:
            raise UserError('[protect] kek = "command" needs kek_command = ["/path/prog", ...]')
        timeout = table.get("kek_timeout", DEFAULT_COMMAND_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise UserError("[protect] kek_timeout must be a positive number of seconds")
        return cls(provider=provider, command=tuple(raw_command), timeout=float(timeout))


def context_for(partition: str, version: int) -> str:
    """The associated data binding a wrapped key to its partition and master key version."""
    return f"keeptrail-data-key:{partition}:v{version}"


def aes_wrap(kek: bytes, key: bytes, context: str) -> bytes:
    """``nonce || AES-256-GCM(kek, key, aad=context)``."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, key, context.encode())


def aes_unwrap(kek: bytes, wrapped: bytes, context: str) -> bytes:
    """The inverse of :func:`aes_wrap`; :class:`UnwrapFailed` on any mismatch."""
    if len(wrapped) < NONCE_BYTES + 16:
        raise UnwrapFailed("wrapped key is truncated")
    try:
        return AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context.encode())
    except InvalidTag as exc:
        raise UnwrapFailed("authentication failed") from exc


class _LocalProvider:
    """Shared AES-GCM wrapping for providers that hand us the key material itself."""

    name = "local"

    def __init__(self) -> None:
        self._material: dict[int, bytes] = {}

    def material(self, version: int) -> bytes:
        raise NotImplementedError

    def _kek(self, version: int) -> bytes:
        kek = self._material.get(version)
        if kek is None:
            kek = self._material[version] = self.material(version)
        return kek

    def wrap(self, version: int, key: bytes, context: str) -> bytes:
        return aes_wrap(self._kek(version), key, context)

    def unwrap(self, version: int, wrapped: bytes, context: str) -> bytes:
        return aes_unwrap(self._kek(version), wrapped, context)


def master_key_path(data_dir: Path, version: int) -> Path:
    """Where the file provider keeps master key ``version``."""
    return data_dir / KEY_DIR / f"master-v{version}.key"


class FileProvider(_LocalProvider):
    """Master keys in ``<data-dir>/keys/master-v<N>.key`` (32 raw bytes, 0600)."""

    name = "file"

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self.data_dir = data_dir

    def create(self, version: int, *, previous: int | None) -> None:
        directory = self.data_dir / KEY_DIR
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        path = master_key_path(self.data_dir, version)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise UserError(
                f"{path} already exists but the keyring does not know master key v{version}: "
                "move it away if it is left over from an interrupted rotation"
            ) from None
        try:
            os.write(fd, os.urandom(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._material.pop(version, None)

    def present(self, version: int) -> bool | None:
        return master_key_path(self.data_dir, version).exists()

    def discard(self, version: int) -> None:
        """Remove a key file created for a rotation that did not commit."""
        master_key_path(self.data_dir, version).unlink(missing_ok=True)
        self._material.pop(version, None)

    def material(self, version: int) -> bytes:
        path = master_key_path(self.data_dir, version)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise UserError(
                f"master key v{version} is missing: {path} does not exist "
                "(restore it from your key backup)"
            ) from None
        except PermissionError:
            raise UserError(f"cannot read master key file {path}: permission denied") from None
        try:
            mode = os.fstat(fd).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise UserError(
                    f"master key file {path} is accessible by group or others "
                    f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
                )
            data = os.read(fd, KEY_BYTES + 1)
        finally:
            os.close(fd)
        if len(data) != KEY_BYTES:
            raise UserError(f"master key file {path} does not hold a 32-byte key")
        return data


class EnvProvider(_LocalProvider):
    """Master keys in environment variables (base64 of 32 bytes); see the module docstring."""

    name = "env"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.environ = os.environ if environ is None else environ
        self.current: int | None = None  # set by the keyring: which version the bare name holds

    def create(self, version: int, *, previous: int | None) -> None:
        self._material.pop(version, None)
        self.current = version
        new = self.material(version)
        if previous is not None and new == self._kek(previous):
            raise UserError(
                f"the new master key v{version} is the same as v{previous}: put the new key in "
                f"{ENV_CURRENT} and keep the old one as {ENV_CURRENT}_{previous}"
            )

    def present(self, version: int) -> bool | None:
        numbered = f"{ENV_CURRENT}_{version}" in self.environ
        return numbered or (version == self.current and ENV_CURRENT in self.environ)

    def material(self, version: int) -> bytes:
        name = f"{ENV_CURRENT}_{version}"
        text = self.environ.get(name)
        if text is None and version == self.current:
            name, text = ENV_CURRENT, self.environ.get(ENV_CURRENT)
        if not text:
            raise UserError(
                f"master key v{version} is missing: set {ENV_CURRENT}_{version}"
                + (f" or {ENV_CURRENT}" if version == self.current else "")
                + " (base64 of 32 bytes)"
            )
        try:
            data = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise UserError(f"{name} is not valid base64") from None
        if len(data) != KEY_BYTES:
            raise UserError(f"{name} must decode to 32 bytes, not {len(data)}")
        return data


class CommandProvider:
    """An external program wraps and unwraps; the master key never enters this process."""

    name = "command"

    def __init__(self, command: Sequence[str], *, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> None:
        if not command:
            raise UserError('kek_command is not set: [protect] kek_command = ["/path/prog"]')
        self.command = tuple(command)
        self.timeout = timeout

    def create(self, version: int, *, previous: int | None) -> None:
        probe = os.urandom(KEY_BYTES)
        context = f"keeptrail-probe:v{version}"
        try:
            back = self.unwrap(version, self.wrap(version, probe, context), context)
        except UnwrapFailed as exc:
            raise UserError(f"kek_command cannot unwrap what it wrapped for v{version}") from exc
        if back != probe:
            raise UserError(f"kek_command unwrap does not return what was wrapped (v{version})")

    def present(self, version: int) -> bool | None:
        return None  # the command owns its keys

    def wrap(self, version: int, key: bytes, context: str) -> bytes:
        return self._run("wrap", version, key, context)

    def unwrap(self, version: int, wrapped: bytes, context: str) -> bytes:
        return self._run("unwrap", version, wrapped, context)

    def _run(self, verb: str, version: int, data: bytes, context: str) -> bytes:
        argv = [*self.command, verb, str(version), context]
        program = self.command[0]
        try:
            done = subprocess.run(  # noqa: S603 - the operator's configured program, no shell
                argv,
                input=base64.b64encode(data) + b"\n",
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise UserError(f"kek_command {program} not found") from None
        except PermissionError:
            raise UserError(f"kek_command {program} is not executable") from None
        except subprocess.TimeoutExpired:
            raise UserError(
                f"kek_command {verb} v{version} did not answer within {self.timeout:g}s"
            ) from None
        if done.returncode != 0:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            why = lines[0][:200] if lines else "no message on stderr"
            message = f"kek_command {verb} v{version} failed (exit {done.returncode}): {why}"
            if verb == "unwrap":
                raise UnwrapFailed(message)
            raise UserError(message)
        try:
            return base64.b64decode(done.stdout.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise UserError(f"kek_command {verb} v{version} did not print base64") from None


class Providers:
    """One instance per provider name, built on first use.

    Each master key version records the provider that made it, so after switching
    ``[protect] kek`` the older versions still open until a rotation re-wraps under the new one.
    """

    def __init__(
        self,
        data_dir: Path,
        config: KekConfig,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.config = config
        self.environ = environ
        self._made: dict[str, KekProvider] = {}
        self._current: int | None = None

    @property
    def configured(self) -> str:
        """The provider new master key versions are made with."""
        return self.config.provider

    def get(self, name: str) -> KekProvider:
        """The provider called ``name``; a clear error when its settings are missing."""
        made = self._made.get(name)
        if made is not None:
            return made
        provider: KekProvider
        if name == "file":
            provider = FileProvider(self.data_dir)
        elif name == "env":
            provider = EnvProvider(self.environ)
        elif name == "command":
            provider = CommandProvider(self.config.command, timeout=self.config.timeout)
        else:
            raise UserError(f"the keyring names an unknown key provider {name!r}")
        if isinstance(provider, EnvProvider):
            provider.current = self._current
        self._made[name] = provider
        return provider

    def note_current(self, version: int) -> None:
        """Tell the providers which version is the newest (``KEEPTRAIL_MASTER_KEY`` holds it)."""
        self._current = version
        made = self._made.get("env")
        if isinstance(made, EnvProvider):
            made.current = version
