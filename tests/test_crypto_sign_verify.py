"""Sign/verify of AS4 messages: roundtrip, tampering, trust, completeness,
signature wrapping and algorithm policy."""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from crypto.errors import (
    AlgorithmNotAllowed,
    IncompleteSignature,
    InvalidDigest,
    InvalidSignatureValue,
    MissingSignature,
    SignatureError,
    UntrustedSigner,
)
from crypto.wssec_common import NS_DS, NS_EBMS, NS_SOAP12, NS_WSSE, NS_WSU, Part
from crypto.wssec_sign import sign_message
from crypto.wssec_verify import verify_message
from tests.crypto_helpers import make_envelope, make_parts, reparse

NSMAP = {"S12": NS_SOAP12, "eb": NS_EBMS, "wsse": NS_WSSE, "wsu": NS_WSU, "ds": NS_DS}


def signed(signer, parts=None):
    envelope = make_envelope()
    parts = make_parts() if parts is None else parts
    references = sign_message(envelope, parts, signer.key, signer.cert)
    return reparse(envelope), parts, references


def one(envelope, path):
    (found,) = envelope.xpath(path, namespaces=NSMAP)
    return found


def test_roundtrip_with_two_attachments(signer):
    envelope, parts, references = signed(signer)
    result = verify_message(envelope, parts, [signer.cert])
    assert result.signer == signer.cert
    assert result.signed_part_ids == {p.content_id for p in parts}
    assert result.signed_messaging is one(envelope, "/S12:Envelope/S12:Header/eb:Messaging")
    assert result.signed_body is one(envelope, "/S12:Envelope/S12:Body")
    assert [etree.tostring(r) for r in result.references] == [
        etree.tostring(r) for r in references
    ]
    assert len(references) == 4


def test_header_layout(signer):
    envelope, parts, references = signed(signer)
    security = one(envelope, "/S12:Envelope/S12:Header/wsse:Security")
    assert security.get(f"{{{NS_SOAP12}}}mustUnderstand") == "true"
    assert [etree.QName(c).localname for c in security] == ["BinarySecurityToken", "Signature"]
    messaging_id = one(envelope, "//eb:Messaging").get(f"{{{NS_WSU}}}Id")
    body_id = one(envelope, "//S12:Body").get(f"{{{NS_WSU}}}Id")
    uris = [r.get("URI") for r in references]
    assert uris == ["#" + messaging_id, "#" + body_id] + [f"cid:{p.content_id}" for p in parts]
    # The attachment digest is SHA-256 of the octets (binary MIME types).
    for reference, part in zip(references[2:], parts):
        digest = reference.findtext(f"{{{NS_DS}}}DigestValue")
        assert base64.b64decode(digest) == hashlib.sha256(part.data).digest()
    str_ref = one(envelope, "//ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference")
    bst = one(envelope, "//wsse:BinarySecurityToken")
    assert str_ref.get("URI") == "#" + bst.get(f"{{{NS_WSU}}}Id")


def test_existing_ids_are_kept(signer):
    envelope = make_envelope()
    one(envelope, "//eb:Messaging").set(f"{{{NS_WSU}}}Id", "my-messaging")
    references = sign_message(envelope, [], signer.key, signer.cert)
    assert references[0].get("URI") == "#my-messaging"
    verify_message(reparse(envelope), [], [signer.cert])


def test_signal_message_without_attachments(signer):
    envelope = make_envelope()
    messaging = one(envelope, "//eb:Messaging")
    messaging.clear()
    etree.SubElement(messaging, f"{{{NS_EBMS}}}SignalMessage").text = "receipt"
    sign_message(envelope, [], signer.key, signer.cert)
    result = verify_message(reparse(envelope), [], [signer.cert])
    assert result.signed_part_ids == frozenset()


def test_changed_attachment_byte_names_the_cid(signer):
    envelope, parts, _ = signed(signer)
    data = bytearray(parts[1].data)
    data[3] ^= 1
    tampered = [parts[0], Part(parts[1].content_id, parts[1].mime_type, bytes(data))]
    with pytest.raises(InvalidDigest, match="cid:payload-2@sw.example.*altered"):
        verify_message(envelope, tampered, [signer.cert])


