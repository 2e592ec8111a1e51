"""libxmlsec1 (PyPI ``xmlsec``) as the independent judge of the eDelivery AS4 2.0 suites.

What libxmlsec1 1.3.9 (as bundled in the ``xmlsec`` wheel) can check:

* ECDSA P-256 / SHA-256 signatures (``ecdsa-sha256``): it verifies ours (whole message,
  and piecewise with attachments as in test_xmlsec_interop.py) and we verify its own.
* AES-128 key wrap (``kw-aes128``) and AES-128-GCM: given the key-encryption key, it
  unwraps our EncryptedKey and decrypts our attachments, and we unwrap/decrypt what it
  produced, in both suites.

What it cannot check: this build has no EdDSA (``eddsa-ed25519``), no X25519 key
agreement and no HKDF (its ECDH-ES only derives with ConcatKDF or PBKDF2), and it
cannot even load Ed25519/X25519 keys. So Ed25519 signatures, the X25519/ECDH-ES
agreement and HKDF are covered by RFC 8032/7748/5869 known-answer tests in
test_crypto_suites.py instead, and the KEK handed to libxmlsec1 below is derived by our
code. ``test_libxmlsec1_lacks_eddsa_x25519`` is a tripwire: when an upgraded
libxmlsec1 loads those keys, it fails, and full EdDSA/X25519 interop tests belong here.
"""

from __future__ import annotations

import base64
import copy
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from lxml import etree

from crypto import (
    EDELIVERY_AS4_1_15,
    EDELIVERY_AS4_2_0_ECDSA,
    EDELIVERY_AS4_2_0_EDDSA,
    AlgorithmNotAllowed,
    decrypt_parts,
    encrypt_parts,
    sign_message,
    verify_message,
)
from crypto.wssec_agreement import build_agreement_method, derive_kek, parse_agreement_method
from crypto.wssec_common import NS_DS, NS_SOAP12, NS_WSSE, NS_XENC, SWA_CONTENT_ONLY, WSU_ID, Part
from tests.crypto_helpers import make_envelope, make_parts, reparse

