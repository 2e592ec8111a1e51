"""The document stage wired into both pipelines: validation, partner mapping, document signatures,
AEO registry updates, rejections and business-response links.

Two in-process gateways with real stores, real keys and the real AS4 bytes between them. Node aa
is a national gateway speaking canonical documents; bb plays Malaysia's single window: on the
wire between them e-COs and AEO lists travel in Malaysia's dialect, with the stylesheets and
code lists of ``conf/partners/my-nsw`` (aa's side) and ``conf/peers/my-nsw`` (bb's side).
"""
from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest
from lxml import etree

from crypto.keys import load_certificate, load_private_key
from gateway import as4
from gateway.aeo.registry import AeoRegistry
from gateway.connectors.folder_client import drop_document, inbox_entries, inbox_entry, report_for
from gateway.daemon import Gateway
from gateway.documents import MappingFailed
from gateway.outbound import DocumentNotValid, DocumentRejected, Submission
from gateway.outbox import drain_outbox
from gateway.receipts import DELIVERED, FAILED, judge_response
from partners.docsig import DS_NS, sign_document
from partners.documents import ECO_NS, SAMPLES, sample, validate_document
from tests.evidence_helpers import Pair
from tests.harness import ROOT, write_pair

MY_MAPPINGS = ROOT / "conf" / "partners" / "my-nsw" / "mappings"
PEER_MAPPINGS = ROOT / "conf" / "peers" / "my-nsw" / "partners" / "ke-nsw" / "mappings"
FIXTURES = MY_MAPPINGS / "fixtures"
MY_NS = "urn:my:dagang:eco:2"

# Service/action pairs shared by both sides. "raw-eco" is not a canonical type on aa's side, so
# aa sends whatever it is given; bb's PMode for the same service/action is "eco", so bb treats
# it as an e-CO: this is how a misbehaving partner is simulated.
BB_PMODES = """
[[pmode]]
id = "aa-bb-eco"
document_type = "eco"
agreement = "urn:test:agreement"
service = "urn:test:service:eco"
action = "DeliverCertificateOfOrigin"

[[pmode]]
id = "aa-bb-aeo"
document_type = "aeo"
agreement = "urn:test:agreement"
service = "urn:test:service:aeo"
action = "ExchangeOperatorList"
"""
AA_PMODES = BB_PMODES + """
[[pmode]]
id = "aa-bb-raw-eco"
document_type = "raw-eco"
agreement = "urn:test:agreement"
service = "urn:test:service:eco"
action = "DeliverCertificateOfOrigin"
"""


@pytest.fixture
def pair(tmp_path, pki):
    a, b = write_pair(tmp_path, pki)
    ignore = shutil.ignore_patterns("fixtures")
    shutil.copytree(MY_MAPPINGS, a.home / "partners" / "bb-nsw" / "mappings", ignore=ignore)
    shutil.copytree(PEER_MAPPINGS, b.home / "partners" / "aa-nsw" / "mappings", ignore=ignore)
    for node, extra in ((a, AA_PMODES), (b, BB_PMODES)):
        toml = next((node.home / "partners").iterdir()) / "partner.toml"
        text = toml.read_text() + extra
        if node is b:   # bb trusts aa's signing key as the e-CO issuing authority; aa speaks for KE
            text = text.replace("tls_trust = [", f'issuing_authorities = ["{pki / "aa-nsw" / "sign.crt"}"]\n'
                                                 'country = "KE"\ntls_trust = [', 1)
        toml.write_text(text)
    with open(a.config_path, "a") as fh:
        fh.write(f'\n[documents.sign.eco]\nkey = "{pki / "aa-nsw" / "sign.key"}"\ncert = "{pki / "aa-nsw" / "sign.crt"}"\n')
    p = Pair(a, b, Gateway(a.config()), Gateway(b.config()))
    yield p
    p.close()


def send(pair: Pair, document_type: str, document: bytes, reference: str, sender: str = "a", **kw):
    """Submit on one side, process on the other; return (message id, verdict, answer)."""
    src, dst = (pair.gw_a, pair.gw_b) if sender == "a" else (pair.gw_b, pair.gw_a)
    to = "bb-nsw" if sender == "a" else "aa-nsw"
    mid = src.outbound.submit(Submission(partner_id=to, document_type=document_type, document=document,
                                         nsw_reference=reference, **kw))
    (job,) = [j for j in src.store.claim_due(50) if j.message_id == mid]
    answer = dst.inbound.process(job.content_type, job.body)
    verdict = judge_response(job, src.registry().get(to), answer.code, answer.content_type, answer.body)
    if verdict.outcome == DELIVERED:
        src.store.mark_delivered(job.pk, answer.body, answer.content_type, [],
                                 receipt_message_id=verdict.receipt_message_id)
    return mid, verdict, answer


