"""What real peers send and the inbound side must accept (issue 3, item 5): MIME headers
repeated as a preamble, base64 parts, unbracketed Content-IDs and unquoted parameters,
LF-only framing, URL-encoded cid: hrefs, Ids that are bare UUIDs, eb:Messaging before or
after wsse:Security, wsse:TokenType in the WS-Security 1.0 namespace, timestamps with
offsets, and receipts as bare SOAP or as MIME."""
from __future__ import annotations

import uuid

import pytest
from lxml import etree

from gateway import as4
from gateway.connectors.folder_client import inbox_entries
from gateway.receipts import DELIVERED, judge_response
from tests.corpus.ctx import Attachment, Ctx, Wire, gz_attachment
from tests.harness import write_pair

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"


@pytest.fixture(scope="module")
def env(tmp_path_factory, pki):
    from gateway.daemon import Gateway
    a, b = write_pair(tmp_path_factory.mktemp("tolerance"), pki)
    gw_a, gw_b = Gateway(a.config()), Gateway(b.config())
    yield Ctx(sender=gw_a, pki=pki), gw_a, gw_b
    gw_a.store.close()
    gw_b.store.close()


def accepted(gw_b, wire: Wire) -> as4.ParsedEnvelope:
    response = gw_b.inbound.process(wire.content_type, wire.body)
    parsed = as4.parse_envelope(as4.parse_xml(response.body))
    assert parsed.error_signal is None, parsed.error_signal.errors
    assert parsed.receipt is not None and parsed.receipt.ref_to_message_id == wire.message_id
    return parsed


def test_mime_headers_repeated_as_a_preamble(env):
    ctx, _a, gw_b = env
    wire = ctx.submit(reference="PREAMBLE")
    preamble = (f"Content-Type: {wire.content_type}\r\nMIME-Version: 1.0\r\n"
                f"Content-Length: {len(wire.body)}\r\n\r\n").encode()
    accepted(gw_b, Wire(wire.content_type, preamble + wire.body, message_id=wire.message_id))


@pytest.mark.parametrize("options", [
    dict(cte="base64"),
    dict(brackets=False),
    dict(quoted=False),
    dict(eol=b"\n"),
    dict(start=False),
    dict(cte="base64", brackets=False, quoted=False, eol=b"\n"),
], ids=["base64", "no-brackets", "unquoted-params", "lf-only", "no-start", "all-at-once"])
def test_mime_shapes_of_other_stacks(env, options):
    ctx, _a, gw_b = env
    accepted(gw_b, ctx.craft(mime=options))


def test_url_encoded_cid_href(env):
    ctx, _a, gw_b = env
    def encode_href(envelope):
        info = envelope.find(".//{*}PartInfo")
        info.set("href", info.get("href").replace("@", "%40"))
    accepted(gw_b, ctx.craft(attachments=[gz_attachment("doc@peer.example")], before_sign=encode_href))


def test_ids_that_are_bare_uuids(env):
    ctx, _a, gw_b = env
    messaging_id, body_id = str(uuid.uuid4()), str(uuid.uuid4())
    wire = ctx.craft(messaging_id=messaging_id, body_id=body_id, attachments=[gz_attachment(str(uuid.uuid4()))])
    assert f'Id="{messaging_id}"'.encode() in wire.body and f'URI="#{body_id}"'.encode() in wire.body
    accepted(gw_b, wire)


@pytest.mark.parametrize("security_first", [False, True])
def test_messaging_and_security_in_either_order(env, security_first):
    ctx, _a, gw_b = env
    order = []
    def arrange(envelope):
        header = envelope.find("{*}Header")
        security = header.find(f"{{{WSSE}}}Security")
        if security_first:
            header.remove(security)
            header.insert(0, security)
        order.extend(etree.QName(c).localname for c in header)
    accepted(gw_b, ctx.craft(after_sign=arrange))
    assert order == (["Security", "Messaging"] if security_first else ["Messaging", "Security"])


def test_token_type_in_the_wss_1_0_namespace(env):
    ctx, _a, gw_b = env
    def token_type(envelope):
        ref = envelope.find(f".//{{{WSSE}}}SecurityTokenReference")
        ref.set(f"{{{WSSE}}}TokenType", X509V3)
    accepted(gw_b, ctx.craft(after_sign=token_type))


@pytest.mark.parametrize("stamp", ["2025-05-01T10:00:00+00:00", "2025-05-01T12:00:00.123456+02:00",
                                   "2025-05-01T10:00:00", "2025-05-01T10:00:00.5Z"])
def test_timestamps_in_any_xsd_datetime_form(env, stamp):
    ctx, _a, gw_b = env
    accepted(gw_b, ctx.craft(before_sign=lambda e: e.find(".//{*}MessageInfo/{*}Timestamp").__setattr__("text", stamp)))


def test_uncompressed_attachment_and_binary_data(env):
    ctx, _a, gw_b = env
    data = bytes(range(256)) * 8 + b"\r\n--not-a-boundary\r\n\n\r"
    part = Attachment("bin@peer", "application/octet-stream", data, (as4.Property("MimeType", "application/pdf"),))
    wire = ctx.craft(attachments=[part])
    accepted(gw_b, wire)
    entry = next(e for e in inbox_entries(gw_b.config.folder.inbox) if e["message_id"] == wire.message_id)
    assert (gw_b.config.folder.inbox / entry["document"]).read_bytes() == data


def _job_and_receipt(env):
    ctx, gw_a, gw_b = env
    wire = ctx.submit(reference="RECEIPT-SHAPES")
    response = gw_b.inbound.process(wire.content_type, wire.body)
    (job,) = [j for j in gw_a.store.claim_due(100) if j.message_id == wire.message_id]
    return job, gw_a.registry().get("bb-nsw"), response


def test_receipts_as_bare_soap_and_as_mime_are_both_accepted(env):
    job, partner, response = _job_and_receipt(env)
    assert response.content_type.startswith("application/soap+xml")
    verdict = judge_response(job, partner, 200, response.content_type, response.body)
    assert verdict.outcome == DELIVERED, verdict.detail
    ctype, body = as4.encode_multipart(response.body, [])
    verdict = judge_response(job, partner, 200, ctype, body)
    assert verdict.outcome == DELIVERED, verdict.detail
    bare_ct = "application/soap+xml"              # no charset, as some stacks send it
    assert judge_response(job, partner, 200, bare_ct, response.body).outcome == DELIVERED
