"""The checks the inbound steps apply: pure functions of the message and the partner's
configuration, each raising the ebMS error (``fail``) whose description tells the partner's
operator what to change."""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from crypto import SecurityPolicy, VerifyResult, suite
from crypto.wssec_keyinfo import describe_certificate
from gateway import as4
from gateway.aeo.registry import AeoListRejected
from gateway.as4.namespaces import DEFAULT_SERVICE, TEST_ACTION
from gateway.inbound.context import fail
from partners.pmode import PMode, SecurityConfig
from partners.registry import Partner


def is_test_message(um: as4.UserMessage) -> bool:
    """ebMS 3.0 Core 5.2.2.9: the test service/action, answered but never delivered."""
    return um.service == DEFAULT_SERVICE and um.action == TEST_ACTION


def party_label(party: as4.Party) -> str:
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
        raise fail("EBMS:0010", f"no PMode for service {um.service!r}, action {um.action!r} with partner "
                    f"{partner.id}; agreed service/action pairs are: {offered}", mid)
    pmode = next((p for p in same_action if p.agreement == um.agreement_ref), None)
    if pmode is None:
        agreed = ", ".join(repr(p.agreement) for p in same_action)
        raise fail("EBMS:0010", f"AgreementRef {um.agreement_ref!r} does not match the agreement of the PMode "
                    f"for service {um.service!r}, action {um.action!r} (expected {agreed})", mid)
    if pmode.service_type is not None and (um.service_type or None) != pmode.service_type:
        raise fail("EBMS:0010", f"Service type {um.service_type!r} does not match PMode {pmode.id} "
                    f"(expected {pmode.service_type!r})", mid)
    if um.from_party.role != pmode.initiator_role:
        raise fail("EBMS:0010", f"From/Role {um.from_party.role!r} is not the initiator role of PMode "
                    f"{pmode.id} ({pmode.initiator_role!r})", mid)
    if um.to_party.role != pmode.responder_role:
        raise fail("EBMS:0010", f"To/Role {um.to_party.role!r} is not the responder role of PMode "
                    f"{pmode.id} ({pmode.responder_role!r})", mid)
    return pmode


def check_service_value(um: as4.UserMessage) -> None:
    # ebMS Core 5.2.2.8: an untyped Service must be a URI.
    if um.service_type is None and ":" not in um.service:
        raise fail("EBMS:0003", f"Service {um.service!r} has no type attribute, so it must be a URI "
                    "(ebMS 3.0 Core 5.2.2.8); add type=\"...\" or use a URI", um.message_id)


def policy_of(security: SecurityConfig) -> SecurityPolicy:
    """The algorithm suite the PMode agreed: nothing weaker (or merely different) is accepted."""
    return suite(security.suite)


def check_validity_period(verified: VerifyResult, mid: str) -> None:
    """Belt and braces next to crypto's trust validation: a signature by a certificate
    outside its validity period proves nothing, whatever the configured trust says."""
    now = dt.datetime.now(dt.timezone.utc)
    cert = verified.signer
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise fail("EBMS:0101", f"the signing certificate {cert.subject.rfc4514_string()} is only valid "
                    f"from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} to {cert.not_valid_after_utc:%Y-%m-%d %H:%M} "
                    "UTC; sign with a current certificate", mid)


def check_aeo_issuer(partner: Partner, issuing_country: str, list_id: str) -> None:
    """A partner speaks for its own customs administration only: a list issued by another
    country (or by us) would let it rewrite that country's operators in our registry."""
    if partner.country is None:
        raise AeoListRejected(f"AEO list {list_id} cannot be attributed: partner {partner.id} has no "
                              f"[partner] country in its partner.toml (the receiving side must set it, e.g. "
                              f"country = \"{issuing_country}\", before it accepts AEO lists from this partner)")
    if issuing_country != partner.country:
        raise AeoListRejected(f"AEO list {list_id} is issued by {issuing_country!r}, but {partner.id} speaks "
                              f"for {partner.country!r}: a partner may only send its own country's AEO list")


def check_tls_binding(partner: Partner, leaf: x509.Certificate, mid: str) -> None:
    """The connection's TLS client certificate must be one the partner is configured with."""
    der = leaf.public_bytes(Encoding.DER)
    if any(c.public_bytes(Encoding.DER) == der for c in partner.tls_client_certs):
        return
    expected = "; ".join(describe_certificate(c) for c in partner.tls_client_certs)
    raise fail("EBMS:0101", f"the TLS client certificate ({describe_certificate(leaf)}) is not one "
                f"{partner.id} is configured to connect with; expected: {expected}. Connect with one of "
                "these, or have our operator add the new certificate to [partner].tls_client_certs "
                "(list both during a rollover)", mid)


def require_tls_for_unsigned(partner: Partner, chain: tuple[x509.Certificate, ...] | None, mid: str) -> None:
    """An unsigned message (PMode ``allow_unsigned``) is authenticated only by the TLS client
    certificate, checked against ``tls_client_certs`` in ``CheckTlsClient``."""
    if not partner.tls_client_certs:
        raise fail("EBMS:0103", f"the message is not signed, and unsigned messages from {partner.id} can only "
                    "be authenticated by a configured TLS client certificate ([partner].tls_client_certs), "
                    "which is not set; sign the message", mid)
    if not chain:
        raise fail("EBMS:0103", "the message is not signed, and it arrived without a TLS client "
                    "certificate (plain-HTTP listener), so nothing authenticates the sender; sign the "
                    "message, or send it over mutual TLS to a listener with tls = true", mid)


def rejection_text(document_type: str | None, problem: str | None) -> str:
    """The EBMS:0004 description for a document we would not accept (the same on every resend)."""
    return f"the {document_type} document was not accepted: {problem}"
