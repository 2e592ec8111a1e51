"""Build -> serialise -> parse round trips and strict header validation."""

import copy

import pytest
from lxml import etree

from gateway.as4 import (
    EbmsError,
    EbmsException,
    ErrorSignal,
    PartInfo,
    Property,
    Receipt,
    build_error,
    build_receipt,
    build_user_message,
    make_error,
    new_message_id,
    nri_digests,
    parse_envelope,
    parse_xml,
    serialize,
)
from gateway.as4.namespaces import DS_NS, EBMS_NS, SOAP12_NS, WSU_ID, eb, env
from tests.as4_helpers import TS, make_user_message


def round_trip(root: etree._Element):
    return parse_envelope(parse_xml(serialize(root)))


def test_user_message_round_trip():
    msg = make_user_message()
    root = build_user_message(msg, messaging_id="msg-id-1", body_id="body-id-1")
    parsed = round_trip(root)
    assert parsed.user_message == msg
    assert parsed.receipt is None and parsed.error_signal is None
    assert parsed.messaging_id == "msg-id-1" and parsed.body_id == "body-id-1"
    assert parsed.messaging.get(f"{{{SOAP12_NS}}}mustUnderstand") == "true"
    p1, p2 = parsed.user_message.payloads
    assert p1.mime_type == "application/xml"
    assert p1.compression_type == "application/gzip"
    assert p1.character_set == "utf-8"
    assert p1.content_id == "payload-1@gw.example.org"
    assert p2.compression_type is None


def test_user_message_wire_shape():
    xml = serialize(build_user_message(make_user_message(ref_to_message_id="prev@x")))
    assert xml.startswith(b"<env:Envelope")
    root = etree.fromstring(xml)
    assert root.nsmap["eb"] == EBMS_NS and root.nsmap["env"] == SOAP12_NS
    um = root.find(f"{env('Header')}/{eb('Messaging')}/{eb('UserMessage')}")
    assert [etree.QName(c).localname for c in um] == [
        "MessageInfo", "PartyInfo", "CollaborationInfo", "MessageProperties", "PayloadInfo"
    ]
    mi = um.find(eb("MessageInfo"))
    assert [etree.QName(c).localname for c in mi] == ["Timestamp", "MessageId", "RefToMessageId"]
    assert mi.findtext(eb("Timestamp")) == "2026-11-23T19:15:22.123Z"
    ar = um.find(f"{eb('CollaborationInfo')}/{eb('AgreementRef')}")
    assert ar.get("pmode") == "pm-aa-bb-ecert" and ar.get("type") == "urn:example:agreement"
    assert root.find(env("Body")).get(WSU_ID)
    assert um.get("mpc") == "http://example.org/mpc/1"


def test_minimal_user_message_without_optional_parts():
    msg = make_user_message(agreement_ref=None, agreement_type=None, pmode=None, service_type=None,
                            message_properties=(), payloads=(), mpc=None)
    parsed = round_trip(build_user_message(msg))
    assert parsed.user_message == msg
    assert b"MessageProperties" not in serialize(build_user_message(msg))


def test_body_payload_round_trip_and_not_mutated():
    payload = etree.fromstring(b'<doc xmlns="urn:x" id="p1"><v>1</v></doc>')
    before = etree.tostring(payload)
    msg = make_user_message(payloads=(PartInfo(None, (Property("MimeType", "application/xml"),)),))
    parsed = round_trip(build_user_message(msg, payload))
    assert parsed.user_message.payloads[0].href is None
    assert parsed.user_message.payloads[0].in_body
    assert parsed.body[0].tag == "{urn:x}doc"
    assert etree.tostring(payload) == before


def test_body_payload_consistency_checked():
    with pytest.raises(ValueError):
        build_user_message(make_user_message(payloads=(PartInfo(None),)))
    with pytest.raises(ValueError):
        build_user_message(make_user_message(), etree.Element("x"))


def _signed_refs():
    sig = etree.fromstring(
        f"""<ds:SignedInfo xmlns:ds="{DS_NS}">
        <ds:Reference URI="#body-1"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>
          <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
          <ds:DigestValue>q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=</ds:DigestValue></ds:Reference>
        <ds:Reference URI="cid:payload-1@gw.example.org">
          <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
          <ds:DigestValue>
             AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
          </ds:DigestValue></ds:Reference>
        </ds:SignedInfo>""".encode()
    )
    return sig.findall(f"{{{DS_NS}}}Reference")


