"""Inbound ebMS 3.0 / AS4 behaviour beyond the happy path: the test service, several
payloads, payloads in the SOAP Body, PMode matching, unsigned messages by PMode, the shape
of error signals, and limits."""
from __future__ import annotations

import uuid

import pytest
from lxml import etree

from crypto import verify_message
from gateway import as4
from gateway.as4.namespaces import DEFAULT_SERVICE, TEST_ACTION, WSU_ID
from gateway.connectors.folder_client import inbox_entries
from gateway.inbound import InboundLimits, InboundPipeline
from tests.corpus.ctx import INITIATOR, RESPONDER, Ctx, gz_attachment
from tests.harness import write_pair


@pytest.fixture(scope="module")
def env(tmp_path_factory, pki):
    from gateway.daemon import Gateway
    a, b = write_pair(tmp_path_factory.mktemp("validation"), pki)
    gw_a, gw_b = Gateway(a.config()), Gateway(b.config())
    yield Ctx(sender=gw_a, pki=pki), gw_b
    gw_a.store.close()
    gw_b.store.close()


def parsed_answer(response) -> as4.ParsedEnvelope:
    assert response.code == 200
    return as4.parse_envelope(as4.parse_xml(response.body))


def error_of(response) -> as4.EbmsError:
    parsed = parsed_answer(response)
    assert parsed.error_signal is not None, "expected an error signal, got a receipt"
    (error,) = parsed.error_signal.errors
    return error


def entries_for(gw, mid: str) -> list[dict]:
    return [e for e in inbox_entries(gw.config.folder.inbox) if e["message_id"].split("#")[0] == mid]


def test_test_service_gets_a_signed_receipt_and_is_never_delivered(env):
    ctx, gw_b = env
    wire = ctx.craft(service=DEFAULT_SERVICE, action=TEST_ACTION, agreement=None,
                     from_role=as4.namespaces.DEFAULT_ROLE, to_role=as4.namespaces.DEFAULT_ROLE)
    response = gw_b.inbound.process(wire.content_type, wire.body)
    parsed = parsed_answer(response)
    assert parsed.receipt is not None and parsed.receipt.ref_to_message_id == wire.message_id
    assert len(parsed.nri_references) == 3            # Messaging, Body, the attachment: it was verified
    verify_message(as4.parse_xml(response.body), [], [gw_b.identity.signing_cert])
    assert entries_for(gw_b, wire.message_id) == []
    assert gw_b.store.find(message_id=wire.message_id) == []


def test_test_service_is_still_verified(env):
    ctx, gw_b = env
    wire = ctx.craft(service=DEFAULT_SERVICE, action=TEST_ACTION, agreement=None, sign=False, encrypt=False)
    assert error_of(gw_b.inbound.process(wire.content_type, wire.body)).error_code == "EBMS:0103"
    tampered = ctx.craft(service=DEFAULT_SERVICE, action=TEST_ACTION, agreement=None,
                         after_sign=lambda e: e.find(".//{*}ConversationId").__setattr__("text", "changed"))
    assert error_of(gw_b.inbound.process(tampered.content_type, tampered.body)).error_code == "EBMS:0101"


def test_several_attachments_and_a_body_payload_are_all_delivered(env):
    ctx, gw_b = env
    doc = etree.fromstring(b'<c:Certificate xmlns:c="urn:test:cert"><c:No>42</c:No></c:Certificate>')
    first, second = b"<first>1</first>", b"<second>2</second>"
    wire = ctx.craft(attachments=[gz_attachment(document=first), gz_attachment(document=second)], body_payload=doc)
    parsed = parsed_answer(gw_b.inbound.process(wire.content_type, wire.body))
    assert parsed.receipt is not None
    assert len(parsed.nri_references) == 4
    delivered = sorted(entries_for(gw_b, wire.message_id), key=lambda e: e["message_id"])
    assert len(delivered) == 3
    inbox = gw_b.config.folder.inbox
    body_doc = etree.fromstring((inbox / delivered[0]["document"]).read_bytes())
    assert body_doc.tag == "{urn:test:cert}Certificate" and body_doc.findtext("{urn:test:cert}No") == "42"
    assert [(inbox / e["document"]).read_bytes() for e in delivered[1:]] == [first, second]
    (row,) = gw_b.store.find(message_id=wire.message_id)
    assert [p.content_id for p in row.payloads][0] == "soap-body" and len(row.payloads) == 3


