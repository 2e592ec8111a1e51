"""Fuzzing the inbound listener's path (``InboundPipeline.process``): whatever arrives, the
answer is a signed ebMS error signal (or a receipt, or 413), never an exception the listener
would turn into HTTP 500.

Three runs of the same target (tests/fuzz/targets.py): a short deterministic hypothesis run,
the replay of every saved input under tests/fuzz/corpus/inbound/ (crash reproducers
included), and one test per crash the fuzzers found, written out so the input is readable.
The long coverage-guided run is ``make fuzz``.
"""
from __future__ import annotations

import base64
import copy
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from crypto import suite, verify_message
from gateway import as4
from tests.fuzz.inbound_env import EDDSA, build_env
from tests.fuzz.mutate import NS, model_of
from tests.fuzz.budget import in_suite
from tests.fuzz.targets import corpus_files, coverage_files, inbound_target, replay

BASE = "edelivery-as4-1.15"
SUITE_OF_SEED = {"eddsa": EDDSA}
FUZZ = in_suite(max_examples=300)


@pytest.fixture(scope="module")
def env(tmp_path_factory, pki):
    env = build_env(tmp_path_factory.mktemp("fuzz-inbound"), pki)
    yield env
    env.close()


def answer(env, content_type: str, body: bytes, suite_name: str = "edelivery-as4-1.15") -> str:
    """'receipt' or the one error code of the signed error signal the pipeline answered
    (signed with our keys of the sender's suite, once the sender is known)."""
    response = env.pipeline.process(content_type, body)
    assert response.code == 200, response
    envelope = as4.parse_xml(response.body)
    verify_message(envelope, [], [env.gateway.identity.for_suite(suite_name).signing_cert], suite(suite_name))
    parsed = as4.parse_envelope(envelope)
    if parsed.receipt is not None:
        return "receipt"
    (error,) = parsed.error_signal.errors
    assert error.description
    return error.error_code


def repack(seed, soap: bytes | None = None, attachments: list[as4.MimePart] | None = None) -> tuple[str, bytes]:
    return as4.encode_multipart(soap if soap is not None else seed.soap,
                                attachments if attachments is not None else seed.attachments,
                                seed.boundary, root_content_id=seed.root_cid)


