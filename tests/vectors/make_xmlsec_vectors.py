"""Generate the libxmlsec1 interoperability vectors in tests/vectors/xmlsec/.

Run by hand (not by the test suite), from the repository root:

    .venv/bin/python tests/vectors/make_xmlsec_vectors.py

It needs the PyPI ``xmlsec`` binding (libxmlsec1), lxml and ``cryptography``, and it
overwrites every file in tests/vectors/xmlsec/. The output is different on each run
(fresh keys, random IVs and session keys); tests/test_xmlsec_vectors.py only relies
on the manifest, so regenerated vectors need no test change.

Independence: the signatures and the encryption are produced by libxmlsec1 from
templates written here with lxml. Nothing from the gateway's ``crypto`` package is
imported. ``cryptography`` is used only to create the throwaway keys and self-signed
certificates (valid for 100 years, so the vectors do not expire); ``hashlib`` only
for self-checks of what libxmlsec1 computed.

Attachments: libxmlsec1 does not implement the WS-Security SwA profile, so an
attachment reference is prepared by the definition of the SwA 1.1
Attachment-Content-Signature-Transform: for a non-XML, non-text MIME type its output
is the attachment's content octets unchanged, so the reference digest is SHA-256 of
the octets. libxmlsec1 computes that digest itself (a transform-less ``cid:``
reference, resolved by an IO callback that serves the attachment octets). The final
SignedInfo then carries the SwA transform URI, which libxmlsec1 cannot process, so
for those vectors libxmlsec1 (a) computes the XML references' digests by signing the
template with only the XML references, and (b) signs the exclusive-c14n form of the
complete SignedInfo with ``sign_binary``; the script checks with libxmlsec1 that its
own canonicalization of that SignedInfo hashes to the same value and that
``verify_binary`` accepts the result. Vectors without attachments are signed and
verified by libxmlsec1 in one piece.

Vectors (see tests/vectors/README.md and xmlsec/manifest.json):

* ``rsa-x509data-body``: RSA-SHA256, payload in the SOAP Body, KeyInfo ds:X509Data,
  signed whole by libxmlsec1.
* ``rsa-bst-swa-encrypted``: RSA-SHA256 over eb:Messaging, Body and two attachments,
  KeyInfo a wsse:SecurityTokenReference to a wsse:BinarySecurityToken; then both
  attachments encrypted by libxmlsec1 with AES-128-GCM under one content key, which
  it wraps with RSA-OAEP (MGF1-SHA256, SHA-256 digest) for the recipient.
* ``ecdsa-x509data-swa``: ECDSA-P256-SHA256 over eb:Messaging, Body and two
  attachments, KeyInfo ds:X509Data; signed only.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import io
import json
from pathlib import Path

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from cryptography.x509.oid import NameOID
from lxml import etree

C = xmlsec.constants
OUT = Path(__file__).resolve().parent / "xmlsec"

NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_EBMS = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_XENC = "http://www.w3.org/2001/04/xmlenc#"
NS_XENC11 = "http://www.w3.org/2009/xmlenc11#"
SWA = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1"
SWA_CONTENT_SIGNATURE = SWA + "#Attachment-Content-Signature-Transform"
SWA_CIPHERTEXT = SWA + "#Attachment-Ciphertext-Transform"
SWA_CONTENT_ONLY = SWA + "#Attachment-Content-Only"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64_BINARY = ("http://docs.oasis-open.org/wss/2004/01/"
                 "oasis-200401-wss-soap-message-security-1.0#Base64Binary")
WSU_ID = f"{{{NS_WSU}}}Id"


# --- throwaway identities -------------------------------------------------------------


def self_signed(common_name: str, key) -> x509.Certificate:
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test vectors - not a real party"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365 * 100 + 25))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def key_pem(key) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def xmlsec_private_key(key, cert: x509.Certificate) -> xmlsec.Key:
    xkey = xmlsec.Key.from_memory(key_pem(key), C.KeyDataFormatPem)
    xkey.load_cert_from_memory(cert_pem(cert), C.KeyDataFormatCertPem)
    return xkey


def xmlsec_public_key(cert: x509.Certificate) -> xmlsec.Key:
    return xmlsec.Key.from_memory(cert_pem(cert), C.KeyDataFormatCertPem)


# --- envelope template ----------------------------------------------------------------


def envelope_template(message_id: str, payload_hrefs: list[tuple[str, str]] | None,
                      body_xml: str = "") -> str:
    """An AS4 user message; ``payload_hrefs`` None means one payload in the Body."""
    if payload_hrefs is None:
        part_infos = "<eb:PartInfo/>"
    else:
        part_infos = "".join(
            f'<eb:PartInfo href="cid:{href}"><eb:PartProperties>'
            f'<eb:Property name="MimeType">{mime}</eb:Property>'
            f"</eb:PartProperties></eb:PartInfo>"
            for href, mime in payload_hrefs
        )
    return f"""\
