"""Stored libxmlsec1 vectors (tests/vectors/xmlsec/, made by
tests/vectors/make_xmlsec_vectors.py): messages that libxmlsec1 signed and encrypted
from independent templates must verify and decrypt with our crypto package, and a
one-byte change anywhere that is signed must not.

Unlike test_xmlsec_interop*.py this needs no xmlsec binding at test time: the
vectors are fixed files, so they also catch a regression that would change both our
signer and our verifier in the same wrong way.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from crypto import (
    EDELIVERY_AS4_1_15,
    AlgorithmNotAllowed,
    DecryptionError,
    InvalidDigest,
    Part,
    UntrustedSigner,
    decrypt_parts,
    suite,
    verify_message,
)

VECTORS = Path(__file__).resolve().parent / "vectors" / "xmlsec"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())["vectors"]
SWA_VECTORS = [name for name, v in MANIFEST.items() if v["parts"]]


def load_cert(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((VECTORS / name).read_bytes())


def envelope_bytes(name: str) -> bytes:
    return (VECTORS / MANIFEST[name]["envelope"]).read_bytes()


def wire_parts(name: str) -> list[Part]:
    return [Part(p["content_id"], p["mime_type"], (VECTORS / p["file"]).read_bytes())
            for p in MANIFEST[name]["parts"]]


def plain_parts(name: str, data: bytes | None = None) -> list[Part]:
    """The attachments as the verifier sees them (decrypted where encrypted)."""
    vector = MANIFEST[name]
    envelope = etree.fromstring(data or envelope_bytes(name))
    if not vector["encrypted"]:
        return wire_parts(name)
    key = load_pem_private_key((VECTORS / vector["recipient_key"]).read_bytes(), None)
    return decrypt_parts(envelope, wire_parts(name), key, suite(vector["suite"]))


def verify(name: str, data: bytes | None = None, parts: list[Part] | None = None,
           trusted: list[x509.Certificate] | None = None, policy=None):
    vector = MANIFEST[name]
    return verify_message(
        etree.fromstring(data or envelope_bytes(name)),
        plain_parts(name, data) if parts is None else parts,
        [load_cert(vector["signer_cert"])] if trusted is None else trusted,
        suite(vector["suite"]) if policy is None else policy,
        trust=None,  # self-signed test certificates: membership check only, no path validation
    )


def flip_byte(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def test_manifest_lists_the_three_vectors_and_their_files_exist():
    assert set(MANIFEST) == {"rsa-x509data-body", "rsa-bst-swa-encrypted", "ecdsa-x509data-swa"}
    for vector in MANIFEST.values():
        for part in vector["parts"]:
            assert (VECTORS / part["file"]).is_file()
        assert (VECTORS / vector["envelope"]).is_file()


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_vector_verifies(name):
    result = verify(name)
    assert result.signer == load_cert(MANIFEST[name]["signer_cert"])
    assert result.signed_part_ids == {p["content_id"] for p in MANIFEST[name]["parts"]}
    assert result.chain == ()


def test_signed_xml_is_the_processed_xml():
    result = verify("rsa-x509data-body")
    assert result.signed_body.findtext(".//{*}Goods") == "fresh tomatoes"
    assert result.signed_messaging.findtext(".//{*}MessageId") == (
        "rsa-x509data-body@vectors.example")


def test_libxmlsec1_encrypted_attachments_decrypt():
    vector = MANIFEST["rsa-bst-swa-encrypted"]
    decrypted = plain_parts("rsa-bst-swa-encrypted")
    expected_types = ["application/pdf", "application/octet-stream"]  # EncryptedData/@MimeType
    assert [p.mime_type for p in decrypted] == expected_types
    for part, entry in zip(decrypted, vector["parts"]):
        assert part.content_id == entry["content_id"]
        assert part.data == (VECTORS / entry["plaintext_file"]).read_bytes()
        assert part.data != (VECTORS / entry["file"]).read_bytes()


def test_tampered_ciphertext_fails_decryption():
    parts = wire_parts("rsa-bst-swa-encrypted")
    parts[1] = Part(parts[1].content_id, parts[1].mime_type, flip_byte(parts[1].data, 40))
    key = load_pem_private_key(
        (VECTORS / MANIFEST["rsa-bst-swa-encrypted"]["recipient_key"]).read_bytes(), None)
    with pytest.raises(DecryptionError):
        decrypt_parts(etree.fromstring(envelope_bytes("rsa-bst-swa-encrypted")), parts, key)


@pytest.mark.parametrize("name", SWA_VECTORS)
@pytest.mark.parametrize("which", [0, 1])
def test_one_byte_change_to_an_attachment_fails(name, which):
    parts = plain_parts(name)
    changed = parts[which]
    parts[which] = Part(changed.content_id, changed.mime_type,
                        flip_byte(changed.data, len(changed.data) // 2))
    with pytest.raises(InvalidDigest, match=f"attachment cid:{changed.content_id}"):
        verify(name, parts=parts)


def test_one_byte_change_to_the_body_fails():
    data = envelope_bytes("rsa-x509data-body")
    assert data.count(b"fresh tomatoes") == 1
    with pytest.raises(InvalidDigest, match="Body"):
        verify("rsa-x509data-body", data.replace(b"fresh tomatoes", b"fresh tomatoeS"))


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_one_byte_change_to_the_messaging_header_fails(name):
    data = envelope_bytes(name)
    message_id = f"<eb:MessageId>{name}@".encode()
    assert data.count(message_id) == 1
    index = data.index(message_id) + len("<eb:MessageId>")
    with pytest.raises(InvalidDigest, match="Messaging"):
        verify(name, data[:index] + data[index:index + 1].upper() + data[index + 1:])


def test_only_the_configured_signer_is_trusted():
    other = load_cert(MANIFEST["ecdsa-x509data-swa"]["signer_cert"])
    with pytest.raises(UntrustedSigner):
        verify("rsa-x509data-body", trusted=[other])


def test_suite_of_the_partner_is_enforced():
    with pytest.raises(AlgorithmNotAllowed, match="ecdsa-sha256"):
        verify("ecdsa-x509data-swa", policy=EDELIVERY_AS4_1_15)


def test_certificates_do_not_expire_for_decades():
    horizon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=365 * 50)
    for pem in sorted(VECTORS.glob("*.cert.pem")):
        cert = load_cert(pem.name)
        assert cert.not_valid_before_utc <= datetime.datetime.now(datetime.timezone.utc)
        assert cert.not_valid_after_utc > horizon, pem.name
