"""The server's typed settings: CLI flag > environment > config file (TOML) > default.

One frozen :class:`Settings` is built once by :func:`load_settings` and handed to
``create_app(settings)``; nothing reads the environment or a file at import time. The config
file's ``[server]`` table holds the keys below (the same file may hold ``[agent]`` for the
agent); an unknown key is an error, so a typo never silently falls back to a default. Secrets
are references (``$env:NAME`` or ``$file:/path``), never literals, and obvious placeholders are
refused. Binding a non-loopback address without TLS is refused unless ``insecure_http = true``
says that TLS is terminated in front of the server.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

from keeptrail.config import config_path as find_config
from keeptrail.config import default_data_dir
from keeptrail.errors import UserError

DEFAULT_LISTEN: Final = "127.0.0.1:8087"
_PLACEHOLDERS: Final = frozenset({"", "changeme", "change-me", "changethis", "secret", "password"})

# Setting name -> environment variable. The CLI passes flags as overrides.
ENV_VARS: Final[dict[str, str]] = {
    "listen": "KEEPTRAIL_LISTEN",
    "data_dir": "KEEPTRAIL_DATA_DIR",
    "store": "KEEPTRAIL_STORE",
    "tls_cert": "KEEPTRAIL_TLS_CERT",
    "tls_key": "KEEPTRAIL_TLS_KEY",
    "tls_key_password": "KEEPTRAIL_TLS_KEY_PASSWORD",
    "tls_client_ca": "KEEPTRAIL_TLS_CLIENT_CA",
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs; see docs/api.md for each key."""

    listen: str = DEFAULT_LISTEN
    data_dir: Path | None = None
    store: str | None = None  # a postgresql:// URL; None: the embedded store in data_dir
    # The configuration file every capability reads ([protect], [retention], [detect],
    # [notify], [permissions]); None: $KEEPTRAIL_CONFIG, else <data-dir>/keeptrail.toml.
    config_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_key_password: str | None = None  # a resolved secret, never printed
    tls_client_ca: Path | None = None
    insecure_http: bool = False
    max_body_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_batch_events: int = 10_000
    max_page_size: int = 1_000
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 200
    reader_threads: int = 2
    metrics_public: bool = True
    access_log: bool = False

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    @property
    def directory(self) -> Path:
        """The data directory, defaulting like every other command."""
        return self.data_dir or default_data_dir()

    @property
    def config_path(self) -> Path:
        """The configuration file the server's capabilities read (it may not exist)."""
        return find_config(self.directory, self.config_file)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def summary(self) -> dict[str, str | int | bool | None]:
        """The settings as a self-audit event records them: no secret, only whether it is set."""
        out: dict[str, str | int | bool | None] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "tls_key_password":
                out[f.name] = value is not None
            elif f.name == "store" and value:
                out[f.name] = redact_url(value)
            elif isinstance(value, Path | float):
                out[f.name] = str(value)
            else:
                out[f.name] = value
        return out


