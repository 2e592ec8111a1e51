"""Fuzzing the inbound front end piece by piece: the MIME splitter, the ebMS header parser
(with the hardened XML parser and payload resolution) and the WS-Security verifier's front
end (Security header, tokens, references, EncryptedKey/EncryptedData).

Each part may only refuse input with its own error type (EbmsException, XmlRejected,
SecurityError), and every refusal must fit into an ebMS error signal. Short deterministic
hypothesis runs and the replay of tests/fuzz/corpus/<target>/; ``make fuzz`` runs the same
targets coverage-guided for longer.
"""
from __future__ import annotations

import base64
import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from crypto import AlgorithmNotAllowed, SecurityError, decrypt_parts, verify_message
from crypto.wssec_common import Part
from gateway import as4
from tests.fuzz.inbound_env import build_env
from tests.fuzz.mutate import NS
from tests.fuzz.budget import in_suite
from tests.fuzz.targets import (check_error_fits_signal, corpus_files, coverage_files, header_target, mime_target,
                                 replay, wssec_target)

TARGET = {"mime": mime_target, "header": header_target, "wssec": wssec_target}
FUZZ = in_suite(max_examples=300)


@pytest.fixture(scope="module")
def env(tmp_path_factory, pki):
    env = build_env(tmp_path_factory.mktemp("fuzz-parsers"), pki)
    yield env
    env.close()


@FUZZ
@given(data=st.binary(max_size=300))
def test_mime_splitter_only_refuses_with_ebms_errors(env, data):
    mime_target(env)(data)


@FUZZ
@given(data=st.binary(max_size=300))
def test_header_parser_only_refuses_with_ebms_errors(env, data):
    header_target(env)(data)


@FUZZ
@given(data=st.binary(max_size=300))
def test_wssec_front_end_only_refuses_with_security_errors(env, data):
    wssec_target(env)(data)


@pytest.mark.parametrize("target,path", [(t, p) for t in ("mime", "header", "wssec") for p in corpus_files(t)],
                         ids=lambda v: getattr(v, "name", v))
def test_saved_input_replays(env, target, path):
    TARGET[target](env)(path.read_bytes())


@pytest.mark.parametrize("target", ["mime", "header", "wssec"])
def test_coverage_corpus_replays(env, target):
    """What `make fuzz` runs found reaching new code (merged into corpus/<target>/coverage/)."""
    assert not replay(TARGET[target](env), coverage_files(target))


# -- the crash classes, one readable test each ------------------------------------------------
def test_mime_errors_quoting_control_characters_fit_an_error_signal():
    """decode_multipart quotes Content-IDs and parameters into descriptions; control
    characters in them made the error signal impossible to build."""
    ctype = 'multipart/related; boundary="b"; start="<x\x01y>"'
    body = b"--b\r\nContent-ID: <root>\r\n\r\n<x/>\r\n--b--\r\n"
    with pytest.raises(as4.EbmsException) as caught:
        as4.decode_message(ctype, body)
    assert caught.value.code == "EBMS:0007" and "x\\x01y" in caught.value.error.description
    check_error_fits_signal(caught.value.error)


def test_make_error_escapes_what_xml_cannot_carry():
    error = as4.make_error("EBMS:0004", "bad \x00 \x1f \ufffe \ud800 kept: \u00e9\t\n", "id\x01")
    assert error.description == "bad \\x00 \\x1f \\ufffe \\ud800 kept: \u00e9\t\n"
    assert error.ref_to_message_id == "id\\x01"
    check_error_fits_signal(error)


def _seed(env, name: str = "rsa"):
    seed = next(s for s in env.seeds if s.name == name)
    root = as4.parse_xml(seed.soap)
    parts = [Part(p.content_id, p.content_type, p.data) for p in seed.attachments]
    return seed, root, parts


@pytest.mark.parametrize("ns,local", [("ds", "Transforms"), ("ds", "KeyInfo"), ("wsse", "Reference"),
                                      ("wsse", "SecurityTokenReference"), ("ds", "DigestMethod")])
