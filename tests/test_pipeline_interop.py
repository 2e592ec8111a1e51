"""libxmlsec1 judges what the gateway's outbound pipeline actually stores and puts on the wire.

Node a submits a document for bb-nsw; the raw MIME message it queued (the exact bytes the
sender POSTs) is taken apart here and checked with libxmlsec1 (the ``xmlsec`` binding),
independently of the gateway's own crypto code:

* the SignatureValue verifies with a's signing certificate from the PKI folder;
* libxmlsec1 computes every ``#id`` reference digest itself;
* the attachment reference digest is recomputed by the SwA Attachment-Content-Signature-
  Transform's definition (application/gzip: the octets as they are), over the plaintext that
* libxmlsec1 decrypts: first the EncryptedKey with b's encryption key, then the attachment;
* the gunzipped plaintext is the original document.

Then node b's inbound pipeline gets the same bytes, intact or tampered with.
"""
from __future__ import annotations

import base64
import copy
import gzip
import hashlib

import pytest
from lxml import etree

from cryptography import x509

from crypto.keys import load_certificate, load_private_key
from crypto.wssec_common import NS_DS, NS_WSSE, NS_XENC, SWA_CONTENT_ONLY
from gateway import as4
from gateway.connectors.folder_client import inbox_entries, inbox_entry
from gateway.outbound import Submission
from tests.harness import ROOT, write_pair
from tests.crypto_helpers import Identity
from tests.xmlsec_helpers import SWA_SIGNATURE_TRANSFORM, register_wsu_ids, xmlsec_digest

xmlsec = pytest.importorskip("xmlsec")
C = xmlsec.constants

SAMPLE = (ROOT / "conf" / "samples" / "ephyto-AR-sample.xml").read_bytes()
NS_EB = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
NS_EBBP = "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, pki):
    """Gateways a and b built from write_pair config (no daemons: pipelines called directly)."""
    from gateway.daemon import Gateway
    a, b = write_pair(tmp_path_factory.mktemp("pipeline"), pki)
    gw_a, gw_b = Gateway(a.config()), Gateway(b.config())
    yield gw_a, gw_b
    gw_a.store.close()
    gw_b.store.close()


class Sent:
    """One message a queued: its row, the raw wire bytes and their decoded parts."""

    def __init__(self, gw, message_id: str):
        (self.row,) = gw.store.find(message_id)
        self.message_id = message_id
        self.content_type = self.row.content_type
        self.raw = gw.store.blob(self.row.raw_digest)
        soap, self.parts = as4.decode_message(self.content_type, self.raw)
        self.envelope = etree.fromstring(soap)


def submit(gw, reference="X", document=SAMPLE) -> Sent:
    mid = gw.outbound.submit(Submission(partner_id="bb-nsw", document_type="ephyto", document=document,
                                       nsw_reference=reference))
    return Sent(gw, mid)


def pki_identity(pki, party: str, kind: str) -> Identity:
    return Identity(load_private_key(pki / party / f"{kind}.key"), load_certificate(pki / party / f"{kind}.crt"))


def signal_of(response):
    assert response.code == 200
    return as4.parse_envelope(as4.parse_xml(response.body))


def error_codes(response) -> list[str]:
    parsed = signal_of(response)
    assert parsed.error_signal is not None, "expected an ebMS error signal, got a receipt"
    return [e.error_code for e in parsed.error_signal.errors]


