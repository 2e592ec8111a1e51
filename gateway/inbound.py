"""Inbound pipeline: AS4 POST body -> parsed, matched to a PMode, decrypted, verified,
de-duplicated, stored as evidence, delivered to the NSW, answered with a signed receipt.

Blocking work; the HTTP resource runs it off the reactor thread. Every failure becomes a
signed ebMS error signal with the code the partner's software understands (ebMS 3.0 Core
sec 6.7, AS4 sec 5) and a description the partner's operator can act on. A rejected
message leaves nothing behind: no database row, no blob, no NSW inbox file. The one exception
is a verified message whose *document* fails (mapping to canonical, schema, AEO list): it is
authentic evidence of what the partner sent, so it is recorded ``rejected`` (never delivered)
and answered with EBMS:0004.

Order of checks, cheapest and most explanatory first: size, MIME, XML, ebMS header,
partner and PMode, payload references, decryption, signature, then only values read from
the *signed* header (``VerifyResult.signed_messaging``) are acted upon.
"""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, replace
from typing import Callable

from lxml import etree
from twisted.logger import Logger

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from crypto import (AlgorithmNotAllowed, IncompleteSignature, MissingSignature, Part, SecurityError,
                    SecurityPolicy, SignerCertificateRejected, UntrustedCertificate, UntrustedSigner,
                    VerifyResult, decrypt_parts, sign_message, suite, verify_message)
from crypto.wssec_keyinfo import describe_certificate
from gateway import as4
from gateway.as4.namespaces import DEFAULT_MPC, DEFAULT_SERVICE, TEST_ACTION, eb
from gateway.as4.payloads import ResolvedPayload, check_attachment_refs, resolve_payloads
from gateway.as4.xmlparse import DEFAULT_MAX_DEPTH
from gateway.connectors.folder import FolderConnector
from gateway.aeo.model import parse_list
from gateway.aeo.registry import AeoListRejected, AeoRegistry
from gateway.documents import InvalidDocument, MappingFailed, accept_inbound
from partners.documents import is_known
from gateway.config import BASE_SUITE
from gateway.identity import LocalIdentity, MissingSuiteKeys, SuiteIdentity
from gateway.store.store import DELIVERED, REJECTED, DuplicateMessage, MessageStore, PayloadData, StepEvent
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


@dataclass
class _Answering:
    """Per message: the suite our answer (receipt or error signal) is signed with. The
    partner's PMode suite once the sender is known (its software verifies our signals with
    it), our 1.15 keys before that."""
    suite: str = BASE_SUITE
    #: The MessageId once the header is parsed, for RefToMessageInError.
    message_id: str | None = None
    #: Set when processing reaches the store (duplicate check onwards). Before that every
    #: step only checks the message (pure code over the received bytes), so an unexpected
    #: failure is a bug that the same input hits on every resend; after it, a failure may be
    #: the database or the disk, which a resend later gets past.
    reached_store: bool = False


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


def _check_aeo_issuer(partner: Partner, issuing_country: str, list_id: str) -> None:
    """A partner speaks for its own customs administration only: a list issued by another
    country (or by us) would let it rewrite that country's operators in our registry."""
    if partner.country is None:
        raise AeoListRejected(f"AEO list {list_id} cannot be attributed: partner {partner.id} has no "
                              f"[partner] country in its partner.toml (the receiving side must set it, e.g. "
                              f"country = \"{issuing_country}\", before it accepts AEO lists from this partner)")
    if issuing_country != partner.country:
        raise AeoListRejected(f"AEO list {list_id} is issued by {issuing_country!r}, but {partner.id} speaks "
                              f"for {partner.country!r}: a partner may only send its own country's AEO list")


def _check_tls_binding(partner: Partner, leaf: x509.Certificate, mid: str) -> None:
    """The connection's TLS client certificate must be one the partner is configured with."""
    der = leaf.public_bytes(Encoding.DER)
    if any(c.public_bytes(Encoding.DER) == der for c in partner.tls_client_certs):
        return
    expected = "; ".join(describe_certificate(c) for c in partner.tls_client_certs)
    raise _fail("EBMS:0101", f"the TLS client certificate ({describe_certificate(leaf)}) is not one "
                f"{partner.id} is configured to connect with; expected: {expected}. Connect with one of "
                "these, or have our operator add the new certificate to [partner].tls_client_certs "
                "(list both during a rollover)", mid)