def steps(gw: Gateway, mid: str, direction: str) -> dict[str, tuple[str, str]]:
    (msg,) = [m for m in gw.store.find(message_id=mid) if m.direction == direction]
    return {e.step: (e.outcome, e.detail) for e in msg.events}


def canonical(xml: bytes) -> bytes:
    parser = etree.XMLParser(remove_blank_text=True)
    return etree.tostring(etree.fromstring(xml, parser), method="c14n")


def test_eco_is_mapped_signed_delivered_canonical_and_traced(pair):
    document = sample("eco-KE-SG.xml")
    mid, verdict, _ = send(pair, "eco", document, "ECO-1")
    assert verdict.outcome == DELIVERED, verdict

    # What went on the wire: Malaysia's dialect, signed by the issuing authority.
    (out,) = pair.gw_a.store.find(message_id=mid)
    wire = pair.gw_a.store.blob(out.payloads[0].digest)
    root = etree.fromstring(wire)
    assert root.tag == f"{{{MY_NS}}}CertificateOfOrigin"
    assert root[-1].tag == f"{{{DS_NS}}}Signature"
    sent = steps(pair.gw_a, mid, "out")
    assert sent["validate"][0] == "ok" and "valid eco" in sent["validate"][1]
    assert sent["map"][0] == "ok" and "eco.out.xsl" in sent["map"][1]
    assert sent["docsig"][0] == "signed" and "aa-nsw" in sent["docsig"][1]

    # What the NSW on the other side got: the canonical e-CO again, with the signature verdict.
    entry = inbox_entry(pair.gw_b.config.folder.inbox, mid)
    assert entry["signature"] == "valid" and "aa-nsw" in entry["signature_signer"]
    delivered = (pair.gw_b.config.folder.inbox / entry["document"]).read_bytes()
    validate_document("eco", delivered)
    assert etree.fromstring(delivered).tag == f"{{{ECO_NS}}}PreferentialCertificateOfOrigin"
    assert canonical(delivered) == canonical(document)
    received = steps(pair.gw_b, mid, "in")
    assert received["docsig"][0] == "valid"
    assert received["map"][0] == "ok" and "eco.in.xsl" in received["map"][1]
    assert received["validate"][0] == "ok"


def test_document_signature_by_an_unlisted_authority_is_delivered_as_invalid(pair, pki):
    wire = pair.gw_a.registry().get("bb-nsw").mappings.outbound("eco", sample("eco-KE-SG.xml"))
    forged = sign_document(wire, load_private_key(pki / "bb-nsw" / "sign.key"),
                           load_certificate(pki / "bb-nsw" / "sign.crt"))
    mid, verdict, _ = send(pair, "raw-eco", forged, "ECO-FORGED")
    assert verdict.outcome == DELIVERED
    entry = inbox_entry(pair.gw_b.config.folder.inbox, mid)
    assert entry["signature"] == "invalid"
    assert steps(pair.gw_b, mid, "in")["docsig"][0] == "invalid"

    mid, verdict, _ = send(pair, "raw-eco", wire, "ECO-UNSIGNED")
    assert inbox_entry(pair.gw_b.config.folder.inbox, mid)["signature"] == "unsigned"


def test_untranslatable_code_rejects_the_message_and_tells_the_nsw(pair):
    gw = pair.gw_a
    document = (FIXTURES / "eco-untranslatable-unit.input.xml").read_bytes()
    validate_document("eco", document)          # valid canonically: only the partner cannot express it
    drop_document(gw.config.folder.outbox, "eco.xml", document, partner="bb-nsw", document_type="eco",
                  reference="ECO-GRM")
    assert drain_outbox(gw.connector, gw.outbound, gw.party_domain) == 0

    error = (gw.config.folder.outbox / "rejected" / "eco.xml.error.txt").read_text()
    field = "eco:IncludedTradeLineItem[2]/eco:GrossWeightMeasure/@unitCode"
    assert "'GRM'" in error and field in error
    report = report_for(gw.config.folder.reports, "ECO-GRM")
    assert report["status"] == "rejected" and field in report["detail"]
    (msg,) = gw.store.find(reference="ECO-GRM")
    assert msg.status == "rejected" and msg.message_id == report["message_id"] and field in msg.last_error
    assert [(e.step, e.outcome) for e in msg.events][-1] == ("map", "rejected")
    assert gw.store.claim_due(50) == []          # nothing is ever sent

    with pytest.raises(DocumentRejected) as excinfo:
        gw.outbound.submit(Submission("bb-nsw", "eco", document, nsw_reference="ECO-GRM-2"))
    assert excinfo.value.field.endswith("@unitCode") and excinfo.value.status == 422


