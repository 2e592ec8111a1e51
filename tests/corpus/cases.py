"""The attack corpus: bad AS4 messages as recipes, each with the answer it must get.

``expect`` is an ebMS error code (the gateway answers with a signed error signal) or an
HTTP status (refused before any parsing). Every recipe starts from a message signed and
encrypted with this test session's keys (see :mod:`tests.corpus.ctx`) and breaks one
thing. ``after_valid`` cases need a message the receiver has already accepted
(``ctx.extra["valid"]``), e.g. to replay its MessageId.
"""
from __future__ import annotations

import copy
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Callable

from lxml import etree

from gateway import as4
from tests.corpus.ctx import (EB, INITIATOR, RESPONDER, Attachment, Ctx, Wire, edit_envelope, encode_mime,
                              find, gz_attachment, rebuild, replace_once, self_signed, soap_part)

MiB = 1024 * 1024
#: The daemon under test is configured with this [listen] max_message_bytes.
MAX_MESSAGE_BYTES = 2 * MiB
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_ID = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id"
SOAP12 = b"http://www.w3.org/2003/05/soap-envelope"
SOAP11 = b"http://schemas.xmlsoap.org/soap/envelope/"


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    build: Callable[[Ctx], Wire]
    expect: str | int
    after_valid: bool = False


# -- helpers ------------------------------------------------------------------------------
def _soap(ctx: Ctx) -> tuple[Wire, bytes, list[as4.MimePart]]:
    wire = ctx.submit()
    soap, parts = soap_part(wire)
    return wire, soap, parts


def _with_soap(ctx: Ctx, edit: Callable[[bytes], bytes]) -> Wire:
    wire, soap, _parts = _soap(ctx)
    return rebuild(wire, soap=edit(soap))


def _strip_decl(soap: bytes) -> bytes:
    return soap.split(b"?>", 1)[1] if soap.startswith(b"<?xml") else soap