def test_receipt_round_trip_with_nri():
    refs = _signed_refs()
    receipt = Receipt(new_message_id("gw.example.org"), TS, "6b5f@gw.partner.org")
    root = build_receipt(receipt, refs)
    assert refs[0].getparent() is not None  # caller's elements were copied, not moved
    parsed = round_trip(root)
    assert parsed.receipt == receipt
    assert parsed.user_message is None and parsed.error_signal is None
    assert len(parsed.nri_references) == 2
    assert nri_digests(parsed.nri_references) == nri_digests(refs) == {
        "#body-1": ("http://www.w3.org/2001/04/xmlenc#sha256", "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="),
        "cid:payload-1@gw.example.org": ("http://www.w3.org/2001/04/xmlenc#sha256", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
    }
    xml = serialize(root)
    assert b"ebbp:NonRepudiationInformation" in xml and b"ebbp:MessagePartNRInformation" in xml


def test_receipt_without_nri_carries_user_message_copy():
    um_root = build_user_message(make_user_message())
    um = um_root.find(f".//{eb('UserMessage')}")
    receipt = Receipt("r1@gw", TS, make_user_message().message_id)
    parsed = round_trip(build_receipt(receipt, [], user_message=um))
    assert parsed.receipt == receipt and parsed.nri_references == ()
    with pytest.raises(ValueError):
        build_receipt(receipt, [])
    with pytest.raises(ValueError):
        build_receipt(receipt, [etree.Element("notAReference")])


def test_error_signal_round_trip():
    sig = ErrorSignal(
        "err-1@gw.example.org", TS, "bad@partner",
        (
            make_error("EBMS:0009", "eb:MessageId is missing", "bad@partner"),
            make_error("0002", "bundling", None),
        ),
    )
    root = build_error(sig)
    parsed = round_trip(root)
    assert parsed.error_signal == sig
    assert parsed.receipt is None
    e = root.find(f".//{eb('Error')}")
    assert e.get("errorCode") == "EBMS:0009" and e.get("shortDescription") == "InvalidHeader"
    assert e.get("category") == "Unpackaging" and e.get("severity") == "failure" and e.get("origin") == "ebMS"
    d = e.find(eb("Description"))
    assert d.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"


def test_error_signal_without_ref():
    sig = ErrorSignal("e@gw", TS, None, (EbmsError("EBMS:0004", "failure", None, None, None, None, None),))
    assert round_trip(build_error(sig)).error_signal == sig


# ------------------------------------------------------------------ strict validation


def _tree(msg=None) -> etree._Element:
    return parse_xml(serialize(build_user_message(msg or make_user_message())))


def _expect(root, code, fragment, ref="keep"):
    with pytest.raises(EbmsException) as ei:
        parse_envelope(root)
    assert ei.value.code == code, ei.value
    assert fragment in ei.value.error.description
    if ref != "keep":
        assert ei.value.error.ref_to_message_id == ref
    return ei.value


def _remove(root, path):
    el = root.find(path, {"eb": EBMS_NS, "env": SOAP12_NS})
    el.getparent().remove(el)
    return root


MID = make_user_message().message_id


@pytest.mark.parametrize(
    "path, fragment",
    [
        (".//eb:MessageInfo/eb:Timestamp", "eb:Timestamp is missing"),
        (".//eb:PartyInfo/eb:From", "eb:From is missing"),
        (".//eb:PartyInfo/eb:To", "eb:To is missing"),
        (".//eb:PartyInfo/eb:To/eb:Role", "eb:To/eb:Role is missing"),
        (".//eb:CollaborationInfo/eb:Service", "eb:Service is missing"),
        (".//eb:CollaborationInfo/eb:Action", "eb:Action is missing"),
        (".//eb:CollaborationInfo/eb:ConversationId", "eb:ConversationId is missing"),
        (".//eb:UserMessage/eb:PartyInfo", "eb:PartyInfo is missing"),
    ],
)
def test_missing_required_field_is_0009_with_ref(path, fragment):
    _expect(_remove(_tree(), path), "EBMS:0009", fragment, ref=MID)


def test_missing_message_id_is_0009():
    _expect(_remove(_tree(), ".//eb:MessageInfo/eb:MessageId"), "EBMS:0009", "eb:MessageId is missing", ref=None)


def test_missing_party_ids():
    root = _tree()
    for pid in root.findall(f".//{eb('From')}/{eb('PartyId')}"):
        pid.getparent().remove(pid)
    _expect(root, "EBMS:0009", "eb:From/eb:PartyId is missing")


def test_empty_action_is_0009():
    root = _tree()
    root.find(f".//{eb('Action')}").text = "  "
    _expect(root, "EBMS:0009", "eb:Action is empty")


def test_bad_timestamp_is_0009():
    root = _tree()
    root.find(f".//{eb('Timestamp')}").text = "yesterday"
    _expect(root, "EBMS:0009", "not a valid xsd:dateTime", ref=MID)


def test_message_id_with_brackets_is_0009():
    root = _tree()
    root.find(f".//{eb('MessageId')}").text = "<abc@x>"
    _expect(root, "EBMS:0009", "angle brackets")


def test_two_user_messages_is_0002():
    root = _tree()
    um = root.find(f".//{eb('UserMessage')}")
    um.getparent().append(copy.deepcopy(um))
    _expect(root, "EBMS:0002", "bundling")


def test_user_and_signal_bundled_is_0002():
    root = _tree()
    sig = build_error(ErrorSignal("e@x", TS, None, (make_error("EBMS:0004", "x"),))).find(f".//{eb('SignalMessage')}")
    root.find(f".//{eb('Messaging')}").append(sig)
    _expect(root, "EBMS:0002", "bundling")


def test_pull_request_is_0002():
    xml = f"""<env:Envelope xmlns:env="{SOAP12_NS}" xmlns:eb="{EBMS_NS}"><env:Header><eb:Messaging>
    <eb:SignalMessage><eb:MessageInfo><eb:Timestamp>2026-01-01T00:00:00Z</eb:Timestamp><eb:MessageId>p@x</eb:MessageId></eb:MessageInfo>
    <eb:PullRequest mpc="urn:x"/></eb:SignalMessage></eb:Messaging></env:Header><env:Body/></env:Envelope>""".encode()
    _expect(parse_xml(xml), "EBMS:0002", "PullRequest")


def test_no_messaging_is_0009():
    _expect(_remove(_tree(), ".//eb:Messaging"), "EBMS:0009", "no eb:Messaging")


def test_two_messaging_is_0009():
    root = _tree()
    m = root.find(f".//{eb('Messaging')}")
    m.getparent().append(copy.deepcopy(m))
    _expect(root, "EBMS:0009", "2 eb:Messaging")


def test_soap11_is_0009():
    xml = b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Header/><S:Body/></S:Envelope>'
    _expect(parse_xml(xml), "EBMS:0009", "SOAP 1.1")


def test_not_an_envelope_is_0009():
    _expect(parse_xml(b"<hello/>"), "EBMS:0009", "not a SOAP 1.2")


def test_missing_body_is_0009():
    _expect(_remove(_tree(), "env:Body"), "EBMS:0009", "env:Body")


def test_unexpected_eb_element_is_0009():
    root = _tree()
    etree.SubElement(root.find(f".//{eb('CollaborationInfo')}"), eb("Bogus"))
    _expect(root, "EBMS:0009", "unexpected element eb:Bogus")


def test_foreign_element_in_messaging_tolerated():
    root = _tree()
    etree.SubElement(root.find(f".//{eb('Messaging')}"), "{urn:ext}Extension")
    assert parse_envelope(root).user_message is not None


def test_external_payload_href_is_0011():
    msg = make_user_message(payloads=(PartInfo("http://evil.example/x.xml"),))
    _expect(_tree(msg), "EBMS:0011", "external payload")


def test_property_without_name_is_0009():
    root = _tree()
    del root.find(f".//{eb('MessageProperties')}/{eb('Property')}").attrib["name"]
    _expect(root, "EBMS:0009", "has no name attribute")


def test_receipt_without_ref_is_0009():
    root = build_receipt(Receipt("r@x", TS, "m@x"), _signed_refs())
    _remove(root, ".//eb:RefToMessageId")
    _expect(parse_xml(serialize(root)), "EBMS:0009", "RefToMessageId is required", ref="r@x")


def test_receipt_with_empty_nri_is_0302():
    root = build_receipt(Receipt("r@x", TS, "m@x"), _signed_refs())
    for part in root.findall(".//{http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0}MessagePartNRInformation"):
        part.getparent().remove(part)
    _expect(parse_xml(serialize(root)), "EBMS:0302", "no ds:Reference")


def test_signal_without_content_is_0009():
    root = build_error(ErrorSignal("e@x", TS, None, (make_error("EBMS:0004", "x"),)))
    _remove(root, ".//eb:Error")
    _expect(root, "EBMS:0009", "neither eb:Receipt nor eb:Error")


def test_nri_digests_rejects_bad_references():
    refs = _signed_refs()
    with pytest.raises(EbmsException) as ei:
        nri_digests([refs[0], copy.deepcopy(refs[0])])
    assert ei.value.code == "EBMS:0302"
    bad = copy.deepcopy(refs[0])
    bad.remove(bad.find(f"{{{DS_NS}}}DigestValue"))
    with pytest.raises(EbmsException, match="DigestValue"):
        nri_digests([bad])


def test_parse_errors_are_failures_even_for_0002():
    root = _tree()
    um = root.find(f".//{eb('UserMessage')}")
    um.getparent().append(copy.deepcopy(um))
    exc = _expect(root, "EBMS:0002", "bundling")
    assert exc.error.severity == "failure"
