"""Where an address is: a MaxMind-format database (GeoLite2/GeoIP2 City, or any .mmdb with
``location.latitude``/``longitude``), read with ``maxminddb``.

Only configured when ``[detect] geoip_db`` names a file; without it the impossible-travel rule
stays quiet rather than guessing. Lookups are cached: a brute force repeats few addresses.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import maxminddb

from keeptrail.errors import UserError


class GeoIP:
    """``lookup(ip) -> (latitude, longitude, place)`` or None (private, unknown, no location)."""

    def __init__(self, path: Path) -> None:
        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise UserError(f"[detect] geoip_db {path}: cannot open: {exc}") from None
        self.lookup = functools.lru_cache(maxsize=65536)(self._lookup)

    def _lookup(self, ip: str) -> tuple[float, float, str] | None:
        try:
            record: Any = self._reader.get(ip)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        location = record.get("location")
        if not isinstance(location, dict):
            return None
        lat, lon = location.get("latitude"), location.get("longitude")
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            return None
        return float(lat), float(lon), _place(record)

    def close(self) -> None:
        self._reader.close()


def _place(record: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("city", "country"):
        names = record.get(key, {}).get("names", {}) if isinstance(record.get(key), dict) else {}
        name = names.get("en") if isinstance(names, dict) else None
        if isinstance(name, str):
            parts.append(name)
    if not parts:
        iso = record.get("country", {})
        if isinstance(iso, dict) and isinstance(iso.get("iso_code"), str):
            parts.append(iso["iso_code"])
    return ", ".join(parts) or "unknown place"
