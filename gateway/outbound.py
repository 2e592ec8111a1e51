"""Outbound pipeline: NSW document -> validated, mapped, compressed, packed, signed, encrypted, queued.

Blocking work (XML, crypto, database); the daemon runs it off the reactor thread. Each step
leaves an event, and nothing is persisted until every step succeeded, so a rejected
submission leaves nothing half-written. One exception, on purpose: a valid document whose
partner mapping fails is recorded as a ``rejected`` message (never sent), because the NSW
must be able to ask for its outcome by reference like for any other document.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Callable

from lxml import etree

from crypto import Part, encrypt_parts, sign_message, suite
from gateway import as4
from gateway.documents import DocumentSigners, InvalidDocument, MappingFailed, prepare_outbound
from gateway.identity import LocalIdentity, MissingSuiteKeys
from gateway.store.store import DuplicateMessage, MessageStore, PayloadData, StepEvent
from partners.registry import PartnerRegistry


class SubmissionRejected(ValueError):
    """The NSW handed us something we cannot send; the message says what to fix."""

    status = 400          # the NSW HTTP API's answer


class DocumentNotValid(SubmissionRejected):
    """The canonical document fails its schema; the message names the element and line.
    Nothing is recorded: the NSW fixes the document and submits it again."""

    status = 422


class DocumentRejected(SubmissionRejected):
    """The document is valid but cannot be sent as the partner needs it (its mapping failed,
    e.g. an untranslatable code). Recorded as message ``message_id`` in state ``rejected``
    with the field named, so the NSW can read the outcome like any other."""

    status = 422

    def __init__(self, message: str, *, message_id: str, field: str | None = None):
        self.message_id, self.field = message_id, field
        super().__init__(message)


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
    def __init__(self, identity: LocalIdentity, registry: Callable[[], PartnerRegistry], store: MessageStore,
                 signers: DocumentSigners | None = None):
        self.identity = identity
        self.registry = registry
        self.store = store
        self.signers = signers

    def submit(self, sub: Submission) -> str:
        """Run the whole pipeline and persist the message as ``queued``; return its MessageId."""
        events: list[StepEvent] = []
        registry = self.registry()        # one snapshot: a reload mid-submission cannot mix configs
        partner = registry.get(sub.partner_id)
        if partner is None:
            known = ", ".join(sorted(registry.partners)) or "none"
            raise SubmissionRejected(f"unknown partner {sub.partner_id!r} (configured partners: {known})")
        pmode = partner.pmode_for_document(sub.document_type)
        if pmode is None:
            types = ", ".join(p.document_type for p in partner.pmodes)
            raise SubmissionRejected(f"partner {partner.id!r} has no PMode for document type "
                                     f"{sub.document_type!r} (it takes: {types})")
        message_id = sub.message_id or as4.new_message_id(self.identity.party_id.lower() + ".swgw")
        try:
            prepared = prepare_outbound(partner, pmode, sub.document_type, sub.document, self.signers)
        except InvalidDocument as exc:
            raise DocumentNotValid(str(exc)) from None
        except MappingFailed as exc:
            self._record_rejected(sub, partner.id, pmode.id, message_id, str(exc))
            raise DocumentRejected(f"{exc} (recorded as message {message_id}, status rejected)",
                                   message_id=message_id, field=exc.field) from None
        events.extend(prepared.events)
        document = prepared.data                 # as the partner receives it

        content_id = "payload-1@" + message_id.split("@", 1)[-1]
        data, wire_type = document, pmode.mime_type
        props = [as4.Property("MimeType", pmode.mime_type)]
        if pmode.compress:
            data, wire_type = as4.gzip_compress(document), "application/gzip"
            props.append(as4.Property("CompressionType", "application/gzip"))
            events.append(StepEvent("compress", "ok", f"gzip {len(document)} -> {len(data)} bytes"))

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
        # The partner's PMode fixes the suite: its algorithms and which of our key pairs sign.
        policy = suite(pmode.security.suite)
        try:
            keys = self.identity.for_suite(pmode.security.suite)
        except MissingSuiteKeys as exc:
            raise SubmissionRejected(f"cannot send to {partner.id!r} (PMode {pmode.id}): {exc}") from None
        references = sign_message(envelope, parts, keys.signing_key, keys.signing_cert, policy)
        signed = as4.nri_digests(references)
        events.append(StepEvent("sign", "ok", f"{len(references)} references signed ({policy.name}) with "
                                f"{keys.signing_cert.subject.rfc4514_string()}"))
        if pmode.security.encrypt:
            parts = encrypt_parts(envelope, parts, partner.encryption_cert, policy)
            events.append(StepEvent("encrypt", "ok", f"{len(parts)} attachment(s) for "
                                    f"{partner.encryption_cert.subject.rfc4514_string()}"))
        else:
            events.append(StepEvent("encrypt", "skipped", f"PMode {pmode.id}: signed only, payload protected "
                                    "by TLS (encrypt = false)"))
        soap = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        content_type, body = as4.encode_multipart(
            soap, [as4.MimePart(content_id=p.content_id, content_type=p.mime_type, data=p.data) for p in parts])
        self.store.record_outbound(
            message_id=message_id, partner_id=partner.id, document_type=sub.document_type,
            pmode_id=pmode.id, nsw_reference=sub.nsw_reference, conversation_id=conversation_id,
            ref_to_message_id=sub.ref_to_message_id, content_type=content_type, raw=body,
            signed_references={uri: list(v) for uri, v in signed.items()},
            payloads=[PayloadData(content_id, pmode.mime_type, document)],
            events=[StepEvent("submit", "ok", f"document {hashlib.sha256(sub.document).hexdigest()[:16]}… "
                              f"for {partner.id} ({sub.document_type}), reference {sub.nsw_reference}"),
                    *events])
        return message_id

    def _record_rejected(self, sub: Submission, partner_id: str, pmode_id: str, message_id: str,
                         error: str) -> None:
        events = [StepEvent("submit", "ok", f"document {hashlib.sha256(sub.document).hexdigest()[:16]}… "
                            f"for {partner_id} ({sub.document_type}), reference {sub.nsw_reference}"),
                  StepEvent("validate", "ok", f"valid {sub.document_type}"),
                  StepEvent("map", "rejected", error)]
        try:
            self.store.record_rejected_outbound(
                message_id=message_id, partner_id=partner_id, document_type=sub.document_type,
                pmode_id=pmode_id, nsw_reference=sub.nsw_reference, error=error,
                document=PayloadData("canonical@" + message_id.split("@", 1)[-1], "application/xml", sub.document),
                events=events)
        except DuplicateMessage:
            pass    # a resumed claim after a crash: the rejection is already on record
