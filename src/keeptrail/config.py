"""Where things live and which zone naive timestamps are in.

Precedence is CLI flag > environment > default; the CLI passes flags in, this module only
knows the environment and the defaults.
"""

from __future__ import annotations

import os
import tomllib
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from keeptrail.errors import UserError


def default_data_dir() -> Path:
    """``$KEEPTRAIL_DATA_DIR``, else ``$XDG_DATA_HOME/keeptrail``, else ~/.local/share/keeptrail."""
    env = os.environ.get("KEEPTRAIL_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "keeptrail"


def resolve_timezone(name: str | None) -> tzinfo:
    """The zone for timestamps that carry none (BSD syslog): flag, ``$TZ``, system, UTC."""
    candidate = name or os.environ.get("TZ") or _system_zone_name()
    if not candidate:
        return UTC
    if candidate.upper() in {"UTC", "Z", "GMT"}:
        return UTC
    try:
        return ZoneInfo(candidate.lstrip(":"))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UserError(f"unknown time zone {candidate!r} (use a name like Europe/Paris)") from exc


def _system_zone_name() -> str | None:
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        try:
            return Path("/etc/timezone").read_text().strip() or None
        except OSError:
            return None
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


CONFIG_FILE_NAME = "keeptrail.toml"


def config_path(data_dir: Path, explicit: Path | None = None) -> Path:
    """``--config``, else ``$KEEPTRAIL_CONFIG``, else ``<data-dir>/keeptrail.toml``."""
    if explicit is not None:
        return explicit
    env = os.environ.get("KEEPTRAIL_CONFIG")
    if env:
        return Path(env).expanduser()
    return data_dir / CONFIG_FILE_NAME


def load_config_file(data_dir: Path, explicit: Path | None = None) -> dict[str, Any]:
    """The parsed TOML configuration, ``{}`` when there is no file.

    Each capability reads and validates its own table (``[protect]``, ``[retention]``,
    ``[detect]``, ``[notify]``, ``[permissions]``) in its own module; this function only finds
    and parses the file. A file named explicitly must exist; a syntax error names the file and
    the line, never a traceback.
    """
    path = config_path(data_dir, explicit)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if explicit is not None or os.environ.get("KEEPTRAIL_CONFIG"):
            raise UserError(f"configuration file {path} does not exist") from None
        return {}
    except OSError as exc:
        raise UserError(f"cannot read configuration file {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"configuration file {path}: {exc}") from None
