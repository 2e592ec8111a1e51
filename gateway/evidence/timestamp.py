"""Time-stamp the chain head with an RFC 3161 TSA and record the token in the chain.

A token over the head's hash proves that the whole chain up to it existed at the TSA's
time; since every entry's hash covers its predecessor, later rewriting of any earlier entry
is exposed by a token the operator could not have forged. Blocking (CLI or a worker thread).
"""
from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import select

from crypto.tlspolicy import https_context
from gateway.evidence.chain import TIMESTAMP, append_standalone
from gateway.evidence.errors import EvidenceError
from gateway.evidence.tsp import TimestampError, TokenInfo, make_request, parse_response, verify_token
from gateway.store.models import EvidenceEntry
from gateway.store.store import MessageStore

CONTENT_TYPE = "application/timestamp-query"


@dataclass(frozen=True)
class Timestamped:
    entry: EvidenceEntry        # the new ``timestamp`` entry
    covered: EvidenceEntry      # the head it time-stamps
    token: TokenInfo


def post_request(url: str, der: bytes, timeout: float = 30.0) -> bytes:
    """POST a TimeStampReq; the TSA's raw TimeStampResp bytes."""
    request = urllib.request.Request(url, data=der, method="POST",
                                     headers={"Content-Type": CONTENT_TYPE, "Accept": "application/timestamp-reply"})
    try:
        with urllib.request.urlopen(request, timeout=timeout,  # noqa: S310 (configured URL)
                                    context=https_context()) as answer:
            return answer.read()
    except urllib.error.HTTPError as exc:
        raise EvidenceError(f"TSA {url} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise EvidenceError(f"TSA {url} cannot be reached: {getattr(exc, 'reason', exc)}") from None


def timestamp_head(store: MessageStore, url: str, trust: list[x509.Certificate] | None = None,
                   timeout: float = 30.0) -> Timestamped:
    """Get a token over the current head's entry_hash, check it, store it, append a ``timestamp`` entry."""
    with store.sessions() as s:
        head = s.scalars(select(EvidenceEntry).order_by(EvidenceEntry.seq.desc()).limit(1)).first()
    if head is None:
        raise EvidenceError("the evidence log is empty: there is no head to time-stamp yet")
    request = make_request(bytes.fromhex(head.entry_hash))
    try:
        token = parse_response(post_request(url, request.der, timeout))
        info = verify_token(token, trust)
    except TimestampError as exc:
        raise EvidenceError(f"TSA {url}: {exc}") from None
    if info.hashed_message != request.digest or info.hash_algorithm != "2.16.840.1.101.3.4.2.1":
        raise EvidenceError(f"TSA {url} time-stamped something else than the chain head (messageImprint differs)")
    if info.nonce != request.nonce:
        raise EvidenceError(f"TSA {url} answered with another nonce (a replayed or mixed-up response)")
    token_digest = store.blobs.put(token)
    entry = append_standalone(store.sessions, TIMESTAMP, data={
        "tsa": url, "timestamped_seq": head.seq, "timestamped_hash": head.entry_hash, "token_digest": token_digest,
        "gen_time": info.gen_time.isoformat(), "serial_number": str(info.serial_number), "policy": info.policy,
        "tsa_subject": info.signer.subject.rfc4514_string()})
    return Timestamped(entry, head, info)
