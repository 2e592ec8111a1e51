"""The inbound handler chain, one small object per step (the shape of Holodeck B2B's handlers).

Order, cheapest and most explanatory first: MIME and XML, ebMS header, partner, TLS client,
PMode, payload references, decryption, signature; from then on only what the signature
covered (``SignedView``) is acted upon. The duplicate check comes after verification (a
tampered copy of a delivered message must get an error, not the original's receipt). The
message, its receipt, events, evidence entry and AEO changes commit as one unit of work
(``Commit``); only then is the document handed to the NSW (``DeliverToNsw``), and only a
committed message is answered with a receipt.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from twisted.logger import Logger

from crypto import content
from crypto import (AlgorithmNotAllowed, IncompleteSignature, MissingSignature, Part, SecurityError,
                    SignerCertificateRejected, UntrustedCertificate, UntrustedSigner, decrypt_parts, verify_message)
from gateway import as4
from gateway.aeo.model import parse_list
from gateway.aeo.registry import AeoListRejected, AeoRegistry
from gateway.as4.namespaces import DEFAULT_MPC
from gateway.as4.payloads import check_attachment_refs, resolve_payloads
from gateway.connectors.nsw import NswConnector
from gateway.documents import InvalidDocument, MappingFailed, accept_inbound
from gateway.inbound.answers import Answerer
from gateway.inbound.checks import (check_aeo_issuer, check_service_value, check_tls_binding,
                                    check_validity_period, is_test_message, match_pmode, party_label, policy_of,
                                    rejection_text, require_tls_for_unsigned)
from gateway.inbound.context import SOAP_CONTENT_TYPE, InboundContext, InboundLimits, Response, fail
from gateway.identity import LocalIdentity
from gateway.store.store import (DELIVERED, RECEIVED, REJECTED, DuplicateMessage, MessageStore, NswDelivery,
                                 PayloadData, StepEvent)
from partners.documents import is_known
from partners.pmode import SecurityConfig

log = Logger()


class Step(Protocol):
    def __call__(self, ctx: InboundContext) -> None: ...


# -- checking the message (pure: nothing is stored) -------------------------------------------
class Parse:
    def __init__(self, limits: InboundLimits):
        self.limits = limits

    def __call__(self, ctx: InboundContext) -> None:
        soap, ctx.mime_parts = as4.decode_message(ctx.content_type, ctx.body, max_parts=self.limits.max_parts)
        try:
            ctx.envelope = as4.parse_xml(soap, max_depth=self.limits.max_xml_depth)
        except as4.XmlRejected as exc:
            raise fail("EBMS:0009", f"the SOAP envelope was refused: {exc}. Send a SOAP 1.2 envelope "
                       "without DOCTYPE or entity declarations") from None
        ctx.parsed = parsed = as4.parse_envelope(ctx.envelope)
        if parsed.user_message is None:
            raise fail("EBMS:0002", "this gateway returns receipts synchronously and does not accept pushed "
                       "signal messages; send only UserMessages to this endpoint",
                       (parsed.receipt or parsed.error_signal).message_id)
        ctx.user_message = parsed.user_message


class IdentifySender:
    """The partner named by From, this gateway named by To, the default MPC."""

    def __init__(self, identity: LocalIdentity):
        self.identity = identity

    def __call__(self, ctx: InboundContext) -> None:
        um, mid = ctx.user_message, ctx.message_id
        partners = {p.id: p for pid in um.from_party.party_ids
                    if (p := ctx.registry.by_party_id(pid.value, pid.type))}
        if not partners:
            raise fail("EBMS:0010", f"sender party {party_label(um.from_party)} is not a partner of "
                       f"{self.identity.party_id}; ask its operator to onboard you", mid)
        if len(partners) > 1:
            raise fail("EBMS:0003", f"the From PartyIds name several partners ({', '.join(sorted(partners))}); "
                       "identify the sender by one party", mid)
        me = (self.identity.party_id, self.identity.party_id_type or None)
        if not any((p.value, p.type or None) == me for p in um.to_party.party_ids):
            raise fail("EBMS:0010", f"message is addressed to {party_label(um.to_party)}, but this gateway is "
                       f"{self.identity.party_id!r} (type {self.identity.party_id_type})", mid)
        if um.mpc is not None and um.mpc != DEFAULT_MPC:
            raise fail("EBMS:0010", f"MPC {um.mpc!r} is not agreed; this gateway only uses the default MPC", mid)
        ctx.partner = partner = next(iter(partners.values()))
        if partner.pmodes:
            ctx.answer_suite = partner.pmodes[0].security.suite


class CheckTlsClient:
    """The TLS client certificate, already chained to our client_ca by the handshake, checked
    like a signer once the sender is known: that it is one of the partner's
    ``tls_client_certs`` (when configured: any certificate under the shared client_ca would
    otherwise do), validity, key usage for TLS client authentication, and revocation per the
    partner's CRLs."""

    def __call__(self, ctx: InboundContext) -> None:
        partner, chain, mid = ctx.partner, ctx.tls_chain, ctx.message_id
        if chain and partner.tls_client_certs:
            check_tls_binding(partner, chain[0], mid)
        if not chain or partner.pki is None:
            return
        leaf, anchor = chain[0], chain[-1]
        trust = partner.pki.tls_client_trust((anchor,))
        try:
            trust.validate(leaf, purpose="tls-client", extra_intermediates=chain[1:-1])
        except UntrustedCertificate as exc:
            raise fail("EBMS:0101", f"the TLS client certificate is not accepted for {partner.id}: {exc}"
                       f"{partner.pki.explain()}. Connect with a current, unrevoked TLS client "
                       "certificate", mid) from None