def edited(seed, edit) -> tuple[str, bytes]:
    root = etree.fromstring(seed.soap)
    edit(root)
    return repack(seed, etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def seed_named(env, name: str):
    return next(s for s in env.seeds if s.name == name)


def test_every_seed_is_a_valid_message(env):
    """The mutations start from messages the receiver accepts (else the fuzzing proves little)."""
    for seed in env.seeds:
        assert answer(env, seed.content_type, seed.body, SUITE_OF_SEED.get(seed.name, BASE)) == "receipt", seed.name


@FUZZ
@given(data=st.binary(max_size=400))
def test_fuzzed_messages_get_an_answer(env, data):
    inbound_target(env)(data)


@pytest.mark.parametrize("path", corpus_files("inbound"), ids=lambda p: p.name)
def test_saved_input_replays(env, path):
    inbound_target(env)(path.read_bytes())


def test_coverage_corpus_replays(env):
    """What `make fuzz` runs found reaching new code (merged into corpus/inbound/coverage/)."""
    assert not replay(inbound_target(env), coverage_files("inbound"))


# -- the crashes the fuzzers found, one test each ------------------------------------------
def test_control_characters_in_a_mime_header_are_quoted_in_the_error(env):
    """A repeated Content-ID holding a control character: the EBMS:0007 description quotes
    it, and lxml refused to put it into the error signal (ValueError, HTTP 500)."""
    model = model_of(seed_named(env, "rsa"))
    for _ in range(2):
        model.parts.append([[["Content-Type", "application/gzip"], ["Content-ID", "<a\x01b@fuzz>"]], b"x"])
    ctype, body = model.encode()
    assert answer(env, ctype, body) == "EBMS:0007"


def test_control_characters_in_the_content_type_are_quoted_in_the_error(env):
    seed = seed_named(env, "rsa")
    ctype = seed.content_type.replace(f'start="<{seed.root_cid}>"', 'start="<ro\x02ot@fuzz>"')
    response = env.pipeline.process(ctype, seed.body)
    parsed = as4.parse_envelope(as4.parse_xml(response.body))
    (error,) = parsed.error_signal.errors
    assert error.error_code == "EBMS:0007" and "ro\\x02ot@fuzz" in error.description


def _first(root, ns: str, local: str):
    el = root.find(f".//{{{NS[ns]}}}{local}")
    assert el is not None, local
    return el


def test_a_repeated_signature_element_is_a_failed_authentication(env):
    """Two ds:Transforms in one ds:Reference: wssec_common.child() raised a bare ValueError."""
    def edit(root):
        transforms = _first(root, "ds", "Transforms")
        transforms.addnext(copy.deepcopy(transforms))
    assert answer(env, *edited(seed_named(env, "rsa"), edit)) == "EBMS:0101"


def test_a_repeated_encryption_element_is_a_failed_decryption(env):
    """Two xenc:ReferenceList in one xenc:EncryptedKey: the same ValueError, on the decryption side."""
    def edit(root):
        references = _first(root, "xenc", "ReferenceList")
        references.addnext(copy.deepcopy(references))
    assert answer(env, *edited(seed_named(env, "rsa"), edit)) == "EBMS:0102"


def test_a_malformed_certificate_in_the_token_is_a_failed_authentication(env):
    """cryptography's InvalidVersion (not a ValueError) escaped the BinarySecurityToken loader."""
    def edit(root):
        bst = _first(root, "wsse", "BinarySecurityToken")
        der = bytearray(base64.b64decode("".join(bst.text.split())))
        i = der.index(b"\xa0\x03\x02\x01\x02")
        der[i + 4] = 0x40
        bst.text = base64.b64encode(bytes(der)).decode("ascii")
    assert answer(env, *edited(seed_named(env, "rsa"), edit)) == "EBMS:0101"


def test_an_originator_key_of_unknown_type_is_a_failed_decryption(env):
    """UnsupportedAlgorithm escaped the eDelivery 2.0 key-agreement parser."""
    def edit(root):
        key = _first(root, "dsig11", "DEREncodedKeyValue")
        der = base64.b64decode("".join(key.text.split())).replace(b"\x06\x03\x2b\x65\x6e", b"\x06\x03\x2b\x65\x00", 1)
        key.text = base64.b64encode(der).decode("ascii")
    assert answer(env, *edited(seed_named(env, "eddsa"), edit), EDDSA) == "EBMS:0102"


# -- the last line of defence ---------------------------------------------------------------
def test_a_bug_while_checking_a_message_is_a_signed_ebms_0004(env, monkeypatch):
    """A failure of ours while the message is only being checked (nothing stored yet) is
    answered with a definitive, signed EBMS:0004 naming an incident, not HTTP 500: the same
    bytes would fail the same way on every resend. No real input reaches such a bug any more
    (the fuzzers' finds are fixed above), so the fault is injected into the last checking
    step, payload resolution."""
    def broken(*_args, **_kwargs):
        raise TypeError("injected fault")
    monkeypatch.setattr("gateway.inbound.steps.resolve_payloads", broken)
    seed = seed_named(env, "rsa2")
    before = len(env.gateway.store.list_messages())
    response = env.pipeline.process(seed.content_type, seed.body)
    envelope = as4.parse_xml(response.body)
    verify_message(envelope, [], [env.gateway.identity.signing_cert])
    (error,) = as4.parse_envelope(envelope).error_signal.errors
    assert response.code == 200 and error.error_code == "EBMS:0004" and error.severity == "failure"
    assert error.ref_to_message_id == "fuzz-seed-rsa2@aa-nsw.swgw"
    assert "internal error of BB-NSW (incident " in error.description
    assert "injected fault" not in error.description           # no internals to the partner
    assert len(env.gateway.store.list_messages()) == before


def test_a_database_outage_is_not_answered_with_an_ebms_error(tmp_path, pki):
    """Once processing reaches the store, a failure may be an outage that passes: it goes
    up to the listener (HTTP 500), so the partner retries instead of giving up on an error."""
    import sqlalchemy.exc
    outage = build_env(tmp_path / "outage", pki)
    try:
        outage.gateway.store.engine.dispose()
        db = Path(outage.gateway.config.database_url[len("sqlite:///"):])
        for leftover in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            leftover.unlink(missing_ok=True)
        db.write_bytes(b"this is not a database " * 100)
        seed = seed_named(outage, "rsa")
        with pytest.raises(sqlalchemy.exc.DatabaseError):
            outage.pipeline.process(seed.content_type, seed.body)
    finally:
        outage.close()