<S12:Envelope xmlns:S12="{NS_SOAP12}" xmlns:eb="{NS_EBMS}" xmlns:wsu="{NS_WSU}">
  <S12:Header>
    <wsse:Security xmlns:wsse="{NS_WSSE}" S12:mustUnderstand="true"/>
    <eb:Messaging S12:mustUnderstand="true" wsu:Id="id-messaging-{message_id}">
      <eb:UserMessage>
        <eb:MessageInfo>
          <eb:Timestamp>2025-01-15T09:30:00.000Z</eb:Timestamp>
          <eb:MessageId>{message_id}@vectors.example</eb:MessageId>
        </eb:MessageInfo>
        <eb:PartyInfo>
          <eb:From><eb:PartyId type="urn:oasis:names:tc:ebcore:partyid-type:unregistered">SW-XX</eb:PartyId><eb:Role>http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/initiator</eb:Role></eb:From>
          <eb:To><eb:PartyId type="urn:oasis:names:tc:ebcore:partyid-type:unregistered">SW-YY</eb:PartyId><eb:Role>http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/responder</eb:Role></eb:To>
        </eb:PartyInfo>
        <eb:CollaborationInfo>
          <eb:Service>urn:example:single-window</eb:Service>
          <eb:Action>SubmitDocument</eb:Action>
          <eb:ConversationId>conv-{message_id}</eb:ConversationId>
        </eb:CollaborationInfo>
        <eb:PayloadInfo>{part_infos}</eb:PayloadInfo>
      </eb:UserMessage>
    </eb:Messaging>
  </S12:Header>
  <S12:Body wsu:Id="id-body-{message_id}">{body_xml}</S12:Body>
</S12:Envelope>
"""


def register_wsu_ids(ctx, root) -> None:
    for element in root.iter():
        if isinstance(element.tag, str) and element.get(WSU_ID):
            ctx.register_id(element, "Id", NS_WSU)


def security_header(envelope):
    return envelope.find(f"{{{NS_SOAP12}}}Header/{{{NS_WSSE}}}Security")


def signature_template(envelope, sign_alg, message_id: str):
    """ds:Signature with exc-c14n references to eb:Messaging and the Body."""
    template = xmlsec.template.create(envelope, C.TransformExclC14N, sign_alg,
                                      ns="ds", id=f"sig-{message_id}")
    for uri in (f"#id-messaging-{message_id}", f"#id-body-{message_id}"):
        reference = xmlsec.template.add_reference(template, C.TransformSha256, uri=uri)
        xmlsec.template.add_transform(reference, C.TransformExclC14N)
    return template


# --- attachment digests by libxmlsec1 (SwA content-signature transform definition) ----


def attachment_digest(attachment: bytes, sign_key: xmlsec.Key, sign_alg) -> str:
    """SHA-256 of the attachment octets as libxmlsec1 computes it for a transform-less
    ``cid:`` reference, the octets served by an IO callback. For binary MIME types
    this is exactly the Attachment-Content-Signature-Transform's output digested."""
    def match(uri: bytes) -> bool:
        return uri.startswith(b"cid:")

    def open_(uri: bytes):
        return io.BytesIO(attachment)

    def read(stream, buffer) -> int:
        return stream.readinto(buffer)

    def close(stream) -> None:
        stream.close()

    doc = etree.fromstring(b"<digest-holder/>")
    template = xmlsec.template.create(doc, C.TransformExclC14N, sign_alg, ns="ds")
    reference = xmlsec.template.add_reference(template, C.TransformSha256, uri="cid:attachment")
    doc.append(template)
    xmlsec.cleanup_callbacks()
    xmlsec.register_callbacks(match, open_, read, close)
    try:
        ctx = xmlsec.SignatureContext()
        ctx.key = sign_key
        ctx.sign(template)
    finally:
        xmlsec.cleanup_callbacks()
        xmlsec.register_default_callbacks()
    digest = reference.findtext(f"{{{NS_DS}}}DigestValue").strip()
    assert base64.b64decode(digest) == hashlib.sha256(attachment).digest()
    return digest


