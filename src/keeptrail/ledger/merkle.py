"""RFC 9162 §2.1 Merkle tree hashing over SHA-256, and the frontier that grows it.

The ledger commits to events by hashing their canonical bytes into a Merkle tree whose shape is
fixed by RFC 9162 (the same tree as RFC 6962, Certificate Transparency, Go's sumdb and every
C2SP tlog): a leaf is ``SHA-256(0x00 ‖ data)``, an interior node is ``SHA-256(0x01 ‖ left ‖
right)``, a tree of ``n`` leaves splits at the largest power of two smaller than ``n`` and is
never padded, and the empty tree hashes to ``SHA-256(b"")``. Using that exact tree, rather than
a home-grown one, is what lets witnesses and third-party verifiers check our checkpoints.

Everything here is pure: bytes in, bytes out, no storage and no clock. The code that persists
tree state lives elsewhere and keeps a :class:`Frontier` (its bytes) as the only state it needs
to extend the tree.

Speed matters in one place, :func:`root_from_leaf_hashes`, which ``verify`` runs over every
leaf: it hashes level by level with one ``hashlib`` call per interior node and nothing else in
the loop. A lone node at the right edge of a level is carried up unchanged, which yields exactly
the RFC 9162 split-at-the-largest-power-of-two tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Final

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"
_FRONTIER_VERSION: Final = 1


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf's data: ``SHA-256(0x00 ‖ data)``; the prefix keeps leaves and nodes apart."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two child hashes into their parent: ``SHA-256(0x01 ‖ left ‖ right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two strictly smaller than ``n`` (``n`` ≥ 2): RFC 9162's split."""
    if n < 2:
        raise ValueError(f"no power of two below {n} splits a tree")
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the root hash of the tree whose leaves have these hashes, in order.

    Costs one SHA-256 call per interior node (``n - 1`` for ``n`` leaves) and keeps at most
    one level (``n / 2`` hashes) alive besides the input.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    sha256 = hashlib.sha256
    prefix = _NODE_PREFIX
    level: Sequence[bytes] = leaf_hashes
    while len(level) > 1:
        pairs = zip(level[0::2], level[1::2], strict=False)  # an odd last node waits
        parents = [sha256(prefix + a + b).digest() for a, b in pairs]
        if len(level) & 1:
            parents.append(level[-1])
        level = parents
    return level[0]


class Frontier:
    """The compact range ``[0, size)``: the roots of the perfect subtrees that cover it.

    A tree of ``size`` leaves is covered by one perfect subtree per set bit of ``size``, largest
    (leftmost) first, so the frontier holds O(log n) hashes however many leaves went in. That is
    all the state needed to append leaves and compute the current root, which is why the store
    persists :meth:`to_bytes` rather than the whole tree.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def subtree_roots(self) -> tuple[bytes, ...]:
        """Roots of the covering perfect subtrees, largest (leftmost) first."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash at index ``size``, merging every subtree it completes."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
        hashes = self._hashes
        h = leaf_hash
        n = self._size
        while n & 1:
            h = hashlib.sha256(_NODE_PREFIX + hashes.pop() + h).digest()
            n >>= 1
        hashes.append(h)
        self._size += 1

    def append_with_nodes(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash and return every perfect subtree it completes.

        Each entry is ``(level, index, hash)`` for the subtree covering leaves
        ``[index << level, (index + 1) << level)``, the leaf itself first. A store that saves
        these (all of them, or only the levels it chooses) can then serve any proof's nodes
        without rehashing leaves; see :mod:`keeptrail.ledger.proof`.
        """
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
        hashes = self._hashes
        n = self._size
        h = leaf_hash
        nodes = [(0, n, h)]
        level = 0
        while n & 1:
            h = node_hash(hashes.pop(), h)
            n >>= 1
            level += 1
            nodes.append((level, n, h))
        hashes.append(h)
        self._size += 1
        return nodes

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append each leaf hash in order (the loop of :meth:`append`, inlined for bulk loads)."""
        sha256 = hashlib.sha256
        prefix = _NODE_PREFIX
        hashes = self._hashes
        n = self._size
        try:
            for leaf in leaf_hashes:
                if len(leaf) != HASH_SIZE:
                    raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf)}")
                h = leaf
                m = n
                while m & 1:
                    h = sha256(prefix + hashes.pop() + h).digest()
                    m >>= 1
                hashes.append(h)
                n += 1
        finally:
            self._size = n  # leaves before a bad one stay appended, consistently

    def root(self) -> bytes:
        """Return the RFC 9162 root of the ``size`` leaves appended so far."""
        if not self._hashes:
            return EMPTY_ROOT
        hashes = self._hashes
        r = hashes[-1]
        for h in reversed(hashes[:-1]):
            r = node_hash(h, r)
        return r

    def copy(self) -> Frontier:
        """Return an independent frontier with the same state."""
        other = Frontier()
        other._size = self._size
        other._hashes = list(self._hashes)
        return other

    def to_bytes(self) -> bytes:
        """Serialise as ``version (1 byte) ‖ size (8 bytes, big-endian) ‖ subtree roots``."""
        return bytes([_FRONTIER_VERSION]) + self._size.to_bytes(8, "big") + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        """Parse :meth:`to_bytes` output, refusing anything that is not exactly that shape."""
        if len(data) < 9 or data[0] != _FRONTIER_VERSION:
            raise ValueError("not a serialised frontier (bad length or version)")
        size = int.from_bytes(data[1:9], "big")
        count = size.bit_count()
        body = data[9:]
        if len(body) != count * HASH_SIZE:
            raise ValueError(
                f"frontier of size {size} needs {count} hashes, got {len(body) / HASH_SIZE:g}"
            )
        frontier = cls()
        frontier._size = size
        frontier._hashes = [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)]
        return frontier

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"