def test_body_payload_referenced_by_fragment_id(env):
    ctx, gw_b = env
    doc = etree.fromstring(b'<d:Doc xmlns:d="urn:test:d">by id</d:Doc>')
    doc.set(WSU_ID, "payload-" + uuid.uuid4().hex)
    wire = ctx.craft(attachments=[], body_payload=doc, body_href="#" + doc.get(WSU_ID))
    parsed = parsed_answer(gw_b.inbound.process(wire.content_type, wire.body))
    assert parsed.receipt is not None
    (entry,) = entries_for(gw_b, wire.message_id)
    assert b"by id" in (gw_b.config.folder.inbox / entry["document"]).read_bytes()


def test_body_content_nobody_refers_to_is_refused(env):
    ctx, gw_b = env
    def stuff_body(envelope):
        etree.SubElement(envelope.find("{*}Body"), "{urn:x}unannounced")
    wire = ctx.craft(before_sign=stuff_body)
    error = error_of(gw_b.inbound.process(wire.content_type, wire.body))
    assert error.error_code == "EBMS:0003" and "Body" in error.description
    assert entries_for(gw_b, wire.message_id) == []


@pytest.mark.parametrize("change, where", [
    (dict(from_role=RESPONDER), "From/Role"),
    (dict(to_role=INITIATOR), "To/Role"),
    (dict(action="Unknown"), "no PMode"),
    (dict(agreement=None), "AgreementRef"),
])
def test_pmode_mismatch_is_0010_and_names_what_differs(env, change, where):
    ctx, gw_b = env
    wire = ctx.craft(**change)
    error = error_of(gw_b.inbound.process(wire.content_type, wire.body))
    assert error.error_code == "EBMS:0010" and where in error.description
    assert error.ref_to_message_id == wire.message_id


def test_error_signal_is_complete_signed_and_refers_to_the_message(env):
    ctx, gw_b = env
    wire = ctx.craft(sign=False, encrypt=False)
    response = gw_b.inbound.process(wire.content_type, wire.body)
    envelope = as4.parse_xml(response.body)
    verify_message(envelope, [], [gw_b.identity.signing_cert])
    error = error_of(response)
    assert (error.error_code, error.severity, error.category, error.short_description) == \
        ("EBMS:0103", "failure", "Processing", "PolicyNoncompliance")
    assert error.ref_to_message_id == wire.message_id
    assert "not signed" in error.description
    signal = as4.parse_envelope(envelope).error_signal
    assert signal.ref_to_message_id == wire.message_id
    text = envelope.find(".//{*}MessageInfo/{*}Timestamp").text
    assert text.endswith("Z") and len(text.split(".")[1]) == 4     # UTC, milliseconds