def add_attachment_reference(signed_info, content_id: str, digest: str) -> None:
    reference = etree.SubElement(signed_info, f"{{{NS_DS}}}Reference", URI=f"cid:{content_id}")
    transforms = etree.SubElement(reference, f"{{{NS_DS}}}Transforms")
    etree.SubElement(transforms, f"{{{NS_DS}}}Transform", Algorithm=SWA_CONTENT_SIGNATURE)
    etree.SubElement(reference, f"{{{NS_DS}}}DigestMethod", Algorithm=C.TransformSha256.href)
    etree.SubElement(reference, f"{{{NS_DS}}}DigestValue").text = digest


def libxmlsec1_signed_info_digest(envelope, signature, sign_key, sign_alg) -> bytes:
    """libxmlsec1's own SHA-256 of exc-c14n(SignedInfo): a throwaway one-reference
    signature in a copy of the envelope, selecting SignedInfo with an XPath filter."""
    doc = copy.deepcopy(envelope)
    template = xmlsec.template.create(doc, C.TransformExclC14N, sign_alg, ns="ds")
    reference = xmlsec.template.add_reference(template, C.TransformSha256, uri="")
    xpath = xmlsec.template.add_transform(reference, C.TransformXPath)
    etree.SubElement(xpath, f"{{{NS_DS}}}XPath", nsmap={"ds": NS_DS}).text = (
        f"ancestor-or-self::ds:SignedInfo[parent::ds:Signature/@Id='{signature.get('Id')}']")
    xmlsec.template.add_transform(reference, C.TransformExclC14N)
    security_header(doc).append(template)
    ctx = xmlsec.SignatureContext()
    ctx.key = sign_key
    ctx.sign(template)
    return base64.b64decode(reference.findtext(f"{{{NS_DS}}}DigestValue"))


def sign_with_attachments(envelope, template, attachments, key, cert, sign_alg) -> None:
    """libxmlsec1 signs a SignedInfo that includes SwA attachment references."""
    sign_key = xmlsec_private_key(key, cert)
    signed_info = template.find(f"{{{NS_DS}}}SignedInfo")
    # (a) XML references (and KeyInfo) by libxmlsec1's ordinary template signing.
    ctx = xmlsec.SignatureContext()
    ctx.key = sign_key
    register_wsu_ids(ctx, envelope)
    ctx.sign(template)
    # (b) attachment references, digests by libxmlsec1 (see attachment_digest).
    for content_id, _mime, data in attachments:
        add_attachment_reference(signed_info, content_id, attachment_digest(data, sign_key, sign_alg))
    # (c) SignatureValue over the complete SignedInfo, signed by libxmlsec1.
    canonical = etree.tostring(signed_info, method="c14n", exclusive=True, with_comments=False)
    assert libxmlsec1_signed_info_digest(envelope, template, sign_key, sign_alg) == (
        hashlib.sha256(canonical).digest())
    ctx = xmlsec.SignatureContext()
    ctx.key = sign_key
    value = ctx.sign_binary(canonical, sign_alg)
    template.find(f"{{{NS_DS}}}SignatureValue").text = base64.b64encode(value).decode()
    check = xmlsec.SignatureContext()
    check.key = xmlsec_public_key(cert)
    check.verify_binary(canonical, sign_alg, value)  # raises on failure