def redact_url(url: str) -> str:
    """A store URL without its password (``postgresql://user:***@host/db``)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def split_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8087`` for IPv6) as a host and a port; ``UserError`` if malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise UserError(f"listen address {listen!r} must be HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether a listen host only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_secret(reference: str, what: str) -> str:
    """The value of a ``$env:NAME`` or ``$file:/path`` reference; literals are refused."""
    if reference.startswith("$env:"):
        value = os.environ.get(reference[5:])
        if value is None:
            raise UserError(f"{what}: environment variable {reference[5:]} is not set")
    elif reference.startswith("$file:"):
        try:
            value = Path(reference[6:]).read_text().strip()
        except OSError as exc:
            raise UserError(f"{what}: cannot read {reference[6:]}: {exc.strerror}") from exc
    else:
        raise UserError(f"{what} must be a reference ($env:NAME or $file:/path), not a literal")
    if value.strip().lower() in _PLACEHOLDERS:
        raise UserError(f"{what} is a placeholder; set a real secret")
    return value


_FILE_KEYS: Final = {
    "listen": str,
    "data_dir": Path,
    "store": str,
    "insecure_http": bool,
    "max_body_bytes": int,
    "max_decompressed_bytes": int,
    "max_batch_events": int,
    "max_page_size": int,
    "reader_threads": int,
    "metrics_public": bool,
    "access_log": bool,
}
_TLS_KEYS: Final = {"cert": "tls_cert", "key": "tls_key", "client_ca": "tls_client_ca"}
_RATE_KEYS: Final = {"requests_per_second": "rate_limit_per_second", "burst": "rate_limit_burst"}


def _from_file(path: Path) -> dict[str, Any]:
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from exc
    table = doc.get("server", {})
    if not isinstance(table, dict):
        raise UserError(f"{path}: [server] must be a table")
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key == "tls" and isinstance(raw, dict):
            for tkey, tval in raw.items():
                if tkey == "key_password":
                    values["tls_key_password"] = resolve_secret(str(tval), "tls.key_password")
                elif tkey in _TLS_KEYS:
                    values[_TLS_KEYS[tkey]] = Path(str(tval))
                else:
                    raise UserError(f"{path}: unknown key server.tls.{tkey}")
        elif key == "rate_limit" and isinstance(raw, dict):
            for rkey, rval in raw.items():
                if rkey not in _RATE_KEYS or isinstance(rval, bool):
                    raise UserError(f"{path}: unknown or invalid key server.rate_limit.{rkey}")
                values[_RATE_KEYS[rkey]] = rval
        elif key in _FILE_KEYS:
            kind = _FILE_KEYS[key]
            if kind is Path:
                values[key] = Path(str(raw))
            elif not isinstance(raw, kind) or (kind is int and isinstance(raw, bool)):
                raise UserError(f"{path}: server.{key} must be a {kind.__name__}")
            else:
                values[key] = raw
        else:
            raise UserError(f"{path}: unknown key server.{key}")
    return values


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, var in ENV_VARS.items():
        text = env.get(var)
        if not text:
            continue
        if name == "tls_key_password":
            values[name] = resolve_secret(text, var) if text.startswith("$") else text
        elif name in ("listen", "store"):
            values[name] = text
        else:
            values[name] = Path(text).expanduser()
    return values


def load_settings(
    config_file: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Settings from defaults, then the file, then the environment, then non-None overrides.

    The file is kept in the settings (``config_file``) so that the store, the keyring, the
    detection engine and the notifier read their tables from the same file as ``[server]``.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        config_file = config_file.expanduser().absolute()
        values.update(_from_file(config_file))
        values["config_file"] = config_file
    values.update(_from_env(os.environ if env is None else env))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return check(replace(Settings(), **values))


def check(settings: Settings) -> Settings:
    """Refuse settings that cannot work or would be unsafe; returns them unchanged."""
    host, _ = split_listen(settings.listen)
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise UserError("TLS needs both a certificate and a key (tls.cert and tls.key)")
    if settings.tls_client_ca is not None and not settings.tls:
        raise UserError("tls.client_ca (mTLS) needs tls.cert and tls.key")
    if not settings.tls and not is_loopback(host) and not settings.insecure_http:
        raise UserError(
            f"refusing to serve plain HTTP on {host}: tokens would cross the network in clear."
            " Configure tls.cert and tls.key, or set insecure_http = true if TLS ends in front"
        )
    for name in ("max_body_bytes", "max_decompressed_bytes", "max_batch_events", "max_page_size"):
        if getattr(settings, name) < 1:
            raise UserError(f"{name} must be at least 1")
    if settings.rate_limit_per_second < 0 or settings.rate_limit_burst < 1:
        raise UserError("rate_limit: requests_per_second must be >= 0 (0 = off), burst >= 1")
    if settings.reader_threads < 1:
        raise UserError("reader_threads must be at least 1")
    return settings