# -- what a puts on the wire, judged by libxmlsec1 -------------------------------------------
def test_libxmlsec1_verifies_and_decrypts_what_the_pipeline_queued(nodes, pki):
    gw_a, _ = nodes
    sent = submit(gw_a)
    envelope = sent.envelope
    assert sent.row.status == "queued"
    assert sent.content_type.startswith("multipart/related;")
    assert envelope.findtext(f".//{{{NS_EB}}}MessageId") == sent.message_id
    (part,) = sent.parts
    assert part.content_type == "application/octet-stream"      # ciphertext on the wire

    signature = envelope.find(f"{{*}}Header/{{{NS_WSSE}}}Security/{{{NS_DS}}}Signature")
    signed_info = signature.find(f"{{{NS_DS}}}SignedInfo")
    signature_value = base64.b64decode(signature.findtext(f"{{{NS_DS}}}SignatureValue"))

    # The token in the message is a's signing certificate.
    bst = envelope.find(f".//{{{NS_WSSE}}}BinarySecurityToken")
    assert x509.load_der_x509_certificate(base64.b64decode(bst.text)) == load_certificate(
        pki / "aa-nsw" / "sign.crt")

    # (a) SignatureValue, with the signer's certificate from the PKI folder; libxmlsec1's own
    # canonical form of SignedInfo hashes to the same as the bytes that verify.
    c14n_signed_info = etree.tostring(signed_info, method="c14n", exclusive=True)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_file(str(pki / "aa-nsw" / "sign.crt"), C.KeyDataFormatCertPem)
    ctx.verify_binary(c14n_signed_info, C.TransformRsaSha256, signature_value)
    wrong = xmlsec.SignatureContext()
    wrong.key = xmlsec.Key.from_file(str(pki / "bb-nsw" / "sign.crt"), C.KeyDataFormatCertPem)
    with pytest.raises(xmlsec.Error):
        wrong.verify_binary(c14n_signed_info, C.TransformRsaSha256, signature_value)
    scratch = pki_identity(pki, "aa-nsw", "sign")    # only used to drive libxmlsec1's digest engine
    selector = f"ancestor-or-self::ds:SignedInfo[parent::ds:Signature/@Id='{signature.get('Id')}']"
    assert xmlsec_digest(envelope, scratch, "", selector) == base64.b64encode(
        hashlib.sha256(c14n_signed_info).digest()).decode()

    references = {r.get("URI"): r for r in signed_info.findall(f"{{{NS_DS}}}Reference")}
    messaging_id = envelope.find(f".//{{{NS_EB}}}Messaging").get(
        "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id")
    body_id = envelope.find("{*}Body").get(
        "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id")
    assert set(references) == {f"#{messaging_id}", f"#{body_id}", f"cid:{part.content_id}"}
    # What the store keeps as "what we signed" is exactly the SignedInfo on the wire.
    assert sent.row.signed_references == {
        uri: [r.find(f"{{{NS_DS}}}DigestMethod").get("Algorithm"), r.findtext(f"{{{NS_DS}}}DigestValue")]
        for uri, r in references.items()}

    # (b) XML references: libxmlsec1 computes the digests itself.
    for uri in (f"#{messaging_id}", f"#{body_id}"):
        assert xmlsec_digest(envelope, scratch, uri) == references[uri].findtext(f"{{{NS_DS}}}DigestValue"), uri

    # (c) Key transport: libxmlsec1 unwraps the EncryptedKey with b's encryption key.
    encrypted_key = envelope.find(f".//{{{NS_XENC}}}EncryptedKey")
    ek_ctx = xmlsec.EncryptionContext()
    ek_ctx.key = xmlsec.Key.from_file(str(pki / "bb-nsw" / "enc.key"), C.KeyDataFormatPem)
    content_key = ek_ctx.decrypt(copy.deepcopy(encrypted_key))
    assert isinstance(content_key, bytes) and len(content_key) == 16
    other = xmlsec.EncryptionContext()
    other.key = xmlsec.Key.from_file(str(pki / "aa-nsw" / "enc.key"), C.KeyDataFormatPem)
    with pytest.raises(xmlsec.Error):
        other.decrypt(copy.deepcopy(encrypted_key))

    # (d) Attachment: IV || ciphertext || tag is an xmlenc11 AES-128-GCM CipherValue.
    (encrypted_data,) = envelope.iterfind(f".//{{{NS_XENC}}}EncryptedData")
    assert encrypted_data.get("Type") == SWA_CONTENT_ONLY
    assert encrypted_data.get("MimeType") == "application/gzip"
    assert encrypted_data.find(f"{{{NS_XENC}}}EncryptionMethod").get("Algorithm") == C.TransformAes128Gcm.href
    assert encrypted_data.find(f".//{{{NS_XENC}}}CipherReference").get("URI") == f"cid:{part.content_id}"
    template = xmlsec.template.encrypted_data_create(etree.Element("root"), C.TransformAes128Gcm, ns="xenc")
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    template.find(f".//{{{NS_XENC}}}CipherValue").text = base64.b64encode(part.data)
    data_ctx = xmlsec.EncryptionContext()
    data_ctx.key = xmlsec.Key.from_binary_data(C.KeyDataAes, content_key)
    plaintext = data_ctx.decrypt(template)

    # (e) The attachment digest, by the SwA transform's definition: for application/gzip
    # the transform's output is the (decrypted) octets as they are.
    attachment_ref = references[f"cid:{part.content_id}"]
    (transform,) = attachment_ref.iterfind(f"{{{NS_DS}}}Transforms/{{{NS_DS}}}Transform")
    assert transform.get("Algorithm") == SWA_SIGNATURE_TRANSFORM
    assert attachment_ref.find(f"{{{NS_DS}}}DigestMethod").get("Algorithm") == \
        "http://www.w3.org/2001/04/xmlenc#sha256"
    assert base64.b64decode(attachment_ref.findtext(f"{{{NS_DS}}}DigestValue")) == \
        hashlib.sha256(plaintext).digest()

    # (f) The plaintext is the gzip of the original document, as the PartInfo says.
    assert plaintext[:2] == b"\x1f\x8b"
    assert gzip.decompress(plaintext) == SAMPLE
    props = {p.get("name"): p.text for p in envelope.iterfind(f".//{{{NS_EB}}}PartInfo//{{{NS_EB}}}Property")}
    assert props == {"MimeType": "application/xml", "CompressionType": "application/gzip"}
    (stored_payload,) = sent.row.payloads
    assert gw_a.store.blob(stored_payload.digest) == SAMPLE