xmlsec = pytest.importorskip("xmlsec")
C = xmlsec.constants
ECDSA = EDELIVERY_AS4_2_0_ECDSA
EDDSA = EDELIVERY_AS4_2_0_EDDSA
SWA_CIPHERTEXT = (
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Ciphertext-Transform")


def pem(identity) -> bytes:
    return identity.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def cert_key(identity):
    return xmlsec.Key.from_memory(identity.cert.public_bytes(Encoding.PEM), C.KeyDataFormatCertPem)


def register_wsu_ids(ctx, root) -> None:
    for element in root.iter():
        if isinstance(element.tag, str) and element.get(WSU_ID):
            ctx.register_id(element, "Id", "http://docs.oasis-open.org/wss/2004/01/"
                            "oasis-200401-wss-wssecurity-utility-1.0.xsd")


def ecdsa_signed(identity, parts):
    envelope = make_envelope()
    sign_message(envelope, parts, identity.key, identity.cert, ECDSA)
    return reparse(envelope)


def xmlsec_digest(envelope, rsa_identity, uri: str) -> str:
    """libxmlsec1's own SHA-256 over exc-c14n of what ``uri`` selects (via a throwaway
    one-reference signature inside a copy of the envelope)."""
    doc = copy.deepcopy(envelope)
    template = xmlsec.template.create(doc, C.TransformExclC14N, C.TransformRsaSha256, ns="ds")
    reference = xmlsec.template.add_reference(template, C.TransformSha256, uri=uri)
    xmlsec.template.add_transform(reference, C.TransformExclC14N)
    doc.find(f".//{{{NS_WSSE}}}Security").append(template)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(pem(rsa_identity), C.KeyDataFormatPem)
    register_wsu_ids(ctx, doc)
    ctx.sign(template)
    return reference.findtext(f"{{{NS_DS}}}DigestValue").strip()


# --- ECDSA signatures ---------------------------------------------------------------------


def test_xmlsec_verifies_our_ecdsa_signature(ec_signer):
    envelope = ecdsa_signed(ec_signer, [])
    ctx = xmlsec.SignatureContext()
    ctx.key = cert_key(ec_signer)
    register_wsu_ids(ctx, envelope)
    ctx.verify(envelope.find(f".//{{{NS_DS}}}Signature"))  # raises on failure


def test_xmlsec_rejects_tampered_ecdsa_message(ec_signer):
    envelope = ecdsa_signed(ec_signer, [])
    envelope.find(f".//{{{NS_SOAP12}}}Body").text = "tampered"
    ctx = xmlsec.SignatureContext()
    ctx.key = cert_key(ec_signer)
    register_wsu_ids(ctx, envelope)
    with pytest.raises(xmlsec.Error):
        ctx.verify(envelope.find(f".//{{{NS_DS}}}Signature"))


def test_xmlsec_checks_ecdsa_signature_with_attachments_piecewise(ec_signer, signer):
    parts = make_parts()
    envelope = ecdsa_signed(ec_signer, parts)
    signature = envelope.find(f".//{{{NS_DS}}}Signature")
    signed_info = signature.find(f"{{{NS_DS}}}SignedInfo")
    ctx = xmlsec.SignatureContext()
    ctx.key = cert_key(ec_signer)
    ctx.verify_binary(etree.tostring(signed_info, method="c14n", exclusive=True),
                      C.TransformEcdsaSha256,
                      base64.b64decode(signature.findtext(f"{{{NS_DS}}}SignatureValue")))
    for reference in signed_info.findall(f"{{{NS_DS}}}Reference"):
        uri, ours = reference.get("URI"), reference.findtext(f"{{{NS_DS}}}DigestValue")
        if uri.startswith("#"):
            assert xmlsec_digest(envelope, signer, uri) == ours, uri
        else:  # binary attachments: the SwA transform is the identity on the octets
            (part,) = [p for p in parts if f"cid:{p.content_id}" == uri]
            assert base64.b64decode(ours) == hashlib.sha256(part.data).digest()


def test_xmlsec_ecdsa_signature_verifies_with_us(ec_signer):
    envelope = make_envelope()
    header = envelope.find(f"{{{NS_SOAP12}}}Header")
    header[0].set(WSU_ID, "xs-messaging")
    envelope.find(f"{{{NS_SOAP12}}}Body").set(WSU_ID, "xs-body")
    security = etree.SubElement(header, f"{{{NS_WSSE}}}Security", nsmap={"wsse": NS_WSSE})
    template = xmlsec.template.create(envelope, C.TransformExclC14N, C.TransformEcdsaSha256,
                                      ns="ds")
    for uri in ("#xs-messaging", "#xs-body"):
        reference = xmlsec.template.add_reference(template, C.TransformSha256, uri=uri)
        xmlsec.template.add_transform(reference, C.TransformExclC14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(template))
    security.append(template)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(pem(ec_signer), C.KeyDataFormatPem)
    ctx.key.load_cert_from_memory(ec_signer.cert.public_bytes(Encoding.PEM), C.KeyDataFormatCertPem)
    register_wsu_ids(ctx, envelope)
    ctx.sign(template)

    envelope = reparse(envelope)
    assert verify_message(envelope, [], [ec_signer.cert], ECDSA).signer == ec_signer.cert
    with pytest.raises(AlgorithmNotAllowed, match="ecdsa-sha256 is not permitted"):
        verify_message(envelope, [], [ec_signer.cert], EDELIVERY_AS4_1_15)


# --- AES key wrap + AES-GCM (the KEK comes from our agreement + HKDF) -------------------


@pytest.mark.parametrize("suite", ["eddsa", "ecdsa"])
def test_xmlsec_unwraps_our_key_and_decrypts_attachments(suite, x_recipient, ec_recipient):
    identity, policy = (x_recipient, EDDSA) if suite == "eddsa" else (ec_recipient, ECDSA)
    parts = make_parts()
    envelope = make_envelope()
    cipher_parts = encrypt_parts(envelope, parts, identity.cert, policy)
    envelope = reparse(envelope)
    encrypted_key = envelope.find(f".//{{{NS_XENC}}}EncryptedKey")
    kek = derive_kek(parse_agreement_method(encrypted_key, policy), identity.key)

    # libxmlsec1 cannot do the HKDF agreement, so it gets the KEK and an EncryptedKey
    # without the AgreementMethod; the kw-aes128 unwrap is its own.
    bare = copy.deepcopy(encrypted_key)
    bare.remove(bare.find(f"{{{NS_DS}}}KeyInfo"))
    ctx = xmlsec.EncryptionContext()
    ctx.key = xmlsec.Key.from_binary_data(C.KeyDataAes, kek)
    content_key = ctx.decrypt(bare)
    assert isinstance(content_key, bytes) and len(content_key) == 16

    for encrypted_data, cipher, plain in zip(
            envelope.iterfind(f".//{{{NS_XENC}}}EncryptedData"), cipher_parts, parts):
        assert encrypted_data.find(f"{{{NS_XENC}}}EncryptionMethod").get("Algorithm") == (
            C.TransformAes128Gcm.href)
        template = xmlsec.template.encrypted_data_create(etree.Element("root"),
                                                         C.TransformAes128Gcm, ns="xenc")
        xmlsec.template.encrypted_data_ensure_cipher_value(template)
        template.find(f".//{{{NS_XENC}}}CipherValue").text = base64.b64encode(cipher.data)
        data_ctx = xmlsec.EncryptionContext()
        data_ctx.key = xmlsec.Key.from_binary_data(C.KeyDataAes, content_key)
        assert data_ctx.decrypt(template) == plain.data


@pytest.mark.parametrize("suite", ["eddsa", "ecdsa"])
def test_xmlsec_wrapped_and_encrypted_attachment_decrypts_with_us(suite, x_recipient,
                                                                  ec_recipient):
    """libxmlsec1 generates the content key, wraps it with kw-aes128 under the KEK of an
    AgreementMethod we built, and encrypts with AES-128-GCM; we decrypt it."""
    identity, policy = (x_recipient, EDDSA) if suite == "eddsa" else (ec_recipient, ECDSA)
    agreement, kek = build_agreement_method(policy, identity.cert)
    plaintext = b"e-certificate of origin \x00\x01\x02" * 40
    keys = xmlsec.KeysManager()
    keys.add_key(xmlsec.Key.from_binary_data(C.KeyDataAes, kek))
    template = xmlsec.template.encrypted_data_create(
        etree.Element("root"), C.TransformAes128Gcm, type=SWA_CONTENT_ONLY, ns="xenc")
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, C.TransformKWAes128)
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    ctx = xmlsec.EncryptionContext(keys)
    ctx.key = xmlsec.Key.generate(C.KeyDataAes, 128, C.KeyDataTypeSession)
    result = ctx.encrypt_binary(template, plaintext)
    attachment = base64.b64decode(
        result.find(f"{{{NS_XENC}}}CipherData/{{{NS_XENC}}}CipherValue").text)

    ek = copy.deepcopy(result.find(f".//{{{NS_XENC}}}EncryptedKey"))
    assert ek.find(f"{{{NS_XENC}}}EncryptionMethod").get("Algorithm") == policy.key_wrap.value
    for old in ek.findall(f"{{{NS_DS}}}KeyInfo"):
        ek.remove(old)
    etree.SubElement(ek, f"{{{NS_DS}}}KeyInfo").append(agreement)
    ek.insert(1, ek[-1])  # KeyInfo goes before CipherData
    etree.SubElement(etree.SubElement(ek, f"{{{NS_XENC}}}ReferenceList"),
                     f"{{{NS_XENC}}}DataReference", URI="#ed-xmlsec")
    envelope = make_envelope()
    security = etree.SubElement(envelope.find(f"{{{NS_SOAP12}}}Header"), f"{{{NS_WSSE}}}Security",
                                nsmap={"wsse": NS_WSSE})
    security.append(ek)
    ed = etree.SubElement(security, f"{{{NS_XENC}}}EncryptedData", Id="ed-xmlsec",
                          Type=SWA_CONTENT_ONLY, MimeType="application/xml")
    etree.SubElement(ed, f"{{{NS_XENC}}}EncryptionMethod", Algorithm=C.TransformAes128Gcm.href)
    reference = etree.SubElement(etree.SubElement(ed, f"{{{NS_XENC}}}CipherData"),
                                 f"{{{NS_XENC}}}CipherReference", URI="cid:eco@sw.example")
    etree.SubElement(etree.SubElement(reference, f"{{{NS_XENC}}}Transforms"),
                     f"{{{NS_DS}}}Transform", Algorithm=SWA_CIPHERTEXT)
    parts = [Part("eco@sw.example", "application/octet-stream", attachment)]
    (decrypted,) = decrypt_parts(reparse(envelope), parts, identity.key, policy)
    assert decrypted == Part("eco@sw.example", "application/xml", plaintext)


def test_libxmlsec1_lacks_eddsa_x25519():
    """Tripwire (see module docstring): if this fails, libxmlsec1 learned EdDSA/X25519."""
    for key in (ed25519.Ed25519PrivateKey.generate(), x25519.X25519PrivateKey.generate()):
        data = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        with pytest.raises(xmlsec.Error):
            xmlsec.Key.from_memory(data, C.KeyDataFormatPem)
    assert not any("HKDF" in name.upper() or "EDDSA" in name.upper() or "X25519" in name.upper()
                   for name in dir(C))