def test_a_repeated_element_in_the_signature_is_a_signature_error(env, ns, local):
    """wssec_common.child() raised a bare ValueError for a repeated element, which no
    caller in the verifier caught."""
    seed, root, parts = _seed(env)
    el = root.find(f".//{{{NS['ds']}}}Signature//{{{NS[ns]}}}{local}")
    assert el is not None
    el.addnext(copy.deepcopy(el))
    plain = decrypt_parts(root, parts, env.decryption_keys[seed.name], env.security_policies[seed.name])
    with pytest.raises(SecurityError, match=f"more than one {local}"):
        verify_message(root, plain, env.trusted[seed.name], env.security_policies[seed.name])


@pytest.mark.parametrize("seed_name,local", [("rsa", "ReferenceList"), ("rsa", "DigestMethod"),
                                             ("eddsa", "Salt"), ("eddsa", "KeyLength"), ("eddsa", "PRF")])
def test_a_repeated_element_in_the_encrypted_key_is_a_decryption_error(env, seed_name, local):
    seed, root, parts = _seed(env, seed_name)
    hits = [e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == local
            and any(etree.QName(a).localname == "EncryptedKey" for a in e.iterancestors())]
    assert hits, local
    hits[0].addnext(copy.deepcopy(hits[0]))
    with pytest.raises(SecurityError, match=f"more than one {local}") as caught:
        decrypt_parts(root, parts, env.decryption_keys[seed.name], env.security_policies[seed.name])
    assert not isinstance(caught.value, AlgorithmNotAllowed)


def test_a_repeated_specified_salt_is_a_decryption_error(env):
    """dsig-more:Salt/dsig-more:Specified read with child() outside any handler."""
    seed, root, parts = _seed(env, "eddsa")
    salt = root.find(f".//{{{NS['dsig-more']}}}Salt")
    value, salt.text = salt.text, None
    for _ in range(2):
        etree.SubElement(salt, f"{{{NS['dsig-more']}}}Specified").text = value
    with pytest.raises(SecurityError, match="more than one Specified"):
        decrypt_parts(root, parts, env.decryption_keys[seed.name], env.security_policies[seed.name])


def _edit_base64(el, edit) -> None:
    el.text = base64.b64encode(edit(bytearray(base64.b64decode("".join(el.text.split()))))).decode("ascii")


def bad_version(der: bytearray) -> bytes:
    """X.509 version field 0x40: load_der_x509_certificate raises InvalidVersion (no ValueError)."""
    i = der.index(b"\xa0\x03\x02\x01\x02")
    der[i + 4] = 0x40
    return bytes(der)


def bad_subject(der: bytearray) -> bytes:
    """A subject attribute with a bogus tag: loads, but ``.subject`` raises (cryptography
    parses names lazily), which the UntrustedSigner message did."""
    i = der.index(b"aa-nsw", der.index(b"\x0c\x06aa-nsw") + 8)
    der[i - 2] = 0x40
    return bytes(der)


@pytest.mark.parametrize("edit", [bad_version, bad_subject], ids=lambda f: f.__name__)
def test_a_malformed_certificate_in_the_token_is_a_signature_error(env, edit):
    seed, root, parts = _seed(env)
    _edit_base64(root.find(f".//{{{NS['wsse']}}}BinarySecurityToken"), edit)
    plain = decrypt_parts(root, parts, env.decryption_keys[seed.name], env.security_policies[seed.name])
    with pytest.raises(SecurityError, match="does not hold a valid X.509 certificate"):
        verify_message(root, plain, env.trusted[seed.name], env.security_policies[seed.name])


def test_an_originator_key_of_unknown_type_is_a_decryption_error(env):
    """load_der_public_key raises UnsupportedAlgorithm (no ValueError) for an unknown key OID."""
    seed, root, parts = _seed(env, "eddsa")
    x25519_oid = b"\x06\x03\x2b\x65\x6e"

    def unknown_oid(der: bytearray) -> bytes:
        return bytes(der).replace(x25519_oid, b"\x06\x03\x2b\x65\x00", 1)
    _edit_base64(root.find(f".//{{{NS['dsig11']}}}DEREncodedKeyValue"), unknown_oid)
    with pytest.raises(SecurityError, match="originator .ephemeral. public key is invalid"):
        decrypt_parts(root, parts, env.decryption_keys[seed.name], env.security_policies[seed.name])
