"""The tamper-evident ledger's pure core: Merkle hashing, proofs, signed notes, checkpoints.

Nothing in these modules touches storage or the clock; the code that persists tree state and
talks to witnesses builds on them. The names below are the supported surface.
"""

from keeptrail.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    format_add_checkpoint,
    format_checkpoint,
    parse_add_checkpoint,
    parse_checkpoint,
)
from keeptrail.ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Frontier,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
)
from keeptrail.ledger.note import (
    InvalidSignatureError,
    MalformedNoteError,
    NoteError,
    OpenedNote,
    Signer,
    UnverifiedNoteError,
    Verifier,
    generate_signer,
    open_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)
from keeptrail.ledger.proof import (
    NodeHashFn,
    TreeNodes,
    consistency_proof,
    inclusion_proof,
    nodes_from_leaf_hashes,
    range_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Checkpoint",
    "CheckpointError",
    "Frontier",
    "InvalidSignatureError",
    "MalformedNoteError",
    "NodeHashFn",
    "NoteError",
    "OpenedNote",
    "Signer",
    "TreeNodes",
    "UnverifiedNoteError",
    "Verifier",
    "consistency_proof",
    "format_add_checkpoint",
    "format_checkpoint",
    "generate_signer",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "nodes_from_leaf_hashes",
    "open_note",
    "parse_add_checkpoint",
    "parse_checkpoint",
    "parse_signer_key",
    "parse_verifier_key",
    "range_hash",
    "root_from_leaf_hashes",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
]
