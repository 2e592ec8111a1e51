"""Outbound pipeline: NSW document -> validated, compressed, packed, signed, encrypted, queued.

Blocking work (XML, crypto, database); the daemon runs it off the reactor thread. Each step
leaves an event, and nothing is persisted until every step succeeded, so a rejected
submission leaves nothing half-written.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Callable

from lxml import etree

from crypto import Part, encrypt_parts, sign_message
from gateway import as4
from gateway.identity import LocalIdentity
from gateway.store.store import MessageStore, PayloadData, StepEvent
from partners.registry import PartnerRegistry


class SubmissionRejected(ValueError):
    """The NSW handed us something we cannot send; the message says what to fix."""


@dataclass(frozen=True)
class Submission:
    partner_id: str
    document_type: str
    document: bytes
    nsw_reference: str | None = None
    message_id: str | None = None          # fixed by the caller for crash-safe resubmission
    conversation_id: str | None = None
    ref_to_message_id: str | None = None


def _party(value: str, type_: str | None, role: str) -> as4.Party:
    return as4.Party(party_ids=(as4.PartyId(value, type_),), role=role)


class OutboundPipeline:
    def __init__(self, identity: LocalIdentity, registry: Callable[[], PartnerRegistry], store: MessageStore):
        self.identity = identity
        self.registry = registry
        self.store = store

    def submit(self, sub: Submission) -> str:
        """Run the whole pipeline and persist the message as ``queued``; return its MessageId."""
        events: list[StepEvent] = []
        partner = self.registry().get(sub.partner_id)
        if partner is None:
            known = ", ".join(sorted(self.registry().partners)) or "none"
            raise SubmissionRejected(f"unknown partner {sub.partner_id!r} (configured partners: {known})")
        pmode = partner.pmode_for_document(sub.document_type)
        if pmode is None:
            types = ", ".join(p.document_type for p in partner.pmodes)
            raise SubmissionRejected(f"partner {partner.id!r} has no PMode for document type "
                                     f"{sub.document_type!r} (it takes: {types})")
        if "xml" in pmode.mime_type:
            try:
                as4.parse_xml(sub.document, large_text=True)
            except as4.XmlRejected as exc:
                raise SubmissionRejected(f"document is not well-formed XML: {exc}") from None
        events.append(StepEvent("validate", "ok", f"{len(sub.document)} bytes, well-formed {pmode.mime_type}"))
        # Mapping per partner arrives with the trade-document issue; today documents travel as-is.
        events.append(StepEvent("map", "ok", "identity mapping (no partner mapping configured)"))

        message_id = sub.message_id or as4.new_message_id(self.identity.party_id.lower() + ".swgw")
        content_id = "payload-1@" + message_id.split("@", 1)[-1]
        data, wire_type = sub.document, pmode.mime_type
        props = [as4.Property("MimeType", pmode.mime_type)]
        if pmode.compress:
            data, wire_type = as4.gzip_compress(sub.document), "application/gzip"
            props.append(as4.Property("CompressionType", "application/gzip"))
            events.append(StepEvent("compress", "ok", f"gzip {len(sub.document)} -> {len(data)} bytes"))

        conversation_id = sub.conversation_id or message_id
        message = as4.UserMessage(
            message_id=message_id, timestamp=dt.datetime.now(dt.timezone.utc),
            ref_to_message_id=sub.ref_to_message_id,
            from_party=_party(self.identity.party_id, self.identity.party_id_type, pmode.initiator_role),
            to_party=_party(partner.party_id, partner.party_id_type, pmode.responder_role),
            agreement_ref=pmode.agreement, agreement_type=pmode.agreement_type, pmode=pmode.id,
            service=pmode.service, service_type=pmode.service_type, action=pmode.action,
            conversation_id=conversation_id,
            message_properties=(as4.Property("originalSender", self.identity.party_id),
                                as4.Property("finalRecipient", partner.party_id),
                                *([as4.Property("nswReference", sub.nsw_reference)] if sub.nsw_reference else [])),
            payloads=(as4.PartInfo(href="cid:" + content_id, properties=tuple(props)),))
        envelope = as4.build_user_message(message)
        events.append(StepEvent("pack", "ok", f"PMode {pmode.id}: service {pmode.service}, action {pmode.action}"))

        parts = [Part(content_id=content_id, mime_type=wire_type, data=data)]
        references = sign_message(envelope, parts, self.identity.signing_key, self.identity.signing_cert)
        signed = as4.nri_digests(references)
        events.append(StepEvent("sign", "ok", f"{len(references)} references signed with "
                                f"{self.identity.signing_cert.subject.rfc4514_string()}"))
        if pmode.security.encrypt:
            parts = encrypt_parts(envelope, parts, partner.encryption_cert)
            events.append(StepEvent("encrypt", "ok", f"{len(parts)} attachment(s) for "
                                    f"{partner.encryption_cert.subject.rfc4514_string()}"))
        soap = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        content_type, body = as4.encode_multipart(
            soap, [as4.MimePart(content_id=p.content_id, content_type=p.mime_type, data=p.data) for p in parts])
        self.store.record_outbound(
            message_id=message_id, partner_id=partner.id, document_type=sub.document_type,
            pmode_id=pmode.id, nsw_reference=sub.nsw_reference, conversation_id=conversation_id,
            ref_to_message_id=sub.ref_to_message_id, content_type=content_type, raw=body,
            signed_references={uri: list(v) for uri, v in signed.items()},
            payloads=[PayloadData(content_id, pmode.mime_type, sub.document)],
            events=[StepEvent("submit", "ok", f"document {hashlib.sha256(sub.document).hexdigest()[:16]}… "
                              f"for {partner.id} ({sub.document_type}), reference {sub.nsw_reference}"),
                    *events])
        return message_id
