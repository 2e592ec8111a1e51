"""Inbound pipeline: AS4 POST body -> parsed, matched to a PMode, decrypted, verified,
de-duplicated, stored as evidence, delivered to the NSW, answered with a signed receipt.

Blocking work; the HTTP resource runs it off the reactor thread. Every failure becomes a
signed ebMS error signal with the code the partner's software understands (ebMS 3.0 Core
sec 6.7, AS4 sec 5) and a description the partner's operator can act on. A rejected
message leaves nothing behind: no database row, no blob, no NSW inbox file.

Order of checks, cheapest and most explanatory first: size, MIME, XML, ebMS header,
partner and PMode, payload references, decryption, signature, then only values read from
the *signed* header (``VerifyResult.signed_messaging``) are acted upon.
"""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
from dataclasses import dataclass, replace
from typing import Callable

from lxml import etree
from twisted.logger import Logger

from crypto import (AlgorithmNotAllowed, IncompleteSignature, MissingSignature, Part, SecurityError,
                    SecurityPolicy, VerifyResult, decrypt_parts, sign_message, suite, verify_message)
from gateway import as4
from gateway.as4.namespaces import DEFAULT_MPC, DEFAULT_SERVICE, TEST_ACTION, eb
from gateway.as4.payloads import ResolvedPayload, check_attachment_refs, resolve_payloads
from gateway.as4.xmlparse import DEFAULT_MAX_DEPTH
from gateway.connectors.folder import FolderConnector
from gateway.identity import LocalIdentity
from gateway.store.store import DELIVERED, DuplicateMessage, MessageStore, PayloadData, StepEvent
from partners.pmode import PMode, SecurityConfig
from partners.registry import Partner, PartnerRegistry

SOAP_CONTENT_TYPE = "application/soap+xml; charset=UTF-8"
MiB = 1024 * 1024
log = Logger()


@dataclass(frozen=True)
class InboundLimits:
    """Bounds on what one inbound message may cost us; all refusals happen before the
    expensive step they protect (the HTTP layer enforces ``max_message_bytes`` while the
    body is still arriving)."""

    max_message_bytes: int = 100 * MiB
    max_parts: int = 100
    max_decompressed_bytes: int = 100 * MiB
    max_xml_depth: int = DEFAULT_MAX_DEPTH


@dataclass(frozen=True)
class Response:
    code: int
    content_type: str
    body: bytes


def _fail(code: str, description: str, ref: str | None = None) -> as4.EbmsException:
    # Every rejection here ends processing, so even codes that default to "warning"
    # (EBMS:0002) go out as failures: the partner must not assume delivery.
    return as4.EbmsException(as4.make_error(code, description, ref, severity="failure"))


def is_test_message(um: as4.UserMessage) -> bool:
    """ebMS 3.0 Core 5.2.2.9: the test service/action, answered but never delivered."""
    return um.service == DEFAULT_SERVICE and um.action == TEST_ACTION


def _party_label(party: as4.Party) -> str:
    return ", ".join(f"{p.value!r} (type {p.type or 'none'})" for p in party.party_ids)