@pytest.mark.parametrize("name", ["manifest-CC315A-schemaInvalid.xml", "manifest-CC315A-full-missing-TINPLD1.xml",
                                  "manifest-CC313A-reduced-bad-MRN.xml"])
def test_invalid_canonical_document_is_refused_naming_element_and_line(pair, name):
    document = (SAMPLES / "invalid" / name).read_bytes()
    with pytest.raises(DocumentNotValid) as excinfo:
        pair.gw_a.outbound.submit(Submission("bb-nsw", "manifest", document, nsw_reference="BAD"))
    message = str(excinfo.value)
    assert message.startswith("invalid manifest: line ") and "Element '" in message
    assert pair.gw_a.store.find(reference="BAD") == []


def test_inbound_document_that_cannot_be_mapped_is_answered_0004_and_not_delivered(pair):
    bad = (FIXTURES / "eco-in-unknown-country.input.xml").read_bytes()
    mid, verdict, answer = send(pair, "raw-eco", bad, "ECO-XYZ")
    parsed = as4.parse_envelope(etree.fromstring(answer.body))
    (error,) = parsed.error_signal.errors
    assert error.error_code == "EBMS:0004" and error.ref_to_message_id == mid
    assert "'XYZ'" in error.description and "ImportCountry" in error.description
    assert verdict.outcome == FAILED         # a signed permanent error: the sender stops retrying

    (msg,) = pair.gw_b.store.find(message_id=mid)
    assert msg.direction == "in" and msg.status == "rejected" and "ImportCountry" in msg.last_error
    assert ("map", "rejected") in [(e.step, e.outcome) for e in msg.events]
    assert inbox_entries(pair.gw_b.config.folder.inbox) == []

    # A resend of the rejected message (same MessageId, same bytes) gets the same error again,
    # not a receipt, and is still not delivered.
    (job,) = [j for j in pair.gw_a.store.find(message_id=mid) if j.direction == "out"]
    again = pair.gw_b.inbound.process(job.content_type, pair.gw_a.store.blob(job.raw_digest))
    (repeat,) = as4.parse_envelope(etree.fromstring(again.body)).error_signal.errors
    assert (repeat.error_code, repeat.description) == ("EBMS:0004", error.description)
    assert inbox_entries(pair.gw_b.config.folder.inbox) == []
    (msg,) = pair.gw_b.store.find(message_id=mid)
    assert msg.status == "rejected" and ("duplicate", "rejected") in [(e.step, e.outcome) for e in msg.events]

    # Not mappable at all: refused just the same.
    mid, _, answer = send(pair, "raw-eco", b"<doc>not an e-CO</doc>", "ECO-DOC")
    assert b"EBMS:0004" in answer.body and inbox_entries(pair.gw_b.config.folder.inbox) == []


def test_aeo_lists_update_the_registry(pair):
    registry = AeoRegistry(pair.gw_b.store.engine)
    mid, verdict, _ = send(pair, "aeo", sample("aeo-full-KE.xml"), "AEO-FULL")
    assert verdict.outcome == DELIVERED
    assert steps(pair.gw_b, mid, "in")["aeo"][0] == "applied"
    entry = inbox_entry(pair.gw_b.config.folder.inbox, mid)
    assert entry["signature"] == "unsigned" and "KE-AEO-2024-05-01-FULL" in entry["aeo"]
    on = dt.date(2024, 5, 15)
    assert registry.lookup("P051998877Q", on)[0].status != "unknown"

    _, verdict, _ = send(pair, "aeo", sample("aeo-delta-KE.xml"), "AEO-DELTA")
    assert verdict.outcome == DELIVERED
    assert registry.lookup("P051998877Q", on)[0].status == "unknown"      # deleted by the delta
    assert registry.lookup("P052000111M", dt.date(2024, 6, 15))[0].status != "unknown"

    # The same delta again (a new message): based on a list that is no longer the last one.
    mid, verdict, answer = send(pair, "aeo", sample("aeo-delta-KE.xml").replace(
        b"KE-AEO-2024-06-01-DELTA", b"KE-AEO-2024-06-02-DELTA"), "AEO-DELTA-2")
    assert b"EBMS:0004" in answer.body and verdict.outcome == FAILED
    (msg,) = pair.gw_b.store.find(message_id=mid)
    assert msg.status == "rejected" and "based on" in msg.last_error