def test_changed_messaging_text(signer):
    envelope, parts, _ = signed(signer)
    one(envelope, "//eb:MessageId").text = "msg-2@sw.example"
    with pytest.raises(InvalidDigest, match="eb:Messaging"):
        verify_message(envelope, parts, [signer.cert])


def test_changed_body(signer):
    envelope, parts, _ = signed(signer)
    etree.SubElement(one(envelope, "//S12:Body"), "injected")
    with pytest.raises(InvalidDigest, match="soap:Body"):
        verify_message(envelope, parts, [signer.cert])


def test_changed_signature_value(signer):
    envelope, parts, _ = signed(signer)
    value = one(envelope, "//ds:SignatureValue")
    raw = bytearray(base64.b64decode(value.text))
    raw[10] ^= 0x80
    value.text = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(InvalidSignatureValue):
        verify_message(envelope, parts, [signer.cert])


def test_changed_digest_value_breaks_signature_value(signer):
    envelope, parts, _ = signed(signer)
    digest = envelope.xpath("//ds:DigestValue", namespaces=NSMAP)[2]
    digest.text = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(InvalidSignatureValue):
        verify_message(envelope, parts, [signer.cert])


def test_unknown_signer(signer, stranger):
    envelope, parts, _ = signed(signer)
    with pytest.raises(UntrustedSigner, match="sender-gateway"):
        verify_message(envelope, parts, [stranger.cert])


def test_certificate_swapped_in_bst(signer, stranger):
    """A trusted certificate put in the BST does not make a foreign signature valid."""
    envelope, parts, _ = signed(stranger)
    bst = one(envelope, "//wsse:BinarySecurityToken")
    bst.text = base64.b64encode(signer.cert.public_bytes(Encoding.DER)).decode()
    with pytest.raises(InvalidSignatureValue):
        verify_message(envelope, parts, [signer.cert])


def test_attachment_not_covered(signer):
    parts = make_parts()
    envelope, _, _ = signed(signer, parts[:1])
    with pytest.raises(IncompleteSignature, match="cid:payload-2@sw.example"):
        verify_message(envelope, parts, [signer.cert])


def test_signed_attachment_missing(signer):
    envelope, parts, _ = signed(signer)
    with pytest.raises(IncompleteSignature, match="no such attachment"):
        verify_message(envelope, parts[:1], [signer.cert])


def test_body_not_covered(signer):
    envelope, parts, _ = signed(signer)
    # Re-sign manually would need the key; instead drop the Body's id: the reference dangles.
    body = one(envelope, "//S12:Body")
    del body.attrib[f"{{{NS_WSU}}}Id"]
    with pytest.raises(IncompleteSignature):
        verify_message(envelope, parts, [signer.cert])


def test_signature_wrapping_is_rejected(signer):
    envelope, parts, _ = signed(signer)
    header = one(envelope, "/S12:Envelope/S12:Header")
    signed_messaging = one(header, "eb:Messaging")
    # Hide the signed original in a wrapper inside the Security header ...
    wrapper = etree.SubElement(one(header, "wsse:Security"), "Wrapper")
    header.remove(signed_messaging)
    wrapper.append(signed_messaging)
    # ... and put a forged Messaging (no id) where the receiver processes it.
    forged = copy.deepcopy(signed_messaging)
    del forged.attrib[f"{{{NS_WSU}}}Id"]
    one(forged, ".//eb:MessageId").text = "forged@evil.example"
    header.insert(0, forged)
    with pytest.raises(IncompleteSignature, match="wrapping"):
        verify_message(envelope, parts, [signer.cert])


def test_duplicate_id_is_rejected(signer):
    envelope, parts, _ = signed(signer)
    header = one(envelope, "/S12:Envelope/S12:Header")
    signed_messaging = one(header, "eb:Messaging")
    # Same id on a forged copy: resolution must refuse to choose.
    forged = copy.deepcopy(signed_messaging)
    one(forged, ".//eb:MessageId").text = "forged@evil.example"
    etree.SubElement(one(envelope, "//S12:Body"), "Holder").append(forged)
    with pytest.raises(SignatureError, match="ambiguous"):
        verify_message(envelope, parts, [signer.cert])