class MatchPMode:
    """The agreement the message runs under; the ebMS test service runs under none."""

    def __call__(self, ctx: InboundContext) -> None:
        um, partner = ctx.user_message, ctx.partner
        ctx.test = is_test_message(um)
        if ctx.test:
            # No business PMode: the partner's own suite, signature as strict as its most
            # lenient PMode, and no encryption required (a test message carries no payload).
            ctx.security = replace(partner.pmodes[0].security if partner.pmodes else SecurityConfig(),
                                   encrypt=False, allow_unsigned=any(p.security.allow_unsigned for p in partner.pmodes))
        else:
            check_service_value(um)
            ctx.pmode = match_pmode(partner, um)
            ctx.security = ctx.pmode.security
        ctx.answer_suite = ctx.security.suite
        check_attachment_refs(um, {p.content_id for p in ctx.mime_parts})
        ctx.events += [StepEvent("receive", "ok", f"{len(ctx.body)} bytes from {partner.id}, "
                                 f"{len(ctx.mime_parts)} attachment(s)"),
                       StepEvent("pmode", "ok", f"matched PMode {ctx.pmode.id}" if ctx.pmode else "ebMS test service")]


class Decrypt:
    def __init__(self, answers: Answerer):
        self.answers = answers

    def __call__(self, ctx: InboundContext) -> None:
        mid, security = ctx.message_id, ctx.security
        ctx.wire_parts = [Part(content_id=p.content_id, mime_type=p.content_type, data=p.data) for p in ctx.mime_parts]
        try:
            # Our decryption key of the PMode's suite (RSA for 1.15, X25519 or EC P-256 for 2.0).
            key = self.answers.keys(security.suite).encryption_key
            ctx.parts = decrypt_parts(ctx.envelope, ctx.wire_parts, key, policy_of(security))
        except AlgorithmNotAllowed as exc:
            raise fail("EBMS:0103", f"encryption algorithm refused: {exc}", mid) from None
        except SecurityError as exc:
            raise fail("EBMS:0102", f"attachments could not be decrypted ({exc}); check that you encrypt "
                       "for our current encryption certificate and that the message is not altered "
                       "in transit", mid) from None
        ctx.events.append(StepEvent("decrypt", "ok", f"{len(ctx.parts)} attachment(s)"))


