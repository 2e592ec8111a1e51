"""Building blocks for the attack corpus: valid AS4 messages made at test time, and ways to
take them apart.

No key material lives in the repository, so corpus entries are recipes, not files: each
starts from a message produced with keys generated for this test session, either by the
real outbound pipeline (:meth:`Ctx.submit`) or by the same public building blocks it uses
(:meth:`Ctx.craft`: ``gateway.as4`` + ``crypto``), then mutates it.
"""
from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from crypto import Part, encrypt_parts, sign_message
from crypto.keys import load_certificate, load_private_key
from gateway import as4
from gateway.outbound import Submission

PARTY_TYPE = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
EB = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
INITIATOR = EB + "initiator"
RESPONDER = EB + "responder"
AGREEMENT = "urn:test:agreement"
SERVICE = "urn:test:service:sps"
ACTION = "DeliverCertificate"
DOCUMENT = b'<?xml version="1.0" encoding="UTF-8"?>\n<doc xmlns="urn:test:doc"><item>corpus</item></doc>\n'


@dataclass
class Wire:
    """What goes over HTTP: the Content-Type header and the body; ``transfer`` says how a
    real client sends it (``content-length`` or ``chunked``)."""

    content_type: str
    body: bytes
    transfer: str = "content-length"
    message_id: str | None = None


@dataclass
class Attachment:
    content_id: str
    mime_type: str           # Content-Type on the wire (before encryption)
    data: bytes
    properties: tuple[as4.Property, ...] = (as4.Property("MimeType", "application/xml"),
                                           as4.Property("CompressionType", "application/gzip"))


def gz_attachment(content_id: str = "", document: bytes = DOCUMENT) -> Attachment:
    return Attachment(content_id or f"part-{uuid.uuid4().hex[:12]}@aa-nsw.swgw", "application/gzip",
                      as4.gzip_compress(document))


@dataclass
class KeyPair:
    key: object
    cert: x509.Certificate