def match_pmode(partner: Partner, um: as4.UserMessage) -> PMode:
    """The partner's PMode for this message: agreement, service (and type), action, roles.

    Raises EBMS:0010 ProcessingModeMismatch naming the closest PMode and what differs, so
    the partner's operator can align their configuration with ours.
    """
    mid = um.message_id
    same_action = [p for p in partner.pmodes if p.service == um.service and p.action == um.action]
    if not same_action:
        offered = "; ".join(f"{p.service} / {p.action}" for p in partner.pmodes)
        raise _fail("EBMS:0010", f"no PMode for service {um.service!r}, action {um.action!r} with partner "
                    f"{partner.id}; agreed service/action pairs are: {offered}", mid)
    pmode = next((p for p in same_action if p.agreement == um.agreement_ref), None)
    if pmode is None:
        agreed = ", ".join(repr(p.agreement) for p in same_action)
        raise _fail("EBMS:0010", f"AgreementRef {um.agreement_ref!r} does not match the agreement of the PMode "
                    f"for service {um.service!r}, action {um.action!r} (expected {agreed})", mid)
    if pmode.service_type is not None and (um.service_type or None) != pmode.service_type:
        raise _fail("EBMS:0010", f"Service type {um.service_type!r} does not match PMode {pmode.id} "
                    f"(expected {pmode.service_type!r})", mid)
    if um.from_party.role != pmode.initiator_role:
        raise _fail("EBMS:0010", f"From/Role {um.from_party.role!r} is not the initiator role of PMode "
                    f"{pmode.id} ({pmode.initiator_role!r})", mid)
    if um.to_party.role != pmode.responder_role:
        raise _fail("EBMS:0010", f"To/Role {um.to_party.role!r} is not the responder role of PMode "
                    f"{pmode.id} ({pmode.responder_role!r})", mid)
    return pmode


def _check_service_value(um: as4.UserMessage) -> None:
    # ebMS Core 5.2.2.8: an untyped Service must be a URI.
    if um.service_type is None and ":" not in um.service:
        raise _fail("EBMS:0003", f"Service {um.service!r} has no type attribute, so it must be a URI "
                    "(ebMS 3.0 Core 5.2.2.8); add type=\"...\" or use a URI", um.message_id)


def _policy(security: SecurityConfig) -> SecurityPolicy:
    """The algorithm suite the PMode agreed: nothing weaker (or merely different) is accepted."""
    return suite(security.suite)


def _check_validity_period(verified: VerifyResult, mid: str) -> None:
    """Belt and braces next to crypto's trust validation: a signature by a certificate
    outside its validity period proves nothing, whatever the configured trust says."""
    now = dt.datetime.now(dt.timezone.utc)
    cert = verified.signer
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise _fail("EBMS:0101", f"the signing certificate {cert.subject.rfc4514_string()} is only valid "
                    f"from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} to {cert.not_valid_after_utc:%Y-%m-%d %H:%M} "
                    "UTC; sign with a current certificate", mid)


