"""Tests for C2SP checkpoints and tlog-witness add-checkpoint request bodies."""

from __future__ import annotations

import base64

import pytest

from keeptrail.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    format_add_checkpoint,
    format_checkpoint,
    parse_add_checkpoint,
    parse_checkpoint,
)
from keeptrail.ledger.merkle import EMPTY_ROOT, Frontier, leaf_hash
from keeptrail.ledger.note import generate_signer, open_note, sign_note
from keeptrail.ledger.proof import TreeNodes, consistency_proof, verify_consistency

# The example from the C2SP tlog-checkpoint specification (https://c2sp.org/tlog-checkpoint).
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_SIGNED = (
    SPEC_BODY + "\n\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRD"
    "eOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
# The example request body from the C2SP tlog-witness specification (https://c2sp.org/tlog-witness).
WITNESS_BODY = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n" + SPEC_SIGNED + "\u2014 example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9Ed"
    "mHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
)


def test_spec_checkpoint_parses_and_reformats_identically() -> None:
    """The tlog-checkpoint example parses to its fields and formats back to the same text."""
    cp = parse_checkpoint(SPEC_BODY)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.extensions == ()
    assert cp.text() == SPEC_BODY


def test_extension_lines_round_trip() -> None:
    """Extension lines are kept in order after the three mandatory lines."""
    text = format_checkpoint("log.example", 0, EMPTY_ROOT, ["ext one", "ext two"])
    assert text.endswith("ext one\next two\n")
    assert parse_checkpoint(text) == Checkpoint(
        "log.example", 0, EMPTY_ROOT, ("ext one", "ext two")
    )


ROOT64 = base64.b64encode(EMPTY_ROOT).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"log.example\n5\n{ROOT64}",  # no final newline
        "log.example\n5\n",  # no root
        f"\n5\n{ROOT64}\n",  # empty origin
        f"log.example\n05\n{ROOT64}\n",  # leading zero
        f"log.example\n+5\n{ROOT64}\n",  # sign
        f"log.example\n 5\n{ROOT64}\n",  # space
        f"log.example\n\u0665\n{ROOT64}\n",  # non-ASCII digit
        f"log.example\n{1 << 64}\n{ROOT64}\n",  # beyond 64 bits
        f"log.example\n5\n{base64.b64encode(bytes(31)).decode()}\n",  # short root
        f"log.example\n5\n{ROOT64.rstrip('=')}\n",  # unpadded root
        f"log.example\n5\n{ROOT64[:-2]}5=\n",  # non-canonical trailing bits
        f"log.example\n5\n{ROOT64}\n\n",  # empty extension line
        f"log.example\n5\n{ROOT64}\next\x01\n",  # control character
    ],
)
def test_malformed_checkpoints_are_rejected(text: str) -> None:
    """Checkpoint text that is not exactly canonical raises CheckpointError."""
    with pytest.raises(CheckpointError):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, EMPTY_ROOT, ()),
        ("a\nb", 1, EMPTY_ROOT, ()),
        ("log.example", -1, EMPTY_ROOT, ()),
        ("log.example", 1 << 64, EMPTY_ROOT, ()),
        ("log.example", 1, b"short", ()),
        ("log.example", 1, EMPTY_ROOT, ("",)),
        ("log.example", 1, EMPTY_ROOT, ("two\nlines",)),
    ],
)
def test_unformattable_checkpoints_are_refused(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    """format_checkpoint refuses values that would not parse back."""
    with pytest.raises(CheckpointError):
        format_checkpoint(origin, size, root, extensions)


def test_spec_witness_request_round_trips() -> None:
    """The tlog-witness example body parses and formats back byte for byte."""
    old, proof, signed = parse_add_checkpoint(WITNESS_BODY)
    assert old == 20852014
    assert len(proof) == 4
    assert all(len(h) == 32 for h in proof)
    assert format_add_checkpoint(old, proof, signed) == WITNESS_BODY


def test_signed_checkpoint_and_witness_request_end_to_end() -> None:
    """A signed checkpoint opens, parses, and its witness request carries a valid proof."""
    signer = generate_signer("log.example")
    hashes = [leaf_hash(str(i).encode()) for i in range(21)]
    tree = TreeNodes(hashes)
    frontier = Frontier()
    frontier.extend(hashes)
    signed = sign_note(format_checkpoint("log.example", 21, frontier.root()), signer)
    cp = parse_checkpoint(open_note(signed, [signer.verifier()]).text)
    assert (cp.size, cp.root) == (21, tree.root())

    body = format_add_checkpoint(13, consistency_proof(13, 21, tree), signed)
    old, proof, signed_again = parse_add_checkpoint(body)
    assert signed_again == signed
    assert verify_consistency(old, cp.size, tree.root(old), cp.root, proof)
    assert format_add_checkpoint(0, [], signed).startswith("old 0\n\nlog.example\n21\n")


@pytest.mark.parametrize(
    ("old", "proof"),
    [(-1, []), (22, []), (0, [EMPTY_ROOT]), (5, [b"short"]), (5, [EMPTY_ROOT] * 64)],
)
def test_bad_witness_requests_are_refused(old: int, proof: list[bytes]) -> None:
    """Old sizes past the checkpoint, proofs from 0, bad hashes and long proofs are refused."""
    signed = sign_note(format_checkpoint("log.example", 21, EMPTY_ROOT), generate_signer("k"))
    with pytest.raises(CheckpointError):
        format_add_checkpoint(old, proof, signed)


@pytest.mark.parametrize(
    "body",
    [
        "old 5\nAAAA\n",  # no empty line
        "new 5\n\n" + SPEC_SIGNED,
        "old 05\n\n" + SPEC_SIGNED,
        "old 5\nnot base64\n\n" + SPEC_SIGNED,
        "old 5\n" + f"{ROOT64}\n" * 64 + "\n" + SPEC_SIGNED,
    ],
)
def test_malformed_witness_requests_are_rejected(body: str) -> None:
    """Request bodies without the old line, the blank line or valid proof lines are rejected."""
    with pytest.raises(CheckpointError):
        parse_add_checkpoint(body)
