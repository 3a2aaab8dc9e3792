"""Tests for RFC 9162 hashing and the frontier (compact range)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keeptrail.ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    largest_power_of_two_below,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
)
from keeptrail.ledger.proof import TreeNodes

# Leaves and roots for sizes 1..8, vars `leaves` and `roots` of transparency-dev/merkle
# proof/verify_test.go (https://github.com/transparency-dev/merkle/blob/main/proof/verify_test.go).
VECTOR_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
VECTOR_ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]


def reference_root(leaf_hashes: list[bytes]) -> bytes:
    """MTH from RFC 9162 §2.1.1, written recursively and independently of the code under test."""
    n = len(leaf_hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    left, right = reference_root(leaf_hashes[:k]), reference_root(leaf_hashes[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaves_for(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    """The empty tree hashes to SHA-256 of the empty string."""
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert Frontier().root() == EMPTY_ROOT


def test_leaf_and_node_hashes_use_domain_prefixes() -> None:
    """Leaves are hashed with a 0x00 prefix and interior nodes with 0x01."""
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    a, b = bytes(32), bytes(range(32))
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_published_vectors(size: int) -> None:
    """Roots of the transparency-dev/merkle vector leaves match the published values."""
    hashes = [leaf_hash(d) for d in VECTOR_LEAVES[:size]]
    assert root_from_leaf_hashes(hashes) == VECTOR_ROOTS[size - 1]
    frontier = Frontier()
    frontier.extend(hashes)
    assert frontier.root() == VECTOR_ROOTS[size - 1]


def test_root_matches_reference_for_every_size_up_to_300() -> None:
    """The level-by-level root equals the recursive RFC definition for sizes 0..300."""
    hashes = leaves_for(300)
    for n in range(301):
        assert root_from_leaf_hashes(hashes[:n]) == reference_root(hashes[:n]), n


def test_frontier_root_matches_reference_at_every_size() -> None:
    """A frontier grown one leaf at a time has the reference root after every append."""
    hashes = leaves_for(300)
    frontier = Frontier()
    for n, h in enumerate(hashes, start=1):
        frontier.append(h)
        assert frontier.size == n
        assert len(frontier.subtree_roots) == n.bit_count()
        assert frontier.root() == reference_root(hashes[:n]), n


@given(st.integers(min_value=0, max_value=300))
def test_frontier_survives_serialisation(size: int) -> None:
    """A frontier read back from its bytes equals the original and keeps growing identically."""
    hashes = leaves_for(size + 3)
    frontier = Frontier()
    frontier.extend(hashes[:size])
    data = frontier.to_bytes()
    assert len(data) == 9 + 32 * size.bit_count()
    restored = Frontier.from_bytes(data)
    assert restored == frontier
    restored.extend(hashes[size:])
    assert restored.root() == reference_root(hashes)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01" + (3).to_bytes(8, "big") + bytes(32),  # size 3 needs two hashes
        b"\x02" + (0).to_bytes(8, "big"),  # unknown version
        b"\x01" + (1).to_bytes(8, "big") + bytes(33),
    ],
)
def test_frontier_rejects_malformed_bytes(data: bytes) -> None:
    """Bytes that are not exactly a serialised frontier are refused."""
    with pytest.raises(ValueError, match="frontier"):
        Frontier.from_bytes(data)


def test_frontier_rejects_wrong_length_leaf_hash() -> None:
    """Appending something that is not a 32-byte hash is refused."""
    with pytest.raises(ValueError, match="32 bytes"):
        Frontier().append(b"short")


def test_frontier_copy_is_independent() -> None:
    """Appending to a copy leaves the original unchanged."""
    frontier = Frontier()
    frontier.extend(leaves_for(5))
    other = frontier.copy()
    other.append(leaf_hash(b"more"))
    assert frontier.size == 5
    assert other.size == 6
    assert frontier != other


def test_append_with_nodes_reports_every_completed_subtree() -> None:
    """Each append reports the leaf and every perfect subtree it completes, with the right hash."""
    hashes = leaves_for(70)
    tree = TreeNodes(hashes)
    frontier = Frontier()
    reported: set[tuple[int, int]] = set()
    for i, h in enumerate(hashes):
        nodes = frontier.append_with_nodes(h)
        assert nodes[0] == (0, i, h)
        for level, index, node in nodes:
            assert node == tree(level, index)
            reported.add((level, index))
    expected = {(lvl, i) for lvl, row in enumerate(tree.levels) for i in range(len(row))}
    assert reported == expected
    assert frontier.root() == reference_root(hashes)


@pytest.mark.parametrize(("n", "k"), [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1025, 1024)])
def test_split_point_is_largest_power_of_two_below(n: int, k: int) -> None:
    """The RFC split point is the largest power of two strictly below n."""
    assert largest_power_of_two_below(n) == k


def test_split_point_undefined_below_two() -> None:
    """Asking for a split of a tree with fewer than two leaves is an error."""
    with pytest.raises(ValueError, match="power of two"):
        largest_power_of_two_below(1)


def test_extend_stops_consistently_at_a_bad_hash() -> None:
    """A bad hash mid-batch raises, and the leaves before it stay appended with a correct root."""
    hashes = leaves_for(5)
    frontier = Frontier()
    with pytest.raises(ValueError, match="32 bytes"):
        frontier.extend([*hashes, b"bad", leaf_hash(b"never")])
    assert frontier.size == 5
    assert frontier.root() == reference_root(hashes)
