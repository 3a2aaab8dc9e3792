"""The ``[detect]`` table of keeptrail.toml, validated here and nowhere else.

::

    [detect]
    enabled = true                 # run the engine after each committed batch
    pack = true                    # load the shipped rules
    rules_dirs = ["/etc/keeptrail/rules"]   # plus <data-dir>/rules, always
    disabled = ["off-hours-activity"]       # rule ids not to run
    geoip_db = "/var/lib/GeoIP/GeoLite2-City.mmdb"
    lateness = "5m"                # how late an event may arrive and still count in its window
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from keeptrail.errors import UserError
from keeptrail.query.timerange import parse_duration

DEFAULT_LATENESS: Final = 5 * 60 * 1_000_000
_KEYS: Final = frozenset({"enabled", "pack", "rules_dirs", "disabled", "geoip_db", "lateness"})


@dataclass(frozen=True, slots=True)
class DetectConfig:
    enabled: bool = True
    pack: bool = True
    rules_dirs: tuple[Path, ...] = ()
    disabled: frozenset[str] = frozenset()
    geoip_db: Path | None = None
    lateness: int = DEFAULT_LATENESS

    def all_rule_dirs(self, data_dir: Path) -> list[Path]:
        """``<data-dir>/rules`` first, then the configured directories."""
        return [data_dir / "rules", *self.rules_dirs]


def detect_config(config: dict[str, Any]) -> DetectConfig:
    """Parse ``config["detect"]`` (the whole parsed file is passed in)."""
    table = config.get("detect", {})
    if not isinstance(table, dict):
        raise UserError("[detect] must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise UserError(f"[detect] unknown key {unknown[0]!r}; valid: {', '.join(sorted(_KEYS))}")
    for flag in ("enabled", "pack"):
        if not isinstance(table.get(flag, True), bool):
            raise UserError(f"[detect] {flag} must be true or false")
    dirs = table.get("rules_dirs", [])
    if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
        raise UserError("[detect] rules_dirs must be a list of directory paths")
    disabled = table.get("disabled", [])
    if not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
        raise UserError("[detect] disabled must be a list of rule ids")
    geoip = table.get("geoip_db")
    if geoip is not None and not isinstance(geoip, str):
        raise UserError("[detect] geoip_db must be a path to a .mmdb file")
    try:
        lateness = parse_duration(str(table.get("lateness", "5m")))
    except ValueError as exc:
        raise UserError(f"[detect] lateness: {exc}") from None
    return DetectConfig(
        enabled=table.get("enabled", True),
        pack=table.get("pack", True),
        rules_dirs=tuple(Path(d).expanduser() for d in dirs),
        disabled=frozenset(disabled),
        geoip_db=Path(geoip).expanduser() if geoip else None,
        lateness=lateness,
    )
