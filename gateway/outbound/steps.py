"""The outbound handler chain: an NSW document to a signed, encrypted AS4 message, one step each.

Each step reads what earlier ones established in the ``OutboundContext`` and adds its own
(with an event for the trace), so a step can be tested alone. Nothing is persisted by the
chain: the pipeline records the finished message in one unit of work (``pipeline.py``).
"""
from __future__ import annotations

import datetime as dt
from typing import Callable, Protocol

from lxml import etree

from crypto import Part, content, encrypt_parts, sign_message, suite
from gateway import as4
from gateway.documents import DocumentSigners, InvalidDocument, MappingFailed, prepare_outbound
from gateway.identity import LocalIdentity, MissingSuiteKeys
from gateway.outbound.context import OutboundContext
from gateway.outbound.submission import DocumentNotValid, DocumentRejected, SubmissionRejected
from gateway.store.store import StepEvent


class Step(Protocol):
    def __call__(self, ctx: OutboundContext) -> None: ...


def _party(value: str, type_: str | None, role: str) -> as4.Party:
    return as4.Party(party_ids=(as4.PartyId(value, type_),), role=role)


def submit_event(ctx: OutboundContext) -> StepEvent:
    sub = ctx.submission
    return StepEvent("submit", "ok", f"document {content.hexdigest(sub.document)[:16]}… for "
                     f"{sub.partner_id} ({sub.document_type}), reference {sub.nsw_reference}")


class ResolvePartner:
    """The partner and its PMode for the document type; the MessageId."""

    def __init__(self, identity: LocalIdentity):
        self.domain = identity.party_id.lower() + ".swgw"

    def __call__(self, ctx: OutboundContext) -> None:
        sub, registry = ctx.submission, ctx.registry
        ctx.events.append(submit_event(ctx))
        partner = registry.get(sub.partner_id)
        if partner is None:
            known = ", ".join(sorted(registry.partners)) or "none"
            raise SubmissionRejected(f"unknown partner {sub.partner_id!r} (configured partners: {known})")
        pmode = partner.pmode_for_document(sub.document_type)
        if pmode is None:
            types = ", ".join(p.document_type for p in partner.pmodes)
            raise SubmissionRejected(f"partner {partner.id!r} has no PMode for document type "
                                     f"{sub.document_type!r} (it takes: {types})")
        ctx.partner, ctx.pmode = partner, pmode
        ctx.message_id = sub.message_id or as4.new_message_id(self.domain)
        ctx.conversation_id = sub.conversation_id or ctx.message_id


class PrepareDocument:
    """Validate the canonical document, map it to the partner's format, sign it at document
    level where the partner wants that. A document whose mapping fails is recorded
    ``rejected`` (``record_rejected``) so the NSW can ask for its outcome like any other."""

    def __init__(self, signers: DocumentSigners | None,
                 record_rejected: Callable[[OutboundContext, str], None]):
        self.signers = signers
        self.record_rejected = record_rejected

    def __call__(self, ctx: OutboundContext) -> None:
        sub = ctx.submission
        try:
            prepared = prepare_outbound(ctx.partner, ctx.pmode, sub.document_type, sub.document, self.signers)
        except InvalidDocument as exc:
            raise DocumentNotValid(str(exc)) from None
        except MappingFailed as exc:
            self.record_rejected(ctx, str(exc))
            raise DocumentRejected(f"{exc} (recorded as message {ctx.message_id}, status rejected)",
                                   message_id=ctx.message_id, field=exc.field) from None
        ctx.events.extend(prepared.events)
        ctx.document = prepared.data


class Compress:
    def __call__(self, ctx: OutboundContext) -> None:
        pmode, document = ctx.pmode, ctx.document
        ctx.content_id = "payload-1@" + ctx.message_id.split("@", 1)[-1]
        ctx.properties = [as4.Property("MimeType", pmode.mime_type)]
        data, wire_type = document, pmode.mime_type
        if pmode.compress:
            data, wire_type = as4.gzip_compress(document), "application/gzip"
            ctx.properties.append(as4.Property("CompressionType", "application/gzip"))
            ctx.events.append(StepEvent("compress", "ok", f"gzip {len(document)} -> {len(data)} bytes"))
        ctx.parts = [Part(content_id=ctx.content_id, mime_type=wire_type, data=data)]


