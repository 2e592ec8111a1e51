"""libxmlsec1 (via the PyPI ``xmlsec`` binding) judges our WS-Security output, and
we judge its output. An independent implementation is the only convincing test of
canonicalization, digests, padding and key transport.

libxmlsec1 does not know the SwA attachment transforms, so for messages with
attachments the signature is checked piecewise: xmlsec verifies the SignatureValue
over SignedInfo (whose canonical form it computes itself), computes every XML
reference's digest itself, and attachment digests are recomputed by the SwA
transform's definition. Messages without attachments are verified whole.
"""

from __future__ import annotations

import base64
import copy
import hashlib

import pytest
from lxml import etree

from crypto.wssec_common import (
    NS_DS,
    NS_SOAP12,
    NS_WSSE,
    NS_XENC,
    NS_XENC11,
    SWA_CONTENT_ONLY,
    WSU_ID,
    Part,
)
from crypto.wssec_decrypt import decrypt_parts
from crypto.wssec_encrypt import encrypt_parts
from crypto.wssec_sign import sign_message
from crypto.wssec_verify import verify_message
from tests.crypto_helpers import make_envelope, make_parts, reparse
from tests.xmlsec_helpers import C, SWA_SIGNATURE_TRANSFORM, cert_key, private_pem, register_wsu_ids, signing_key, xmlsec_digest

xmlsec = pytest.importorskip("xmlsec")
NSMAP = {"S12": NS_SOAP12, "wsse": NS_WSSE, "ds": NS_DS, "xenc": NS_XENC, "xenc11": NS_XENC11}


def signed_message(signer, parts):
    envelope = make_envelope()
    sign_message(envelope, parts, signer.key, signer.cert)
    return reparse(envelope)


def test_xmlsec_verifies_whole_signature_without_attachments(signer):
    envelope = signed_message(signer, [])
    ctx = xmlsec.SignatureContext()
    ctx.key = cert_key(signer)
    register_wsu_ids(ctx, envelope)
    ctx.verify(envelope.find(f".//{{{NS_DS}}}Signature"))  # raises on failure


def test_xmlsec_rejects_tampered_message(signer):
    envelope = signed_message(signer, [])
    envelope.find(f".//{{{NS_SOAP12}}}Body").text = "tampered"
    ctx = xmlsec.SignatureContext()
    ctx.key = cert_key(signer)
    register_wsu_ids(ctx, envelope)
    with pytest.raises(xmlsec.Error):
        ctx.verify(envelope.find(f".//{{{NS_DS}}}Signature"))


def test_xmlsec_checks_signature_with_attachments_piecewise(signer):
    parts = make_parts()
    envelope = signed_message(signer, parts)
    signature = envelope.find(f".//{{{NS_DS}}}Signature")
    signed_info = signature.find(f"{{{NS_DS}}}SignedInfo")
    signature_value = base64.b64decode(signature.findtext(f"{{{NS_DS}}}SignatureValue"))

    # (a) SignatureValue. libxmlsec1 canonicalizes SignedInfo itself (XPath-selected
    # node set + exc-c14n); its digest must equal that of the bytes that verify.
    c14n_signed_info = etree.tostring(signed_info, method="c14n", exclusive=True)
    ctx = xmlsec.SignatureContext()
    ctx.key = cert_key(signer)
    ctx.verify_binary(c14n_signed_info, C.TransformRsaSha256, signature_value)
    selector = f"ancestor-or-self::ds:SignedInfo[parent::ds:Signature/@Id='{signature.get('Id')}']"
    assert xmlsec_digest(envelope, signer, "", selector) == base64.b64encode(
        hashlib.sha256(c14n_signed_info).digest()
    ).decode()

    references = signed_info.findall(f"{{{NS_DS}}}Reference")
    assert len(references) == 2 + len(parts)
    for reference in references:
        uri = reference.get("URI")
        our_digest = reference.findtext(f"{{{NS_DS}}}DigestValue")
        if uri.startswith("#"):
            # (b) XML references: libxmlsec1 computes the digest itself.
            assert xmlsec_digest(envelope, signer, uri) == our_digest, uri
        else:
            # (c) attachments: SwA content-signature transform of a binary MIME type
            # is the identity on the octets.
            (transform,) = reference.iterfind(f"{{{NS_DS}}}Transforms/{{{NS_DS}}}Transform")
            assert transform.get("Algorithm") == SWA_SIGNATURE_TRANSFORM
            (part,) = [p for p in parts if f"cid:{p.content_id}" == uri]
            assert base64.b64decode(our_digest) == hashlib.sha256(part.data).digest()


def test_xmlsec_signed_message_verifies_with_us(signer):
    """The reverse direction: libxmlsec1 signs from a template, we verify."""
    envelope = make_envelope()
    header = envelope.find(f"{{{NS_SOAP12}}}Header")
    messaging = header[0]
    body = envelope.find(f"{{{NS_SOAP12}}}Body")
    messaging.set(WSU_ID, "xs-messaging")
    body.set(WSU_ID, "xs-body")
    security = etree.SubElement(
        header, f"{{{NS_WSSE}}}Security", {f"{{{NS_SOAP12}}}mustUnderstand": "true"},
        nsmap={"wsse": NS_WSSE},
    )
    template = xmlsec.template.create(envelope, C.TransformExclC14N, C.TransformRsaSha256, ns="ds")
    for uri in ("#xs-messaging", "#xs-body"):
        reference = xmlsec.template.add_reference(template, C.TransformSha256, uri=uri)
        xmlsec.template.add_transform(reference, C.TransformExclC14N)
    key_info = xmlsec.template.ensure_key_info(template)
    xmlsec.template.add_x509_data(key_info)
    security.append(template)
    ctx = xmlsec.SignatureContext()
    ctx.key = signing_key(signer)
    register_wsu_ids(ctx, envelope)
    ctx.sign(template)
    assert envelope.find(f".//{{{NS_DS}}}X509Certificate") is not None

    result = verify_message(reparse(envelope), [], [signer.cert])
    assert result.signer == signer.cert
    assert {r.get("URI") for r in result.references} == {"#xs-messaging", "#xs-body"}


