"""Tests for inclusion and consistency proofs: published vectors, tampering, properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeptrail.ledger.merkle import EMPTY_ROOT, leaf_hash, root_from_leaf_hashes
from keeptrail.ledger.proof import (
    TreeNodes,
    consistency_proof,
    inclusion_proof,
    nodes_from_leaf_hashes,
    range_hash,
    verify_consistency,
    verify_inclusion,
)


def dh(h: str) -> bytes:
    return bytes.fromhex(h)


# Vectors copied from transparency-dev/merkle proof/verify_test.go
# (https://github.com/transparency-dev/merkle/blob/main/proof/verify_test.go): `leaves`,
# `roots`, `inclusionProofs` (their leaf numbers are 1-based) and `consistencyProofs`.
LEAVES = [
    dh(h)
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
ROOTS = [
    dh(h)
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
INCLUSION_VECTORS = [  # (1-based leaf, tree size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            dh("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            dh("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            dh("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (3, 3, [dh("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        2,
        5,
        [
            dh("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
CONSISTENCY_VECTORS = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            dh("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            dh("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            dh("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            dh("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            dh("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]
SOME_HASH = dh("abacaba000000000000000000000000000000000000000000060061e00123456")

VECTOR_TREE = TreeNodes([leaf_hash(d) for d in LEAVES])


def flip(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    """Return a copy of proof with one bit of element i inverted."""
    out = list(proof)
    b = bytearray(out[i])
    b[bit // 8] ^= 1 << (bit % 8)
    out[i] = bytes(b)
    return out


def inclusion_shape(index: int, size: int) -> list[bool]:
    """Which side each audit-path hash sits on (RFC 9162 PATH), leaf upwards; True = left."""
    sides: list[bool] = []
    start, end = 0, size
    while end - start > 1:
        k = 1
        while k * 2 < end - start:
            k *= 2
        if index < start + k:
            sides.append(False)
            end = start + k
        else:
            sides.append(True)
            start += k
    return sides[::-1]


def consistency_shape(old: int, new: int) -> tuple[str, ...]:
    """The role of each consistency-proof hash (RFC 9162 SUBPROOF), bottom up.

    "L": a left subtree shared by both trees; "R": a right subtree only in the new tree; "S": the
    old tree's last subtree given explicitly; "=": the old root itself seeds the proof.
    """
    roles: list[str] = []
    start, end, m, whole = 0, new, old, True
    while m != end - start:
        k = 1
        while k * 2 < end - start:
            k *= 2
        if m <= k:
            roles.append("R")
            end = start + k
        else:
            roles.append("L")
            start, m, whole = start + k, m - k, False
    roles.append("=" if whole else "S")
    return tuple(reversed(roles))


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_vectors_are_generated_and_verified(
    leaf: int, size: int, proof: list[bytes]
) -> None:
    """Published inclusion proofs are reproduced exactly and verify against published roots."""
    tree = TreeNodes([leaf_hash(d) for d in LEAVES[:size]])
    assert inclusion_proof(leaf - 1, size, tree) == proof
    assert verify_inclusion(leaf_hash(LEAVES[leaf - 1]), leaf - 1, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_vectors_reject_go_corruption_probes(
    leaf: int, size: int, proof: list[bytes]
) -> None:
    """The corruptions transparency-dev/merkle tries on each vector all fail verification."""
    index, root, lh = leaf - 1, ROOTS[size - 1], leaf_hash(LEAVES[leaf - 1])
    probes = [
        (index - 1, size, root, lh, proof),
        (index + 1, size, root, lh, proof),
        (index ^ 2, size, root, lh, proof),
        (index, size * 2, root, lh, proof),
        (index, size // 2, root, lh, proof),
        (index, size, root, b"WrongLeaf", proof),
        (index, size, EMPTY_ROOT, lh, proof),
        (index, size, SOME_HASH, lh, proof),
        (index, size, root, lh, [*proof, b""]),
        (index, size, root, lh, [*proof, root]),
        (index, size, root, lh, [b"", *proof]),
        (index, size, root, lh, [root, *proof]),
    ]
    probes += [(index, size, root, lh, flip(proof, i, 3)) for i in range(len(proof))]
    if proof:
        probes.append((index, size, root, lh, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root, lh, [proof[0], SOME_HASH, *proof[1:]]))
    for i, s, r, h, p in probes:
        assert not verify_inclusion(h, i, s, p, r), (i, s, r, h, p)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_consistency_vectors_are_generated_and_verified(
    old: int, new: int, proof: list[bytes]
) -> None:
    """Published consistency proofs are reproduced exactly and verify against published roots."""
    assert consistency_proof(old, new, VECTOR_TREE) == proof
    assert verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


@pytest.mark.parametrize(("old", "new", "proof"), [v for v in CONSISTENCY_VECTORS if v[2]])
def test_consistency_vectors_reject_go_corruption_probes(
    old: int, new: int, proof: list[bytes]
) -> None:
    """The corruptions transparency-dev/merkle tries on each consistency vector all fail."""
    r1, r2 = ROOTS[old - 1], ROOTS[new - 1]
    probes = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    probes += [(old, new, r1, r2, flip(proof, i, 4)) for i in range(len(proof))]
    for s1, s2, a, b, p in probes:
        assert not verify_consistency(s1, s2, a, b, p), (s1, s2, a, b, p)


def test_trivial_consistency_cases() -> None:
    """Equal sizes need equal roots and no proof; size 0 needs the empty root and no proof."""
    r1, r2 = ROOTS[0], ROOTS[1]
    assert verify_consistency(1, 1, r1, r1, [])
    assert not verify_consistency(1, 1, r1, r2, [])
    assert not verify_consistency(1, 1, r1, r1, [EMPTY_ROOT])
    assert verify_consistency(0, 5, EMPTY_ROOT, r2, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 5, r1, r2, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, r2, [EMPTY_ROOT])
    assert not verify_consistency(2, 1, r2, r1, [])
    assert not verify_consistency(1, 2, r1, r2, [])
    assert consistency_proof(0, 5, VECTOR_TREE) == []
    assert consistency_proof(5, 5, VECTOR_TREE) == []


def test_single_leaf_inclusion() -> None:
    """In a one-leaf tree the root is the leaf hash and the proof is empty."""
    h = leaf_hash(b"data")
    assert verify_inclusion(h, 0, 1, [], h)
    assert not verify_inclusion(h, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], h)
    for index, size in [(0, 0), (1, 0), (2, 1), (1, 1)]:
        assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


def test_proof_requests_out_of_range_are_errors() -> None:
    """Asking for a proof of a leaf or size the tree does not have raises ValueError."""
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(8, 8, VECTOR_TREE)
    with pytest.raises(ValueError, match="consistency"):
        consistency_proof(5, 4, VECTOR_TREE)


def test_range_hash_refuses_misaligned_ranges() -> None:
    """A range that is not a subtree of any tree cannot be hashed from perfect nodes."""
    with pytest.raises(ValueError, match="misaligned"):
        range_hash(1, 3, VECTOR_TREE)
    assert range_hash(4, 7, VECTOR_TREE) == root_from_leaf_hashes(VECTOR_TREE.levels[0][4:7])


def test_every_proof_verifies_for_sizes_up_to_64() -> None:
    """Every inclusion and consistency proof verifies in every tree of 1..64 leaves."""
    hashes = [leaf_hash(i.to_bytes(2, "big")) for i in range(64)]
    tree = TreeNodes(hashes)
    roots = [tree.root(n) for n in range(65)]
    for n in range(1, 65):
        for i in range(n):
            assert verify_inclusion(hashes[i], i, n, inclusion_proof(i, n, tree), roots[n])
        for m in range(n + 1):
            assert verify_consistency(m, n, roots[m], roots[n], consistency_proof(m, n, tree))


def test_lazy_and_stored_nodes_give_the_same_proofs() -> None:
    """Proofs built from leaf hashes alone equal proofs built from stored nodes."""
    hashes = [leaf_hash(i.to_bytes(2, "big")) for i in range(37)]
    stored, lazy = TreeNodes(hashes), nodes_from_leaf_hashes(hashes)
    for i in range(37):
        assert inclusion_proof(i, 37, stored) == inclusion_proof(i, 37, lazy)
    for m in range(38):
        assert consistency_proof(m, 37, stored) == consistency_proof(m, 37, lazy)


def test_tree_nodes_append_matches_bulk_build() -> None:
    """Growing TreeNodes leaf by leaf yields the same levels as building it at once."""
    hashes = [leaf_hash(i.to_bytes(2, "big")) for i in range(100)]
    grown = TreeNodes()
    for h in hashes:
        grown.append(h)
    assert grown.levels == TreeNodes(hashes).levels
    assert grown.root() == root_from_leaf_hashes(hashes)


tree_sizes = st.integers(min_value=1, max_value=300)


@st.composite
def tree_and_leaf(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(tree_sizes)
    return size, draw(st.integers(min_value=0, max_value=size - 1))


def build(size: int) -> tuple[list[bytes], TreeNodes]:
    hashes = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    return hashes, TreeNodes(hashes)


@settings(max_examples=150, deadline=None)
@given(tree_and_leaf(), st.data())
def test_inclusion_proof_properties(case: tuple[int, int], data: st.DataObject) -> None:
    """A proof verifies; a flipped bit, another index, or a differently shaped size fails."""
    size, index = case
    hashes, tree = build(size)
    root = tree.root()
    proof = inclusion_proof(index, size, tree)
    assert verify_inclusion(hashes[index], index, size, proof, root)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        assert not verify_inclusion(hashes[index], index, size, flip(proof, i, bit), root)
    for other in range(size):
        if other != index:
            assert not verify_inclusion(hashes[index], other, size, proof, root)
    shape = inclusion_shape(index, size)
    for wrong in range(index + 1, 2 * size + 2):
        if wrong != size:
            # A size whose audit path has the same shape makes the verifier do the very same
            # hashing, so it must agree; any other size must fail.
            expected = inclusion_shape(index, wrong) == shape
            assert verify_inclusion(hashes[index], index, wrong, proof, root) is expected


@settings(max_examples=150, deadline=None)
@given(tree_sizes, st.data())
def test_consistency_proof_properties(new: int, data: st.DataObject) -> None:
    """Every consistency proof verifies; a flipped bit or a differently shaped size fails."""
    _, tree = build(new)
    roots = [tree.root(m) for m in range(new + 1)]
    for old in range(new + 1):
        assert verify_consistency(
            old, new, roots[old], roots[new], consistency_proof(old, new, tree)
        )
    old = data.draw(st.integers(1, new))
    proof = consistency_proof(old, new, tree)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        assert not verify_consistency(old, new, roots[old], roots[new], flip(proof, i, bit))
    shape = consistency_shape(old, new)
    for wrong_old in range(1, new + 1):
        if wrong_old != old:
            # As for inclusion: an equally shaped proof makes the verifier hash identically.
            expected = consistency_shape(wrong_old, new) == shape
            assert verify_consistency(wrong_old, new, roots[old], roots[new], proof) is expected
    for wrong_new in range(old, 2 * new + 2):
        if wrong_new != new:
            expected = consistency_shape(old, wrong_new) == shape
            assert verify_consistency(old, wrong_new, roots[old], roots[new], proof) is expected