class Pack:
    """The eb:Messaging header from the PMode (ebMS 3.0 Core 5.2)."""

    def __init__(self, identity: LocalIdentity):
        self.identity = identity

    def __call__(self, ctx: OutboundContext) -> None:
        sub, partner, pmode, me = ctx.submission, ctx.partner, ctx.pmode, self.identity
        message = as4.UserMessage(
            message_id=ctx.message_id, timestamp=dt.datetime.now(dt.timezone.utc),
            ref_to_message_id=sub.ref_to_message_id,
            from_party=_party(me.party_id, me.party_id_type, pmode.initiator_role),
            to_party=_party(partner.party_id, partner.party_id_type, pmode.responder_role),
            agreement_ref=pmode.agreement, agreement_type=pmode.agreement_type, pmode=pmode.id,
            service=pmode.service, service_type=pmode.service_type, action=pmode.action,
            conversation_id=ctx.conversation_id,
            message_properties=(as4.Property("originalSender", me.party_id),
                                as4.Property("finalRecipient", partner.party_id),
                                *([as4.Property("nswReference", sub.nsw_reference)] if sub.nsw_reference else [])),
            payloads=(as4.PartInfo(href="cid:" + ctx.content_id, properties=tuple(ctx.properties)),))
        ctx.envelope = as4.build_user_message(message)
        ctx.events.append(StepEvent("pack", "ok", f"PMode {pmode.id}: service {pmode.service}, action {pmode.action}"))


class Sign:
    """WS-Security signature with our key pair of the PMode's suite over eb:Messaging, the
    Body and every attachment; the references are kept for receipt (NRI) checking."""

    def __init__(self, identity: LocalIdentity):
        self.identity = identity

    def __call__(self, ctx: OutboundContext) -> None:
        pmode = ctx.pmode
        policy = suite(pmode.security.suite)
        try:
            keys = self.identity.for_suite(pmode.security.suite)
        except MissingSuiteKeys as exc:
            raise SubmissionRejected(f"cannot send to {ctx.partner.id!r} (PMode {pmode.id}): {exc}") from None
        references = sign_message(ctx.envelope, ctx.parts, keys.signing_key, keys.signing_cert, policy)
        ctx.signed_references = {uri: list(v) for uri, v in as4.nri_digests(references).items()}
        ctx.events.append(StepEvent("sign", "ok", f"{len(references)} references signed ({policy.name}) with "
                                    f"{keys.signing_cert.subject.rfc4514_string()}"))


class Encrypt:
    def __call__(self, ctx: OutboundContext) -> None:
        pmode, partner = ctx.pmode, ctx.partner
        if pmode.security.encrypt:
            ctx.parts = encrypt_parts(ctx.envelope, ctx.parts, partner.encryption_cert, suite(pmode.security.suite))
            ctx.events.append(StepEvent("encrypt", "ok", f"{len(ctx.parts)} attachment(s) for "
                                        f"{partner.encryption_cert.subject.rfc4514_string()}"))
        else:
            ctx.events.append(StepEvent("encrypt", "skipped", f"PMode {pmode.id}: signed only, payload protected "
                                        "by TLS (encrypt = false)"))


class Serialize:
    """The SOAP-with-attachments MIME message: exactly the bytes every attempt sends."""

    def __call__(self, ctx: OutboundContext) -> None:
        soap = etree.tostring(ctx.envelope, xml_declaration=True, encoding="UTF-8")
        ctx.content_type, ctx.body = as4.encode_multipart(
            soap, [as4.MimePart(content_id=p.content_id, content_type=p.mime_type, data=p.data) for p in ctx.parts])