def test_a_partner_may_only_send_its_own_countrys_aeo_list(pair):
    registry = AeoRegistry(pair.gw_b.store.engine)
    foreign = sample("aeo-full-KE.xml").replace(b"<aeo:IssuingCountryID>KE<", b"<aeo:IssuingCountryID>SG<")
    mid, verdict, answer = send(pair, "aeo", foreign, "AEO-SG")
    assert b"EBMS:0004" in answer.body and verdict.outcome == FAILED
    (msg,) = pair.gw_b.store.find(message_id=mid)
    assert msg.status == "rejected" and "'SG'" in msg.last_error and "'KE'" in msg.last_error
    assert registry.lookup("P051998877Q", dt.date(2024, 5, 15))[0].status == "unknown"   # nothing applied


def test_an_aeo_list_commits_with_its_message_or_not_at_all(pair, monkeypatch):
    """The registry update is part of the message's unit of work: when recording the message
    fails (here its evidence entry), the list is not applied either, and the partner's
    resend applies it once."""
    import gateway.store.store as store_module
    registry = AeoRegistry(pair.gw_b.store.engine)
    on = dt.date(2024, 5, 15)
    real = store_module.witness_inbound

    def broken(*args, **kw):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(store_module, "witness_inbound", broken)
    mid = pair.gw_a.outbound.submit(Submission(partner_id="bb-nsw", document_type="aeo",
                                               document=sample("aeo-full-KE.xml"), nsw_reference="AEO-UOW"))
    (job,) = [j for j in pair.gw_a.store.claim_due(50) if j.message_id == mid]
    with pytest.raises(OSError):
        pair.gw_b.inbound.process(job.content_type, job.body)      # HTTP 500: the partner resends
    assert pair.gw_b.store.find_inbound("aa-nsw", mid) is None
    assert registry.lookup("P051998877Q", on)[0].status == "unknown"      # nothing applied
    assert inbox_entry(pair.gw_b.config.folder.inbox, mid) is None

    monkeypatch.setattr(store_module, "witness_inbound", real)
    answer = pair.gw_b.inbound.process(job.content_type, job.body)
    assert judge_response(job, pair.gw_a.registry().get("bb-nsw"), answer.code, answer.content_type,
                          answer.body).outcome == DELIVERED
    assert registry.lookup("P051998877Q", on)[0].status != "unknown"
    assert "KE-AEO-2024-05-01-FULL" in inbox_entry(pair.gw_b.config.folder.inbox, mid)["aeo"]


def test_business_response_is_linked_to_the_message_it_answers(pair):
    mid, verdict, _ = send(pair, "test-cert", b"<request>inspect</request>", "REQ-1")
    assert verdict.outcome == DELIVERED
    reply, verdict, _ = send(pair, "test-cert", b"<response>ok</response>", "RESP-1", sender="b",
                             ref_to_message_id=mid)
    assert verdict.outcome == DELIVERED
    entry = inbox_entry(pair.gw_a.config.folder.inbox, reply)
    assert entry["ref_to_message_id"] == mid
    assert entry["in_reply_to"] == {"message_id": mid, "reference": "REQ-1", "document_type": "test-cert"}
    assert steps(pair.gw_a, reply, "in")["link"][0] == "ok"
    assert steps(pair.gw_a, mid, "out")["response"] == ("received", f"business response {reply} (test-cert) from bb-nsw")


def test_unknown_document_types_pass_through_unchanged(pair):
    document = b"<anything><not-a-schema/></anything>"
    mid, verdict, _ = send(pair, "test-cert", document, "PLAIN-1")
    assert verdict.outcome == DELIVERED
    entry = inbox_entry(pair.gw_b.config.folder.inbox, mid)
    assert (pair.gw_b.config.folder.inbox / entry["document"]).read_bytes() == document
    assert "signature" not in entry
    assert steps(pair.gw_b, mid, "in")["validate"][0] == "skipped"
