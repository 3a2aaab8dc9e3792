"""Tests for C2SP signed notes with Ed25519 keys."""

from __future__ import annotations

import base64

import pytest

from keeptrail.ledger.note import (
    InvalidSignatureError,
    MalformedNoteError,
    NoteError,
    UnverifiedNoteError,
    Verifier,
    generate_signer,
    key_id,
    open_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
    split_note,
)

# The example from the C2SP signed-note specification (https://c2sp.org/signed-note).
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_TEXT = "This is an example message.\n"
SPEC_SIG = (
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM="
)
SPEC_NOTE = f"{SPEC_TEXT}\n\u2014 example.com/foo {SPEC_SIG}\n"

# The example from golang.org/x/mod/sumdb/note's package documentation (note.go).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_spec_vector_opens() -> None:
    """The signed-note specification's example verifies with its published key."""
    verifier = parse_verifier_key(SPEC_VKEY)
    assert verifier.key_id == 0x530D903A
    assert verifier.key == SPEC_VKEY
    opened = open_note(SPEC_NOTE, [verifier])
    assert opened == (SPEC_TEXT, ("example.com/foo",))
    assert open_note(SPEC_NOTE.encode(), [verifier]).text == SPEC_TEXT


def test_go_signer_key_reproduces_go_signature() -> None:
    """The Go signer key string parses and signs the Go example byte for byte."""
    signer = parse_signer_key(GO_SKEY)
    assert signer.key == GO_SKEY
    assert signer.verifier().key == GO_VKEY
    assert sign_note(GO_TEXT, signer) == GO_NOTE
    assert open_note(GO_NOTE, [parse_verifier_key(GO_VKEY)]).signers == ("PeterNeumann",)


def test_generated_keys_round_trip() -> None:
    """A generated signer's key strings parse back and its notes open with its verifier."""
    signer = generate_signer("keeptrail.example/log")
    assert parse_signer_key(signer.key) == signer
    verifier = parse_verifier_key(signer.verifier().key)
    assert verifier == signer.verifier()
    assert verifier.key_id == key_id(signer.name, verifier.public_key)
    text = "line one\n\nline three after a blank line\n"
    opened = open_note(sign_note(text, signer), [verifier])
    assert opened.text == text
    assert "PRIVATE" not in repr(signer)


def test_multiple_signers_and_unknown_signatures() -> None:
    """Every known signer is reported in order and signatures by unknown keys are ignored."""
    a, b, c = (generate_signer(n) for n in ("a.example", "b.example", "c.example"))
    note = sign_note("hello\n", a, b, c)
    assert open_note(note, [a.verifier(), c.verifier()]).signers == ("a.example", "c.example")
    text, sigs = split_note(note)
    assert text == "hello\n"
    assert [s.name for s in sigs] == ["a.example", "b.example", "c.example"]


def test_same_name_other_key_is_treated_as_unknown() -> None:
    """A signature whose name matches a trusted key but whose ID does not is ignored."""
    trusted, impostor = generate_signer("log.example"), generate_signer("log.example")
    with pytest.raises(UnverifiedNoteError):
        open_note(sign_note("x\n", impostor), [trusted.verifier()])


def test_no_known_signature_is_rejected() -> None:
    """A well-formed note signed only by unknown keys is rejected as unverified."""
    with pytest.raises(UnverifiedNoteError):
        open_note(SPEC_NOTE, [])


def test_bad_signature_by_known_key_is_rejected() -> None:
    """A note whose text was altered after signing fails with InvalidSignatureError."""
    verifier = parse_verifier_key(SPEC_VKEY)
    with pytest.raises(InvalidSignatureError):
        open_note(SPEC_NOTE.replace("example message", "example massage"), [verifier])


def test_bad_signature_rejects_even_with_another_good_one() -> None:
    """One bad signature by a known key rejects the note even when another key verifies."""
    a, b = generate_signer("a.example"), generate_signer("b.example")
    good = sign_note("t\n", a)
    forged_b = sign_note("other\n", b).split("\n\n")[1]
    with pytest.raises(InvalidSignatureError):
        open_note(good + forged_b, [a.verifier(), b.verifier()])


def test_duplicate_signatures_are_counted_once() -> None:
    """A signature line repeated by the same key is reported once."""
    signer = generate_signer("a.example")
    note = sign_note("t\n", signer)
    sig_line = note.split("\n\n")[1]
    assert open_note(note + sig_line, [signer.verifier()]).signers == ("a.example",)


