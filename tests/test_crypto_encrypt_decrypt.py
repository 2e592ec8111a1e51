"""SwA attachment encryption/decryption (Attachment-Content-Only, AES-128-GCM,
RSA-OAEP with SHA-256 and MGF1-SHA256)."""

from __future__ import annotations

import pytest
from lxml import etree

from crypto.errors import AlgorithmNotAllowed, DecryptionError
from crypto.wssec_common import (
    NS_DS,
    NS_SOAP12,
    NS_WSSE,
    NS_XENC,
    NS_XENC11,
    SWA_CONTENT_ONLY,
    Part,
)
from crypto.wssec_decrypt import decrypt_parts
from crypto.wssec_encrypt import encrypt_parts
from crypto.wssec_sign import sign_message
from crypto.wssec_verify import verify_message
from tests.crypto_helpers import make_envelope, make_parts, reparse

NSMAP = {"S12": NS_SOAP12, "wsse": NS_WSSE, "ds": NS_DS, "xenc": NS_XENC, "xenc11": NS_XENC11}


def one(envelope, path):
    (found,) = envelope.xpath(path, namespaces=NSMAP)
    return found


def encrypted(recipient, parts=None):
    envelope = make_envelope()
    parts = make_parts() if parts is None else parts
    cipher_parts = encrypt_parts(envelope, parts, recipient.cert)
    return reparse(envelope), parts, cipher_parts


def test_roundtrip(recipient):
    envelope, parts, cipher_parts = encrypted(recipient)
    assert [p.content_id for p in cipher_parts] == [p.content_id for p in parts]
    assert all(p.mime_type == "application/octet-stream" for p in cipher_parts)
    for plain, cipher in zip(parts, cipher_parts):
        assert len(cipher.data) == 12 + len(plain.data) + 16
        assert plain.data not in cipher.data
    assert decrypt_parts(envelope, cipher_parts, recipient.key) == parts


def test_header_layout(recipient):
    envelope, parts, _ = encrypted(recipient)
    security = one(envelope, "//wsse:Security")
    assert [etree.QName(c).localname for c in security] == [
        "EncryptedKey",
        "EncryptedData",
        "EncryptedData",
    ]
    method = one(security, "xenc:EncryptedKey/xenc:EncryptionMethod")
    assert method.get("Algorithm") == "http://www.w3.org/2009/xmlenc11#rsa-oaep"
    assert one(method, "ds:DigestMethod").get("Algorithm") == (
        "http://www.w3.org/2001/04/xmlenc#sha256"
    )
    assert one(method, "xenc11:MGF").get("Algorithm") == (
        "http://www.w3.org/2009/xmlenc11#mgf1sha256"
    )
    serial = one(security, "xenc:EncryptedKey/ds:KeyInfo/wsse:SecurityTokenReference"
                 "/ds:X509Data/ds:X509IssuerSerial/ds:X509SerialNumber")
    assert int(serial.text) == recipient.cert.serial_number
    data_refs = [d.get("URI") for d in security.xpath(".//xenc:DataReference", namespaces=NSMAP)]
    encrypted_data = security.xpath("xenc:EncryptedData", namespaces=NSMAP)
    assert data_refs == ["#" + e.get("Id") for e in encrypted_data]
    for element, part in zip(encrypted_data, parts):
        assert element.get("Type") == SWA_CONTENT_ONLY
        assert element.get("MimeType") == part.mime_type
        reference = one(element, "xenc:CipherData/xenc:CipherReference")
        assert reference.get("URI") == f"cid:{part.content_id}"
        assert one(reference, "xenc:Transforms/ds:Transform").get("Algorithm").endswith(
            "#Attachment-Ciphertext-Transform"
        )


def test_sign_then_encrypt_then_decrypt_then_verify(signer, recipient):
    envelope = make_envelope()
    parts = make_parts()
    sign_message(envelope, parts, signer.key, signer.cert)
    cipher_parts = encrypt_parts(envelope, parts, recipient.cert)
    security = one(envelope, "//wsse:Security")
    assert [etree.QName(c).localname for c in security] == [
        "EncryptedKey", "EncryptedData", "EncryptedData", "BinarySecurityToken", "Signature",
    ]
    received = reparse(envelope)
    plain = decrypt_parts(received, cipher_parts, recipient.key)
    result = verify_message(received, plain, [signer.cert])
    assert result.signed_part_ids == {p.content_id for p in parts}
    # Verifying the ciphertext instead of the plaintext fails loudly.
    with pytest.raises(Exception, match="altered"):
        verify_message(received, cipher_parts, [signer.cert])