# --- encryption by libxmlsec1 -----------------------------------------------------------


def encrypt_attachments(envelope, attachments, recipient_cert, message_id: str):
    """Encrypt every attachment with one AES-128-GCM content key that libxmlsec1
    generates and wraps with RSA-OAEP (SHA-256, MGF1-SHA256) for the recipient.
    Returns the wire octets (IV || ciphertext || tag) per attachment."""
    keys = xmlsec.KeysManager()
    keys.add_key(xmlsec_public_key(recipient_cert))
    content_key = xmlsec.Key.generate(C.KeyDataAes, 128, C.KeyDataTypeSession)
    wire, encrypted_key = [], None
    for index, (content_id, mime, data) in enumerate(attachments):
        template = xmlsec.template.encrypted_data_create(
            etree.Element("holder"), C.TransformAes128Gcm, type=SWA_CONTENT_ONLY, ns="xenc")
        xmlsec.template.encrypted_data_ensure_cipher_value(template)
        if index == 0:
            key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
            ek = xmlsec.template.add_encrypted_key(key_info, C.TransformRsaOaep)
            method = ek.find(f"{{{NS_XENC}}}EncryptionMethod")
            method.set("Algorithm", NS_XENC11 + "rsa-oaep")
            etree.SubElement(method, f"{{{NS_DS}}}DigestMethod",
                             Algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
            etree.SubElement(method, f"{{{NS_XENC11}}}MGF", Algorithm=NS_XENC11 + "mgf1sha256",
                             nsmap={"xenc11": NS_XENC11})
            ek_key_info = xmlsec.template.encrypted_data_ensure_key_info(ek, ns="ds")
            xmlsec.template.x509_data_add_issuer_serial(xmlsec.template.add_x509_data(ek_key_info))
            xmlsec.template.encrypted_data_ensure_cipher_value(ek)
        ctx = xmlsec.EncryptionContext(keys)
        ctx.key = content_key
        result = ctx.encrypt_binary(template, data)
        wire.append(base64.b64decode(
            result.find(f"{{{NS_XENC}}}CipherData/{{{NS_XENC}}}CipherValue").text))
        if index == 0:
            encrypted_key = copy.deepcopy(result.find(f".//{{{NS_XENC}}}EncryptedKey"))
    assert encrypted_key is not None
    # SwA assembly: the EncryptedKey lists the EncryptedData elements, which point at
    # the attachments with CipherReference + the SwA ciphertext transform.
    security = security_header(envelope)
    reference_list = etree.SubElement(encrypted_key, f"{{{NS_XENC}}}ReferenceList")
    encrypted_key.set("Id", f"ek-{message_id}")
    security.insert(0, encrypted_key)
    for index, (content_id, mime, _data) in enumerate(attachments):
        data_id = f"ed-{index + 1}-{message_id}"
        etree.SubElement(reference_list, f"{{{NS_XENC}}}DataReference", URI=f"#{data_id}")
        ed = etree.Element(f"{{{NS_XENC}}}EncryptedData", Id=data_id, Type=SWA_CONTENT_ONLY,
                           MimeType=mime, nsmap={"xenc": NS_XENC})
        etree.SubElement(ed, f"{{{NS_XENC}}}EncryptionMethod", Algorithm=C.TransformAes128Gcm.href)
        cipher_reference = etree.SubElement(etree.SubElement(ed, f"{{{NS_XENC}}}CipherData"),
                                            f"{{{NS_XENC}}}CipherReference",
                                            URI=f"cid:{content_id}")
        etree.SubElement(etree.SubElement(cipher_reference, f"{{{NS_XENC}}}Transforms"),
                         f"{{{NS_DS}}}Transform", Algorithm=SWA_CIPHERTEXT, nsmap={"ds": NS_DS})
        security.insert(index + 1, ed)
    return wire, encrypted_key


def check_unwrap(encrypted_key, recipient_key, attachments, wire) -> None:
    """Self-check: libxmlsec1 unwraps its own EncryptedKey with the recipient's private
    key and decrypts every attachment back to its plaintext."""
    bare = copy.deepcopy(encrypted_key)
    bare.remove(bare.find(f"{{{NS_XENC}}}ReferenceList"))
    ctx = xmlsec.EncryptionContext()
    ctx.key = xmlsec.Key.from_memory(key_pem(recipient_key), C.KeyDataFormatPem)
    raw_key = ctx.decrypt(bare)
    assert len(raw_key) == 16
    for (_cid, _mime, data), octets in zip(attachments, wire):
        template = xmlsec.template.encrypted_data_create(etree.Element("holder"),
                                                         C.TransformAes128Gcm, ns="xenc")
        xmlsec.template.encrypted_data_ensure_cipher_value(template)
        template.find(f".//{{{NS_XENC}}}CipherValue").text = base64.b64encode(octets)
        data_ctx = xmlsec.EncryptionContext()
        data_ctx.key = xmlsec.Key.from_binary_data(C.KeyDataAes, raw_key)
        assert data_ctx.decrypt(template) == data


# --- the vectors ----------------------------------------------------------------------


def serialize(envelope) -> bytes:
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def vector_rsa_body(signer_key, signer_cert) -> tuple[bytes, list]:
    mid = "rsa-x509data-body"
    envelope = etree.fromstring(envelope_template(mid, None, (
        '<sw:Declaration xmlns:sw="urn:example:single-window:declaration">'
        "<sw:Consignor>Exporter Ltd</sw:Consignor><sw:Goods>fresh tomatoes</sw:Goods>"
        "<sw:Quantity unit=\"KGM\">1200</sw:Quantity></sw:Declaration>")).encode())
    template = signature_template(envelope, C.TransformRsaSha256, mid)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(template))
    security_header(envelope).append(template)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec_private_key(signer_key, signer_cert)
    register_wsu_ids(ctx, envelope)
    ctx.sign(template)
    # libxmlsec1 verifies the whole thing itself, after a round trip through bytes.
    data = serialize(envelope)
    reparsed = etree.fromstring(data)
    check = xmlsec.SignatureContext()
    check.key = xmlsec_public_key(signer_cert)
    register_wsu_ids(check, reparsed)
    check.verify(reparsed.find(f".//{{{NS_DS}}}Signature"))
    return data, []