def _doctype(ctx: Ctx, subset: bytes, entity_ref: bytes | None) -> Wire:
    def edit(soap: bytes) -> bytes:
        body = _strip_decl(soap)
        if entity_ref:
            body = body.replace(b'name="nswReference">CORPUS<', b'name="nswReference">' + entity_ref + b"<", 1)
        return b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE env:Envelope [' + subset + b"]>\n" + body
    return _with_soap(ctx, edit)


def _edit(ctx: Ctx, fn: Callable[[etree._Element], None]) -> Wire:
    return edit_envelope(ctx.submit(), fn)


def _remove(envelope: etree._Element, local: str, ns: str = EB) -> None:
    el = find(envelope, local, ns)
    el.getparent().remove(el)


def _set_text(local: str, text: str) -> Callable[[etree._Element], None]:
    def fn(envelope: etree._Element) -> None:
        find(envelope, local).text = text
    return fn


def _duplicate(local: str, ns: str = EB) -> Callable[[etree._Element], None]:
    def fn(envelope: etree._Element) -> None:
        el = find(envelope, local, ns)
        el.addnext(copy.deepcopy(el))
    return fn


def _party_id(which: str, value: str) -> Callable[[etree._Element], None]:
    def fn(envelope: etree._Element) -> None:
        find(envelope, which).find(f"{{{EB}}}PartyId").text = value
    return fn


def _algorithm(local: str, ns: str, uri: str) -> Callable[[etree._Element], None]:
    def fn(envelope: etree._Element) -> None:
        find(envelope, local, ns).set("Algorithm", uri)
    return fn


def _wrap_messaging(same_id: bool) -> Callable[[etree._Element], None]:
    """Signature wrapping: the signed eb:Messaging hides in a foreign header block, a forged
    copy (another nswReference) takes its place; with ``same_id`` the forgery keeps the
    signed element's wsu:Id too, and the original stays in place."""
    def fn(envelope: etree._Element) -> None:
        messaging = find(envelope, "Messaging")
        header = messaging.getparent()
        forged = copy.deepcopy(messaging)
        for prop in forged.iter(f"{{{EB}}}Property"):
            if prop.get("name") == "nswReference":
                prop.text = "FORGED"
        wrapper = etree.SubElement(header, "{urn:evil}Wrapper", nsmap={"x": "urn:evil"})
        if same_id:
            wrapper.append(forged)
        else:
            del forged.attrib[WSU_ID]
            messaging.addprevious(forged)
            wrapper.append(messaging)
    return fn


def _flip_attachment_byte(ctx: Ctx) -> Wire:
    wire, _soap_bytes, parts = _soap(ctx)
    data = bytearray(parts[0].data)
    data[len(data) // 2] ^= 0x01
    return rebuild(wire, parts=[as4.MimePart(parts[0].content_id, parts[0].content_type, bytes(data))])


def _foreign_ciphertext(ctx: Ctx) -> Wire:
    wire, _soap_bytes, parts = _soap(ctx)
    _w2, _s2, other = _soap(ctx)
    return rebuild(wire, parts=[as4.MimePart(parts[0].content_id, parts[0].content_type, other[0].data)])


def _swap_attachments(ctx: Ctx) -> Wire:
    def swap(_envelope, parts):
        a, b = parts
        return [type(a)(a.content_id, a.mime_type, b.data), type(b)(b.content_id, b.mime_type, a.data)]
    return ctx.craft(attachments=[gz_attachment(document=b"<a>first</a>"), gz_attachment(document=b"<b>second</b>")],
                     after_encrypt=swap)


def _extra_attachment(ctx: Ctx) -> Wire:
    wire, _soap_bytes, parts = _soap(ctx)
    extra = as4.MimePart("smuggled@evil", "application/xml", b"<smuggled/>")
    return rebuild(wire, parts=[as4.MimePart(p.content_id, p.content_type, p.data) for p in parts] + [extra])


def _unreferenced_signed_attachment(ctx: Ctx) -> Wire:
    def drop_second_partinfo(envelope):
        infos = envelope.findall(f".//{{{EB}}}PartInfo")
        infos[-1].getparent().remove(infos[-1])
    return ctx.craft(attachments=[gz_attachment(), gz_attachment()], before_sign=drop_second_partinfo)


def _gzip_bomb(decompressed_mib: int) -> bytes:
    """A gzip member inflating to ``decompressed_mib`` MiB of zeros, in ~1 KiB per MiB: one
    independently decodable deflate run repeated (its CRC is never reached)."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = co.compress(b"\0" * MiB) + co.flush(zlib.Z_FULL_FLUSH)
    tail = co.flush(zlib.Z_FINISH)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + block * decompressed_mib + tail + struct.pack("<II", 0, 0)


def _attachment(data: bytes, compression: str = "application/gzip") -> list[Attachment]:
    return [Attachment("p1@aa-nsw.swgw", "application/gzip", data,
                       (as4.Property("MimeType", "application/xml"), as4.Property("CompressionType", compression)))]


def _bad_base64(ctx: Ctx) -> Wire:
    wire, soap, parts = _soap(ctx)
    ctype, body = encode_mime(soap, [(p.content_id, p.content_type, p.data) for p in parts], cte="base64")
    marker = b"Content-ID: <" + parts[0].content_id.encode() + b">\r\n\r\n"
    i = body.index(marker) + len(marker)
    return Wire(ctype, body[:i] + b"!!!! not base64 !!!!" + body[i + 20:])


def _too_many_parts(ctx: Ctx) -> Wire:
    wire, soap, parts = _soap(ctx)
    many = [(p.content_id, p.content_type, p.data) for p in parts]
    many += [(f"filler-{i}@evil", "text/plain", b"x") for i in range(150)]
    ctype, body = encode_mime(soap, many)
    return Wire(ctype, body)


def _duplicate_content_id(ctx: Ctx) -> Wire:
    wire, soap, parts = _soap(ctx)
    p = parts[0]
    ctype, body = encode_mime(soap, [(p.content_id, p.content_type, p.data)] * 2)
    return Wire(ctype, body)


def _pushed_signal(ctx: Ctx, pull: bool) -> Wire:
    if pull:
        root, _h, messaging, _b = as4.new_envelope()
        sig = etree.SubElement(messaging, f"{{{EB}}}SignalMessage")
        mi = etree.SubElement(sig, f"{{{EB}}}MessageInfo")
        etree.SubElement(mi, f"{{{EB}}}Timestamp").text = "2024-01-01T00:00:00.000Z"
        etree.SubElement(mi, f"{{{EB}}}MessageId").text = as4.new_message_id("aa-nsw.swgw")
        etree.SubElement(sig, f"{{{EB}}}PullRequest", mpc=as4.namespaces.DEFAULT_MPC)
    else:
        import datetime as dt
        receipt = as4.Receipt(as4.new_message_id("aa-nsw.swgw"), dt.datetime.now(dt.timezone.utc),
                              "someone@bb-nsw.swgw")
        um = etree.Element(f"{{{EB}}}UserMessage")
        root = as4.build_receipt(receipt, [], user_message=um)
    from crypto import sign_message
    kp = ctx.signer
    sign_message(root, [], kp.key, kp.cert)
    return Wire("application/soap+xml; charset=UTF-8", etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _oversized(ctx: Ctx, transfer: str) -> Wire:
    wire = ctx.submit()
    # far over the limit, so that a refusal before the end of the body is observable
    return Wire(wire.content_type, wire.body + b" " * (8 * MAX_MESSAGE_BYTES), transfer)


def _replay(ctx: Ctx) -> Wire:
    valid: Wire = ctx.extra["valid"]
    return ctx.craft(message_id=valid.message_id,
                     attachments=[gz_attachment(document=b"<doc>different content, same MessageId</doc>")])


def _nest(depth: int) -> Callable[[etree._Element], None]:
    def fn(envelope: etree._Element) -> None:
        el = find(envelope, "Body", SOAP12.decode())
        for _ in range(depth):
            el = etree.SubElement(el, "{urn:deep}n")
    return fn


# -- the corpus ---------------------------------------------------------------------------
E_MIME, E_HEADER, E_FEATURE, E_PMODE = "EBMS:0007", "EBMS:0009", "EBMS:0002", "EBMS:0010"
E_AUTH, E_DECRYPT, E_POLICY, E_DECOMPRESS = "EBMS:0101", "EBMS:0102", "EBMS:0103", "EBMS:0303"

CASES: list[Case] = [
    # ---- HTTP / MIME framing
    Case("empty_body", "multipart Content-Type, zero-byte body",
         lambda c: Wire(c.submit().content_type, b""), E_MIME),
    Case("non_multipart_garbage", "random bytes as application/octet-stream",
         lambda c: Wire("application/octet-stream", os.urandom(4096)), E_MIME),
    Case("wrong_content_type", "a valid message declared as text/plain",
         lambda c: Wire("text/plain", c.submit().body), E_MIME),
    Case("missing_content_type", "no Content-Type header at all",
         lambda c: Wire("", c.submit().body), E_MIME),
    Case("soap11_content_type", "text/xml (SOAP 1.1 media type) instead of multipart/application+soap",
         lambda c: Wire("text/xml; charset=utf-8", c.submit().body), E_HEADER),
    Case("no_boundary_parameter", "multipart/related without boundary",
         lambda c: Wire('multipart/related; type="application/soap+xml"', c.submit().body), E_MIME),
    Case("wrong_boundary", "boundary parameter that never occurs in the body",
         lambda c: Wire('multipart/related; boundary="nope-nope"; type="application/soap+xml"', c.submit().body),
         E_MIME),
    Case("truncated_body", "body cut in half (no closing delimiter)",
         lambda c: (lambda w: Wire(w.content_type, w.body[: len(w.body) // 2]))(c.submit()), E_MIME),
    Case("start_names_missing_part", "start parameter names a Content-ID no part has",
         lambda c: (lambda w: Wire(w.content_type.replace('start="<', 'start="<missing-'), w.body))(c.submit()),
         E_MIME),
    Case("missing_attachment", "the attachment a PartInfo refers to was dropped",
         lambda c: rebuild(c.submit(), parts=[]), "EBMS:0011"),
    Case("duplicate_content_id", "two MIME parts share one Content-ID", _duplicate_content_id, E_MIME),
    Case("bad_base64_attachment", "Content-Transfer-Encoding base64 with invalid characters", _bad_base64, E_MIME),
    Case("too_many_parts", "150 filler MIME parts (limit 100)", _too_many_parts, "EBMS:0004"),
    Case("malformed_part_header", "a MIME header line without colon",
         lambda c: replace_once(c.submit(), b"Content-Transfer-Encoding: binary", b"Content-Transfer-Encoding binary"),
         E_MIME),
    Case("unsupported_transfer_encoding", "Content-Transfer-Encoding x-uuencode",
         lambda c: replace_once(c.submit(), b"Content-Transfer-Encoding: binary", b"Content-Transfer-Encoding: x-uuencode"),
         E_MIME),
    Case("root_part_not_xml", "the root MIME part declares image/png",
         lambda c: replace_once(c.submit(), b"Content-Type: application/soap+xml; charset=UTF-8", b"Content-Type: image/png"),
         E_MIME),
    Case("oversized", f"body over the {MAX_MESSAGE_BYTES}-byte limit with Content-Length",
         lambda c: _oversized(c, "content-length"), 413),
    Case("oversized_chunked", "body over the limit, chunked, no Content-Length",
         lambda c: _oversized(c, "chunked"), 413),
    # ---- hostile XML
    Case("xxe_external_entity", "DOCTYPE declaring an external entity (file:///etc/passwd)",
         lambda c: _doctype(c, b'<!ENTITY xxe SYSTEM "file:///etc/passwd">', b"&xxe;"), E_HEADER),
    Case("billion_laughs", "nested entity expansion",
         lambda c: _doctype(c, b'<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                               b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
                               b'<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">',
                            b"&f;"), E_HEADER),
    Case("doctype", "an internal DTD subset without entities", lambda c: _doctype(c, b"<!ELEMENT x ANY>", None), E_HEADER),
    Case("deep_nesting", "300 nested elements in the Body (limit 256)", lambda c: _edit(c, _nest(300)), E_HEADER),
    Case("malformed_xml", "SOAP part cut mid-element", lambda c: _with_soap(c, lambda s: s[: len(s) - 40]), E_HEADER),
    Case("soap11_envelope", "SOAP 1.1 envelope namespace", lambda c: _with_soap(c, lambda s: s.replace(SOAP12, SOAP11)),
         E_HEADER),
    # ---- ebMS header structure
    Case("missing_messaging", "no eb:Messaging header", lambda c: _edit(c, lambda e: _remove(e, "Messaging")), E_HEADER),
    Case("two_messaging_headers", "eb:Messaging twice", lambda c: _edit(c, _duplicate("Messaging")), E_HEADER),
    Case("two_user_messages", "two eb:UserMessage in one eb:Messaging (bundling)",
         lambda c: _edit(c, _duplicate("UserMessage")), E_FEATURE),
    Case("missing_message_id", "eb:MessageInfo without eb:MessageId",
         lambda c: _edit(c, lambda e: _remove(e, "MessageId")), E_HEADER),
    Case("message_id_in_brackets", "MessageId written <like@this>",
         lambda c: _edit(c, lambda e: find(e, "MessageId").__setattr__("text", f"<{find(e, 'MessageId').text}>")),
         E_HEADER),
    Case("bad_timestamp", "eb:Timestamp is not an xsd:dateTime", lambda c: _edit(c, _set_text("Timestamp", "yesterday")),
         E_HEADER),
    Case("missing_service", "eb:CollaborationInfo without eb:Service",
         lambda c: _edit(c, lambda e: _remove(e, "Service")), E_HEADER),
    Case("external_payload_href", "PartInfo href pointing at http://",
         lambda c: _edit(c, lambda e: find(e, "PartInfo").set("href", "http://evil.example/payload")), "EBMS:0011"),
    Case("pushed_receipt", "a receipt signal pushed to the user-message endpoint",
         lambda c: _pushed_signal(c, pull=False), E_FEATURE),
    Case("pull_request", "an eb:PullRequest (this gateway only pushes)", lambda c: _pushed_signal(c, pull=True), E_FEATURE),
    # ---- parties and PModes
    Case("unknown_from_party", "From PartyId of nobody we know", lambda c: _edit(c, _party_id("From", "ZZ-NSW")), E_PMODE),
    Case("wrong_to_party", "To PartyId of another gateway", lambda c: _edit(c, _party_id("To", "CC-NSW")), E_PMODE),
    Case("unknown_service", "service/action pair with no PMode", lambda c: c.craft(service="urn:test:service:unknown"),
         E_PMODE),
    Case("wrong_agreement", "AgreementRef of another agreement", lambda c: c.craft(agreement="urn:other:agreement"), E_PMODE),
    Case("swapped_roles", "From has the responder role, To the initiator role",
         lambda c: c.craft(from_role=RESPONDER, to_role=INITIATOR), E_PMODE),
    Case("wrong_to_role", "To/Role is not the PMode responder role", lambda c: c.craft(to_role=INITIATOR), E_PMODE),
    Case("unknown_mpc", "UserMessage on an MPC that was never agreed",
         lambda c: c.craft(before_sign=lambda e: find(e, "UserMessage").set("mpc", "urn:evil:mpc")), E_PMODE),
    Case("untyped_non_uri_service", "eb:Service without type that is not a URI", lambda c: c.craft(service="sps"),
         "EBMS:0003"),
    # ---- signature and encryption
    Case("unsigned", "no signature at all (PMode requires one)", lambda c: c.craft(sign=False, encrypt=False), E_POLICY),
    Case("signature_removed", "valid message with its ds:Signature deleted",
         lambda c: _edit(c, lambda e: _remove(e, "Signature", DS)), E_POLICY),
    Case("signed_not_encrypted", "signed but plaintext attachment (PMode requires encryption)",
         lambda c: c.craft(encrypt=False), E_POLICY),
    Case("unsigned_attachment", "an extra attachment added after signing", _extra_attachment, E_POLICY),
    Case("swapped_attachments", "two attachments' contents swapped between their Content-IDs", _swap_attachments,
         E_AUTH),
    Case("attachment_from_other_message", "ciphertext taken from another message", _foreign_ciphertext, E_DECRYPT),
    Case("flipped_ciphertext_byte", "one bit of the encrypted attachment flipped", _flip_attachment_byte, E_DECRYPT),
    Case("altered_header", "nswReference changed after signing (digest mismatch)",
         lambda c: _edit(c, lambda e: [p.__setattr__("text", "ALTERED") for p in e.iter(f"{{{EB}}}Property")
                                       if p.get("name") == "nswReference"]), E_AUTH),
    Case("altered_body", "an element slipped into the signed SOAP Body",
         lambda c: _edit(c, lambda e: etree.SubElement(find(e, "Body", SOAP12.decode()), "{urn:evil}x")), E_AUTH),
    Case("wrapped_messaging", "signed eb:Messaging moved into a wrapper, forged copy in its place",
         lambda c: _edit(c, _wrap_messaging(same_id=False)), E_POLICY),
    Case("duplicate_wsu_id", "a forged eb:Messaging copy carrying the same wsu:Id",
         lambda c: _edit(c, _wrap_messaging(same_id=True)), E_POLICY),
    Case("sha1_digest", "signature reference DigestMethod downgraded to SHA-1",
         lambda c: _edit(c, lambda e: e.find(f".//{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}DigestMethod").set(
             "Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1")), E_POLICY),
    Case("oaep_sha1_digest", "RSA-OAEP key transport digest downgraded to SHA-1",
         lambda c: _edit(c, lambda e: e.find(f".//{{{XENC}}}EncryptedKey/{{{XENC}}}EncryptionMethod/{{{DS}}}DigestMethod").set(
             "Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1")), E_POLICY),
    Case("rsa_sha1_signature", "SignatureMethod downgraded to RSA-SHA1",
         lambda c: _edit(c, _algorithm("SignatureMethod", DS, "http://www.w3.org/2000/09/xmldsig#rsa-sha1")), E_POLICY),
    Case("inclusive_c14n", "SignedInfo canonicalization switched to inclusive c14n",
         lambda c: _edit(c, _algorithm("CanonicalizationMethod", DS, "http://www.w3.org/TR/2001/REC-xml-c14n-20010315")),
         E_POLICY),
    Case("rsa_1_5_key_transport", "EncryptedKey method downgraded to RSA PKCS#1 v1.5",
         lambda c: _edit(c, _algorithm("EncryptionMethod", XENC, "http://www.w3.org/2001/04/xmlenc#rsa-1_5")), E_POLICY),
    Case("aes_cbc_content", "EncryptedData method downgraded to AES-128-CBC",
         lambda c: _edit(c, lambda e: e.findall(f".//{{{XENC}}}EncryptionMethod")[-1].set(
             "Algorithm", "http://www.w3.org/2001/04/xmlenc#aes128-cbc")), E_POLICY),
    Case("self_signed_signer", "signed with a self-signed certificate nobody configured",
         lambda c: c.craft(signer=self_signed("mallory")), E_AUTH),
    Case("other_partner_certificate", "From AA-NSW but signed with partner CC-NSW's valid certificate",
         lambda c: c.craft(signer=c.keypair("cc-nsw", "sign")), E_AUTH),
    Case("expired_certificate", "signed with an expired certificate that is configured for AA-NSW",
         lambda c: c.craft(signer=c.extra["expired"]), E_AUTH),
    Case("corrupted_signature_value", "SignatureValue bytes altered",
         lambda c: _edit(c, lambda e: find(e, "SignatureValue", DS).__setattr__(
             "text", "AAAA" + find(e, "SignatureValue", DS).text.strip()[4:])), E_AUTH),
    Case("encrypted_for_other_key", "attachment encrypted for another gateway's certificate",
         lambda c: c.craft(enc_cert=c.keypair("aa-nsw", "enc").cert), E_DECRYPT),
    # ---- payloads
    Case("bad_gzip", "CompressionType gzip over bytes that are not gzip",
         lambda c: c.craft(attachments=_attachment(b"this is not gzip at all")), E_DECOMPRESS),
    Case("truncated_gzip", "gzip stream cut short",
         lambda c: c.craft(attachments=_attachment(as4.gzip_compress(os.urandom(4096))[:-100])), E_DECOMPRESS),
    Case("gzip_bomb", "~100 KiB of gzip inflating past the 100 MiB bound",
         lambda c: c.craft(attachments=_attachment(_gzip_bomb(101))), E_DECOMPRESS),
    Case("unsupported_compression", "CompressionType application/x-bzip2",
         lambda c: c.craft(attachments=_attachment(b"BZh9", "application/x-bzip2")), E_DECOMPRESS),
    Case("missing_body_element", "PartInfo href '#nope' but no Body element has that id",
         lambda c: c.craft(extra_partinfo=[as4.PartInfo("#nope", ())]), "EBMS:0011"),
    Case("unreferenced_signed_attachment", "a signed attachment that no PartInfo lists",
         _unreferenced_signed_attachment, E_MIME),
    # ---- duplicates
    Case("replay_different_content", "the MessageId of an accepted message, with other content",
         _replay, "EBMS:0003", after_valid=True),
]

assert len({c.name for c in CASES}) == len(CASES), "corpus case names must be unique"