def test_unencrypted_parts_pass_through(recipient):
    parts = make_parts()
    envelope = make_envelope()
    cipher_parts = encrypt_parts(envelope, parts[:1], recipient.cert)
    extra = Part("extra@sw.example", "text/plain", b"clear")
    result = decrypt_parts(reparse(envelope), cipher_parts + [extra], recipient.key)
    assert result == [parts[0], extra]


def test_no_security_header_passes_through(recipient):
    parts = make_parts()
    assert decrypt_parts(make_envelope(), parts, recipient.key) == parts


def test_wrong_key(recipient, stranger):
    envelope, _, cipher_parts = encrypted(recipient)
    with pytest.raises(DecryptionError) as info:
        decrypt_parts(envelope, cipher_parts, stranger.key)
    assert "padding" not in str(info.value).lower()


def test_altered_ciphertext(recipient):
    envelope, _, cipher_parts = encrypted(recipient)
    data = bytearray(cipher_parts[0].data)
    data[20] ^= 1
    altered = [Part(cipher_parts[0].content_id, cipher_parts[0].mime_type, bytes(data))]
    with pytest.raises(DecryptionError, match="cid:payload-1@sw.example"):
        decrypt_parts(envelope, altered + cipher_parts[1:], recipient.key)


def test_truncated_ciphertext(recipient):
    envelope, _, cipher_parts = encrypted(recipient)
    short = [Part(p.content_id, p.mime_type, p.data[:10]) for p in cipher_parts]
    with pytest.raises(DecryptionError):
        decrypt_parts(envelope, short, recipient.key)


def test_missing_attachment(recipient):
    envelope, _, cipher_parts = encrypted(recipient)
    with pytest.raises(DecryptionError, match="not in the message"):
        decrypt_parts(envelope, cipher_parts[:1], recipient.key)


def test_orphan_encrypted_data(recipient):
    envelope, _, cipher_parts = encrypted(recipient)
    reference = one(envelope, "(//xenc:DataReference)[2]")
    reference.getparent().remove(reference)
    with pytest.raises(DecryptionError, match="not referenced"):
        decrypt_parts(envelope, cipher_parts, recipient.key)


@pytest.mark.parametrize(
    "xpath, uri",
    [
        ("//xenc:EncryptedKey/xenc:EncryptionMethod", "http://www.w3.org/2001/04/xmlenc#rsa-1_5"),
        (
            "//xenc:EncryptedKey/xenc:EncryptionMethod",
            "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
        ),
        ("//xenc:EncryptionMethod/ds:DigestMethod", "http://www.w3.org/2000/09/xmldsig#sha1"),
        ("//xenc:EncryptionMethod/xenc11:MGF", "http://www.w3.org/2009/xmlenc11#mgf1sha1"),
        (
            "(//xenc:EncryptedData/xenc:EncryptionMethod)[2]",
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        ),
        (
            "(//xenc:EncryptedData/xenc:EncryptionMethod)[1]",
            "http://www.w3.org/2009/xmlenc11#aes256-gcm",
        ),
        ("(//xenc:CipherReference//ds:Transform)[1]", "http://example.org/other"),
    ],
)
def test_disallowed_algorithms(recipient, xpath, uri):
    envelope, _, cipher_parts = encrypted(recipient)
    one(envelope, xpath).set("Algorithm", uri)
    with pytest.raises(AlgorithmNotAllowed):
        decrypt_parts(envelope, cipher_parts, recipient.key)


@pytest.mark.parametrize("local", ["DigestMethod", "MGF"])
def test_absent_oaep_parameters_mean_sha1(recipient, local):
    envelope, _, cipher_parts = encrypted(recipient)
    (element,) = envelope.xpath(
        f"//xenc:EncryptedKey/xenc:EncryptionMethod/*[local-name()='{local}']", namespaces=NSMAP
    )
    element.getparent().remove(element)
    with pytest.raises(AlgorithmNotAllowed, match="SHA-1|SHA1|sha1"):
        decrypt_parts(envelope, cipher_parts, recipient.key)