class Verify:
    """The signature (None only for an unsigned message the PMode explicitly allows), then
    encryption as the PMode requires it: checked after the signature, so an unsigned or
    tampered message gets that (more fundamental) answer first."""

    def __init__(self, identity: LocalIdentity):
        self.identity = identity

    def __call__(self, ctx: InboundContext) -> None:
        ctx.verified = verified = self._verify(ctx)
        self._require_encryption(ctx)
        if verified is None:
            require_tls_for_unsigned(ctx.partner, ctx.tls_chain, ctx.message_id)
            ctx.events.append(StepEvent("verify", "unsigned", "accepted unsigned: PMode allows it"))
            log.warn("accepted an UNSIGNED message {message_id} from {partner} (PMode allow_unsigned)",
                     message_id=ctx.message_id, partner=ctx.partner.id)
        else:
            ctx.events.append(StepEvent("verify", "ok", f"signed by {verified.signer.subject.rfc4514_string()}, "
                                        f"{len(verified.references)} references"))

    def _verify(self, ctx: InboundContext):
        partner, security, mid = ctx.partner, ctx.security, ctx.message_id
        me = self.identity.party_id
        try:
            verified = verify_message(ctx.envelope, ctx.parts, partner.signing_certs, policy_of(security),
                                      trust=partner.signing_trust())
        except MissingSignature as exc:
            if security.allow_unsigned:
                return None
            raise fail("EBMS:0103", f"the message is not signed ({exc}); the agreement with {me} requires a "
                       "WS-Security signature over eb:Messaging, the SOAP Body and every attachment", mid) from None
        except (AlgorithmNotAllowed, IncompleteSignature) as exc:
            raise fail("EBMS:0103", f"signature does not meet the security policy: {exc}", mid) from None
        except SignerCertificateRejected as exc:
            extra = partner.pki.explain() if partner.pki else ""
            raise fail("EBMS:0101", f"{exc}{extra}. Sign with a current, unrevoked certificate issued "
                       f"under the trust anchors agreed with {me}", mid) from None
        except UntrustedSigner as exc:
            raise fail("EBMS:0101", f"{exc}. {me} accepts signatures of {partner.id} only by its "
                       f"{len(partner.signing_certs)} configured signing certificate(s); sign with one of them, "
                       "or send the new certificate to our operator first (both are accepted during a "
                       "rollover)", mid) from None
        except SecurityError as exc:
            raise fail("EBMS:0101", f"signature check failed: {exc}", mid) from None
        check_validity_period(verified, mid)
        return verified

    @staticmethod
    def _require_encryption(ctx: InboundContext) -> None:
        clear = [p.content_id for p, q in zip(ctx.wire_parts, ctx.parts) if p is q]
        if ctx.security.encrypt and clear:
            raise fail("EBMS:0103", f"the PMode requires encrypted payloads, but attachment(s) "
                       f"{', '.join('cid:' + c for c in clear)} are not encrypted", ctx.message_id)


class SignedView:
    """The header and body to act on from here: exactly the elements the signature covered."""

    def __call__(self, ctx: InboundContext) -> None:
        verified, parsed, um = ctx.verified, ctx.parsed, ctx.user_message
        if verified is None:
            ctx.messaging, ctx.signed_body = parsed.messaging, parsed.body
            return
        if verified.signed_messaging is not parsed.messaging or verified.signed_body is not parsed.body:
            raise fail("EBMS:0103", "the signed eb:Messaging or SOAP Body is not the one the message is "
                       "processed from (possible signature wrapping)", um.message_id)
        signed_um = as4.parse_user_message(verified.signed_messaging)
        if signed_um != um:
            raise fail("EBMS:0101", "the signed eb:UserMessage differs from the one read before verification",
                       um.message_id)
        ctx.user_message, ctx.messaging, ctx.signed_body = signed_um, verified.signed_messaging, verified.signed_body


class ResolvePayloads:
    def __init__(self, limits: InboundLimits):
        self.limits = limits

    def __call__(self, ctx: InboundContext) -> None:
        ctx.payloads = resolve_payloads(ctx.user_message, {p.content_id: (p.mime_type, p.data) for p in ctx.parts},
                                        ctx.signed_body, max_decompressed=self.limits.max_decompressed_bytes)


class AnswerTestMessage:
    """ebMS 3.0 Core 5.2.2.9: a test message gets a receipt and goes no further."""

    def __init__(self, answers: Answerer):
        self.answers = answers

    def __call__(self, ctx: InboundContext) -> None:
        if not ctx.test:
            return
        _, receipt_bytes = self.answers.receipt(ctx.message_id, ctx.verified, ctx.messaging, ctx.security.suite)
        log.info("answered ebMS test message {message_id} from {partner} (not delivered)",
                 message_id=ctx.message_id, partner=ctx.partner.id)
        ctx.response = Response(200, SOAP_CONTENT_TYPE, receipt_bytes)