def payloads(tag: str) -> list[tuple[str, str, bytes]]:
    return [
        (f"payload-1-{tag}@vectors.example", "application/pdf",
         b"%PDF-1.4\n% phytosanitary certificate " + bytes(range(256)) * 4 + b"\n%%EOF\n"),
        (f"payload-2-{tag}@vectors.example", "application/octet-stream",
         b"\x00\xffmanifest\r\n" * 64),
    ]


def vector_rsa_swa_encrypted(signer_key, signer_cert, recipient_key, recipient_cert):
    mid = "rsa-bst-swa-encrypted"
    attachments = payloads("rsa")
    envelope = etree.fromstring(envelope_template(
        mid, [(cid, mime) for cid, mime, _ in attachments]).encode())
    security = security_header(envelope)
    token_id = f"bst-{mid}"
    bst = etree.SubElement(security, f"{{{NS_WSSE}}}BinarySecurityToken",
                           {"EncodingType": BASE64_BINARY, "ValueType": X509V3, WSU_ID: token_id})
    bst.text = base64.b64encode(signer_cert.public_bytes(Encoding.DER)).decode()
    template = signature_template(envelope, C.TransformRsaSha256, mid)
    key_info = xmlsec.template.ensure_key_info(template)
    str_ = etree.SubElement(key_info, f"{{{NS_WSSE}}}SecurityTokenReference")
    etree.SubElement(str_, f"{{{NS_WSSE}}}Reference", URI=f"#{token_id}", ValueType=X509V3)
    security.append(template)
    sign_with_attachments(envelope, template, attachments, signer_key, signer_cert,
                          C.TransformRsaSha256)
    wire, encrypted_key = encrypt_attachments(envelope, attachments, recipient_cert, mid)
    check_unwrap(encrypted_key, recipient_key, attachments, wire)
    return serialize(envelope), [
        (cid, "application/octet-stream", octets, plain)
        for (cid, _mime, plain), octets in zip(attachments, wire)
    ]


