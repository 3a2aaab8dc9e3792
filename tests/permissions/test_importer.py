"""CSV/JSON imports with a column mapping, and the roster."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeptrail.errors import UserError
from keeptrail.permissions.collectors.importer import (
    ENTITLEMENT_FIELDS,
    ROSTER_FIELDS,
    collect_import,
    parse_mapping,
    read_roster,
)

DATA = Path(__file__).parent.parent / "data" / "permissions"
NOW = 1_800_000_000_000_000  # 2027-01-15


def test_csv_with_mapping() -> None:
    """Mapped columns fill the model; unmapped ones become attributes; dates become µs."""
    mapping = parse_mapping(
        [
            "principal=user,privilege=role,scope=app",
            "first_seen=granted,last_login=last_seen,locked=status",
        ],
        ENTITLEMENT_FIELDS,
    )
    result = collect_import(DATA / "app-roles.csv", mapping, system="import:apps")
    snap = result.snapshot
    assert snap.source == "import"
    assert snap.system == "import:apps"
    rows = [(e.principal, e.privilege, e.scope, e.granted_via) for e in snap.entitlements]
    assert rows[0] == ("alice", "admin", "billing", "app-roles.csv:2")
    assert len(rows) == 5  # the row without a user is skipped, with a warning
    assert result.warnings == ("app-roles.csv:7: no principal, row skipped",)
    alice = snap.entitlements[0]
    assert alice.first_seen == 1_706_745_600_000_000  # 2024-02-01
    assert alice.attributes == {"department": "finance"}
    reports = next(e for e in snap.entitlements if e.principal == "svc-reports")
    assert reports.first_seen == 1_700_000_000_000_000  # epoch seconds
    accounts = {a.name: a for a in snap.accounts}
    assert accounts["dave"].locked is True
    assert accounts["alice"].locked is False
    assert accounts["alice"].last_login == 1_795_162_500_000_000


def test_json_nested_keys_and_list_values() -> None:
    """Dotted keys reach nested fields; a list of groups gives one entitlement each."""
    mapping = parse_mapping(
        ["principal=profile.login,privilege=groups,locked=status,last_login=lastLogin",
         "email=profile.email,display_name=profile.displayName"],
        ENTITLEMENT_FIELDS,
    )  # fmt: skip
    snap = collect_import(DATA / "okta-users.json", mapping, system="import:okta").snapshot
    assert [(e.principal, e.privilege) for e in snap.entitlements] == [
        ("alice@example.com", "Everyone"),
        ("alice@example.com", "Okta Administrators"),
        ("alice@example.com", "Engineering"),
        ("dave@example.com", "Everyone"),
        ("dave@example.com", "Sales"),
    ]
    dave = next(a for a in snap.accounts if a.name == "dave@example.com")
    assert dave.locked is True
    assert dave.attributes["display_name"] == "Dave Leroy"
    assert snap.entitlements[0].attributes["id"] == "00u1a2b3c4"


def test_mapping_errors_are_clear() -> None:
    """Unknown fields, malformed pairs and absent columns are refused with a reason."""
    with pytest.raises(UserError, match="unknown field 'owner'"):
        parse_mapping(["owner=x"], ENTITLEMENT_FIELDS)
    with pytest.raises(UserError, match="expected FIELD=COLUMN"):
        parse_mapping(["principal"], ENTITLEMENT_FIELDS)
    with pytest.raises(UserError, match="no column 'principal'"):
        collect_import(DATA / "app-roles.csv", dict(ENTITLEMENT_FIELDS), system="import:x")


def test_bad_date_names_the_row(tmp_path: Path) -> None:
    """A value that is not a date fails with the file and row."""
    (tmp_path / "x.csv").write_text("principal,privilege,first_seen\nalice,admin,last tuesday\n")
    with pytest.raises(UserError, match=r"x.csv:2: 'last tuesday' is not a date"):
        collect_import(tmp_path / "x.csv", dict(ENTITLEMENT_FIELDS), system="import:x")


def test_roster_active_status_and_leavers() -> None:
    """Status words and past end dates decide who is active; logins split on ``;``."""
    mapping = parse_mapping(
        ["person=employee_id,email=mail,display_name=full_name,usernames=logins",
         "active=status,left_at=end_date"],
        ROSTER_FIELDS,
    )  # fmt: skip
    entries = {e.person: e for e in read_roster(DATA / "hr-roster.csv", mapping, now=NOW)}
    assert entries["E1001"].active
    assert entries["E1001"].usernames == ("alice", "amartin")
    assert not entries["E1003"].active
    assert entries["E1003"].left_at == 1_751_241_600_000_000
    assert entries["E1004"].active  # leaving date in the future
    assert entries["E1002"].email == "bob@example.com"