# -- from here on the store is involved -------------------------------------------------------
class Dedupe:
    """Duplicate elimination: the stored receipt for an identical resend; an error for a
    different message reusing a MessageId (a replay must never earn a receipt)."""

    def __init__(self, store: MessageStore, connector: NswConnector):
        self.store = store
        self.connector = connector

    def __call__(self, ctx: InboundContext) -> None:
        ctx.reached_store = True
        ctx.response = self.previous_answer(ctx)

    def previous_answer(self, ctx: InboundContext) -> Response | None:
        mid = ctx.message_id
        # By the unique (direction, partner, MessageId) key: an index lookup of a few columns.
        previous = self.store.inbound_verdict(ctx.partner.id, mid)
        if previous is None:
            return None
        # Content, not packaging: a partner that re-signs and re-packs a resend (new
        # Content-IDs, new signature) is still resending the same message.
        if list(previous.payload_digests) != [content.hexdigest(p.data) for p in ctx.payloads]:
            raise fail("EBMS:0003", f"MessageId {mid} was already received with different payloads; a new "
                       "message needs a new MessageId (resends must carry the same content)", mid)
        if previous.status == REJECTED:
            # A repeat of a rejected message gets the same error again, never a receipt (and is
            # never delivered): the verdict on a MessageId does not change with a resend.
            self.store.add_event(previous.pk, "duplicate", "rejected",
                                 "same MessageId received again; EBMS:0004 sent again, not delivered")
            raise fail("EBMS:0004", rejection_text(previous.document_type, previous.last_error), mid)
        if previous.receipt_digest is None:
            return None
        if previous.status == RECEIVED:
            # Committed and answered, but the hand-off to the NSW failed (a full disk, say) and
            # the partner resends: the resend is what carries the hand-off through.
            for owed in self.store.owed_to_nsw(previous.pk):
                DeliverToNsw(self.store, self.connector).hand_off(owed, self.store.blob_content)
        self.store.add_event(previous.pk, "duplicate", "answered",
                             "same MessageId received again; previous receipt re-sent, not delivered again")
        return Response(200, previous.receipt_content_type, self.store.blob(previous.receipt_digest))


class DocumentStage:
    """Map the business document (the first payload) to canonical, validate it, check its
    document-level signature; an AEO list is checked here and applied to the registry in the
    message's own transaction (``ctx.effects``). A document that fails is authentic evidence
    of what the partner sent: it is recorded ``rejected`` (never delivered) and answered
    with EBMS:0004."""

    def __init__(self, store: MessageStore):
        self.store = store

    def __call__(self, ctx: InboundContext) -> None:
        pmode, payloads, mid = ctx.pmode, ctx.payloads, ctx.message_id
        if payloads:
            ctx.events.append(StepEvent("decompress", "ok", ", ".join(f"{p.content_id}: {len(p.data)} bytes"
                                                                      for p in payloads)))
        if not payloads:
            return
        if len(payloads) > 1 and is_known(pmode.document_type):
            # Only one document would be checked, mapped and signature-verified; the others
            # would reach the NSW unchecked under a canonical type. One document per message.
            raise fail("EBMS:0003", f"a {pmode.document_type} message carries exactly one document, this one "
                       f"carries {len(payloads)} payloads: send each document as its own message", mid)
        try:
            doc = accept_inbound(ctx.partner, pmode, pmode.document_type, payloads[0].data)
            ctx.events.extend(doc.events)
            if doc.signature is not None:
                ctx.inbox_extra.update(signature=doc.signature.status, signature_signer=doc.signature.signer,
                                       signature_detail=doc.signature.summary())
            if pmode.document_type == "aeo":
                aeo_list = parse_list(doc.data)
                check_aeo_issuer(ctx.partner, aeo_list.issuing_country, aeo_list.list_id)
                ctx.effects = self._aeo_effect(ctx, aeo_list)
        except (InvalidDocument, MappingFailed, AeoListRejected) as exc:
            raise self.reject(ctx, exc) from None
        ctx.document = doc.data

    @staticmethod
    def _aeo_effect(ctx: InboundContext, aeo_list):
        def apply(session) -> list[StepEvent]:
            result = AeoRegistry.apply_in(session, aeo_list, message_id=ctx.message_id)
            ctx.inbox_extra["aeo"] = result.summary()
            return [StepEvent("aeo", "applied", result.summary())]
        return apply

    def reject(self, ctx: InboundContext, exc: Exception) -> as4.EbmsException:
        """Record the message ``rejected`` with the reason; the EBMS:0004 to raise."""
        pmode, mid, um = ctx.pmode, ctx.message_id, ctx.user_message
        step = "map" if isinstance(exc, MappingFailed) else "aeo" if isinstance(exc, AeoListRejected) else "validate"
        log.warn("inbound {message_id} from {partner}: document rejected: {error}", message_id=mid,
                 partner=ctx.partner.id, error=str(exc))
        try:
            self.store.record_inbound(
                message_id=mid, partner_id=ctx.partner.id, document_type=pmode.document_type, pmode_id=pmode.id,
                nsw_reference=ctx.reference, conversation_id=um.conversation_id,
                ref_to_message_id=um.ref_to_message_id, status=REJECTED, content_type=ctx.content_type,
                raw=ctx.body, receipt=None, receipt_content_type=None, error=str(exc),
                payloads=[PayloadData(p.content_id, p.mime_type, p.data) for p in ctx.payloads],
                events=[*ctx.events, StepEvent(step, "rejected", str(exc)),
                        StepEvent("error", "sent", "EBMS:0004 to the partner; not delivered to the NSW")])
        except DuplicateMessage:
            pass    # the same rejected message again: already on record
        return fail("EBMS:0004", rejection_text(pmode.document_type, str(exc)), mid)