def test_xmlsec_decrypts_what_we_encrypt(recipient):
    parts = make_parts()
    envelope = make_envelope()
    cipher_parts = encrypt_parts(envelope, parts, recipient.cert)
    envelope = reparse(envelope)

    # (d) key transport: libxmlsec1 unwraps our EncryptedKey (xenc11 rsa-oaep,
    # SHA-256 digest, MGF1-SHA256 read from the element itself).
    encrypted_key = copy.deepcopy(envelope.find(f".//{{{NS_XENC}}}EncryptedKey"))
    ctx = xmlsec.EncryptionContext()
    ctx.key = xmlsec.Key.from_memory(private_pem(recipient), C.KeyDataFormatPem)
    content_key = ctx.decrypt(encrypted_key)
    assert isinstance(content_key, bytes) and len(content_key) == 16

    # Content: the attachment octets (IV || ciphertext || tag) are exactly an XML
    # Enc 1.1 AES-GCM CipherValue; libxmlsec1 decrypts them with the unwrapped key.
    for encrypted_data, cipher, plain in zip(
        envelope.iterfind(f".//{{{NS_XENC}}}EncryptedData"), cipher_parts, parts
    ):
        method = encrypted_data.find(f"{{{NS_XENC}}}EncryptionMethod").get("Algorithm")
        assert method == C.TransformAes128Gcm.href
        assert encrypted_data.get("Type") == SWA_CONTENT_ONLY
        template = xmlsec.template.encrypted_data_create(
            etree.Element("root"), C.TransformAes128Gcm, ns="xenc"
        )
        xmlsec.template.encrypted_data_ensure_cipher_value(template)
        template.find(f".//{{{NS_XENC}}}CipherValue").text = base64.b64encode(cipher.data)
        data_ctx = xmlsec.EncryptionContext()
        data_ctx.key = xmlsec.Key.from_binary_data(C.KeyDataAes, content_key)
        assert data_ctx.decrypt(template) == plain.data


def test_xmlsec_encrypted_attachment_decrypts_with_us(recipient):
    """The reverse direction: libxmlsec1 generates the content key, wraps it with
    RSA-OAEP/MGF1-SHA256 and encrypts with AES-128-GCM; we assemble the SwA header
    from its output and decrypt with decrypt_parts."""
    plaintext = b"phytosanitary certificate \x00\x01\x02" * 50
    keys = xmlsec.KeysManager()
    keys.add_key(cert_key(recipient))
    template = xmlsec.template.encrypted_data_create(
        etree.Element("root"), C.TransformAes128Gcm, type=SWA_CONTENT_ONLY, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, C.TransformRsaOaep)
    method = encrypted_key.find(f"{{{NS_XENC}}}EncryptionMethod")
    method.set("Algorithm", "http://www.w3.org/2009/xmlenc11#rsa-oaep")
    etree.SubElement(method, f"{{{NS_DS}}}DigestMethod",
                     Algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
    etree.SubElement(method, f"{{{NS_XENC11}}}MGF",
                     Algorithm="http://www.w3.org/2009/xmlenc11#mgf1sha256")
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    ctx = xmlsec.EncryptionContext(keys)
    ctx.key = xmlsec.Key.generate(C.KeyDataAes, 128, C.KeyDataTypeSession)
    result = ctx.encrypt_binary(template, plaintext)

    xenc_ek = result.find(f".//{{{NS_XENC}}}EncryptedKey")
    attachment = base64.b64decode(
        result.find(f"{{{NS_XENC}}}CipherData/{{{NS_XENC}}}CipherValue").text
    )
    # SwA assembly: EncryptedKey (+ReferenceList) and an EncryptedData with a
    # CipherReference to the attachment, both in our wsse:Security header.
    envelope = make_envelope()
    header = envelope.find(f"{{{NS_SOAP12}}}Header")
    security = etree.SubElement(header, f"{{{NS_WSSE}}}Security", nsmap={"wsse": NS_WSSE})
    ek = copy.deepcopy(xenc_ek)
    reference_list = etree.SubElement(ek, f"{{{NS_XENC}}}ReferenceList")
    etree.SubElement(reference_list, f"{{{NS_XENC}}}DataReference", URI="#ed-xmlsec")
    security.append(ek)
    ed = etree.SubElement(
        security, f"{{{NS_XENC}}}EncryptedData",
        Id="ed-xmlsec", Type=SWA_CONTENT_ONLY, MimeType="application/pdf",
    )
    etree.SubElement(ed, f"{{{NS_XENC}}}EncryptionMethod", Algorithm=C.TransformAes128Gcm.href)
    cipher_reference = etree.SubElement(
        etree.SubElement(ed, f"{{{NS_XENC}}}CipherData"),
        f"{{{NS_XENC}}}CipherReference", URI="cid:doc@sw.example",
    )
    etree.SubElement(
        etree.SubElement(cipher_reference, f"{{{NS_XENC}}}Transforms"),
        f"{{{NS_DS}}}Transform",
        Algorithm="http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1"
        "#Attachment-Ciphertext-Transform",
    )
    parts = [Part("doc@sw.example", "application/octet-stream", attachment)]
    (decrypted,) = decrypt_parts(reparse(envelope), parts, recipient.key)
    assert decrypted == Part("doc@sw.example", "application/pdf", plaintext)