class InboundPipeline:
    def __init__(self, identity: LocalIdentity, registry: Callable[[], PartnerRegistry],
                 store: MessageStore, connector: FolderConnector, limits: InboundLimits | None = None):
        self.identity = identity
        self.registry = registry
        self.store = store
        self.connector = connector
        self.limits = limits or InboundLimits()

    # -- answers -----------------------------------------------------------------
    def _new_id(self) -> str:
        return as4.new_message_id(self.identity.party_id.lower() + ".swgw")

    def _signed(self, envelope: etree._Element) -> bytes:
        sign_message(envelope, [], self.identity.signing_key, self.identity.signing_cert)
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")

    def _error_response(self, error: as4.EbmsError) -> Response:
        signal = as4.ErrorSignal(message_id=self._new_id(), timestamp=dt.datetime.now(dt.timezone.utc),
                                 ref_to_message_id=error.ref_to_message_id, errors=(error,))
        return Response(200, SOAP_CONTENT_TYPE, self._signed(as4.build_error(signal)))

    def _receipt(self, mid: str, verified: VerifyResult | None,
                 messaging: etree._Element) -> tuple[as4.Receipt, bytes]:
        """Signed receipt: NRI of the verified references, or (unsigned message accepted by
        PMode) a copy of the eb:UserMessage as AS4 5.1.8 asks."""
        receipt = as4.Receipt(message_id=self._new_id(), timestamp=dt.datetime.now(dt.timezone.utc),
                              ref_to_message_id=mid)
        if verified is not None:
            envelope = as4.build_receipt(receipt, verified.references)
        else:
            envelope = as4.build_receipt(receipt, [], user_message=copy.deepcopy(messaging.find(eb("UserMessage"))))
        return receipt, self._signed(envelope)

    # -- pipeline ----------------------------------------------------------------
    def process(self, content_type: str, body: bytes) -> Response:
        """Handle one POSTed AS4 message; never raises for bad input, answers an ebMS error."""
        if len(body) > self.limits.max_message_bytes:
            return Response(413, "text/plain; charset=utf-8",
                            f"message of {len(body)} bytes exceeds this gateway's limit of "
                            f"{self.limits.max_message_bytes} bytes\n".encode())
        try:
            return self._process(content_type, body)
        except as4.EbmsException as exc:
            log.warn("inbound message rejected: {code} {detail}", code=exc.error.error_code,
                     detail=exc.error.description, message_id=exc.error.ref_to_message_id)
            return self._error_response(exc.error)

    def _parse(self, content_type: str, body: bytes) -> tuple[etree._Element, as4.ParsedEnvelope, list[as4.MimePart]]:
        soap, mime_parts = as4.decode_message(content_type, body, max_parts=self.limits.max_parts)
        try:
            envelope = as4.parse_xml(soap, max_depth=self.limits.max_xml_depth)
        except as4.XmlRejected as exc:
            raise _fail("EBMS:0009", f"the SOAP envelope was refused: {exc}. Send a SOAP 1.2 envelope "
                        "without DOCTYPE or entity declarations") from None
        parsed = as4.parse_envelope(envelope)
        if parsed.user_message is None:
            raise _fail("EBMS:0002", "this gateway returns receipts synchronously and does not accept pushed "
                        "signal messages; send only UserMessages to this endpoint",
                        (parsed.receipt or parsed.error_signal).message_id)
        return envelope, parsed, mime_parts

    def _sender(self, um: as4.UserMessage) -> Partner:
        registry = self.registry()
        mid = um.message_id
        partners = {p.id: p for pid in um.from_party.party_ids if (p := registry.by_party_id(pid.value, pid.type))}
        if not partners:
            raise _fail("EBMS:0010", f"sender party {_party_label(um.from_party)} is not a partner of "
                        f"{self.identity.party_id}; ask its operator to onboard you", mid)
        if len(partners) > 1:
            raise _fail("EBMS:0003", f"the From PartyIds name several partners ({', '.join(sorted(partners))}); "
                        "identify the sender by one party", mid)
        me = (self.identity.party_id, self.identity.party_id_type or None)
        if not any((p.value, p.type or None) == me for p in um.to_party.party_ids):
            raise _fail("EBMS:0010", f"message is addressed to {_party_label(um.to_party)}, but this gateway is "
                        f"{self.identity.party_id!r} (type {self.identity.party_id_type})", mid)
        if um.mpc is not None and um.mpc != DEFAULT_MPC:
            raise _fail("EBMS:0010", f"MPC {um.mpc!r} is not agreed; this gateway only uses the default MPC", mid)
        return next(iter(partners.values()))

    def _decrypt(self, envelope: etree._Element, parts: list[Part], security: SecurityConfig,
                 mid: str) -> list[Part]:
        try:
            plain = decrypt_parts(envelope, parts, self.identity.encryption_key, _policy(security))
        except AlgorithmNotAllowed as exc:
            raise _fail("EBMS:0103", f"encryption algorithm refused: {exc}", mid) from None
        except SecurityError as exc:
            raise _fail("EBMS:0102", f"attachments could not be decrypted ({exc}); check that you encrypt "
                        "for our current encryption certificate and that the message is not altered "
                        "in transit", mid) from None
        return plain

    @staticmethod
    def _require_encryption(security: SecurityConfig, parts: list[Part], plain: list[Part], mid: str) -> None:
        """Checked after the signature, so an unsigned or tampered message gets that (more
        fundamental) answer first."""
        clear = [p.content_id for p, q in zip(parts, plain) if p is q]
        if security.encrypt and clear:
            raise _fail("EBMS:0103", f"the PMode requires encrypted payloads, but attachment(s) "
                        f"{', '.join('cid:' + c for c in clear)} are not encrypted", mid)

    def _verify(self, envelope: etree._Element, parts: list[Part], partner: Partner,
                security: SecurityConfig, mid: str) -> VerifyResult | None:
        """Verify the signature; None only for an unsigned message the PMode explicitly allows."""
        try:
            verified = verify_message(envelope, parts, partner.signing_certs, _policy(security))
        except MissingSignature as exc:
            if security.allow_unsigned:
                return None
            raise _fail("EBMS:0103", f"the message is not signed ({exc}); the agreement with "
                        f"{self.identity.party_id} requires a WS-Security signature over eb:Messaging, "
                        "the SOAP Body and every attachment", mid) from None
        except (AlgorithmNotAllowed, IncompleteSignature) as exc:
            raise _fail("EBMS:0103", f"signature does not meet the security policy: {exc}", mid) from None
        except SecurityError as exc:
            raise _fail("EBMS:0101", f"signature check failed: {exc}", mid) from None
        _check_validity_period(verified, mid)
        return verified

    def _signed_view(self, verified: VerifyResult | None, parsed: as4.ParsedEnvelope,
                     um: as4.UserMessage) -> tuple[as4.UserMessage, etree._Element, etree._Element]:
        """The header and body to act on: exactly the elements the signature covered."""
        if verified is None:
            return um, parsed.messaging, parsed.body
        if verified.signed_messaging is not parsed.messaging or verified.signed_body is not parsed.body:
            raise _fail("EBMS:0103", "the signed eb:Messaging or SOAP Body is not the one the message is "
                        "processed from (possible signature wrapping)", um.message_id)
        signed_um = as4.parse_user_message(verified.signed_messaging)
        if signed_um != um:
            raise _fail("EBMS:0101", "the signed eb:UserMessage differs from the one read before verification",
                        um.message_id)
        return signed_um, verified.signed_messaging, verified.signed_body

    def _previous_answer(self, partner_id: str, mid: str, payloads: list[ResolvedPayload]) -> Response | None:
        """Duplicate elimination: the stored receipt for an identical resend; an error for a
        different message reusing a MessageId (a replay must never earn a receipt)."""
        previous = next((m for m in self.store.find(message_id=mid)
                         if m.direction == "in" and m.partner_id == partner_id), None)
        if previous is None:
            return None
        # Content, not packaging: a partner that re-signs and re-packs a resend (new
        # Content-IDs, new signature) is still resending the same message.
        old = [p.digest for p in previous.payloads]
        new = [hashlib.sha256(p.data).hexdigest() for p in payloads]
        if old != new:
            raise _fail("EBMS:0003", f"MessageId {mid} was already received with different payloads; a new "
                        "message needs a new MessageId (resends must carry the same content)", mid)
        stored = self.store.find_inbound(partner_id, mid)
        if stored is None or stored.receipt is None:
            return None
        self.store.add_event(stored.id, "duplicate", "answered",
                             "same MessageId received again; previous receipt re-sent, not delivered again")
        return Response(200, stored.receipt.content_type, self.store.blob(stored.receipt.digest))

    def _process(self, content_type: str, body: bytes) -> Response:
        received_at = dt.datetime.now(dt.timezone.utc)
        envelope, parsed, mime_parts = self._parse(content_type, body)
        um = parsed.user_message
        assert um is not None
        mid = um.message_id
        partner = self._sender(um)
        test = is_test_message(um)
        if test:
            pmode = None
            # No business PMode: the partner's own suite, signature as strict as its most
            # lenient PMode, and no encryption required (a test message carries no payload).
            security = replace(partner.pmodes[0].security if partner.pmodes else SecurityConfig(),
                               encrypt=False, allow_unsigned=any(p.security.allow_unsigned for p in partner.pmodes))
        else:
            _check_service_value(um)
            pmode = match_pmode(partner, um)
            security = pmode.security
        check_attachment_refs(um, {p.content_id for p in mime_parts})
        events = [StepEvent("receive", "ok", f"{len(body)} bytes from {partner.id}, {len(mime_parts)} attachment(s)"),
                  StepEvent("pmode", "ok", f"matched PMode {pmode.id}" if pmode else "ebMS test service")]

        wire_parts = [Part(content_id=p.content_id, mime_type=p.content_type, data=p.data) for p in mime_parts]
        parts = self._decrypt(envelope, wire_parts, security, mid)
        events.append(StepEvent("decrypt", "ok", f"{len(parts)} attachment(s)"))
        verified = self._verify(envelope, parts, partner, security, mid)
        self._require_encryption(security, wire_parts, parts, mid)
        if verified is None:
            events.append(StepEvent("verify", "unsigned", "accepted unsigned: PMode allows it"))
            log.warn("accepted an UNSIGNED message {message_id} from {partner} (PMode allow_unsigned)",
                     message_id=mid, partner=partner.id)
        else:
            events.append(StepEvent("verify", "ok", f"signed by {verified.signer.subject.rfc4514_string()}, "
                                    f"{len(verified.references)} references"))
        um, messaging, signed_body = self._signed_view(verified, parsed, um)

        payloads = resolve_payloads(um, {p.content_id: (p.mime_type, p.data) for p in parts}, signed_body,
                                    max_decompressed=self.limits.max_decompressed_bytes)
        if test:
            receipt, receipt_bytes = self._receipt(mid, verified, messaging)
            log.info("answered ebMS test message {message_id} from {partner} (not delivered)",
                     message_id=mid, partner=partner.id)
            return Response(200, SOAP_CONTENT_TYPE, receipt_bytes)
        assert pmode is not None
        # Duplicate check only after verification: a tampered copy of a delivered message must
        # get an error, not the original's receipt.
        previous = self._previous_answer(partner.id, mid, payloads)
        if previous is not None:
            return previous
        if payloads:
            events.append(StepEvent("decompress", "ok", ", ".join(f"{p.content_id}: {len(p.data)} bytes"
                                                                  for p in payloads)))
        receipt, receipt_bytes = self._receipt(mid, verified, messaging)
        props = {p.name: p.value for p in um.message_properties}
        reference = props.get("nswReference")
        sender = um.from_party.party_ids[0]
        for index, payload in enumerate(payloads):
            path = self.connector.deliver(
                partner_id=partner.id, sender_party=sender.value,
                message_id=mid if index == 0 else f"{mid}#{index}", reference=reference,
                document_type=pmode.document_type, received_at=as4.format_timestamp(received_at),
                document=payload.data, mime_type=payload.mime_type, conversation_id=um.conversation_id,
                ref_to_message_id=um.ref_to_message_id)
            events.append(StepEvent("deliver", "ok", f"NSW inbox {path.name}"))
        nri = len(verified.references) if verified else 0
        events.append(StepEvent("receipt", "sent", f"signed receipt {receipt.message_id} with {nri} NRI references"))
        try:
            self.store.record_inbound(
                message_id=mid, partner_id=partner.id, document_type=pmode.document_type, pmode_id=pmode.id,
                nsw_reference=reference, conversation_id=um.conversation_id,
                ref_to_message_id=um.ref_to_message_id, status=DELIVERED, content_type=content_type,
                raw=body, receipt=receipt_bytes, receipt_content_type=SOAP_CONTENT_TYPE, error=None,
                receipt_message_id=receipt.message_id,
                payloads=[PayloadData(p.content_id, p.mime_type, p.data) for p in payloads], events=events)
        except DuplicateMessage:
            # A concurrent copy won the race; the inbox file is the same one (named by MessageId).
            return self._previous_answer(partner.id, mid, payloads) or Response(200, SOAP_CONTENT_TYPE, receipt_bytes)
        log.info("received {message_id} from {partner}", message_id=mid, partner=partner.id)
        return Response(200, SOAP_CONTENT_TYPE, receipt_bytes)
