"""Self-contained proof bundles: build them from a store, check them with only a verifier key.

An inclusion bundle (``keeptrail prove EVENT_ID``) carries the event document, the exact
canonical bytes its leaf hashes (base64), the leaf index, the audit path, the signed
checkpoint it leads to and, for convenience, the verifier key. A consistency bundle
(``keeptrail prove --consistency OLD NEW``) carries both tree heads and the RFC 9162 proof.
:func:`check_bundle` needs nothing but the bundle and a verifier key the auditor trusts (the
key inside the bundle is informational: trusting it would let a forger vouch for himself).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

import orjson

from keeptrail.event import to_document
from keeptrail.ledger.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from keeptrail.ledger.merkle import leaf_hash
from keeptrail.ledger.note import NoteError, Verifier, open_note
from keeptrail.ledger.proof import (
    consistency_proof,
    inclusion_proof,
    range_hash,
    verify_consistency,
    verify_inclusion,
)
from keeptrail.store.contract import Store

INCLUSION: Final = "keeptrail-inclusion-proof/1"
CONSISTENCY: Final = "keeptrail-consistency-proof/1"


class ProofError(ValueError):
    """A proof could not be built, or a bundle does not check out."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ProofError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProofError(f"{what} is not valid base64") from exc


def inclusion_bundle(store: Store, event_id: str) -> dict[str, Any]:
    """The inclusion bundle of one stored event, against the store's latest checkpoint."""
    leaf = store.ledger_leaf(event_id)
    if leaf is None:
        raise ProofError(f"no event {event_id} with a ledger leaf in this store")
    checkpoint = store.latest_checkpoint()
    verifier = store.verifier
    if checkpoint is None or verifier is None or checkpoint.size <= leaf.leaf_index:
        raise ProofError("no signed checkpoint covers this event yet")
    path = inclusion_proof(leaf.leaf_index, checkpoint.size, store.ledger_node)
    if leaf_hash(leaf.canonical) != leaf.leaf_hash or not verify_inclusion(
        leaf.leaf_hash, leaf.leaf_index, checkpoint.size, path, checkpoint.root
    ):
        raise ProofError("the stored tree does not prove this event: run keeptrail verify")
    return {
        "format": INCLUSION,
        "event": to_document(leaf.event),
        "canonical_bytes": _b64(leaf.canonical),
        "leaf_index": leaf.leaf_index,
        "tree_size": checkpoint.size,
        "inclusion_proof": [_b64(h) for h in path],
        "checkpoint": checkpoint.note,
        "verifier_key": verifier.key,
    }


def consistency_bundle(store: Store, old: int, new: int) -> dict[str, Any]:
    """The consistency bundle between two tree sizes, with their signed checkpoints if kept."""
    size = store.ledger_frontier().size
    if not 0 <= old <= new <= size:
        raise ProofError(f"need 0 <= OLD <= NEW <= {size} (the tree size)")
    node = store.ledger_node
    old_cp, new_cp = store.checkpoint_at(old), store.checkpoint_at(new)
    if new_cp is None:
        latest = store.latest_checkpoint()
        hint = f" (the latest is {latest.size})" if latest else ""
        raise ProofError(f"no signed checkpoint at size {new}{hint}: pick NEW from those")
    verifier = store.verifier
    return {
        "format": CONSISTENCY,
        "old_size": old,
        "new_size": new,
        "old_root": _b64(range_hash(0, old, node)),
        "new_root": _b64(range_hash(0, new, node)),
        "consistency_proof": [_b64(h) for h in consistency_proof(old, new, node)],
        "old_checkpoint": old_cp.note if old_cp else None,
        "new_checkpoint": new_cp.note if new_cp else None,
        "verifier_key": verifier.key if verifier else None,
    }


def _signed(note: object, verifier: Verifier, what: str) -> Checkpoint:
    if not isinstance(note, str):
        raise ProofError(f"{what} is missing")
    try:
        cp = parse_checkpoint(open_note(note, [verifier]).text)
    except (NoteError, CheckpointError) as exc:
        raise ProofError(f"{what} is not signed by {verifier.name}: {exc}") from exc
    if cp.origin != verifier.name:
        raise ProofError(f"{what} is for origin {cp.origin!r}, not {verifier.name!r}")
    return cp


def check_bundle(data: bytes, verifier: Verifier) -> str:
    """Check a bundle against a trusted verifier key; returns a one-line verdict or raises."""
    try:
        bundle = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProofError("the proof file is not JSON") from exc
    if not isinstance(bundle, dict):
        raise ProofError("the proof file is not a keeptrail proof bundle")
    kind = bundle.get("format")
    if kind == INCLUSION:
        return _check_inclusion(bundle, verifier)
    if kind == CONSISTENCY:
        return _check_consistency(bundle, verifier)
    raise ProofError(f"unknown proof format {kind!r}")


def _check_inclusion(bundle: dict[str, Any], verifier: Verifier) -> str:
    cp = _signed(bundle.get("checkpoint"), verifier, "the checkpoint")
    canonical = _unb64(bundle.get("canonical_bytes"), "canonical_bytes")
    index, size = bundle.get("leaf_index"), bundle.get("tree_size")
    if not isinstance(index, int) or size != cp.size:
        raise ProofError("leaf_index or tree_size does not match the signed checkpoint")
    path = [_unb64(h, "a proof hash") for h in bundle.get("inclusion_proof") or []]
    if not verify_inclusion(leaf_hash(canonical), index, cp.size, path, cp.root):
        raise ProofError("the inclusion proof does not lead to the signed root")
    shown = orjson.dumps(bundle.get("event"), option=orjson.OPT_SORT_KEYS)
    if shown != canonical:
        raise ProofError("the event document differs from the bytes that were proven")
    event = orjson.loads(canonical)
    return f"OK: event {event.get('id')} is leaf {index} of {cp.origin} at tree size {cp.size}"


def _check_consistency(bundle: dict[str, Any], verifier: Verifier) -> str:
    old, new = bundle.get("old_size"), bundle.get("new_size")
    if not isinstance(old, int) or not isinstance(new, int):
        raise ProofError("old_size and new_size must be integers")
    old_root = _unb64(bundle.get("old_root"), "old_root")
    new_root = _unb64(bundle.get("new_root"), "new_root")
    signed = 0
    for key, size, root in (("old_checkpoint", old, old_root), ("new_checkpoint", new, new_root)):
        if bundle.get(key) is None:
            continue
        cp = _signed(bundle[key], verifier, key.replace("_", " "))
        if (cp.size, cp.root) != (size, root):
            raise ProofError(f"the {key.replace('_', ' ')} does not match the proven tree head")
        signed += 1
    if signed == 0:
        raise ProofError("neither tree head is signed: nothing ties the proof to this log")
    path = [_unb64(h, "a proof hash") for h in bundle.get("consistency_proof") or []]
    if not verify_consistency(old, new, old_root, new_root, path):
        raise ProofError("the consistency proof does not hold")
    return f"OK: the tree at size {old} is a prefix of the tree at size {new} ({signed} signed)"