# -- b's inbound pipeline on the same bytes -------------------------------------------------
def test_valid_message_gets_a_receipt_quoting_the_signed_digests(nodes, pki):
    gw_a, gw_b = nodes
    sent = submit(gw_a, reference="VALID-1")
    response = gw_b.inbound.process(sent.content_type, sent.raw)
    parsed = signal_of(response)
    assert parsed.error_signal is None and parsed.receipt is not None
    assert parsed.receipt.ref_to_message_id == sent.message_id
    nri = as4.nri_digests(parsed.nri_references)
    assert {uri: list(v) for uri, v in nri.items()} == sent.row.signed_references

    # libxmlsec1 verifies b's receipt whole (no attachments) with b's signing certificate.
    receipt = etree.fromstring(response.body)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_file(str(pki / "bb-nsw" / "sign.crt"), C.KeyDataFormatCertPem)
    register_wsu_ids(ctx, receipt)
    ctx.verify(receipt.find(f".//{{{NS_DS}}}Signature"))
    assert receipt.find(f".//{{{NS_EBBP}}}NonRepudiationInformation") is not None

    # b delivered the original document once, and recorded the evidence.
    entry = inbox_entry(gw_b.config.folder.inbox, sent.message_id)
    assert entry["partner"] == "aa-nsw" and entry["reference"] == "VALID-1" and entry["document_type"] == "ephyto"
    assert (gw_b.config.folder.inbox / entry["document"]).read_bytes() == SAMPLE
    inbound = gw_b.store.find_inbound("aa-nsw", sent.message_id)
    assert inbound.status == "delivered" and gw_b.store.blob(inbound.raw_digest) == sent.raw

    # a's own receipt judge accepts it.
    from gateway.receipts import DELIVERED, judge_response
    (job,) = [j for j in gw_a.store.claim_due(100) if j.message_id == sent.message_id]
    verdict = judge_response(job, gw_a.registry().get("bb-nsw"), response.code, response.content_type,
                             response.body)
    assert verdict.outcome == DELIVERED, verdict.detail

    # A resend of the same bytes is answered with the stored receipt, not delivered again.
    before = len(inbox_entries(gw_b.config.folder.inbox))
    again = gw_b.inbound.process(sent.content_type, sent.raw)
    assert again.body == response.body
    assert len(inbox_entries(gw_b.config.folder.inbox)) == before