class LinkResponse:
    """A business response (RefToMessageId) is linked to the message of ours it answers."""

    def __init__(self, store: MessageStore):
        self.store = store

    def __call__(self, ctx: InboundContext) -> None:
        ref = ctx.user_message.ref_to_message_id
        if not ref:
            return
        original = next((m for m in self.store.find(message_id=ref)
                         if m.direction == "out" and m.partner_id == ctx.partner.id), None)
        if original is None:
            ctx.events.append(StepEvent("link", "unknown", f"RefToMessageId {ref} is not a message this gateway "
                                        f"sent to {ctx.partner.id}"))
            return
        ctx.events.append(StepEvent("link", "ok", f"answers our message {ref} ({original.document_type}, "
                                    f"reference {original.nsw_reference})"))
        ctx.inbox_extra["in_reply_to"] = {"message_id": original.message_id, "reference": original.nsw_reference,
                                          "document_type": original.document_type}
        ctx.linked_pk = original.id


class BuildReceipt:
    def __init__(self, answers: Answerer):
        self.answers = answers

    def __call__(self, ctx: InboundContext) -> None:
        ctx.receipt, ctx.receipt_bytes = self.answers.receipt(ctx.message_id, ctx.verified, ctx.messaging,
                                                              ctx.security.suite)
        nri = len(ctx.verified.references) if ctx.verified else 0
        ctx.events.append(StepEvent("receipt", "sent", f"signed receipt {ctx.receipt.message_id} with {nri} "
                                    "NRI references"))


def delivery_plan(ctx: InboundContext) -> tuple[dict, list[bytes]]:
    """What the NSW inbox is owed, stored with the message so a restart can finish the
    hand-off: each document by digest with its inbox metadata. Returns the plan and the
    documents that are not payloads already (a mapped canonical document)."""
    documents, extra_blobs = [], []
    mid = ctx.message_id
    for index, payload in enumerate(ctx.payloads):
        data = ctx.document if index == 0 and ctx.document is not None else payload.data
        digest = content.hexdigest(data)
        if data is not payload.data:
            extra_blobs.append(data)
        documents.append({"message_id": mid if index == 0 else f"{mid}#{index}", "digest": digest,
                          "mime_type": payload.mime_type, "extra": index == 0})
    plan = {"sender": ctx.user_message.from_party.party_ids[0].value,
            "received_at": as4.format_timestamp(ctx.received_at), "documents": documents, "extra": ctx.inbox_extra}
    return plan, extra_blobs


