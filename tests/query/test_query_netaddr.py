"""IP storage bytes (keeptrail.netaddr) and the wildcard helpers in query.patterns."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keeptrail.netaddr import bytes_to_ip, canonical_ip, ip_to_bytes, network_bounds
from keeptrail.query.patterns import glob_match, prefix_upper_bound, to_glob


def test_ipv4_is_stored_mapped() -> None:
    """IPv4 addresses are stored as IPv4-mapped IPv6, 16 bytes."""
    assert ip_to_bytes("10.0.0.1") == bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1])
    assert ip_to_bytes("::ffff:10.0.0.1") == ip_to_bytes("10.0.0.1")


@pytest.mark.parametrize("text", ["10.0.0.1", "0.0.0.0", "2001:db8::1", "::1", "::"])
def test_round_trip(text: str) -> None:
    """bytes_to_ip inverts ip_to_bytes, giving IPv4 back as a dotted quad."""
    assert bytes_to_ip(ip_to_bytes(text)) == text


@pytest.mark.parametrize("text", ["", "10.0.0", "10.0.0.01", "host", "1.2.3.4/8"])
def test_invalid_addresses(text: str) -> None:
    """Strings that are not a single address raise ValueError."""
    with pytest.raises(ValueError):
        ip_to_bytes(text)


def test_bytes_to_ip_wants_16_bytes() -> None:
    """A stored value of the wrong length is refused."""
    with pytest.raises(ValueError):
        bytes_to_ip(b"\x0a\x00\x00\x01")


def test_network_bounds() -> None:
    """A CIDR network maps to its first and last address in storage form."""
    assert network_bounds("10.1.2.3/8") == (ip_to_bytes("10.0.0.0"), ip_to_bytes("10.255.255.255"))


@given(st.ip_addresses())
def test_storage_order_is_numeric_order(address: object) -> None:
    """Any address lies inside its own /0, /64 or /16 network in byte order."""
    text = str(address)
    packed = ip_to_bytes(text)
    prefix = 16 if ":" not in text else 64
    low, high = network_bounds(f"{text}/{prefix}")
    assert low <= packed <= high


@pytest.mark.parametrize(
    ("prefix", "bound"),
    [
        ("abc", "abd"),
        ("a\U0010ffff", "b"),
        ("\U0010ffff", None),
        ("", None),
        ("\ud7ff", "\ue000"),
        ("z", "{"),
    ],
)
def test_prefix_upper_bound(prefix: str, bound: str | None) -> None:
    """The upper bound increments the last character, skipping max and surrogate code points."""
    assert prefix_upper_bound(prefix) == bound


@given(st.text(max_size=6), st.text(max_size=6))
def test_prefix_range_is_exactly_startswith(prefix: str, other: str) -> None:
    """prefix <= s < bound holds exactly when s starts with prefix."""
    bound = prefix_upper_bound(prefix)
    for s in (other, prefix + other, prefix[:-1] + other):
        in_range = prefix <= s and (bound is None or s < bound)
        assert in_range == s.startswith(prefix)


def test_glob_match() -> None:
    """The Python matcher anchors the first and last chunks and finds middle ones in order."""
    assert glob_match(("a", "c"), "abc")
    assert not glob_match(("a", "c"), "ab")
    assert glob_match(("", "b", ""), "abc")
    assert glob_match(("ab", "ab"), "abab")
    assert not glob_match(("ab", "ab"), "aba")
    assert glob_match(("", "x", "y", ""), "..x..y..")
    assert not glob_match(("", "y", "x", ""), "..x..y..")
    assert to_glob(("", "a[?]*", "")) == "*a[[][?][]][*]*"


@given(st.one_of(st.ip_addresses().map(str), st.text(alphabet="0123456789.:abcdef%", max_size=45)))
def test_canonical_ip_agrees_with_ipaddress(text: str) -> None:
    """The parsers' fast address check accepts exactly what ipaddress accepts, canonically."""
    try:
        expected: str | None = str(ipaddress.ip_address(text))
    except ValueError:
        expected = None
    assert canonical_ip(text) == expected