def flip_byte_in_attachment(sent: Sent) -> bytes:
    (part,) = sent.parts
    offset = sent.raw.index(part.data) + len(part.data) // 2
    return sent.raw[:offset] + bytes([sent.raw[offset] ^ 0x01]) + sent.raw[offset + 1:]


def test_flipped_ciphertext_byte_is_refused_and_not_delivered(nodes):
    gw_a, gw_b = nodes
    sent = submit(gw_a, reference="TAMPER-1")
    response = gw_b.inbound.process(sent.content_type, flip_byte_in_attachment(sent))
    codes = error_codes(response)
    assert codes and set(codes) <= {"EBMS:0101", "EBMS:0102"}, codes
    assert signal_of(response).error_signal.errors[0].ref_to_message_id == sent.message_id
    assert inbox_entry(gw_b.config.folder.inbox, sent.message_id) is None
    assert not [e for e in inbox_entries(gw_b.config.folder.inbox) if e["reference"] == "TAMPER-1"]
    assert gw_b.store.find_inbound("aa-nsw", sent.message_id) is None
    # The untouched bytes are still accepted afterwards (the failure left nothing half-written).
    assert signal_of(gw_b.inbound.process(sent.content_type, sent.raw)).receipt is not None
    assert inbox_entry(gw_b.config.folder.inbox, sent.message_id) is not None


def test_altered_messaging_header_is_failed_authentication(nodes):
    gw_a, gw_b = nodes
    sent = submit(gw_a, reference="HEADER-1")
    original = b'<eb:Property name="nswReference">HEADER-1</eb:Property>'
    assert sent.raw.count(original) == 1
    tampered = sent.raw.replace(original, b'<eb:Property name="nswReference">HEADER-2</eb:Property>')
    response = gw_b.inbound.process(sent.content_type, tampered)
    assert error_codes(response) == ["EBMS:0101"]
    assert inbox_entry(gw_b.config.folder.inbox, sent.message_id) is None
    assert not [e for e in inbox_entries(gw_b.config.folder.inbox) if e["reference"] in ("HEADER-1", "HEADER-2")]
    assert gw_b.store.find_inbound("aa-nsw", sent.message_id) is None


def test_message_encrypted_for_another_key_is_a_decryption_failure(nodes, pki, tmp_path):
    """b, restarted with another encryption key than the one a encrypts for, answers EBMS:0102."""
    from gateway.daemon import Gateway
    from tests.harness import write_node
    gw_a, _ = nodes
    sent = submit(gw_a, reference="WRONG-KEY")
    b = write_node(tmp_path, pki, "bb-nsw", "aa-nsw", 1, 2)
    b.config_path.write_text(b.config_path.read_text()
                             .replace(str(pki / "bb-nsw" / "enc."), str(pki / "aa-nsw" / "enc.")))
    gw_b = Gateway(b.config())
    try:
        assert error_codes(gw_b.inbound.process(sent.content_type, sent.raw)) == ["EBMS:0102"]
        assert inbox_entries(gw_b.config.folder.inbox) == []
        assert gw_b.store.list_messages() == []
    finally:
        gw_b.store.close()


def test_tampered_copy_of_a_delivered_message_is_not_answered_with_a_receipt(nodes):
    gw_a, gw_b = nodes
    sent = submit(gw_a, reference="DUP-1")
    assert signal_of(gw_b.inbound.process(sent.content_type, sent.raw)).receipt is not None
    tampered = sent.raw.replace(b'<eb:Property name="nswReference">DUP-1</eb:Property>',
                                b'<eb:Property name="nswReference">DUP-2</eb:Property>')
    assert tampered != sent.raw
    assert error_codes(gw_b.inbound.process(sent.content_type, tampered)) == ["EBMS:0101"]