class Commit:
    """One unit of work: message, payloads, receipt, events, evidence entry and AEO changes.
    The caller returns (and the receipt leaves) only once it is durable."""

    def __init__(self, store: MessageStore, dedupe: Dedupe):
        self.store = store
        self.dedupe = dedupe

    def __call__(self, ctx: InboundContext) -> None:
        um, pmode = ctx.user_message, ctx.pmode
        plan, extra_blobs = delivery_plan(ctx)
        linked = {ctx.linked_pk: [StepEvent("response", "received", f"business response {ctx.message_id} "
                                            f"({pmode.document_type}) from {ctx.partner.id}")]} \
            if ctx.linked_pk is not None else {}
        try:
            ctx.stored_pk = self.store.record_inbound(
                message_id=ctx.message_id, partner_id=ctx.partner.id, document_type=pmode.document_type,
                pmode_id=pmode.id, nsw_reference=ctx.reference, conversation_id=um.conversation_id,
                ref_to_message_id=um.ref_to_message_id, status=RECEIVED if ctx.payloads else DELIVERED,
                content_type=ctx.content_type, raw=ctx.body, receipt=ctx.receipt_bytes,
                receipt_content_type=SOAP_CONTENT_TYPE, error=None, receipt_message_id=ctx.receipt.message_id,
                payloads=[PayloadData(p.content_id, p.mime_type, p.data) for p in ctx.payloads], events=ctx.events,
                nsw_delivery=plan, extra_blobs=extra_blobs, effects=ctx.effects, linked_events=linked)
        except DuplicateMessage:
            # A concurrent copy won the race: answer as for any resend (its receipt).
            ctx.response = self.dedupe.previous_answer(ctx) or Response(200, SOAP_CONTENT_TYPE,
                                                                               ctx.receipt_bytes)
        except AeoListRejected as exc:
            raise DocumentStage(self.store).reject(ctx, exc) from None


class DeliverToNsw:
    """After the commit: the documents into the NSW's hands, then the message ``delivered``.
    A crash in between leaves it ``received``, and ``redeliver_owed`` finishes it at the next
    start (the hand-off is idempotent: named by partner and MessageId)."""

    def __init__(self, store: MessageStore, connector: NswConnector):
        self.store = store
        self.connector = connector

    def __call__(self, ctx: InboundContext) -> None:
        if ctx.stored_pk is None or not ctx.payloads:
            return
        um = ctx.user_message
        plan, _ = delivery_plan(ctx)
        contents = {content.hexdigest(p.data): p.data for p in ctx.payloads}
        if ctx.document is not None:
            contents[content.hexdigest(ctx.document)] = ctx.document
        self.hand_off(NswDelivery(ctx.stored_pk, ctx.message_id, ctx.partner.id, ctx.reference,
                                  ctx.pmode.document_type, um.conversation_id, um.ref_to_message_id, plan),
                      contents.__getitem__)
        log.info("received {message_id} from {partner}", message_id=ctx.message_id, partner=ctx.partner.id)
        ctx.response = Response(200, SOAP_CONTENT_TYPE, ctx.receipt_bytes)

    def hand_off(self, owed: NswDelivery, content) -> None:
        plan = owed.plan
        events = []
        for doc in plan["documents"]:
            path = self.connector.deliver(
                partner_id=owed.partner_id, sender_party=plan["sender"], message_id=doc["message_id"],
                reference=owed.nsw_reference, document_type=owed.document_type, received_at=plan["received_at"],
                document=content(doc["digest"]), mime_type=doc["mime_type"], conversation_id=owed.conversation_id,
                ref_to_message_id=owed.ref_to_message_id, extra=plan.get("extra") if doc["extra"] else None)
            events.append(StepEvent("deliver", "ok", f"NSW inbox {getattr(path, 'name', path)}"))
        self.store.mark_nsw_delivered(owed.pk, events)

    def redeliver_owed(self) -> int:
        """Finish the hand-off of messages a crash left ``received`` (at start-up)."""
        owed = self.store.owed_to_nsw()
        for item in owed:
            self.hand_off(item, self.store.blob_content)
            log.info("delivered {message_id} from {partner} to the NSW after a restart",
                     message_id=item.message_id, partner=item.partner_id)
        return len(owed)


class Answer:
    """The committed message's receipt (when no earlier step answered)."""

    def __call__(self, ctx: InboundContext) -> None:
        if ctx.response is None:
            ctx.response = Response(200, SOAP_CONTENT_TYPE, ctx.receipt_bytes)