@pytest.mark.parametrize(
    "note",
    [
        SPEC_TEXT + "\u2014 example.com/foo " + SPEC_SIG + "\n",  # no blank line
        SPEC_NOTE[:-1],  # no final newline
        SPEC_NOTE.replace("\u2014", "-"),  # hyphen instead of em dash
        SPEC_NOTE.replace("\u2014 ", "\u2014"),  # no space after the dash
        SPEC_NOTE.replace(f" {SPEC_SIG}", ""),  # no signature
        SPEC_NOTE.replace(SPEC_SIG, SPEC_SIG[:-1]),  # broken padding
        SPEC_NOTE.replace(SPEC_SIG, SPEC_SIG.replace("U", "*")),  # not base64
        SPEC_NOTE.replace(SPEC_SIG, "AAAA"),  # shorter than a key ID and one byte
        SPEC_NOTE.replace("example.com/foo ", "example.com/f+o "),  # plus in the name
        SPEC_NOTE.replace("This", "Th\tis"),  # control character
        SPEC_NOTE.replace("This", "Th\ris"),  # carriage return
        SPEC_NOTE + "\n",  # trailing blank line leaves no signature block
        "\ud800" + SPEC_NOTE,  # lone surrogate: not encodable as UTF-8
    ],
)
def test_malformed_notes_are_rejected(note: str) -> None:
    """Notes that break the signed-note format raise MalformedNoteError."""
    with pytest.raises(MalformedNoteError):
        open_note(note, [parse_verifier_key(SPEC_VKEY)])


def test_invalid_utf8_bytes_are_rejected() -> None:
    """A note given as bytes must be valid UTF-8."""
    with pytest.raises(MalformedNoteError, match="UTF-8"):
        open_note(b"\xff" + SPEC_NOTE.encode(), [parse_verifier_key(SPEC_VKEY)])


def test_too_many_signatures_are_rejected() -> None:
    """A note with more than 100 signature lines is refused before any is checked."""
    signer = generate_signer("a.example")
    note = sign_note("t\n", signer)
    with pytest.raises(MalformedNoteError, match="more than"):
        open_note(note + note.split("\n\n")[1] * 100, [signer.verifier()])


@pytest.mark.parametrize("text", ["no newline", "", "tab\there\n", "nul\x00\n", "\udc80\n"])
def test_unsignable_text_is_refused(text: str) -> None:
    """sign_note refuses text that does not end in newline or has control characters."""
    with pytest.raises(MalformedNoteError):
        sign_note(text, generate_signer("a.example"))


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "nbsp\u00a0", "tab\t", "em\u2003sp"])
def test_invalid_key_names_are_refused(name: str) -> None:
    """Key names must be non-empty with no Unicode spaces, plus signs or controls."""
    with pytest.raises(MalformedNoteError, match="key name"):
        generate_signer(name)


@pytest.mark.parametrize(
    "vkey",
    [
        "example.com/foo+530d903a",  # missing key
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong ID
        "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # short ID
        "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # other name
        "example.com/foo+530d903a+AkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # bad base64
        "example.com/foo+530d903a+" + base64.b64encode(b"\x02" + bytes(32)).decode(),  # alg 2
        "a+b+c+d",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    """Verifier key strings with a bad shape, ID, algorithm or key are refused."""
    with pytest.raises(MalformedNoteError):
        parse_verifier_key(vkey)


@pytest.mark.parametrize(
    "skey",
    [
        GO_SKEY.replace("PRIVATE+KEY", "PUBLIC+KEY"),
        GO_SKEY.replace("c74f20a3", "c74f20a4"),
        GO_SKEY.replace("PeterNeumann", "PaulNeumann"),
        GO_SKEY[:-4],
        GO_VKEY,
    ],
)
def test_malformed_signer_keys_are_refused(skey: str) -> None:
    """Signer key strings with a bad prefix, ID, name or seed are refused."""
    with pytest.raises(MalformedNoteError):
        parse_signer_key(skey)


def test_conflicting_verifiers_are_refused() -> None:
    """Two different keys claiming the same name and ID make the verifier set ambiguous."""
    real = parse_verifier_key(SPEC_VKEY)
    clash = Verifier(real.name, real.key_id, bytes(32))
    with pytest.raises(NoteError, match="share"):
        open_note(SPEC_NOTE, [real, clash])


def test_signing_needs_a_signer() -> None:
    """sign_note with no signer is an error rather than an unsigned note."""
    with pytest.raises(ValueError, match="at least one"):
        sign_note("t\n")