def vector_ecdsa_swa(ec_key, ec_cert):
    mid = "ecdsa-x509data-swa"
    attachments = payloads("ec")
    envelope = etree.fromstring(envelope_template(
        mid, [(cid, mime) for cid, mime, _ in attachments]).encode())
    template = signature_template(envelope, C.TransformEcdsaSha256, mid)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(template))
    security_header(envelope).append(template)
    sign_with_attachments(envelope, template, attachments, ec_key, ec_cert,
                          C.TransformEcdsaSha256)
    return serialize(envelope), [(cid, mime, data, None) for cid, mime, data in attachments]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    rsa_signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_signer = self_signed("vectors-signer-rsa", rsa_signer_key)
    recipient_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    recipient = self_signed("vectors-recipient-rsa", recipient_key)
    ec_signer_key = ec.generate_private_key(ec.SECP256R1())
    ec_signer = self_signed("vectors-signer-p256", ec_signer_key)

    (OUT / "signer-rsa.cert.pem").write_bytes(cert_pem(rsa_signer))
    (OUT / "signer-p256.cert.pem").write_bytes(cert_pem(ec_signer))
    (OUT / "recipient-rsa.cert.pem").write_bytes(cert_pem(recipient))
    (OUT / "recipient-rsa.key.pem").write_bytes(key_pem(recipient_key))

    vectors = {
        "rsa-x509data-body": ("edelivery-as4-1.15", "signer-rsa.cert.pem",
                              vector_rsa_body(rsa_signer_key, rsa_signer)),
        "rsa-bst-swa-encrypted": ("edelivery-as4-1.15", "signer-rsa.cert.pem",
                                  vector_rsa_swa_encrypted(rsa_signer_key, rsa_signer,
                                                           recipient_key, recipient)),
        "ecdsa-x509data-swa": ("edelivery-as4-2.0-ecdsa", "signer-p256.cert.pem",
                               vector_ecdsa_swa(ec_signer_key, ec_signer)),
    }
    manifest = {
        "generator": "tests/vectors/make_xmlsec_vectors.py",
        "libxmlsec1": ".".join(map(str, xmlsec.get_libxmlsec_version())),
        "python-xmlsec": xmlsec.__version__,
        "vectors": {},
    }
    for name, (suite, signer_file, (envelope, parts)) in vectors.items():
        (OUT / f"{name}.envelope.xml").write_bytes(envelope)
        entries = []
        for index, (cid, wire_mime, octets, plain) in enumerate(parts, start=1):
            entry = {"content_id": cid, "mime_type": wire_mime,
                     "file": f"{name}.part-{index}.bin"}
            (OUT / entry["file"]).write_bytes(octets)
            if plain is not None:
                entry["plaintext_file"] = f"{name}.part-{index}.plain.bin"
                (OUT / entry["plaintext_file"]).write_bytes(plain)
            entries.append(entry)
        manifest["vectors"][name] = {
            "envelope": f"{name}.envelope.xml",
            "suite": suite,
            "signer_cert": signer_file,
            "encrypted": any("plaintext_file" in e for e in entries),
            "recipient_key": "recipient-rsa.key.pem" if name.endswith("encrypted") else None,
            "parts": entries,
        }
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for path in sorted(OUT.iterdir()):
        print(f"{path.stat().st_size:7d}  {path.relative_to(OUT.parent.parent.parent)}")


if __name__ == "__main__":
    main()