def issue_certificate(ca_key, ca_cert: x509.Certificate, common_name: str, *,
                      not_before: dt.datetime, not_after: dt.datetime) -> KeyPair:
    """A signing certificate from the dev CA with the given validity (e.g. already expired)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256()))
    return KeyPair(key, cert)


def self_signed(common_name: str) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return KeyPair(key, cert)


def encode_mime(soap: bytes, parts: list[tuple[str, str, bytes]], *, cte: str = "binary", brackets: bool = True,
                quoted: bool = True, eol: bytes = b"\r\n", start: bool = True) -> tuple[str, bytes]:
    """A hand-rolled multipart/related encoder for the shapes other stacks produce:
    base64 parts, Content-IDs without brackets, unquoted parameters, LF-only framing."""
    boundary = "MIME_boundary_" + uuid.uuid4().hex
    root = f"root-{uuid.uuid4().hex}@peer"
    out = bytearray()

    def emit(headers: list[tuple[str, str]], data: bytes) -> None:
        out.extend(b"--" + boundary.encode() + eol)
        for k, v in headers:
            out.extend(f"{k}: {v}".encode() + eol)
        out.extend(eol)
        if cte == "base64":
            data = base64.encodebytes(data).replace(b"\n", eol)
        out.extend(data + eol)

    def cid(value: str) -> str:
        return f"<{value}>" if brackets else value

    emit([("Content-Type", "application/soap+xml; charset=UTF-8"), ("Content-Transfer-Encoding", cte),
          ("Content-ID", cid(root))], soap)
    for content_id, mime, data in parts:
        emit([("Content-Type", mime), ("Content-Transfer-Encoding", cte), ("Content-ID", cid(content_id))], data)
    out.extend(b"--" + boundary.encode() + b"--" + eol)
    q = '"' if quoted else ""
    ctype = f"multipart/related; boundary={q}{boundary}{q}; type={q}application/soap+xml{q}"
    if start:
        ctype += f'; start="<{root}>"' if quoted else f"; start=<{root}>"
    return ctype, bytes(out)


Hook = Callable[[etree._Element], None]


@dataclass
class Ctx:
    """Everything a corpus recipe needs: the sending gateway, the keys of this test session."""

    sender: object                    # gateway.daemon.Gateway of aa-nsw
    pki: Path
    receiver_party: str = "BB-NSW"
    extra: dict = field(default_factory=dict)

    # -- keys ---------------------------------------------------------------------------
    def keypair(self, party: str, kind: str) -> KeyPair:
        return KeyPair(load_private_key(self.pki / party / f"{kind}.key"),
                       load_certificate(self.pki / party / f"{kind}.crt"))

    @property
    def signer(self) -> KeyPair:
        return self.keypair("aa-nsw", "sign")

    @property
    def receiver_enc(self) -> x509.Certificate:
        return load_certificate(self.pki / "bb-nsw" / "enc.crt")

    # -- messages -----------------------------------------------------------------------
    def submit(self, reference: str = "CORPUS", document: bytes = DOCUMENT) -> Wire:
        """A valid message from the real outbound pipeline: the exact bytes it would POST."""
        gw = self.sender
        mid = gw.outbound.submit(Submission(partner_id="bb-nsw", document_type="test-cert", document=document,
                                           nsw_reference=reference))
        (row,) = gw.store.find(mid)
        return Wire(row.content_type, gw.store.blob(row.raw_digest), message_id=mid)

    def craft(self, *, message_id: str | None = None, from_id: str = "AA-NSW", to_id: str | None = None,
              from_role: str = INITIATOR, to_role: str = RESPONDER, service: str = SERVICE,
              service_type: str | None = None, action: str = ACTION, agreement: str | None = AGREEMENT,
              attachments: list[Attachment] | None = None, body_payload: etree._Element | None = None,
              body_href: str | None = "none", extra_partinfo: list[as4.PartInfo] = (),
              properties: tuple[as4.Property, ...] = (as4.Property("nswReference", "CRAFTED"),),
              sign: bool = True, signer: KeyPair | None = None, encrypt: bool = True,
              enc_cert: x509.Certificate | None = None, messaging_id: str | None = None,
              body_id: str | None = None, before_sign: Hook | None = None, after_sign: Hook | None = None,
              after_encrypt: Callable[[etree._Element, list[Part]], list[Part]] | None = None,
              mime: dict | None = None) -> Wire:
        """A message built like the outbound pipeline builds one, with every knob exposed.

        ``body_href`` is the PartInfo href for ``body_payload``: ``"none"`` for no href
        (whole Body), or ``"#id"``.
        """
        mid = message_id or as4.new_message_id("aa-nsw.swgw")
        attachments = [gz_attachment()] if attachments is None else attachments
        infos = [as4.PartInfo("cid:" + a.content_id, a.properties) for a in attachments]
        if body_payload is not None:
            infos.insert(0, as4.PartInfo(None if body_href == "none" else body_href,
                                         (as4.Property("MimeType", "application/xml"),)))
        infos.extend(extra_partinfo)
        um = as4.UserMessage(
            message_id=mid, timestamp=dt.datetime.now(dt.timezone.utc), ref_to_message_id=None,
            from_party=as4.Party((as4.PartyId(from_id, PARTY_TYPE),), from_role),
            to_party=as4.Party((as4.PartyId(to_id or self.receiver_party, PARTY_TYPE),), to_role),
            agreement_ref=agreement, agreement_type=None, pmode=None, service=service, service_type=service_type,
            action=action, conversation_id=mid,
            message_properties=(as4.Property("originalSender", from_id),
                                as4.Property("finalRecipient", to_id or self.receiver_party), *properties),
            payloads=tuple(infos))
        envelope = as4.build_user_message(um, body_payload, messaging_id=messaging_id, body_id=body_id)
        if before_sign:
            before_sign(envelope)
        parts = [Part(a.content_id, a.mime_type, a.data) for a in attachments]
        if sign:
            kp = signer or self.signer
            sign_message(envelope, parts, kp.key, kp.cert)
        if after_sign:
            after_sign(envelope)
        if encrypt and parts:
            parts = encrypt_parts(envelope, parts, enc_cert or self.receiver_enc)
        if after_encrypt:
            parts = after_encrypt(envelope, parts)
        soap = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        if mime is not None:
            ctype, body = encode_mime(soap, [(p.content_id, p.mime_type, p.data) for p in parts], **mime)
        elif parts:
            ctype, body = as4.encode_multipart(
                soap, [as4.MimePart(content_id=p.content_id, content_type=p.mime_type, data=p.data) for p in parts])
        else:
            ctype, body = "application/soap+xml; charset=UTF-8", soap
        return Wire(ctype, body, message_id=mid)


# -- helpers for recipes ----------------------------------------------------------------
def find(envelope: etree._Element, local: str, ns: str = EB) -> etree._Element:
    el = envelope.find(f".//{{{ns}}}{local}")
    assert el is not None, local
    return el


def replace_once(wire: Wire, old: bytes, new: bytes) -> Wire:
    assert wire.body.count(old) >= 1, old
    return Wire(wire.content_type, wire.body.replace(old, new, 1), wire.transfer, wire.message_id)


def soap_part(wire: Wire) -> tuple[bytes, list[as4.MimePart]]:
    return as4.decode_message(wire.content_type, wire.body)


def rebuild(wire: Wire, soap: bytes | None = None, parts: list[as4.MimePart] | None = None) -> Wire:
    """Re-pack a message after changing its SOAP part or attachments (signature untouched)."""
    old_soap, old_parts = soap_part(wire)
    fresh = [as4.MimePart(p.content_id, p.content_type, p.data) for p in (parts if parts is not None else old_parts)]
    ctype, body = as4.encode_multipart(soap if soap is not None else old_soap, fresh)
    return Wire(ctype, body, wire.transfer, wire.message_id)


def edit_envelope(wire: Wire, edit: Hook) -> Wire:
    """Parse the SOAP part, apply ``edit`` to the tree, re-serialise and re-pack."""
    soap, parts = soap_part(wire)
    envelope = etree.fromstring(soap)
    edit(envelope)
    return rebuild(wire, etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
                   [as4.MimePart(p.content_id, p.content_type, p.data) for p in parts])
