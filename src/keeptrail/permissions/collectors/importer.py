"""Entitlements (and rosters) of any other system, from a CSV or JSON export and a column map.

Applications and identity providers all export "who has which role" differently, so the file
is read as rows and a mapping names the column that holds each model field:
``--map principal=user,privilege=role,scope=app,last_login=lastLogin``. Every field has a
documented default (docs/permissions.md); columns not mapped are kept as attributes of the
entitlement, so nothing in the export is lost. A JSON export is a list of objects (or an object
with one list in ``items``, ``data``, ``users`` or ``records``); nested keys are reached with
dots (``profile.login``), and a list value in the privilege column (``groups: [a, b]``) gives one
entitlement per element.

Times are ISO 8601 (``2025-01-31``, ``2025-01-31T10:00:00Z``) or Unix epochs in seconds,
milliseconds or microseconds (told apart by magnitude).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from keeptrail.errors import UserError
from keeptrail.event import uuid7
from keeptrail.permissions.model import (
    Account,
    AttributeValue,
    Collected,
    Entitlement,
    RosterEntry,
    Snapshot,
)

__all__ = [
    "ENTITLEMENT_FIELDS",
    "ROSTER_FIELDS",
    "collect_import",
    "parse_mapping",
    "read_roster",
    "read_rows",
]

# field -> the column read when the mapping does not name one
ENTITLEMENT_FIELDS: Final = {
    "principal": "principal",
    "privilege": "privilege",
    "scope": "scope",
    "principal_kind": "principal_kind",
    "granted_via": "granted_via",
    "privileged": "privileged",
    "first_seen": "first_seen",
    "account_kind": "account_kind",
    "last_login": "last_login",
    "locked": "locked",
    "expires": "expires",
    "password_changed": "password_changed",
    "email": "email",
    "display_name": "display_name",
}
ROSTER_FIELDS: Final = {
    "person": "person",
    "email": "email",
    "display_name": "display_name",
    "usernames": "usernames",
    "active": "active",
    "left_at": "left_at",
}
_TRUE: Final = frozenset({"true", "yes", "y", "1", "t", "on"})
_ACTIVE: Final = _TRUE | {"active", "employed", "current", "enabled", "staged", "provisioned"}
_LOCKED: Final = _TRUE | {"locked", "disabled", "suspended", "deprovisioned", "inactive"}
_LIST_KEYS: Final = ("items", "data", "users", "records", "results")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def parse_mapping(specs: Iterable[str], allowed: Mapping[str, str]) -> dict[str, str]:
    """``["principal=user,privilege=role", ...]`` → {field: column}; unknown fields refused."""
    mapping: dict[str, str] = {}
    for spec in specs:
        for pair in spec.split(","):
            if not pair.strip():
                continue
            field, sep, column = pair.partition("=")
            field, column = field.strip(), column.strip()
            if not sep or not column:
                raise UserError(f"--map {pair.strip()!r}: expected FIELD=COLUMN")
            if field not in allowed:
                raise UserError(f"--map: unknown field {field!r} (fields: {', '.join(allowed)})")
            mapping[field] = column
    return {**allowed, **mapping}


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a CSV (header line) or JSON export, as dictionaries."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    text = raw.decode("utf-8-sig", errors="replace")
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson") or text.lstrip()[:1] in "[{":
        return _json_rows(text, path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise UserError(f"{path}: empty CSV (a header line is needed)")
    return [dict(row) for row in reader]


def _json_rows(text: str, path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:  # JSON lines
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} is not JSON: {exc}") from None
    if isinstance(data, dict):
        for key in _LIST_KEYS:
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise UserError(
            f"{path}: expected a list of objects (or one under {', '.join(_LIST_KEYS)})"
        )
    return data


def collect_import(
    path: Path, mapping: Mapping[str, str], *, system: str, now: int | None = None
) -> Collected:
    """Entitlements (and the accounts behind them) from an export file."""
    rows = read_rows(path)
    if rows and _get(rows[0], mapping["principal"]) is None:
        raise UserError(f"{path}: no column {mapping['principal']!r} for principal (use --map)")
    if rows and _get(rows[0], mapping["privilege"]) is None:
        raise UserError(f"{path}: no column {mapping['privilege']!r} for privilege (use --map)")
    used = set(mapping.values())
    entitlements: list[Entitlement] = []
    accounts: dict[str, Account] = {}
    warnings: list[str] = []
    for number, row in enumerate(rows, 2 if path.suffix.lower() == ".csv" else 1):
        principal = _text(_get(row, mapping["principal"]))
        if not principal:
            warnings.append(f"{path.name}:{number}: no principal, row skipped")
            continue
        kind = _text(_get(row, mapping["principal_kind"])) or "user"
        extra = {
            k: _attr(v) for k, v in _flat(row).items() if k not in used and _attr(v) is not None
        }
        for privilege in _values(_get(row, mapping["privilege"])):
            entitlements.append(
                Entitlement(
                    system=system,
                    principal=principal,
                    principal_kind=kind,
                    privilege=privilege,
                    scope=_text(_get(row, mapping["scope"])) or "*",
                    granted_via=_text(_get(row, mapping["granted_via"])) or f"{path.name}:{number}",
                    privileged=_bool(_get(row, mapping["privileged"]), _TRUE),
                    attributes=extra,
                    first_seen=_time(_get(row, mapping["first_seen"]), f"{path.name}:{number}"),
                )
            )
        if kind in ("user", "serviceaccount") and principal not in accounts:
            accounts[principal] = _account(system, principal, kind, row, mapping, path, number)
    taken_at = now if now is not None else time.time_ns() // 1000
    snapshot = Snapshot(
        uuid7(), system, "import", taken_at, tuple(accounts.values()), tuple(entitlements)
    )
    return Collected(snapshot, tuple(warnings))


def _account(
    system: str,
    name: str,
    kind: str,
    row: Mapping[str, Any],
    mapping: Mapping[str, str],
    path: Path,
    number: int,
) -> Account:
    where = f"{path.name}:{number}"
    account_kind = _text(_get(row, mapping["account_kind"]))
    if account_kind not in ("human", "service", "system"):
        account_kind = "service" if kind == "serviceaccount" else "human"
    locked_value = _get(row, mapping["locked"])
    attrs: dict[str, AttributeValue] = {}
    for field in ("email", "display_name"):
        value = _text(_get(row, mapping[field]))
        if value:
            attrs[field] = value
    return Account(
        system=system,
        name=name,
        kind=account_kind,
        locked=None if locked_value in (None, "") else _bool(locked_value, _LOCKED),
        expires=_time(_get(row, mapping["expires"]), where),
        password_changed=_time(_get(row, mapping["password_changed"]), where),
        last_login=_time(_get(row, mapping["last_login"]), where),
        attributes=attrs,
    )


def read_roster(
    path: Path, mapping: Mapping[str, str], *, now: int | None = None
) -> list[RosterEntry]:
    """A roster (who is employed) from a CSV/JSON export; ``person`` or ``email`` is required."""
    rows = read_rows(path)
    current = now if now is not None else time.time_ns() // 1000
    out: list[RosterEntry] = []
    for number, row in enumerate(rows, 2 if path.suffix.lower() == ".csv" else 1):
        where = f"{path.name}:{number}"
        email = _text(_get(row, mapping["email"])) or None
        person = _text(_get(row, mapping["person"])) or email
        if not person:
            raise UserError(
                f"{where}: no {mapping['person']!r} nor {mapping['email']!r} (use --map)"
            )
        left_at = _time(_get(row, mapping["left_at"]), where)
        active_value = _get(row, mapping["active"])
        active = True if active_value in (None, "") else _bool(active_value, _ACTIVE)
        if left_at is not None and left_at <= current:
            active = False
        names = [n for n in _values(_get(row, mapping["usernames"]), sep=";,| ") if n]
        out.append(
            RosterEntry(
                person=person,
                active=active,
                email=email,
                display_name=_text(_get(row, mapping["display_name"])) or None,
                usernames=tuple(names),
                left_at=left_at,
            )
        )
    return out


def _get(row: Mapping[str, Any], column: str) -> Any:
    if column in row:
        return row[column]
    value: Any = row
    for part in column.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _flat(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _values(value: Any, sep: str = "") -> Iterator[str]:
    if isinstance(value, list):
        for v in value:
            text = _text(v.get("name") if isinstance(v, Mapping) else v)
            if text:
                yield text
        return
    text = _text(value)
    if sep:
        for ch in sep[1:]:
            text = text.replace(ch, sep[0])
        yield from (t.strip() for t in text.split(sep[0]) if t.strip())
    elif text:
        yield text


def _bool(value: Any, truthy: frozenset[str]) -> bool:
    if isinstance(value, bool):
        return value
    return _text(value).lower() in truthy


def _attr(value: Any) -> AttributeValue:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return str(value)
    if isinstance(value, Sequence):
        return ",".join(_text(v) for v in value)
    return _text(value)


def _time(value: Any, where: str) -> int | None:
    """µs since the epoch from an ISO date/time or an epoch number; empty is None."""
    if value is None or value == "":
        return None
    text = _text(value)
    if text.lstrip("-").isascii() and text.lstrip("-").isdigit():
        n = int(text)
        if abs(n) < 10**11:
            return n * 1_000_000
        if abs(n) < 10**14:
            return n * 1_000
        return n
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{where}: {text[:40]!r} is not a date (ISO 8601 or epoch)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // timedelta(microseconds=1)  # exact, no float rounding