def test_unsigned_message_accepted_only_when_the_pmode_allows_it(tmp_path, pki):
    """allow_unsigned needs [partner].tls_client_certs: the TLS client certificate is then the
    only proof of the sender, so an unsigned message without one (plain HTTP) is refused."""
    from crypto.keys import load_certificate
    from gateway.daemon import Gateway
    a, b = write_pair(tmp_path, pki)
    toml = b.home / "partners" / "aa-nsw" / "partner.toml"
    toml.write_text(toml.read_text().replace(
        'action = "DeliverCertificate"\n',
        'action = "DeliverCertificate"\nsecurity = { allow_unsigned = true, encrypt = false }\n').replace(
        "[partner]\n", f'[partner]\ntls_client_certs = ["{pki / "aa-nsw" / "tls.crt"}"]\n'))
    tls_chain = (load_certificate(pki / "aa-nsw" / "tls.crt"), load_certificate(pki / "ca" / "ca.crt"))
    gw_a, gw_b = Gateway(a.config()), Gateway(b.config())
    try:
        assert gw_b.registry().get("aa-nsw").pmode_for_document("test-cert").security.allow_unsigned
        ctx = Ctx(sender=gw_a, pki=pki)
        plain = ctx.craft(sign=False, encrypt=False)
        error = error_of(gw_b.inbound.process(plain.content_type, plain.body))
        assert error.error_code == "EBMS:0103" and "without a TLS client certificate" in error.description
        assert entries_for(gw_b, plain.message_id) == []
        wire = ctx.craft(sign=False, encrypt=False)
        parsed = parsed_answer(gw_b.inbound.process(wire.content_type, wire.body, tls_chain=tls_chain))
        assert parsed.receipt is not None and parsed.nri_references == ()
        receipt = as4.parse_xml(gw_b.store.blob(gw_b.store.find_inbound("aa-nsw", wire.message_id).receipt.digest))
        assert receipt.find(".//{*}Receipt/{*}UserMessage") is not None     # AS4 5.1.8: copy of the header
        assert len(entries_for(gw_b, wire.message_id)) == 1
        # a signature that is there must still be valid
        bad = ctx.craft(encrypt=False, after_sign=lambda e: e.find(".//{*}ConversationId").__setattr__("text", "x"))
        assert error_of(gw_b.inbound.process(bad.content_type, bad.body, tls_chain=tls_chain)).error_code == "EBMS:0101"
    finally:
        gw_a.store.close()
        gw_b.store.close()


def test_payload_bound_counts_all_payloads(env):
    ctx, gw_b = env
    doc = b"<d>" + b"x" * 60_000 + b"</d>"
    pipeline = InboundPipeline(gw_b.identity, gw_b.registry, gw_b.store, gw_b.connector,
                               InboundLimits(max_decompressed_bytes=100_000))
    wire = ctx.craft(attachments=[gz_attachment(document=doc), gz_attachment(document=doc)])
    error = error_of(pipeline.process(wire.content_type, wire.body))
    assert error.error_code == "EBMS:0303" and "100000" in error.description
    one = ctx.craft(attachments=[gz_attachment(document=doc)])
    assert parsed_answer(pipeline.process(one.content_type, one.body)).receipt is not None


def test_message_over_the_size_limit_is_413_without_parsing(env):
    _ctx, gw_b = env
    pipeline = InboundPipeline(gw_b.identity, gw_b.registry, gw_b.store, gw_b.connector,
                               InboundLimits(max_message_bytes=1000))
    response = pipeline.process("multipart/related; boundary=x", b"\0" * 1001)
    assert response.code == 413 and b"1000" in response.body


def test_replayed_message_id_with_other_content_is_an_error_identical_resend_a_receipt(env):
    ctx, gw_b = env
    wire = ctx.craft()
    first = gw_b.inbound.process(wire.content_type, wire.body)
    assert parsed_answer(first).receipt is not None
    resend = ctx.craft(message_id=wire.message_id)            # re-signed, same content (new signature)
    assert gw_b.inbound.process(resend.content_type, resend.body).body == first.body
    other = ctx.craft(message_id=wire.message_id, attachments=[gz_attachment(document=b"<other/>")])
    error = error_of(gw_b.inbound.process(other.content_type, other.body))
    assert error.error_code == "EBMS:0003" and "already received" in error.description
    assert len(entries_for(gw_b, wire.message_id)) == 1


def test_a_canonical_document_type_carries_exactly_one_document(env):
    """Only one payload would be validated, mapped and signature-checked: a second document
    under a canonical type (ephyto here) is refused, not slipped unchecked into the NSW inbox."""
    ctx, gw_b = env
    from partners.documents import sample
    ephyto = sample("sps-ephyto-AR.xml")
    wire = ctx.craft(service="urn:test:service:ephyto", action="DeliverPhytoCertificate",
                     attachments=[gz_attachment("one@x", ephyto), gz_attachment("two@x", b"<forged/>")])
    error = error_of(gw_b.inbound.process(wire.content_type, wire.body))
    assert error.error_code == "EBMS:0003" and "2 payloads" in error.description
    assert entries_for(gw_b, wire.message_id) == []
    assert gw_b.store.find(message_id=wire.message_id) == []