def _require_tls_for_unsigned(partner: Partner, chain: tuple[x509.Certificate, ...] | None, mid: str) -> None:
    """An unsigned message (PMode ``allow_unsigned``) is authenticated only by the TLS client
    certificate, checked against ``tls_client_certs`` in ``_check_tls_client``."""
    if not partner.tls_client_certs:
        raise _fail("EBMS:0103", f"the message is not signed, and unsigned messages from {partner.id} can only "
                    "be authenticated by a configured TLS client certificate ([partner].tls_client_certs), "
                    "which is not set; sign the message", mid)
    if not chain:
        raise _fail("EBMS:0103", "the message is not signed, and it arrived without a TLS client "
                    "certificate (plain-HTTP listener), so nothing authenticates the sender; sign the "
                    "message, or send it over mutual TLS to a listener with tls = true", mid)


def _rejection_text(document_type: str | None, problem: str | None) -> str:
    """The EBMS:0004 description for a document we would not accept (the same on every resend)."""
    return f"the {document_type} document was not accepted: {problem}"


class InboundPipeline:
    def __init__(self, identity: LocalIdentity, registry: Callable[[], PartnerRegistry],
                 store: MessageStore, connector: FolderConnector, limits: InboundLimits | None = None):
        self.identity = identity
        self.registry = registry
        self.store = store
        self.connector = connector
        self.limits = limits or InboundLimits()
        # AEO lists received from partners update the local registry (same database as the store).
        self.aeo = AeoRegistry(store.engine)

    # -- answers -----------------------------------------------------------------
    def _new_id(self) -> str:
        return as4.new_message_id(self.identity.party_id.lower() + ".swgw")

    def _keys(self, suite_name: str) -> SuiteIdentity:
        try:
            return self.identity.for_suite(suite_name)
        except MissingSuiteKeys as exc:
            # Start-up refuses partners whose suite we hold no keys for, so this is a
            # config changed under us; answering with the 1.15 keys beats not answering.
            log.error("{problem}; answering with the {base} keys", problem=str(exc), base=BASE_SUITE)
            return self.identity.for_suite(BASE_SUITE)

    def _signed(self, envelope: etree._Element, suite_name: str = BASE_SUITE) -> bytes:
        keys = self._keys(suite_name)
        sign_message(envelope, [], keys.signing_key, keys.signing_cert, suite(keys.suite))
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")

    def _error_response(self, error: as4.EbmsError, suite_name: str = BASE_SUITE) -> Response:
        signal = as4.ErrorSignal(message_id=self._new_id(), timestamp=dt.datetime.now(dt.timezone.utc),
                                 ref_to_message_id=error.ref_to_message_id, errors=(error,))
        return Response(200, SOAP_CONTENT_TYPE, self._signed(as4.build_error(signal), suite_name))

    def _receipt(self, mid: str, verified: VerifyResult | None,
                 messaging: etree._Element, suite_name: str = BASE_SUITE) -> tuple[as4.Receipt, bytes]:
        """Signed receipt: NRI of the verified references, or (unsigned message accepted by
        PMode) a copy of the eb:UserMessage as AS4 5.1.8 asks."""
        receipt = as4.Receipt(message_id=self._new_id(), timestamp=dt.datetime.now(dt.timezone.utc),
                              ref_to_message_id=mid)
        if verified is not None:
            envelope = as4.build_receipt(receipt, verified.references)
        else:
            envelope = as4.build_receipt(receipt, [], user_message=copy.deepcopy(messaging.find(eb("UserMessage"))))
        return receipt, self._signed(envelope, suite_name)

    # -- pipeline ----------------------------------------------------------------
    def process(self, content_type: str, body: bytes, *,
                tls_chain: tuple[x509.Certificate, ...] | None = None) -> Response:
        """Handle one POSTed AS4 message; never raises for bad input, answers an ebMS error.

        Raises only once processing has reached the store (an outage there is the listener's
        HTTP 500, which the partner retries); see :meth:`_internal_error` for a failure before.

        ``tls_chain`` is the TLS client certificate chain the listener verified at the
        handshake (leaf first); it is checked again against the sending partner's CRLs."""
        if len(body) > self.limits.max_message_bytes:
            return Response(413, "text/plain; charset=utf-8",
                            f"message of {len(body)} bytes exceeds this gateway's limit of "
                            f"{self.limits.max_message_bytes} bytes\n".encode())
        answering = _Answering()
        try:
            return self._process(content_type, body, answering, tls_chain)
        except as4.EbmsException as exc:
            log.warn("inbound message rejected: {code} {detail}", code=exc.error.error_code,
                     detail=exc.error.description, message_id=exc.error.ref_to_message_id)
            return self._error_response(exc.error, answering.suite)
        except Exception:
            if answering.reached_store:
                # Database, disk, NSW inbox: the listener answers HTTP 500 and the partner's
                # retries carry the message past the outage (delivery is idempotent).
                raise
            return self._internal_error(answering)

    def _internal_error(self, answering: _Answering) -> Response:
        """The last line of defence while the message is only being checked: a bug of ours on
        this input. A 500 would make the partner resend the same bytes into the same bug until
        its retries run out; a signed EBMS:0004 is a definitive answer, and the incident id
        ties the partner's report to the traceback in our log. Nothing was stored."""
        incident = uuid.uuid4().hex[:12]
        log.failure("inbound pipeline failed while checking message {message_id} (incident {incident}); "
                    "answered EBMS:0004", message_id=answering.message_id, incident=incident)
        error = as4.make_error(
            "EBMS:0004", f"the message could not be checked because of an internal error of "
            f"{self.identity.party_id} (incident {incident}); it was not accepted, and resending it "
            f"unchanged will fail the same way: ask the operator of {self.identity.party_id} about "
            f"incident {incident}", answering.message_id, severity="failure")
        return self._error_response(error, answering.suite)

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
            # Our decryption key of the PMode's suite (RSA for 1.15, X25519 or EC P-256 for 2.0).
            key = self._keys(security.suite).encryption_key
            plain = decrypt_parts(envelope, parts, key, _policy(security))
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
            verified = verify_message(envelope, parts, partner.signing_certs, _policy(security),
                                      trust=partner.signing_trust())
        except MissingSignature as exc:
            if security.allow_unsigned:
                return None
            raise _fail("EBMS:0103", f"the message is not signed ({exc}); the agreement with "
                        f"{self.identity.party_id} requires a WS-Security signature over eb:Messaging, "
                        "the SOAP Body and every attachment", mid) from None
        except (AlgorithmNotAllowed, IncompleteSignature) as exc:
            raise _fail("EBMS:0103", f"signature does not meet the security policy: {exc}", mid) from None
        except SignerCertificateRejected as exc:
            extra = partner.pki.explain() if partner.pki else ""
            raise _fail("EBMS:0101", f"{exc}{extra}. Sign with a current, unrevoked certificate issued "
                        f"under the trust anchors agreed with {self.identity.party_id}", mid) from None
        except UntrustedSigner as exc:
            raise _fail("EBMS:0101", f"{exc}. {self.identity.party_id} accepts signatures of {partner.id} "
                        f"only by its {len(partner.signing_certs)} configured signing certificate(s); "
                        "sign with one of them, or send the new certificate to our operator first "
                        "(both are accepted during a rollover)", mid) from None
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
        # By the unique (direction, partner, MessageId) key: an index lookup, not a scan.
        previous = stored = self.store.find_inbound(partner_id, mid)
        if previous is None:
            return None
        # Content, not packaging: a partner that re-signs and re-packs a resend (new
        # Content-IDs, new signature) is still resending the same message.
        old = [p.digest for p in previous.payloads]
        new = [hashlib.sha256(p.data).hexdigest() for p in payloads]
        if old != new:
            raise _fail("EBMS:0003", f"MessageId {mid} was already received with different payloads; a new "
                        "message needs a new MessageId (resends must carry the same content)", mid)
        if stored.status == REJECTED:
            # A repeat of a rejected message gets the same error again, never a receipt (and is
            # never delivered): the verdict on a MessageId does not change with a resend.
            self.store.add_event(stored.id, "duplicate", "rejected",
                                 "same MessageId received again; EBMS:0004 sent again, not delivered")
            raise _fail("EBMS:0004", _rejection_text(stored.document_type, stored.last_error), mid)
        if stored.receipt is None:
            return None
        self.store.add_event(stored.id, "duplicate", "answered",
                             "same MessageId received again; previous receipt re-sent, not delivered again")
        return Response(200, stored.receipt.content_type, self.store.blob(stored.receipt.digest))

    def _check_tls_client(self, partner: Partner, chain: tuple[x509.Certificate, ...] | None, mid: str) -> None:
        """The TLS client certificate, already chained to our client_ca by the handshake,
        checked like a signer once the sender is known: that it is one of the partner's
        ``tls_client_certs`` (when configured: any certificate under the shared client_ca would
        otherwise do), validity, key usage for TLS client authentication, and revocation per
        the partner's CRLs."""
        if chain and partner.tls_client_certs:
            _check_tls_binding(partner, chain[0], mid)
        if not chain or partner.pki is None:
            return
        leaf, anchor = chain[0], chain[-1]
        trust = partner.pki.tls_client_trust((anchor,))
        try:
            trust.validate(leaf, purpose="tls-client", extra_intermediates=chain[1:-1])
        except UntrustedCertificate as exc:
            raise _fail("EBMS:0101", f"the TLS client certificate is not accepted for {partner.id}: {exc}"
                        f"{partner.pki.explain()}. Connect with a current, unrevoked TLS client "
                        "certificate", mid) from None

    def _process(self, content_type: str, body: bytes, answering: _Answering | None = None,
                 tls_chain: tuple[x509.Certificate, ...] | None = None) -> Response:
        answering = answering or _Answering()
        received_at = dt.datetime.now(dt.timezone.utc)
        envelope, parsed, mime_parts = self._parse(content_type, body)
        um = parsed.user_message
        assert um is not None
        mid = answering.message_id = um.message_id
        partner = self._sender(um)
        if partner.pmodes:
            answering.suite = partner.pmodes[0].security.suite
        self._check_tls_client(partner, tls_chain, mid)
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
        answering.suite = security.suite
        check_attachment_refs(um, {p.content_id for p in mime_parts})
        events = [StepEvent("receive", "ok", f"{len(body)} bytes from {partner.id}, {len(mime_parts)} attachment(s)"),
                  StepEvent("pmode", "ok", f"matched PMode {pmode.id}" if pmode else "ebMS test service")]

        wire_parts = [Part(content_id=p.content_id, mime_type=p.content_type, data=p.data) for p in mime_parts]
        parts = self._decrypt(envelope, wire_parts, security, mid)
        events.append(StepEvent("decrypt", "ok", f"{len(parts)} attachment(s)"))
        verified = self._verify(envelope, parts, partner, security, mid)
        self._require_encryption(security, wire_parts, parts, mid)
        if verified is None:
            _require_tls_for_unsigned(partner, tls_chain, mid)
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
            receipt, receipt_bytes = self._receipt(mid, verified, messaging, security.suite)
            log.info("answered ebMS test message {message_id} from {partner} (not delivered)",
                     message_id=mid, partner=partner.id)
            return Response(200, SOAP_CONTENT_TYPE, receipt_bytes)
        assert pmode is not None
        answering.reached_store = True
        # Duplicate check only after verification: a tampered copy of a delivered message must
        # get an error, not the original's receipt.
        previous = self._previous_answer(partner.id, mid, payloads)
        if previous is not None:
            return previous
        if payloads:
            events.append(StepEvent("decompress", "ok", ", ".join(f"{p.content_id}: {len(p.data)} bytes"
                                                                  for p in payloads)))
        props = {p.name: p.value for p in um.message_properties}
        reference = props.get("nswReference")
        try:
            delivered, extra = self._document_stage(partner, pmode, mid, payloads, events)
        except (InvalidDocument, MappingFailed, AeoListRejected) as exc:
            self._record_rejected(mid, partner, pmode, um, reference, content_type, body, payloads, events, exc)
            raise _fail("EBMS:0004", _rejection_text(pmode.document_type, str(exc)), mid) from None
        original = self._link_response(partner, um, events)
        if original is not None:
            extra["in_reply_to"] = {"message_id": original.message_id, "reference": original.nsw_reference,
                                    "document_type": original.document_type}
        receipt, receipt_bytes = self._receipt(mid, verified, messaging, security.suite)
        sender = um.from_party.party_ids[0]
        for index, payload in enumerate(payloads):
            path = self.connector.deliver(
                partner_id=partner.id, sender_party=sender.value,
                message_id=mid if index == 0 else f"{mid}#{index}", reference=reference,
                document_type=pmode.document_type, received_at=as4.format_timestamp(received_at),
                document=delivered if index == 0 else payload.data, mime_type=payload.mime_type,
                conversation_id=um.conversation_id, ref_to_message_id=um.ref_to_message_id,
                extra=extra if index == 0 else None)
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
        if original is not None:
            self.store.add_event(original.id, "response", "received",
                                 f"business response {mid} ({pmode.document_type}) from {partner.id}")
        log.info("received {message_id} from {partner}", message_id=mid, partner=partner.id)
        return Response(200, SOAP_CONTENT_TYPE, receipt_bytes)

    # -- documents -----------------------------------------------------------------
    def _document_stage(self, partner: Partner, pmode: PMode, mid: str, payloads: list[ResolvedPayload],
                        events: list[StepEvent]) -> tuple[bytes | None, dict]:
        """Map the business document (the first payload) to canonical, validate it, check its
        document-level signature, and apply AEO lists to the registry. Returns the canonical
        document and the inbox metadata the NSW gets with it."""
        if not payloads:
            return None, {}
        if len(payloads) > 1 and is_known(pmode.document_type):
            # Only one document would be checked, mapped and signature-verified; the others
            # would reach the NSW unchecked under a canonical type. One document per message.
            raise _fail("EBMS:0003", f"a {pmode.document_type} message carries exactly one document, this one "
                        f"carries {len(payloads)} payloads: send each document as its own message", mid)
        doc = accept_inbound(partner, pmode, pmode.document_type, payloads[0].data)
        events.extend(doc.events)
        extra: dict = {}
        if doc.signature is not None:
            extra = {"signature": doc.signature.status, "signature_signer": doc.signature.signer,
                     "signature_detail": doc.signature.summary()}
        if pmode.document_type == "aeo" and self.aeo is not None:
            aeo_list = parse_list(doc.data)
            _check_aeo_issuer(partner, aeo_list.issuing_country, aeo_list.list_id)
            result = self.aeo.apply(aeo_list, message_id=mid)
            events.append(StepEvent("aeo", "applied", result.summary()))
            extra["aeo"] = result.summary()
        return doc.data, extra

    def _record_rejected(self, mid: str, partner: Partner, pmode: PMode, um: as4.UserMessage,
                         reference: str | None, content_type: str, body: bytes,
                         payloads: list[ResolvedPayload], events: list[StepEvent], exc: Exception) -> None:
        """A verified message whose document fails: kept as evidence in state ``rejected``,
        never delivered; the partner gets EBMS:0004 naming the problem."""
        step = "map" if isinstance(exc, MappingFailed) else "aeo" if isinstance(exc, AeoListRejected) else "validate"
        log.warn("inbound {message_id} from {partner}: document rejected: {error}", message_id=mid,
                 partner=partner.id, error=str(exc))
        try:
            self.store.record_inbound(
                message_id=mid, partner_id=partner.id, document_type=pmode.document_type, pmode_id=pmode.id,
                nsw_reference=reference, conversation_id=um.conversation_id,
                ref_to_message_id=um.ref_to_message_id, status=REJECTED, content_type=content_type,
                raw=body, receipt=None, receipt_content_type=None, error=str(exc),
                payloads=[PayloadData(p.content_id, p.mime_type, p.data) for p in payloads],
                events=[*events, StepEvent(step, "rejected", str(exc)),
                        StepEvent("error", "sent", "EBMS:0004 to the partner; not delivered to the NSW")])
        except DuplicateMessage:
            pass    # the same rejected message again: already on record

    def _link_response(self, partner: Partner, um: as4.UserMessage, events: list[StepEvent]):
        """A business response (RefToMessageId) is linked to the message of ours it answers."""
        ref = um.ref_to_message_id
        if not ref:
            return None
        original = next((m for m in self.store.find(message_id=ref)
                         if m.direction == "out" and m.partner_id == partner.id), None)
        if original is None:
            events.append(StepEvent("link", "unknown", f"RefToMessageId {ref} is not a message this gateway "
                                    f"sent to {partner.id}"))
            return None
        events.append(StepEvent("link", "ok", f"answers our message {ref} ({original.document_type}, "
                                f"reference {original.nsw_reference})"))
        return original
