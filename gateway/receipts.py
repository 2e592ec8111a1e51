"""Judging a partner's answer to a message we sent: a valid signed receipt, an ebMS error, or junk.

Pure decision logic over bytes (plus crypto); the sender applies the verdict to the store.
A receipt only counts when it is signed by the partner, refers to our MessageId and its
NonRepudiationInformation repeats exactly the digests we signed: that is what makes it
evidence that the partner got *these* bytes.
"""
from __future__ import annotations

from dataclasses import dataclass

from crypto import SecurityError, SecurityPolicy, SignerCertificateRejected, suite, verify_message
from gateway import as4
from gateway.store.store import OutboundJob
from partners.registry import Partner

DELIVERED, RETRY, FAILED = "delivered", "retry", "failed"


@dataclass(frozen=True)
class Verdict:
    outcome: str          # DELIVERED, RETRY or FAILED
    detail: str
    receipt_message_id: str | None = None
    #: The ebMS error this outcome stands for, told to the NSW when it is final: the partner's
    #: own code for a permanent error, EBMS:0302 InvalidReceipt for a receipt that failed its
    #: checks (AS4 §3.2; the sender turns a spent budget into EBMS:0301 MissingReceipt).
    error_code: str | None = None


def _verify(envelope, partner: Partner, job: OutboundJob) -> None:
    """Check a signal's signature as strictly as an inbound message: the suite of the PMode
    the message was sent under, the partner's configured signers, and (when the partner has
    ``signing_trust``) path validation with its CRLs."""
    pmode = next((p for p in partner.pmodes if p.id == job.pmode_id), None)
    policy: SecurityPolicy = suite(pmode.security.suite if pmode else "edelivery-as4-1.15")
    try:
        verify_message(envelope, [], partner.signing_certs, policy, trust=partner.signing_trust())
    except SignerCertificateRejected as exc:
        extra = partner.pki.explain() if partner.pki else ""
        raise SignerCertificateRejected(f"{exc}{extra}") from None


MISSING_RECEIPT, INVALID_RECEIPT = "EBMS:0301", "EBMS:0302"

# ebMS errors that say "try again later" rather than "this message is wrong".
TRANSIENT_ERRORS = frozenset({"EBMS:0005", "EBMS:0006"})


def judge_response(job: OutboundJob, partner: Partner, status: int, content_type: str, body: bytes) -> Verdict:
    """Everything short of a verified receipt or a signed permanent ebMS error is retried
    (within the PMode's budget): a gateway cannot tell a partner's bad afternoon from a
    permanent fault, and resending the identical signed bytes is always safe."""
    if status == 413:
        return Verdict(FAILED, "partner refused the message as too large (HTTP 413); it will not accept "
                       "it on a retry: split the document or agree a larger limit with the partner")
    if not body.strip():
        return Verdict(RETRY, f"HTTP {status} from partner with no ebMS answer")
    if not (content_type or "").strip():
        # Not the inbound parser's "request has no Content-Type": here it is the partner's answer.
        return Verdict(RETRY, f"HTTP {status}: the partner's HTTP response has no Content-Type header, so it "
                       "cannot be an ebMS signal (AS4 answers are application/soap+xml or multipart/related); "
                       f"something other than the partner's AS4 service likely answered at {partner.endpoint} "
                       "(a proxy, load balancer or web server): check that endpoint with the partner "
                       f"({partner.folder / 'partner.toml'} [partner.endpoint])")
    try:
        soap, _parts = as4.decode_message(content_type, body)
        envelope = as4.parse_xml(soap)
        parsed = as4.parse_envelope(envelope)
    except (as4.EbmsException, as4.XmlRejected) as exc:
        text = exc.error.description if isinstance(exc, as4.EbmsException) else str(exc)
        return Verdict(RETRY, f"HTTP {status}: answer is not an ebMS signal ({text})")
    if parsed.error_signal is not None:
        errors = "; ".join(f"{e.error_code} {e.short_description}: {e.description}"
                           for e in parsed.error_signal.errors)
        try:
            _verify(envelope, partner, job)
        except SecurityError as exc:
            return Verdict(RETRY, f"partner answered with an ebMS error whose signature does not verify "
                           f"({exc}), so it is not taken as final: {errors}")
        signal = parsed.error_signal
        refs = {r for r in (signal.ref_to_message_id, *(e.ref_to_message_id for e in signal.errors)) if r}
        if refs and job.message_id not in refs:
            # A (replayed) error about another message must not settle this one.
            return Verdict(RETRY, f"partner answered with an ebMS error about {sorted(refs)}, not about "
                           f"{job.message_id!r}: {errors}")
        permanent = [e for e in signal.errors
                     if e.severity.lower() == "failure" and e.error_code not in TRANSIENT_ERRORS]
        if not permanent:
            return Verdict(RETRY, f"partner answered with a transient ebMS error: {errors}")
        return Verdict(FAILED, f"partner answered with an ebMS error: {errors}", error_code=permanent[0].error_code)
    if parsed.receipt is None:
        return Verdict(RETRY, f"HTTP {status}: answer holds neither a receipt nor an error")
    if parsed.receipt.ref_to_message_id != job.message_id:
        return Verdict(RETRY, f"receipt refers to {parsed.receipt.ref_to_message_id!r}, not to {job.message_id!r}",
                       error_code=INVALID_RECEIPT)
    try:
        _verify(envelope, partner, job)
    except SecurityError as exc:
        return Verdict(RETRY, f"receipt signature is not valid: {exc}", error_code=INVALID_RECEIPT)
    got = as4.nri_digests(parsed.nri_references)
    expected = {uri: tuple(v) for uri, v in job.signed_references.items()}
    if {u: tuple(v) for u, v in got.items()} != expected:
        missing = sorted(set(expected) - set(got))
        wrong = sorted(u for u in expected if u in got and tuple(got[u]) != expected[u])
        return Verdict(RETRY, f"receipt NonRepudiationInformation does not match what we signed "
                       f"(missing: {missing or 'none'}, different digests: {wrong or 'none'})",
                       error_code=INVALID_RECEIPT)
    return Verdict(DELIVERED, f"signed receipt {parsed.receipt.message_id} verified; "
                   f"{len(got)} NRI digests match what we signed", parsed.receipt.message_id)
