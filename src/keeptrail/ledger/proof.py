"""Inclusion and consistency proofs for the RFC 9162 tree: building them and checking them.

Proof *building* needs hashes of parts of the tree, and where those come from is the store's
business, not this module's. The contract is one callable, :data:`NodeHashFn`: given
``(level, index)`` it returns the hash of the perfect subtree covering leaves
``[index << level, (index + 1) << level)`` (level 0 is a leaf hash). Every proof hash is either
such a node or the hash of a right-edge range, which is folded here from the O(log n) perfect
nodes that cover it, so a proof in a tree of ``n`` leaves makes O(log² n) calls at worst and
O(log n) typically. The cost of a proof is therefore the cost of those calls:

* with every perfect node stored (``Frontier.append_with_nodes`` reports them as they are
  completed, about ``2n`` rows in all) or held by :class:`TreeNodes`, a proof at size
  1,000,000 takes a few dozen look-ups, microseconds in memory;
* with only leaf hashes (:func:`nodes_from_leaf_hashes`) a node at level ``k`` costs
  ``2^k - 1`` hashes, so one proof costs about ``n`` hashes, i.e. as much as a root.

A store can sit anywhere in between, e.g. keep nodes only at levels 0, 8, 16, … and compute the
rest from those, exactly as tlog tiles do.

Proof *checking* follows the RFC 9162 §2.1.3.2 and §2.1.4.2 algorithms literally and returns a
bool; wrong sizes, wrong indices and malformed hashes all fail rather than raise, because a
verifier is fed untrusted input and must never be talked into an exception path that a caller
forgets to treat as failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import sha256

from keeptrail.ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    largest_power_of_two_below,
    node_hash,
    root_from_leaf_hashes,
)

NodeHashFn = Callable[[int, int], bytes]
"""``(level, index) -> hash`` of the perfect subtree over leaves ``[index << level, …)``."""


def range_hash(start: int, end: int, node: NodeHashFn) -> bytes:
    """Return the RFC 9162 hash of leaves ``[start, end)`` from perfect-subtree hashes.

    The range must be a subtree of some tree, i.e. ``start`` a multiple of the smallest power of
    two ≥ ``end - start`` (always true for ``start == 0``, so ``range_hash(0, m, node)`` is the
    root at size ``m``). It is covered by one perfect subtree per set bit of ``end - start``,
    largest first, and hashed right to left.
    """
    width = end - start
    if start < 0 or width < 0:
        raise ValueError(f"bad range [{start}, {end})")
    if width == 0:
        return EMPTY_ROOT
    if start & ((1 << (width - 1).bit_length()) - 1):
        raise ValueError(f"[{start}, {end}) is not a subtree: start is misaligned")
    pieces: list[bytes] = []
    pos = start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            pieces.append(node(level, pos >> level))
            pos += 1 << level
    h = pieces[-1]
    for left in reversed(pieces[:-1]):
        h = node_hash(left, h)
    return h


def inclusion_proof(index: int, size: int, node: NodeHashFn) -> list[bytes]:
    """Return the RFC 9162 §2.1.3.1 audit path for leaf ``index`` in the tree of ``size``.

    Hashes are ordered from the leaf's sibling up to the root's child, as verifiers expect.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + largest_power_of_two_below(end - start)
        if index < mid:
            path.append(range_hash(mid, end, node))
            end = mid
        else:
            path.append(range_hash(start, mid, node))
            start = mid
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, node: NodeHashFn) -> list[bytes]:
    """Return the RFC 9162 §2.1.4.1 proof that the tree of ``old_size`` is a prefix of ``new_size``.

    The proof is empty when ``old_size`` is 0 or equals ``new_size`` (C2SP tlog-witness sends
    exactly that for a first submission).
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    path: list[bytes] = []
    start, end = 0, new_size
    m = old_size  # the old tree's size relative to [start, end)
    whole = True  # RFC 9162's ``b``: is [start, start + m) the entire old tree?
    while m != end - start:
        k = largest_power_of_two_below(end - start)
        if m <= k:
            path.append(range_hash(start + k, end, node))
            end = start + k
        else:
            path.append(range_hash(start, start + k, node))
            start += k
            m -= k
            whole = False
    if not whole:
        path.append(range_hash(start, end, node))
    path.reverse()
    return path


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an audit path with the RFC 9162 §2.1.3.2 algorithm."""
    if not 0 <= index < size or len(leaf_hash) != HASH_SIZE or len(root) != HASH_SIZE:
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0 or len(p) != HASH_SIZE:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check a consistency proof with the RFC 9162 §2.1.4.2 algorithm.

    Two cases the RFC leaves to the caller are settled here: equal sizes need an empty proof and
    equal roots, and ``old_size == 0`` needs an empty proof and ``old_root`` equal to the
    empty-tree hash (the root the old checkpoint must have carried).
    """
    if not 0 <= old_size <= new_size or len(old_root) != HASH_SIZE:
        return False
    if len(new_root) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


def nodes_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> NodeHashFn:
    """Serve perfect-subtree hashes by hashing leaf hashes on demand: no memory, O(2^level) each.

    Fine for small trees and tests; for large ones store nodes or use :class:`TreeNodes`.
    """

    def node(level: int, index: int) -> bytes:
        lo = index << level
        hi = lo + (1 << level)
        if lo < 0 or hi > len(leaf_hashes):
            raise IndexError(f"node ({level}, {index}) is beyond {len(leaf_hashes)} leaves")
        return root_from_leaf_hashes(leaf_hashes[lo:hi])

    return node


class TreeNodes:
    """Every perfect subtree of an in-memory tree, so proofs cost O(log n) look-ups.

    ``levels[k][i]`` is node ``(k, i)``; only complete subtrees are kept, about ``2n`` hashes in
    all. Building it costs the same hashing as one root. Instances are callables that satisfy
    :data:`NodeHashFn`.
    """

    __slots__ = ("levels",)

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [list(leaf_hashes)]
        prev = self.levels[0]
        while len(prev) > 1:
            pairs = zip(prev[0::2], prev[1::2], strict=False)  # incomplete subtrees are not kept
            prev = [sha256(b"\x01" + a + b).digest() for a, b in pairs]
            self.levels.append(prev)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self.levels[0])

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash and the perfect subtrees it completes."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
        self.levels[0].append(leaf_hash)
        level = 0
        while len(self.levels[level]) % 2 == 0:
            below = self.levels[level]
            if level + 1 == len(self.levels):
                self.levels.append([])
            self.levels[level + 1].append(node_hash(below[-2], below[-1]))
            level += 1

    def root(self, size: int | None = None) -> bytes:
        """Return the root at ``size`` leaves (default: all of them)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is beyond {self.size} leaves")
        return range_hash(0, size, self)

    def __call__(self, level: int, index: int) -> bytes:
        return self.levels[level][index]