def test_duplicate_id_via_other_attribute(signer):
    envelope, parts, _ = signed(signer)
    messaging_id = one(envelope, "//eb:Messaging").get(f"{{{NS_WSU}}}Id")
    etree.SubElement(one(envelope, "//wsse:Security"), "Decoy", Id=messaging_id)
    with pytest.raises(IncompleteSignature, match="ambiguous"):
        verify_message(envelope, parts, [signer.cert])


def test_missing_signature(signer):
    with pytest.raises(MissingSignature):
        verify_message(make_envelope(), make_parts(), [signer.cert])


def test_x509data_keyinfo_is_accepted(signer):
    """KeyInfo with X509Data/X509Certificate (as libxmlsec1 writes it) is understood.

    SignedInfo is untouched by changing KeyInfo, so the signature stays valid.
    """
    envelope, parts, _ = signed(signer)
    key_info = one(envelope, "//ds:KeyInfo")
    bst = one(envelope, "//wsse:BinarySecurityToken")
    for c in list(key_info):
        key_info.remove(c)
    x509_data = etree.SubElement(key_info, f"{{{NS_DS}}}X509Data")
    etree.SubElement(x509_data, f"{{{NS_DS}}}X509Certificate").text = bst.text
    result = verify_message(envelope, parts, [signer.cert])
    assert result.signer == signer.cert


@pytest.mark.parametrize(
    "xpath, uri",
    [
        ("//ds:SignatureMethod", "http://www.w3.org/2000/09/xmldsig#rsa-sha1"),
        ("(//ds:DigestMethod)[1]", "http://www.w3.org/2000/09/xmldsig#sha1"),
        ("(//ds:DigestMethod)[3]", "http://www.w3.org/2000/09/xmldsig#sha1"),
        ("//ds:CanonicalizationMethod", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"),
        ("(//ds:Transform)[1]", "http://www.w3.org/TR/1999/REC-xslt-19991116"),
        ("(//ds:Transform)[3]", "http://example.org/unknown-transform"),
        ("//ds:SignatureMethod", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"),
    ],
)
def test_disallowed_algorithms(signer, xpath, uri):
    envelope, parts, _ = signed(signer)
    one(envelope, xpath).set("Algorithm", uri)
    with pytest.raises(AlgorithmNotAllowed):
        verify_message(envelope, parts, [signer.cert])


def test_policy_is_enforced_for_other_policies(signer):
    from crypto.algorithms import EDELIVERY_AS4_1_15

    policy = replace(EDELIVERY_AS4_1_15, name="same algorithms, other instance")
    envelope, parts, _ = signed(signer)
    verify_message(envelope, parts, [signer.cert], policy)


def test_xml_attachment_is_canonicalized(signer):
    """SwA 5.4.2: XML attachments are signed in exclusive-c14n form, so a
    re-serialization that keeps the infoset (attribute quotes) still verifies."""
    parts = [Part("doc@sw.example", "application/xml", b"<a  x='1'><b/></a>")]
    envelope, _, _ = signed(signer, parts)
    same_infoset = [Part("doc@sw.example", "application/xml", b'<a x="1"><b></b></a>')]
    verify_message(envelope, same_infoset, [signer.cert])
    changed = [Part("doc@sw.example", "application/xml", b'<a x="2"><b></b></a>')]
    with pytest.raises(InvalidDigest, match="cid:doc@sw.example"):
        verify_message(envelope, changed, [signer.cert])


def test_text_attachment_line_ends(signer):
    parts = [Part("t@sw.example", "text/plain; charset=utf-8", b"a\nb\n")]
    envelope, _, _ = signed(signer, parts)
    crlf = [Part("t@sw.example", "text/plain; charset=utf-8", b"a\r\nb\r\n")]
    verify_message(envelope, crlf, [signer.cert])
