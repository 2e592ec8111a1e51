"""The sending MSH's side of reception awareness: only a receipt signed by the partner, for our
MessageId, whose NonRepudiationInformation repeats exactly the digests we signed, delivers a
message (AS4 profile receipts; ebMS 3.0 Core 6.7.x). Every answer here is built with the real
builders and signed with the real keys of this test session, then judged by the same
``judge_response`` the sender uses."""
from __future__ import annotations

import copy
import datetime as dt

import pytest
from lxml import etree

from crypto import sign_message
from crypto.keys import load_certificate, load_private_key
from gateway import as4
from gateway.outbound import Submission
from gateway.receipts import DELIVERED, FAILED, RETRY, judge_response
from tests.evidence_helpers import make_pair

SOAP = "application/soap+xml; charset=UTF-8"


@pytest.fixture
def sent(tmp_path, pki):
    """a's queued job for one message, b's genuine signed receipt for it, and b's signing keys."""
    pair = make_pair(tmp_path, pki)
    mid = pair.gw_a.outbound.submit(Submission(partner_id="bb-nsw", document_type="test-cert",
                                               document=b"<doc>judge</doc>", nsw_reference="J"))
    (job,) = [j for j in pair.gw_a.store.claim_due(50) if j.message_id == mid]
    answer = pair.gw_b.inbound.process(job.content_type, job.body)
    partner = pair.gw_a.registry().get("bb-nsw")
    keys = {who: (load_private_key(pki / who / "sign.key"), load_certificate(pki / who / "sign.crt"))
            for who in ("aa-nsw", "bb-nsw")}
    yield job, answer, partner, keys
    pair.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _signed(envelope: etree._Element, key_cert) -> bytes:
    sign_message(envelope, [], *key_cert)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def _nri_of(answer) -> list[etree._Element]:
    return [copy.deepcopy(r) for r in as4.parse_envelope(as4.parse_xml(answer.body)).nri_references]


def test_genuine_receipt_delivers(sent):
    job, answer, partner, _keys = sent
    verdict = judge_response(job, partner, answer.code, answer.content_type, answer.body)
    assert verdict.outcome == DELIVERED and "NRI digests match" in verdict.detail


def test_receipt_with_other_digests_is_not_delivery(sent):
    job, answer, partner, keys = sent
    refs = _nri_of(answer)
    value = refs[0].find("{http://www.w3.org/2000/09/xmldsig#}DigestValue")
    value.text = "A" + value.text[1:] if not value.text.startswith("A") else "B" + value.text[1:]
    body = _signed(as4.build_receipt(as4.Receipt(as4.new_message_id("bb-nsw.swgw"), _now(), job.message_id), refs),
                   keys["bb-nsw"])
    verdict = judge_response(job, partner, 200, SOAP, body)
    assert verdict.outcome == RETRY and "does not match what we signed" in verdict.detail
    assert verdict.error_code == "EBMS:0302"      # InvalidReceipt, should the budget run out


def test_receipt_missing_a_digest_is_not_delivery(sent):
    job, answer, partner, keys = sent
    refs = _nri_of(answer)[1:]
    body = _signed(as4.build_receipt(as4.Receipt(as4.new_message_id("bb-nsw.swgw"), _now(), job.message_id), refs),
                   keys["bb-nsw"])
    verdict = judge_response(job, partner, 200, SOAP, body)
    assert verdict.outcome == RETRY and "missing" in verdict.detail


def test_receipt_for_another_message_is_not_delivery(sent):
    job, answer, partner, keys = sent
    body = _signed(as4.build_receipt(as4.Receipt(as4.new_message_id("bb-nsw.swgw"), _now(), "other@aa-nsw.swgw"),
                                     _nri_of(answer)), keys["bb-nsw"])
    verdict = judge_response(job, partner, 200, SOAP, body)
    assert verdict.outcome == RETRY and "other@aa-nsw.swgw" in verdict.detail


def test_receipt_signed_by_someone_else_or_unsigned_is_not_delivery(sent):
    job, answer, partner, keys = sent
    receipt = as4.Receipt(as4.new_message_id("bb-nsw.swgw"), _now(), job.message_id)
    forged = _signed(as4.build_receipt(receipt, _nri_of(answer)), keys["aa-nsw"])
    verdict = judge_response(job, partner, 200, SOAP, forged)
    assert verdict.outcome == RETRY and "signature is not valid" in verdict.detail
    unsigned = etree.tostring(as4.build_receipt(receipt, _nri_of(answer)), xml_declaration=True, encoding="UTF-8")
    assert judge_response(job, partner, 200, SOAP, unsigned).outcome == RETRY


def _error(job, code: str, key_cert=None, about: str | None = None) -> bytes:
    about = about or job.message_id
    error = as4.make_error(code, f"{code} raised by the partner for this test", about)
    envelope = as4.build_error(as4.ErrorSignal(message_id=as4.new_message_id("bb-nsw.swgw"), timestamp=_now(),
                                               ref_to_message_id=about, errors=(error,)))
    if key_cert is None:
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    return _signed(envelope, key_cert)


def test_signed_permanent_error_fails_transient_or_unsigned_error_is_retried(sent):
    job, _answer, partner, keys = sent
    failed = judge_response(job, partner, 200, SOAP, _error(job, "EBMS:0004", keys["bb-nsw"]))
    assert failed.outcome == FAILED and "EBMS:0004" in failed.detail and failed.error_code == "EBMS:0004"
    assert judge_response(job, partner, 200, SOAP, _error(job, "EBMS:0006", keys["bb-nsw"])).outcome == RETRY
    unsigned = judge_response(job, partner, 200, SOAP, _error(job, "EBMS:0004"))
    assert unsigned.outcome == RETRY and "not taken as final" in unsigned.detail


def test_transport_answers(sent):
    job, _answer, partner, _keys = sent
    assert judge_response(job, partner, 413, "text/plain", b"too big").outcome == FAILED
    assert judge_response(job, partner, 500, "text/plain", b"").outcome == RETRY
    assert judge_response(job, partner, 200, "text/html", b"<html>proxy error</html>").outcome == RETRY


def test_signed_error_about_another_message_does_not_settle_this_one(sent):
    job, _answer, partner, keys = sent
    replayed = _error(job, "EBMS:0004", keys["bb-nsw"], about="other@bb-nsw.swgw")
    verdict = judge_response(job, partner, 200, SOAP, replayed)
    assert verdict.outcome == RETRY and "other@bb-nsw.swgw" in verdict.detail
